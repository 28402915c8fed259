import assert from "node:assert/strict";

/** What a failed action call rejects with: a Moleculer error with its HTTP-like code, type and data. */
export type ClientError = Error & { code: number; type: string; data?: Record<string, any> };

/**
 * A predicate for `assert.rejects`: the error has this code and type, its message is a sentence (not a stack
 * trace), and `check` may look further.
 */
export function rejectsWith(code: number, type: string, check?: (err: ClientError) => void) {
	return (err: ClientError) => {
		assert.equal(err.code, code, err.message);
		assert.equal(err.type, type, err.message);
		assert.doesNotMatch(err.message, /\n\s+at /, "a sentence, not a stack trace");
		check?.(err);
		return true;
	};
}
