/**
 * Numbers as people type them in a request: `1e-4`, `0.0001`, `.001`, `"3e-5"`, `1x10^-4`, `1e−4` (a Unicode
 * minus pasted from a paper), `1,000`, and small counts spelled out ("two A100s").
 */

/** A number token; the look-behind keeps it from starting inside a word (`ds-42`, `yolov8n`). */
export const NUMBER_SOURCE = String.raw`(?<![\w.])[-−+]?(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)(?:\s*[x×*]\s*10\s*\^?\s*[-−+]?\d+|[eE][-−+]?\d+)?(?![A-Za-z_\d])(?!\.\d)`;

const WORDS: Record<string, number> = {
	zero: 0, a: 1, an: 1, one: 1, single: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9,
	ten: 10, eleven: 11, twelve: 12, sixteen: 16, twenty: 20,
};
/** Counts spelled out ("two A100s", "three classes"); "a"/"an" are left to the patterns that mean them. */
export const COUNT_WORD_SOURCE = `(?:${Object.keys(WORDS).filter((w) => !["a", "an", "single"].includes(w)).join("|")})`;

/** The value of a NUMBER_SOURCE match or a count word; NaN when it is neither. */
export function parseNumber(raw: string): number {
	const s = raw.trim().replace(/−/g, "-").replace(/^["'“”]|["'“”]$/g, "").toLowerCase();
	if (s in WORDS) return WORDS[s]!;
	const power = /^([-+]?[\d.]+)\s*[x×*]\s*10\s*\^?\s*([-+]?\d+)$/.exec(s);
	// Through the e-notation: 1 * 10 ** -4 is 0.00009999999999999999 in floating point.
	if (power) return Number(`${power[1]}e${power[2]}`);
	return Number(s.replace(/,/g, ""));
}
