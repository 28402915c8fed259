import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SCHEMAS_DIR } from "../../lib/paths";
import type { LlmSettings } from "../../lib/config";
import { describeFieldErrors, platformSchemas } from "../../lib/schemas";
import { mergeDrafts } from "./clarification";
import type { TrainingIntent } from "./intent";
import { findModel } from "./model-catalog";
import { emptyDraft, extractDraft, type Draft } from "./parser";
import { TRAINING_INTENT_SCHEMA } from "./plan";

/**
 * The optional LLM reader of a request: an OpenAI-compatible chat-completions endpoint asked for a TrainingIntent
 * as JSON. Its answer only fills what the offline parser did not read (the offline parser's explicit values win),
 * and any failure — timeout, HTTP error, not JSON, not matching the schema — leaves the offline reading alone with
 * a note: the user never gets an error from it. The API key goes in the Authorization header and nowhere else.
 */

export type LlmSuggestion = { intent: TrainingIntent } | { failure: string };

/** The text's reading: the draft to resolve, who read it, and what to tell the user about the LLM. */
export interface TextReading {
	draft: Draft;
	reader: "offline" | "offline+llm";
	notes: string[];
}

function chatCompletionsUrl(url: string): string {
	const base = url.replace(/\/+$/, "");
	return base.endsWith("/chat/completions") ? base : `${base}/chat/completions`;
}

function instructions(): string {
	const schema = readFileSync(join(SCHEMAS_DIR, "intent", "training-intent.json"), "utf8");
	return (
		"You read requests to train a machine-learning model. Answer with one JSON object, nothing else, that matches " +
		"this JSON Schema. Put only values the request states or clearly implies; leave the rest out. Use status " +
		'"complete" when task, model and dataset are known, else "needs_clarification"; leave defaults_applied, ' +
		"notes, missing, questions and errors empty.\n" +
		schema
	);
}

export class LlmProvider {
	private readonly endpoint: string;
	private readonly system = instructions();
	private readonly check = platformSchemas().validator(TRAINING_INTENT_SCHEMA);

	constructor(private readonly settings: LlmSettings) {
		this.endpoint = chatCompletionsUrl(settings.url);
	}

	/** The LLM's TrainingIntent for `text`, or why there is none (a sentence without secrets). */
	async suggest(text: string): Promise<LlmSuggestion> {
		let res: Response;
		try {
			res = await fetch(this.endpoint, {
				method: "POST",
				headers: { "content-type": "application/json", authorization: `Bearer ${this.settings.apiKey}` },
				body: JSON.stringify({
					model: this.settings.model,
					temperature: 0,
					response_format: { type: "json_object" },
					messages: [
						{ role: "system", content: this.system },
						{ role: "user", content: text },
					],
				}),
				signal: AbortSignal.timeout(this.settings.timeoutMs),
			});
		} catch (err) {
			const timedOut = (err as Error).name === "TimeoutError";
			return { failure: timedOut ? `no answer within ${this.settings.timeoutMs} ms` : "the endpoint could not be reached" };
		}
		let content: unknown;
		try {
			if (!res.ok) return { failure: `the endpoint answered HTTP ${res.status}` };
			const body = (await res.json()) as { choices?: Array<{ message?: { content?: unknown } }> };
			content = body.choices?.[0]?.message?.content;
			if (typeof content !== "string") return { failure: "the answer has no message content" };
			content = JSON.parse(content);
		} catch (err) {
			return { failure: (err as Error).name === "TimeoutError" ? `no answer within ${this.settings.timeoutMs} ms` : "the answer is not JSON" };
		}
		const problems = this.check(content);
		if (problems.length) return { failure: `the answer does not match the TrainingIntent schema (${describeFieldErrors(problems).slice(0, 300)})` };
		return { intent: content as TrainingIntent };
	}
}

/** The LLM's intent as a draft of stated values, so the offline draft can be merged over it. */
export function draftOfIntent(intent: TrainingIntent): { draft: Draft; notes: string[] } {
	const draft = emptyDraft();
	const notes: string[] = [];
	if (intent.task_type) draft.tasks = [intent.task_type];
	if (intent.model_name) {
		const entry = findModel(intent.model_name, intent.model_source);
		if (entry) draft.models = [{ name: entry.name, source: entry.source, text: intent.model_name, via: "exact", distance: 0 }];
		else notes.push(`The language model suggested ${intent.model_name}, which is not in the model catalog; it was not used.`);
	}
	if (intent.model_source) draft.source = intent.model_source;
	if (intent.num_classes !== undefined) draft.num_classes = intent.num_classes;
	if (intent.class_names?.length) draft.class_names = intent.class_names;
	if (intent.dataset) draft.dataset = intent.dataset;
	draft.hyperparameters = { ...intent.hyperparameters };
	draft.resources = { ...intent.resources };
	return { draft, notes };
}

/** Reads one message: offline, then — with a provider — completed by the LLM where the offline parser read nothing. */
export async function readText(text: string, llm: LlmProvider | undefined): Promise<TextReading> {
	const offline = extractDraft(text);
	if (!llm) return { draft: offline, reader: "offline", notes: [] };
	const suggestion = await llm.suggest(text);
	if ("failure" in suggestion) {
		return { draft: offline, reader: "offline", notes: [`The language model was not used (${suggestion.failure}); the request was read offline.`] };
	}
	const { draft, notes } = draftOfIntent(suggestion.intent);
	// mergeDrafts lets the later draft's stated values win: the offline one goes last.
	return { draft: mergeDrafts(draft, offline), reader: "offline+llm", notes };
}
