/**
 * A small XML reader for the subset annotation files use: elements, attributes, text, comments and CDATA.
 * Uploaded files are hostile, so a DOCTYPE (and with it every DTD, external entity and "billion laughs" expansion)
 * is refused outright, and the only entity references understood are the five predefined ones and numeric
 * character references. Nesting depth is bounded. Every element remembers the line it starts on.
 */
export interface XmlElement {
	name: string;
	attributes: Record<string, string>;
	children: XmlElement[];
	/** Concatenated character data directly inside the element, trimmed. */
	text: string;
	line: number;
}

export class XmlError extends Error {
	override name = "XmlError";
	constructor(
		message: string,
		readonly line: number,
		/** True for constructs refused for safety (DTD, entities), as opposed to malformed XML. */
		readonly forbidden = false,
	) {
		super(message);
	}
}

const MAX_DEPTH = 32;
const NAME = /[A-Za-z_:][-\w.:]*/y;
const PREDEFINED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

export function parseXml(source: string): XmlElement {
	let pos = source.charCodeAt(0) === 0xfeff ? 1 : 0;
	let line = 1;
	let counted = 0;
	const lineAt = (p: number) => {
		for (; counted < p; counted++) if (source.charCodeAt(counted) === 10) line++;
		return line;
	};
	const fail = (message: string, forbidden = false): never => {
		throw new XmlError(message, lineAt(pos), forbidden);
	};
	const startsWith = (s: string) => source.startsWith(s, pos);
	const skipSpace = () => {
		while (pos < source.length && /\s/.test(source[pos]!)) pos++;
	};
	const until = (end: string, what: string) => {
		const at = source.indexOf(end, pos);
		if (at < 0) fail(`${what} is not closed`);
		const body = source.slice(pos, at);
		pos = at + end.length;
		return body;
	};
	const decode = (raw: string) =>
		raw.replace(/&([^;&\s]{0,10});?/g, (match, ref: string) => {
			if (!match.endsWith(";")) fail("a '&' must start an entity reference like &amp;");
			if (ref in PREDEFINED) return PREDEFINED[ref]!;
			const code = /^#x[0-9a-f]+$/i.test(ref) ? parseInt(ref.slice(2), 16) : /^#\d+$/.test(ref) ? parseInt(ref.slice(1), 10) : NaN;
			if (Number.isNaN(code)) return fail(`the entity reference &${ref}; is not allowed (only &lt; &gt; &amp; &quot; &apos; and numeric references)`, true);
			if (code < 9 || code > 0x10ffff) fail(`the character reference &${ref}; is not a valid character`);
			return String.fromCodePoint(code);
		});
	const readName = () => {
		NAME.lastIndex = pos;
		const m = NAME.exec(source);
		if (!m) return fail("expected a name");
		pos += m[0].length;
		return m[0];
	};
	/** Comments, processing instructions and the refusals that may appear between elements. */
	const skipMisc = (): boolean => {
		if (startsWith("<!--")) return (pos += 4), until("-->", "a comment"), true;
		if (startsWith("<?")) return (pos += 2), until("?>", "a processing instruction"), true;
		if (startsWith("<!DOCTYPE") || startsWith("<!doctype")) fail("a DOCTYPE is not allowed in an annotation file (no DTDs or custom entities)", true);
		if (startsWith("<!") && !startsWith("<![CDATA[")) fail("markup declarations (<!ENTITY, <!ELEMENT …) are not allowed", true);
		return false;
	};
	const element = (depth: number): XmlElement => {
		if (depth > MAX_DEPTH) fail(`elements are nested deeper than ${MAX_DEPTH} levels`);
		const start = lineAt(pos);
		pos++; // '<'
		const name = readName();
		const attributes: Record<string, string> = {};
		for (;;) {
			skipSpace();
			if (startsWith("/>")) return (pos += 2), { name, attributes, children: [], text: "", line: start };
			if (startsWith(">")) break;
			const attr = readName();
			skipSpace();
			if (source[pos] !== "=") fail(`attribute ${attr} has no value`);
			pos++;
			skipSpace();
			const quote = source[pos];
			if (quote !== '"' && quote !== "'") return fail(`the value of attribute ${attr} must be quoted`);
			pos++;
			const raw = until(quote, `the value of attribute ${attr}`);
			if (raw.includes("<")) fail(`the value of attribute ${attr} contains '<'`);
			if (attr in attributes) fail(`attribute ${attr} appears twice`);
			attributes[attr] = decode(raw);
		}
		pos++; // '>'
		const children: XmlElement[] = [];
		let text = "";
		for (;;) {
			if (pos >= source.length) fail(`element <${name}> (line ${start}) is not closed`);
			if (startsWith("</")) {
				pos += 2;
				const closing = readName();
				if (closing !== name) fail(`</${closing}> closes <${name}> (line ${start})`);
				skipSpace();
				if (source[pos] !== ">") fail(`</${closing}> is not closed with '>'`);
				pos++;
				return { name, attributes, children, text: text.trim(), line: start };
			}
			if (startsWith("<![CDATA[")) {
				pos += 9;
				text += until("]]>", "a CDATA section");
			} else if (skipMisc()) continue;
			else if (source[pos] === "<") children.push(element(depth + 1));
			else {
				const next = source.indexOf("<", pos);
				const end = next < 0 ? source.length : next;
				text += decode(source.slice(pos, end));
				pos = end;
			}
		}
	};
	for (;;) {
		skipSpace();
		if (pos >= source.length) fail("the document has no root element");
		if (!skipMisc()) break;
	}
	if (source[pos] !== "<") fail("the document must start with an element");
	const root = element(1);
	for (;;) {
		skipSpace();
		if (pos >= source.length) return root;
		if (!skipMisc()) fail("content after the root element");
	}
}

export const childrenNamed = (el: XmlElement, name: string) => el.children.filter((c) => c.name === name);
export const childNamed = (el: XmlElement, name: string) => el.children.find((c) => c.name === name);

/** Escapes text for an element body or a double-quoted attribute. */
export const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&${Object.keys(PREDEFINED).find((k) => PREDEFINED[k] === c)};`);
