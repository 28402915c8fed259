import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { DocumentBucket, type Page, type PageQuery } from "../../lib/document-bucket";
import { hashedId, requestScopedId } from "../../lib/ids";
import { compareAndSet, openBucket } from "../../lib/kv";
import { continueSession } from "./clarification";
import type { IntentStatus, Question, TrainingIntent } from "./intent";
import type { Draft } from "./parser";

/**
 * Parses and sessions in two JetStream KV buckets (the embedded document store). A parse is written once (create,
 * never overwrite) and later only gains its run id and its event mark, by compare-and-set; a session's draft moves
 * turn by turn by compare-and-set, so two turns arriving at once are applied one after the other, never one over
 * the other. An in-memory index of parses, kept current by a watch, serves list queries.
 */

export const PARSES_BUCKET = "intent_parses";
export const SESSIONS_BUCKET = "intent_sessions";

/** One parsed message, as stored. */
export interface IntentParse {
	id: string;
	workspace: string;
	/** The user who sent it from an edge; absent for the platform's own parses. */
	owner?: string;
	request_id?: string;
	session_id: string;
	/** 1 for the session's first message. */
	turn: number;
	text: string;
	status: IntentStatus;
	/** The session's intent after this message. */
	intent: TrainingIntent;
	questions: Question[];
	reader: "offline" | "offline+llm";
	timing_ms: number;
	created_at: string;
	trace_id: string;
	run_id?: string;
	submitted_at?: string;
	/** False until the parse's event is stored in JetStream (the parse is its outbox). */
	published: boolean;
}

/** A conversation: the draft all its turns built, and the last turn applied (to recognise its retry). */
export interface IntentSession {
	id: string;
	workspace: string;
	draft: Draft;
	turns: number;
	last_parse_id: string;
	last_text: string;
	created_at: string;
	updated_at: string;
}

export interface ParseQuery extends PageQuery {
	workspace: string;
	session_id?: string;
	status?: IntentStatus[];
}

export type ParsePage = Page<IntentParse>;

export class SessionNotFoundError extends Error {
	override name = "SessionNotFoundError";
}

export class RequestReuseError extends Error {
	override name = "RequestReuseError";
}

/** Same workspace and request id → same parse id, so a retried parse finds the first one. */
export function parseIdFor(workspace: string, requestId: string | undefined): string {
	return requestScopedId("prs", workspace, requestId);
}

/** The session a first message opens: derived from its parse, so a retry after a crash finds it. */
export function sessionIdFor(parseId: string): string {
	return hashedId("ses", parseId);
}

export interface Turn {
	parseId: string;
	workspace: string;
	text: string;
	/** What the message says (offline, possibly completed by the LLM). */
	reading: Draft;
	at: Date;
}

/**
 * The session after `turn`; undefined when the turn is already applied (a retry after a crash between the session
 * write and the parse write). Pure: compare-and-set may call it again.
 */
export function applyTurn(current: IntentSession | undefined, sessionId: string, turn: Turn, opening: boolean): IntentSession | undefined {
	const at = turn.at.toISOString();
	if (!current) {
		if (!opening) throw new SessionNotFoundError(`no session ${sessionId} in workspace ${turn.workspace}`);
		const { draft } = continueSession(undefined, turn.text, structuredClone(turn.reading));
		return { id: sessionId, workspace: turn.workspace, draft, turns: 1, last_parse_id: turn.parseId, last_text: turn.text, created_at: at, updated_at: at };
	}
	if (current.workspace !== turn.workspace) throw new SessionNotFoundError(`no session ${sessionId} in workspace ${turn.workspace}`);
	if (current.last_parse_id === turn.parseId) {
		if (current.last_text !== turn.text) throw new RequestReuseError(`this request_id was already used in session ${sessionId} with a different text`);
		return undefined;
	}
	const { draft } = continueSession(current.draft, turn.text, structuredClone(turn.reading));
	return { ...current, draft, turns: current.turns + 1, last_parse_id: turn.parseId, last_text: turn.text, updated_at: at };
}

export class IntentStore {
	private constructor(
		private readonly parses: DocumentBucket<IntentParse>,
		private readonly sessions: KV,
	) {}

	static async open(js: JetStreamClient, replicas: number): Promise<IntentStore> {
		const parses = await DocumentBucket.open<IntentParse>(js, PARSES_BUCKET, { history: 5, replicas, description: "Parsed training requests (intent)" });
		const sessions = await openBucket(js, SESSIONS_BUCKET, { history: 5, replicas, description: "Clarification sessions (intent)" });
		return new IntentStore(parses, sessions);
	}

	/** Read from the bucket, not the index: a read after a write on another instance sees it. */
	get(id: string): Promise<IntentParse | undefined> {
		return this.parses.get(id);
	}

	/** Stores a new parse; when the id exists already, returns the stored one instead. */
	async create(parse: IntentParse): Promise<{ parse: IntentParse; created: boolean }> {
		const { doc, created } = await this.parses.create(parse);
		return { parse: doc, created };
	}

	/** Compare-and-set on a stored parse; `change` must be pure and returns the parse itself to write nothing. */
	async update(id: string, change: (parse: IntentParse) => IntentParse): Promise<IntentParse> {
		const { current, written } = await this.parses.update(id, (stored) => {
			if (!stored) throw new Error(`parse ${id} does not exist`);
			const next = change(stored);
			return next === stored ? undefined : next;
		});
		return written ?? current!;
	}

	/** Applies a message to its session (creating it when `opening`); returns the session with the turn applied. */
	async applyTurn(sessionId: string, turn: Turn, opening: boolean): Promise<IntentSession> {
		const { current, written } = await compareAndSet<IntentSession>(this.sessions, sessionId, (s) => applyTurn(s, sessionId, turn, opening));
		return (written ?? current)!;
	}

	/** Newest first, from the index. */
	list(q: ParseQuery): ParsePage {
		return this.parses.page(
			(p) => p.workspace === q.workspace && (!q.session_id || p.session_id === q.session_id) && (!q.status?.length || q.status.includes(p.status)),
			q,
		);
	}

	close(): void {
		this.parses.close();
	}
}
