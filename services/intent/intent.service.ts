import { Errors, type Context, type Service, type ServiceSchema, type ServiceSettingSchema } from "moleculer";
import type { EventDefinition } from "../../events/definition";
import { IntentParseRecorded } from "../../events/catalog";
import type { Published, PublishOptions } from "../../events/publish";
import type { PlatformConfig } from "../../lib/config";
import type { EdgeMeta } from "../../lib/moleculer/authz.middleware";
import { busOf } from "../../lib/moleculer/bus.middleware";
import { DurableEventsMixin } from "../../lib/moleculer/durable-events.mixin";
import type { Run } from "../execution/run";
import { IntentStore, parseIdFor, RequestReuseError, SessionNotFoundError, sessionIdFor, type IntentParse, type ParseQuery } from "./intent-store";
import { LlmProvider, readText } from "./llm-provider";
import { buildPlan, PlanError, type TrainingPlan } from "./plan";
import { resolveDraft } from "./resolve";

/**
 * The intent context: a sentence → a stored parse (TrainingIntent, status, questions), sessions that complete a
 * request turn by turn, the validated plan of a complete parse, and its submission to execution over the bus.
 * Parses and sessions live in KV (compare-and-set), so any number of instances may run.
 */

const SERVICE = "intent";

interface IntentThis extends Service {
	publishEvent<T>(def: EventDefinition<T>, payload: T, opts?: PublishOptions): Promise<Published>;
	store: IntentStore;
	llm?: LlmProvider;
	found(id: string): Promise<IntentParse>;
	announce(parse: IntentParse): Promise<IntentParse>;
}

interface ParseParams {
	workspace: string;
	text: string;
	request_id?: string;
	session_id?: string;
}

class ParseNotFoundError extends Error {
	override name = "ParseNotFoundError";
	constructor(readonly parseId: string) {
		super(`no parse with id ${parseId}`);
	}
}

/** Domain errors as client errors with their HTTP status. */
function clientError(err: unknown): never {
	if (err instanceof ParseNotFoundError) throw new Errors.MoleculerClientError(err.message, 404, "NOT_FOUND", { id: err.parseId });
	if (err instanceof SessionNotFoundError) throw new Errors.MoleculerClientError(err.message, 404, "NOT_FOUND", { field: "session_id" });
	if (err instanceof RequestReuseError) throw new Errors.MoleculerClientError(err.message, 409, "REQUEST_ID_REUSED", { field: "request_id" });
	throw err;
}

/** What callers see of a parse: the outbox mark is the service's business. */
function view(parse: IntentParse): Omit<IntentParse, "published"> {
	const { published: _published, ...rest } = parse;
	return rest;
}

/** Fields still missing or refused. */
function openFields(parse: IntentParse): string[] {
	return [...parse.intent.missing, ...parse.intent.errors.map((e) => e.field)];
}

/** The run's request id: derived from the parse unless the caller names one, so a resubmission finds the same run. */
function runRequestId(parse: IntentParse, requestId?: string): string {
	return requestId ?? `intent-${parse.id}`;
}

function planOf(parse: IntentParse, requestId?: string): TrainingPlan {
	try {
		return buildPlan(parse.intent, { workspace: parse.workspace, request_id: runRequestId(parse, requestId), intent_ref: parse.id });
	} catch (err) {
		if (!(err instanceof PlanError)) throw err;
		const fields = openFields(parse).map((field) => ({ field, message: "is still open" }));
		throw new Errors.MoleculerClientError(`Parse ${parse.id} has no plan: ${err.message}`, 422, "PARSE_NOT_COMPLETE", {
			id: parse.id,
			status: parse.status,
			...(fields[0] ? { field: fields[0].field } : {}),
			fields,
		});
	}
}

/** A repeated request id: the stored parse when the message is the same, else 409. */
function sameRequest(stored: IntentParse, p: ParseParams): IntentParse {
	if (stored.text !== p.text || (p.session_id !== undefined && p.session_id !== stored.session_id)) {
		throw new RequestReuseError(`request_id ${p.request_id} was already used for parse ${stored.id} with a different text or session`);
	}
	return stored;
}

