/**
 * The text being parsed, with what has been read so far masked out: each extractor consumes its spans, so a later
 * one cannot read the same characters again ("ds-42" is a dataset, not 42 of something; "lr 1e-4" is not a list
 * item). Masking keeps positions, so every span still points into the original text.
 */

export const MASK = "\u0000";

export class TextScanner {
	private rest: string;

	constructor(readonly original: string) {
		this.rest = original;
	}

	/** The text with consumed spans masked. */
	get text(): string {
		return this.rest;
	}

	/** Masks `length` characters from `index`. */
	consume(index: number, length: number): void {
		this.rest = this.rest.slice(0, index) + MASK.repeat(length) + this.rest.slice(index + length);
	}

	/**
	 * Runs a global regex over the unconsumed text and consumes each match `accept` takes (returns anything but
	 * false). Matches are read before any is consumed, so they never overlap; a match over masked text is skipped.
	 */
	take(re: RegExp, accept: (m: RegExpExecArray) => boolean | void): void {
		if (!re.global) throw new Error(`regex ${re} must be global`);
		for (const m of [...this.rest.matchAll(re)] as RegExpExecArray[]) {
			if (m[0].includes(MASK) || accept(m) === false) continue;
			this.consume(m.index, m[0].length);
		}
	}
}
