import type { Problems } from "../problems";

/**
 * Class names of a YOLO dataset from data.yaml, read without a YAML library: only the keys `nc` and `names` are
 * understood, with `names` as a block list (`- cat`), a block map (`0: cat`), or a flow list/map on one line.
 * Everything else in the file (paths, download scripts) is skipped. classes.txt (one name a line) is the fallback.
 */
export interface ClassNames {
	names: string[];
	file: string;
}

function unquote(raw: string): string {
	const s = raw.trim();
	if (s.length >= 2 && s.startsWith("'") && s.endsWith("'")) return s.slice(1, -1).replace(/''/g, "'");
	if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) return s.slice(1, -1).replace(/\\(["\\])/g, "$1");
	return s;
}

/** Drops a `# comment` that is not inside quotes. */
function stripComment(line: string): string {
	let quote = "";
	for (let i = 0; i < line.length; i++) {
		const c = line[i]!;
		if (quote) quote = c === quote ? "" : quote;
		else if (c === "'" || c === '"') quote = c;
		else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
	}
	return line;
}

/** Splits a flow collection's body on commas outside quotes. */
function splitFlow(body: string): string[] {
	const out: string[] = [];
	let quote = "", current = "";
	for (const c of body) {
		if (quote) quote = c === quote ? "" : quote;
		else if (c === "'" || c === '"') quote = c;
		else if (c === ",") {
			out.push(current);
			current = "";
			continue;
		}
		current += c;
	}
	if (current.trim()) out.push(current);
	return out.map((s) => s.trim());
}

/** Names given as `index: name` pairs must number 0, 1, 2, … without gaps. */
function fromPairs(pairs: Array<[string, string]>, file: string, line: number, problems: Problems): string[] | undefined {
	const names: string[] = [];
	for (const [k, v] of pairs) {
		if (!/^\d+$/.test(k.trim())) return problems.error("syntax_error", `the class index ${JSON.stringify(k.trim())} is not a number`, { file, line }), undefined;
		names[Number(k)] = unquote(v);
	}
	if (names.length !== pairs.length || names.some((n) => n === undefined)) return problems.error("syntax_error", "class indices must run 0, 1, 2, … without gaps", { file, line }), undefined;
	return names;
}

export function parseDataYaml(source: string, file: string, problems: Problems): string[] | undefined {
	const lines = source.split(/\r?\n/).map(stripComment);
	let names: string[] | undefined;
	let nc: { value: number; line: number } | undefined;
	for (let i = 0; i < lines.length; i++) {
		const m = /^([A-Za-z_][\w-]*)\s*:\s*(.*?)\s*$/.exec(lines[i]!);
		if (!m) continue;
		const [, key, value] = m as unknown as [string, string, string];
		const line = i + 1;
		if (key === "nc") {
			if (!/^\d+$/.test(value)) problems.error("syntax_error", `nc must be a whole number, not ${JSON.stringify(value)}`, { file, line });
			else nc = { value: Number(value), line };
		}
		if (key !== "names") continue;
		if (value.startsWith("[") && value.endsWith("]")) names = splitFlow(value.slice(1, -1)).map(unquote);
		else if (value.startsWith("{") && value.endsWith("}")) {
			names = fromPairs(splitFlow(value.slice(1, -1)).map((e) => [e.slice(0, e.indexOf(":")), e.slice(e.indexOf(":") + 1)]), file, line, problems);
		} else if (value) return problems.error("syntax_error", "names must be a list or a map of index: name", { file, line }), undefined;
		else {
			const block: string[] = [];
			while (i + 1 < lines.length && (/^\s+\S/.test(lines[i + 1]!) || /^-\s/.test(lines[i + 1]!) || !lines[i + 1]!.trim())) {
				if (lines[++i]!.trim()) block.push(lines[i]!.trim());
			}
			if (block.every((b) => b.startsWith("- "))) names = block.map((b) => unquote(b.slice(2)));
			else names = fromPairs(block.map((b) => [b.slice(0, b.indexOf(":")), b.slice(b.indexOf(":") + 1)]), file, line, problems);
		}
		if (names?.some((n) => !n)) return problems.error("syntax_error", "a class name is empty", { file, line }), undefined;
	}
	if (!names) return problems.error("names_missing", "data.yaml has no names: list of class names", { file }), undefined;
	if (nc && nc.value !== names.length) problems.error("names_count_mismatch", `nc is ${nc.value} but ${names.length} names are listed`, { file, line: nc.line });
	return names;
}

export function parseClassesTxt(source: string, file: string, problems: Problems): string[] | undefined {
	const lines = source.replace(/\s+$/, "").split(/\r?\n/);
	const empty = lines.findIndex((l) => !l.trim());
	if (empty >= 0) return problems.error("syntax_error", "a class name is empty", { file, line: empty + 1 }), undefined;
	return lines.map((l) => l.trim());
}

/** Class names of a YOLO or VOC dataset: data.yaml wins over classes.txt; neither is a problem. */
export async function readClassNames(paths: readonly string[], read: (p: string) => Promise<Buffer>, problems: Problems): Promise<ClassNames | undefined> {
	for (const file of ["data.yaml", "data.yml"]) {
		if (!paths.includes(file)) continue;
		const names = parseDataYaml((await read(file)).toString("utf8"), file, problems);
		return names && { names, file };
	}
	if (!paths.includes("classes.txt")) return problems.error("names_missing", "no class names: add data.yaml (names: …) or classes.txt", { file: "." }), undefined;
	const names = parseClassesTxt((await read("classes.txt")).toString("utf8"), "classes.txt", problems);
	return names && { names, file: "classes.txt" };
}

export function writeDataYaml(names: readonly string[]): string {
	return ["path: .", "train: images", "val: images", `nc: ${names.length}`, "names:", ...names.map((n, i) => `  ${i}: ${JSON.stringify(n)}`), ""].join("\n");
}
