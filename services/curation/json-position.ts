/**
 * Where JSON text stops being valid, as a line number. Node 20's JSON.parse no longer says where ("Unexpected
 * token ','"), and a user fixing a 50 MB COCO file needs the line. A scanner with an explicit stack, so hostile
 * nesting cannot overflow the call stack. Only called after JSON.parse has failed.
 */
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const LITERAL = /true|false|null/y;

function errorOffset(s: string): number {
	let i = 0;
	const stack: Array<"{" | "["> = [];
	const ws = () => {
		while (i < s.length && " \t\n\r".includes(s[i]!)) i++;
	};
	const token = (re: RegExp) => {
		re.lastIndex = i;
		const m = re.exec(s);
		if (m) i += m[0].length;
		return !!m;
	};
	let expect: "value" | "key" | "after" = "value";
	for (;;) {
		ws();
		if (expect === "value") {
			const c = s[i];
			if (c === "{" || c === "[") {
				stack.push(c);
				i++;
				ws();
				if (s[i] === (c === "{" ? "}" : "]")) (i++, stack.pop(), (expect = "after"));
				else expect = c === "{" ? "key" : "value";
			} else if (token(STRING) || token(NUMBER) || token(LITERAL)) expect = "after";
			else return i;
		} else if (expect === "key") {
			if (!token(STRING)) return i;
			ws();
			if (s[i] !== ":") return i;
			i++;
			expect = "value";
		} else {
			const top = stack[stack.length - 1];
			if (!top) return i < s.length ? i : -1;
			if (s[i] === ",") (i++, (expect = top === "{" ? "key" : "value"));
			else if (s[i] === (top === "{" ? "}" : "]")) (i++, stack.pop());
			else return i;
		}
	}
}

/** 1-based line of the first syntax error, or undefined when the text is valid JSON. */
export function jsonErrorLine(source: string): number | undefined {
	const at = errorOffset(source);
	return at < 0 ? undefined : source.slice(0, at).split("\n").length;
}
