/** A refusal the caller can act on; `message` is a sentence fit for a user, never a stack trace. */
export class AuthzError extends Error {
	constructor(
		readonly code: "invalid" | "not_found" | "conflict" | "unauthenticated" | "locked",
		message: string,
		/** Policy validation problems, with line and column in the policy text. */
		readonly problems?: readonly PolicyProblem[],
	) {
		super(message);
		this.name = "AuthzError";
	}
}

export interface PolicyProblem {
	line: number;
	column: number;
	message: string;
}
