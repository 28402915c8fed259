/**
 * Preparsed policy slices, one per (workspace, domain), built on first use and dropped when a policy of that
 * workspace (or a platform-wide one) in that domain changes. Evaluating a preparsed slice of a few policies keeps
 * an uncached decision well under a millisecond, where the whole set of 1,000 costs ~3 ms (NOTES.md).
 */
import { PLATFORM } from "../directory/model";
import { cedar } from "./cedar";
import type { PolicyChange, PolicyIndex } from "./policy-index";

let instances = 0;

export class SliceCache {
	private readonly ready = new Set<string>();
	/** Cedar keeps preparsed sets in one process-wide table: ids are prefixed per cache. */
	private readonly prefix = `slices${++instances}`;

	constructor(private readonly index: PolicyIndex) {
		index.onChange((c) => this.invalidate(c));
	}

	/** The preparsed set id for a request on `workspace` in `domain`. */
	ensure(workspace: string, domain: string): string {
		const key = `${this.prefix}|${workspace}|${domain}`;
		if (!this.ready.has(key)) {
			const answer = cedar.preparsePolicySet(key, { staticPolicies: this.index.slice(workspace, domain) });
			if (answer.type !== "success") throw new Error(`policy slice ${workspace}/${domain} does not parse: ${answer.errors.map((e) => e.message).join("; ")}`);
			this.ready.add(key);
		}
		return key;
	}

	private invalidate(c: PolicyChange): void {
		if (c.scope === PLATFORM) return this.ready.clear();
		for (const key of this.ready) {
			const [, ws, domain] = key.split("|");
			if (ws === c.scope && (c.domains.includes("*") || c.domains.includes(domain!))) this.ready.delete(key);
		}
	}
}