export function intentService(config: PlatformConfig): ServiceSchema<ServiceSettingSchema, IntentThis> {
	return {
		name: SERVICE,
		mixins: [DurableEventsMixin],
		actions: {
			async parse(this: IntentThis, c: Context<ParseParams, EdgeMeta>) {
				const p = c.params;
				try {
					const id = parseIdFor(p.workspace, p.request_id);
					const stored = await this.store.get(id);
					if (stored) return view(await this.announce(sameRequest(stored, p)));
					// Timing counts reading and resolving the text (with the LLM when on), not the store's round trips.
					const readingAt = performance.now();
					const reading = await readText(p.text, this.llm);
					const readMs = performance.now() - readingAt;
					const sessionId = p.session_id ?? sessionIdFor(id);
					const at = new Date();
					const session = await this.store.applyTurn(sessionId, { parseId: id, workspace: p.workspace, text: p.text, reading: reading.draft, at }, !p.session_id);
					const resolvingAt = performance.now();
					const resolved = resolveDraft(session.draft);
					const timingMs = readMs + performance.now() - resolvingAt;
					const intent = { ...resolved, notes: [...resolved.notes, ...reading.notes] };
					const parse: IntentParse = {
						id,
						workspace: p.workspace,
						...(c.meta.principal !== undefined ? { owner: c.meta.principal } : {}),
						...(p.request_id ? { request_id: p.request_id } : {}),
						session_id: sessionId,
						turn: session.turns,
						text: p.text,
						status: intent.status,
						intent,
						questions: intent.questions,
						reader: reading.reader,
						timing_ms: Math.round(timingMs * 100) / 100,
						created_at: at.toISOString(),
						trace_id: c.requestID!,
						published: false,
					};
					const created = await this.store.create(parse);
					return view(await this.announce(created.created ? created.parse : sameRequest(created.parse, p)));
				} catch (err) {
					return clientError(err);
				}
			},
			async get(this: IntentThis, c: Context<{ id: string }>) {
				return view(await this.found(c.params.id).catch(clientError));
			},
			list(this: IntentThis, c: Context<ParseQuery>) {
				const page = this.store.list(c.params);
				return { ...page, items: page.items.map(view) };
			},
			async plan(this: IntentThis, c: Context<{ id: string }>) {
				return planOf(await this.found(c.params.id).catch(clientError));
			},
			async submit(this: IntentThis, c: Context<{ id: string; request_id?: string }>) {
				const parse = await this.found(c.params.id).catch(clientError);
				if (parse.run_id) return { parse: view(parse), run: await c.call<Run, { id: string }>("execution.get", { id: parse.run_id }) };
				const plan = planOf(parse, c.params.request_id);
				const run = await c.call<Run, TrainingPlan["run"]>("execution.submit", plan.run);
				const recorded = await this.store.update(parse.id, (current) =>
					current.run_id ? current : { ...current, run_id: run.id, submitted_at: new Date().toISOString() },
				);
				// A concurrent submit with another request id recorded its run first: that one is the parse's run.
				if (recorded.run_id !== run.id) return { parse: view(recorded), run: await c.call<Run, { id: string }>("execution.get", { id: recorded.run_id! }) };
				return { parse: view(recorded), run };
			},
		},
		methods: {
			async found(this: IntentThis, id: string): Promise<IntentParse> {
				const parse = await this.store.get(id);
				if (!parse) throw new ParseNotFoundError(id);
				return parse;
			},
			/** Publishes the parse's event unless it is known to be stored (a retried request repairs a lost publish). */
			async announce(this: IntentThis, parse: IntentParse): Promise<IntentParse> {
				if (parse.published) return parse;
				await this.publishEvent(
					IntentParseRecorded,
					{
						parse_id: parse.id,
						workspace: parse.workspace,
						session_id: parse.session_id,
						turn: parse.turn,
						...(parse.request_id ? { request_id: parse.request_id } : {}),
						status: parse.status,
						...(parse.intent.task_type ? { task_type: parse.intent.task_type } : {}),
						...(parse.intent.model_name ? { model_name: parse.intent.model_name } : {}),
						confidence: parse.intent.confidence,
						open: openFields(parse),
					},
					{ msgId: parse.id, traceId: parse.trace_id },
				);
				return this.store.update(parse.id, (current) => (current.published ? current : { ...current, published: true }));
			},
		},
		async started(this: IntentThis) {
			this.store = await IntentStore.open(busOf(this.broker).js, config.streamReplicas);
			const llm = config.intent.llm;
			if (llm) {
				this.llm = new LlmProvider(llm);
				this.logger.info(`intent: LLM provider on (${new URL(llm.url).host}, model ${llm.model})`);
			}
		},
		stopped(this: IntentThis) {
			this.store?.close();
		},
	};
}
