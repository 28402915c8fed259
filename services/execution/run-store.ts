import type { JetStreamClient } from "@nats-io/jetstream";
import { DocumentBucket, type Page, type PageQuery } from "../../lib/document-bucket";
import type { Run, RunStatus } from "./run";
import type { Step } from "./run-state";

/**
 * Run documents in a JetStream KV bucket (the embedded document store), one key per run. Every change is a
 * compare-and-set on the key's revision, so two controllers never both apply a transition; an in-memory index
 * kept current by a watch on the bucket serves list queries and the watchdog.
 */

export const RUNS_BUCKET = "runs";

export interface RunQuery extends PageQuery {
	workspace?: string;
	status?: RunStatus[];
}

export type RunPage = Page<Run>;

export class RunConflictError extends Error {
	override name = "RunConflictError";
}

export class RunStore {
	private constructor(private readonly runs: DocumentBucket<Run>) {}

	static async open(js: JetStreamClient, replicas: number): Promise<RunStore> {
		return new RunStore(await DocumentBucket.open<Run>(js, RUNS_BUCKET, { history: 5, replicas, description: "Run documents (execution)" }));
	}

	/** The stored document, read from the bucket (not the index): reads after writes see them. */
	get(id: string): Promise<Run | undefined> {
		return this.runs.get(id);
	}

	/** Stores a new run; when the id exists already, returns the stored one instead. */
	async create(run: Run): Promise<{ run: Run; created: boolean }> {
		const { doc, created } = await this.runs.create(run);
		return { run: doc, created };
	}

	/**
	 * Applies `change` to the current document and stores the result if the document did not change meanwhile;
	 * otherwise reads it again and re-applies. `change` must be pure: it can run more than once.
	 */
	async update(id: string, change: (run: Run) => Step): Promise<Step> {
		let step: Step | undefined;
		await this.runs.update(id, (current) => {
			if (!current) throw new RunConflictError(`run ${id} does not exist`);
			step = change(current);
			return step.run === current ? undefined : step.run;
		});
		return step!;
	}

	/** Newest first, from the index. */
	list(q: RunQuery): RunPage {
		return this.runs.page((r) => (!q.workspace || r.workspace === q.workspace) && (!q.status?.length || q.status.includes(r.status)), q);
	}

	/** Runs in the given states, from the index (the watchdog's view). */
	inStatus(...statuses: RunStatus[]): Run[] {
		return this.runs.values().filter((r) => statuses.includes(r.status));
	}

	/** Every run with a transition whose event is not stored yet. */
	withUnpublished(): Run[] {
		return this.runs.values().filter((r) => r.history.some((t) => !t.published));
	}

	close(): void {
		this.runs.close();
	}
}
