import { CatalogAliasChanged, CatalogEntityRegistered, RunTransitioned, TelemetryAlertRaised, TelemetryAlertResolved } from "../../../events/catalog";
import type { EventDefinition } from "../../../events/definition";
import { STREAMS } from "../../../events/streams";
import { subjects, token, SubjectTokenError } from "../../../events/subjects";
import { PLATFORM } from "../../authz/directory/model";
import type { ResourceRef } from "../../authz/policy/entities";

/**
 * The live topics: what each one is called, which stream and subject filter back it, which of the filtered
 * messages belong to it and under which event kind, and which Topic resource a subscription is decided on.
 */

/** A message read from the topic's stream. */
export interface StreamMessage {
	seq: number;
	subject: string;
	data: unknown;
}

export interface TopicSource {
	topic: string;
	/** One stream, so a message's offset is its sequence there. */
	stream: string;
	/** One subject filter (nats-server 2.9 takes one per consumer). */
	filter: string;
	/** The event kind of a message of this topic, or undefined for a filtered message that is not. */
	kindOf(m: StreamMessage): string | undefined | Promise<string | undefined>;
	resource: ResourceRef;
}

export class TopicError extends Error {
	override name = "TopicError";
	constructor(
		readonly status: 400 | 404,
		message: string,
	) {
		super(message);
	}
}

/** How a topic looks up what it needs (internal calls: the run of `run:<id>`, the workspace of a model). */
export interface TopicLookups {
	run(id: string): Promise<{ workspace: string; owner?: string }>;
	modelWorkspace(modelId: string): Promise<string | undefined>;
}

const FAMILIES = ["run", "runs", "alerts", "deployments", "audit"] as const;
type Family = (typeof FAMILIES)[number];

/** Splits and checks a topic name; throws a 400 TopicError naming what is wrong. */
export function parseTopic(topic: unknown): { family: Family; arg: string } {
	if (typeof topic !== "string" || topic.length === 0 || topic.length > 200) throw new TopicError(400, "topic must be a non-empty string of at most 200 characters");
	if (topic === "audit") return { family: "audit", arg: "" };
	const colon = topic.indexOf(":");
	const family = topic.slice(0, colon) as Family;
	if (colon < 0 || family === "audit" || !FAMILIES.includes(family)) {
		throw new TopicError(400, `unknown topic ${JSON.stringify(topic)}: use run:<run id>, runs:<workspace>, alerts:<workspace>, deployments:<workspace> or audit`);
	}
	const arg = topic.slice(colon + 1);
	try {
		token(family === "run" ? "run id" : "workspace", arg);
	} catch (err) {
		if (err instanceof SubjectTokenError) throw new TopicError(400, `topic ${JSON.stringify(topic)}: ${err.message}`);
		throw err;
	}
	return { family, arg };
}

/** `<entity>.<verb>` of a domain event: the kind a client sees. */
const kindOfEvent = (def: EventDefinition) => def.type.slice(def.context.length + 1);

const workspaceOf = (data: unknown): unknown => (data && typeof data === "object" ? (data as { workspace?: unknown }).workspace : undefined);

/** The narrowest one filter (nats-server 2.9 takes one per consumer) covering every event of `defs`. */
function domainFilter(defs: EventDefinition[]): string {
	const [first, ...rest] = defs as [EventDefinition, ...EventDefinition[]];
	if (!rest.length) return first.subject;
	if (first.entity && rest.every((d) => d.context === first.context && d.entity === first.entity)) return subjects.domainOfEntity(first.context, first.entity);
	if (rest.every((d) => d.context === first.context)) return subjects.domainOfContext(first.context);
	return subjects.allDomain();
}

/** The events of `defs` in one workspace; the subject is checked again here, since a filter may cover more. */
function domainTopic(topic: string, workspace: string, defs: EventDefinition[], inWorkspace: (def: EventDefinition, m: StreamMessage) => boolean | Promise<boolean>): TopicSource {
	const filter = domainFilter(defs);
	return {
		topic,
		stream: STREAMS.events.name,
		filter,
		async kindOf(m) {
			const def = defs.find((d) => d.subject === m.subject);
			return def && (await inWorkspace(def, m)) ? kindOfEvent(def) : undefined;
		},
		resource: { type: "Topic", id: topic, workspace },
	};
}

/** The source of a topic; throws TopicError (400 bad name, 404 unknown run). */
export async function topicSource(topic: string, lookups: TopicLookups): Promise<TopicSource> {
	const { family, arg } = parseTopic(topic);
	const sameWorkspace = (_def: EventDefinition, m: StreamMessage) => workspaceOf(m.data) === arg;
	switch (family) {
		case "run": {
			const run = await lookups.run(arg);
			return {
				topic,
				stream: STREAMS.telemetry.name,
				filter: subjects.telemetryOfRun(run.workspace, arg),
				// tlm.<workspace>.<run>.<kind>: the kind is the last token.
				kindOf: (m) => m.subject.slice(m.subject.lastIndexOf(".") + 1),
				resource: { type: "Topic", id: topic, workspace: run.workspace, ...(run.owner ? { owner: run.owner } : {}) },
			};
		}
		case "runs":
			return domainTopic(topic, arg, [RunTransitioned], sameWorkspace);
		case "alerts":
			return domainTopic(topic, arg, [TelemetryAlertRaised, TelemetryAlertResolved], sameWorkspace);
		case "deployments":
			return domainTopic(topic, arg, [CatalogAliasChanged, CatalogEntityRegistered], async (def, m) => {
				if (def === CatalogEntityRegistered) return (m.data as { kind?: unknown } | null)?.kind === "endpoint" && sameWorkspace(def, m);
				if (sameWorkspace(def, m)) return true;
				// Alias changes published before they carried their workspace: the model's is looked up.
				if (workspaceOf(m.data) !== undefined) return false;
				const modelId = (m.data as { model_id?: unknown } | null)?.model_id;
				return typeof modelId === "string" && (await lookups.modelWorkspace(modelId)) === arg;
			});
		case "audit":
			return {
				topic,
				stream: STREAMS.audit.name,
				filter: subjects.allAudit(),
				// audit.<context>.<kind> → "<context>.<kind>"
				kindOf: (m) => m.subject.slice(m.subject.indexOf(".") + 1),
				resource: { type: "Topic", id: topic, workspace: PLATFORM },
			};
	}
}
