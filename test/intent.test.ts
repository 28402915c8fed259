import type { JetStreamManager } from "@nats-io/jetstream";
import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { HEADERS } from "../events/headers";
import { IntentParseRecorded } from "../events/catalog";
import { readAfter } from "../events/stream-reader";
import { STREAMS } from "../events/streams";
import { actionSchemaId } from "../lib/moleculer/params-validation.middleware";
import { platformSchemas } from "../lib/schemas";
import { executionService } from "../services/execution/execution.service";
import type { Run } from "../services/execution/run";
import type { IntentParse, ParsePage } from "../services/intent/intent-store";
import { intentService } from "../services/intent/intent.service";
import type { LlmSettings } from "../lib/config";
import type { TrainingPlan } from "../services/intent/plan";
import { startBroker, testConfig } from "./support/broker";
import { startTestNats, type TestNats } from "./support/nats";
import { rejectsWith } from "./support/errors";
import { openServiceSuite, type ServiceSuite } from "./support/suite";

const WS = "ws-intent";
const BRIEF = "Fine-tune resnet50 on ds-42 to tell apart 3 kinds of cats: siamese, persian, bengal. 20 epochs, lr 1e-4, on 2 A100s";
const API_KEY = "sk-test-intent-secret-0123456789";


let suite: ServiceSuite;
let nats: TestNats;
let broker: ServiceBroker;
let jsm: JetStreamManager;
let dataDir: string;

const parse = (params: Record<string, unknown>) => broker.call<IntentParse, object>("intent.parse", { workspace: WS, ...params });

/** The parse events of one parse as stored in the EVENTS stream, with their de-duplication ids. */
async function parseEvents(parseId: string): Promise<Array<{ msgId: string | undefined; parse_id: string; status: string }>> {
	const { messages } = await readAfter(jsm, STREAMS.events.name, IntentParseRecorded.subject, 0, 10_000);
	return messages
		.map((m) => ({ msgId: m.header?.get(HEADERS.msgId), event: m.json<{ parse_id: string; status: string }>() }))
		.filter(({ event }) => event.parse_id === parseId)
		.map(({ msgId, event }) => ({ msgId, parse_id: event.parse_id, status: event.status }));
}

describe("intent: sentences to stored parses, plans and runs", () => {
	before(async () => {
		suite = await openServiceSuite("intent", { operator: true });
		({ nats, dataDir, jsm } = suite);
		const env = { DATA_DIR: dataDir, NATS_AUTHORITY: nats.authorityFile!, RUN_HEARTBEAT_INTERVAL_MS: "300" };
		broker = await startBroker(nats.endpoint, "intent-1", [intentService(testConfig(env)), executionService(testConfig(env), { nats: nats.endpoint })], env);
	});

	after(async () => {
		await broker?.stop();
		await suite?.close();
	});

	it("parses a complete request, stores it with its timing and announces it once, keyed by the parse id", async () => {
		const p = await parse({ text: BRIEF });
		assert.equal(p.status, "complete");
		assert.deepEqual(p.questions, []);
		assert.deepEqual([p.intent.task_type, p.intent.model_name, p.intent.dataset?.value], ["classification", "resnet50", "ds-42"]);
		assert.deepEqual([p.intent.num_classes, p.intent.class_names], [3, ["siamese", "persian", "bengal"]]);
		assert.deepEqual([p.intent.hyperparameters.epochs, p.intent.hyperparameters.learning_rate], [20, 0.0001]);
		assert.deepEqual([p.text, p.turn, p.reader, p.workspace], [BRIEF, 1, "offline", WS]);
		assert.ok(p.timing_ms > 0 && p.timing_ms < 1_000, `timing ${p.timing_ms} ms`);
		assert.ok(Date.now() - Date.parse(p.created_at) < 10_000);
		assert.equal("published" in p, false, "the outbox mark is not shown");
		assert.deepEqual(await broker.call("intent.get", { id: p.id }), p);
		assert.deepEqual(await parseEvents(p.id), [{ msgId: p.id, parse_id: p.id, status: "complete" }]);
	});

	it("asks for what is missing, and the next turn of the session completes it (later values win)", async () => {
		const first = await parse({ text: "train a yolov8n detector for 50 epochs" });
		assert.equal(first.status, "needs_clarification");
		assert.deepEqual(first.intent.missing, ["dataset"]);
		assert.deepEqual(first.questions.map((q) => q.field), ["dataset"]);
		assert.match(first.questions[0]!.question, /Which dataset/);

		const second = await parse({ text: "ds-77", session_id: first.session_id });
		assert.deepEqual([second.status, second.session_id, second.turn], ["complete", first.session_id, 2]);
		assert.deepEqual(second.intent.dataset, { kind: "id", value: "ds-77" });
		assert.equal(second.intent.hyperparameters.epochs, 50, "the first turn's values are kept");

		const third = await parse({ text: "make it 80 epochs", session_id: first.session_id });
		assert.deepEqual([third.status, third.turn, third.intent.hyperparameters.epochs, third.intent.dataset?.value], ["complete", 3, 80, "ds-77"]);
		assert.deepEqual((await parseEvents(third.id)).map((e) => e.status), ["complete"]);
	});

	it("refuses out-of-range values with the reason", async () => {
		const p = await parse({ text: "train resnet50 on ds-1 with lr 5 for -1 epochs" });
		assert.equal(p.status, "invalid");
		assert.deepEqual(p.intent.errors.map((e) => [e.field, e.value]), [["hyperparameters.learning_rate", "5"], ["hyperparameters.epochs", "-1"]]);
		assert.match(p.intent.errors[0]!.reason, /5 is not a valid value for the learning rate: it must be greater than 0 and at most 1/);
		assert.ok(p.questions.some((q) => q.field === "hyperparameters.epochs" && /whole number from 1 to 10000/.test(q.question)));
		await assert.rejects(broker.call("intent.plan", { id: p.id }), rejectsWith(422, "PARSE_NOT_COMPLETE", (err) => {
			assert.match(err.message, /still open: hyperparameters\.learning_rate, hyperparameters\.epochs/);
			assert.equal(err.data?.field, "hyperparameters.learning_rate");
		}));
	});

	it("is idempotent on request_id: one parse, one event; other text under it is 409", async () => {
		const a = await parse({ text: "train yolov8s on coco128 for 10 epochs", request_id: "req-1" });
		const b = await parse({ text: "train yolov8s on coco128 for 10 epochs", request_id: "req-1" });
		assert.deepEqual(b, a);
		const page = await broker.call<ParsePage, object>("intent.list", { workspace: WS, limit: 1000 });
		assert.equal(page.items.filter((p) => p.request_id === "req-1").length, 1);
		assert.equal((await parseEvents(a.id)).length, 1);
		await assert.rejects(parse({ text: "train yolov8s on coco128 for 99 epochs", request_id: "req-1" }), rejectsWith(409, "REQUEST_ID_REUSED"));
		// The same request id in another workspace is another request.
		const other = await parse({ text: "train yolov8s on coco128 for 99 epochs", request_id: "req-1", workspace: "ws-other" });
		assert.notEqual(other.id, a.id);
	});

	it("lists by workspace, session and status, page by page; unknown ids are 404, bad params 422", async () => {
		const first = await parse({ text: "fine-tune yolov8n-seg for 5 epochs" });
		const second = await parse({ text: "cats_v2", session_id: first.session_id });
		const session = await broker.call<ParsePage, object>("intent.list", { workspace: WS, session_id: first.session_id });
		assert.deepEqual(session.items.map((p) => p.id), [second.id, first.id], "newest first");
		const pages: string[] = [];
		let cursor: string | undefined;
		do {
			const page: ParsePage = await broker.call("intent.list", { workspace: WS, session_id: first.session_id, limit: 1, ...(cursor ? { cursor } : {}) });
			pages.push(...page.items.map((p) => p.id));
			cursor = page.next;
		} while (cursor && pages.length < 5);
		assert.deepEqual(pages, [second.id, first.id]);
		const invalid = await broker.call<ParsePage, object>("intent.list", { workspace: WS, status: ["invalid"] });
		assert.ok(invalid.items.length >= 1 && invalid.items.every((p) => p.status === "invalid"));
		assert.equal((await broker.call<ParsePage, object>("intent.list", { workspace: "ws-nobody" })).total, 0);

		await assert.rejects(broker.call("intent.get", { id: "prs-missing" }), rejectsWith(404, "NOT_FOUND", (err) => assert.match(err.message, /no parse with id prs-missing/)));
		await assert.rejects(parse({ text: "ds-1", session_id: "ses-missing" }), rejectsWith(404, "NOT_FOUND", (err) => assert.equal(err.data?.field, "session_id")));
		await assert.rejects(parse({ text: "ds-1", session_id: first.session_id, workspace: "ws-other" }), rejectsWith(404, "NOT_FOUND"), "a session is not reachable from another workspace");
		await assert.rejects(parse({ text: "   " }), rejectsWith(422, "INVALID_PARAMS", (err) => assert.deepEqual(err.data?.fields?.map((f: { field: string }) => f.field), ["text"])));
		await assert.rejects(broker.call("intent.parse", { text: "x" }), rejectsWith(422, "INVALID_PARAMS", (err) => assert.deepEqual(err.data?.fields?.map((f: { field: string }) => f.field), ["workspace"])));
	});

	it("turns a complete parse into a plan whose run passes execution.submit's schema", async () => {
		const p = await parse({ text: BRIEF });
		const plan = await broker.call<TrainingPlan, object>("intent.plan", { id: p.id });
		assert.deepEqual(platformSchemas().validator(actionSchemaId("execution.submit"))(structuredClone(plan.run)), []);
		assert.deepEqual([plan.model_name, plan.run.workspace, plan.run.intent_ref, plan.run.resources?.gpus], ["resnet50", WS, p.id, 2]);
		assert.ok(plan.run.command.includes("--epochs") && plan.run.command.includes("20"), plan.run.command.join(" "));
		const open = await parse({ text: "train a yolov8n detector" });
		await assert.rejects(broker.call("intent.plan", { id: open.id }), rejectsWith(422, "PARSE_NOT_COMPLETE", (err) => assert.equal(err.data?.field, "dataset")));
	});

	it("submits the plan to execution over the bus once, records the run, and the run can be cancelled", async () => {
		const p = await parse({ text: "train resnet18 on ds-9 for 2 epochs on the cpu" });
		const plan = await broker.call<TrainingPlan, object>("intent.plan", { id: p.id });
		const { run } = await broker.call<{ run: Run }, object>("intent.submit", { id: p.id });
		assert.ok(["QUEUED", "RUNNING"].includes(run.status), run.status);
		const stored = await broker.call<Run, object>("execution.get", { id: run.id });
		assert.deepEqual(
			[stored.workspace, stored.command, stored.image, stored.env, stored.resources, stored.intent_ref, stored.request_id],
			[WS, plan.run.command, plan.run.image, plan.run.env, plan.run.resources, p.id, plan.run.request_id],
		);
		assert.equal((await broker.call<IntentParse, object>("intent.get", { id: p.id })).run_id, run.id);
		const again = await broker.call<{ run: Run }, object>("intent.submit", { id: p.id });
		assert.equal(again.run.id, run.id);
		assert.equal((await broker.call<{ items: Run[] }, object>("execution.list", { workspace: WS, limit: 1000 })).items.filter((r) => r.intent_ref === p.id).length, 1);
		const cancelled = await broker.call<Run, object>("execution.cancel", { id: run.id, reason: "test over" });
		assert.equal(cancelled.status, "CANCELLED");
		const open = await parse({ text: "train a yolov8n detector" });
		await assert.rejects(broker.call("intent.submit", { id: open.id }), rejectsWith(422, "PARSE_NOT_COMPLETE"));
	});
});

/** A real HTTP server standing in for an OpenAI-compatible endpoint; `mode` picks the answer. */
class FakeLlm {
	mode: "good" | "invalid" | "not-json" | "error" | "slow" = "good";
	readonly requests: Array<{ url: string; headers: IncomingHttpHeaders; body: { model: string; response_format: unknown; messages: Array<{ content: string }> } }> = [];
	private readonly server: Server;

	constructor() {
		this.server = createServer((req, res) => {
			let raw = "";
			req.on("data", (d: Buffer) => (raw += d.toString()));
			req.on("end", () => {
				this.requests.push({ url: req.url!, headers: req.headers, body: JSON.parse(raw) });
				const reply = (content: string, status = 200) => {
					res.writeHead(status, { "content-type": "application/json" });
					res.end(JSON.stringify({ id: "chatcmpl-1", choices: [{ index: 0, message: { role: "assistant", content } }] }));
				};
				if (this.mode === "good") reply(JSON.stringify(GOOD_ANSWER));
				else if (this.mode === "invalid") reply(JSON.stringify({ task_type: "detection", hyperparameters: { learning_rate: 5 } }));
				else if (this.mode === "not-json") reply("Sure! Here is the JSON you asked for: {task_type: detection");
				else if (this.mode === "error") reply("{}", 500);
				else setTimeout(() => reply(JSON.stringify(GOOD_ANSWER)), 1_500).unref();
			});
		});
	}

	async listen(): Promise<string> {
		await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
		return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
	}

	async close(): Promise<void> {
		this.server.closeAllConnections();
		await new Promise((r) => this.server.close(r));
	}
}

/** What the fake LLM reads in LLM_TEXT: more than the offline parser, and 5 epochs where the text says 30. */
const GOOD_ANSWER = {
	status: "complete",
	task_type: "detection",
	model_name: "yolov8n",
	model_source: "ultralytics",
	dataset: { kind: "id", value: "ds-parts" },
	hyperparameters: { epochs: 5 },
	resources: {},
	confidence: 0.9,
	defaults_applied: [],
	notes: [],
	missing: [],
	questions: [],
	errors: [],
};
const LLM_TEXT = "I need something that finds scratches on our metal parts, 30 epochs";

describe("intent: the optional LLM provider", () => {
	let llmNats: TestNats;
	let llmBroker: ServiceBroker;
	const llm = new FakeLlm();

	before(async () => {
		llmNats = await startTestNats();
		const settings: LlmSettings = { url: await llm.listen(), apiKey: API_KEY, model: "tiny-test", timeoutMs: 300 };
		llmBroker = await startBroker(llmNats.url, "intent-llm", [intentService({ ...testConfig(), intent: { llm: settings } })]);
	});

	after(async () => {
		await llmBroker?.stop();
		await llm.close();
		await llmNats?.stop();
	});

	const parseWithLlm = (text: string) => llmBroker.call<IntentParse, object>("intent.parse", { workspace: WS, text });

	it("fills what the offline parser could not read; the text's explicit values win", async () => {
		llm.mode = "good";
		const p = await parseWithLlm(LLM_TEXT);
		assert.deepEqual([p.status, p.reader, p.intent.task_type, p.intent.model_name, p.intent.dataset?.value], ["complete", "offline+llm", "detection", "yolov8n", "ds-parts"]);
		assert.equal(p.intent.hyperparameters.epochs, 30, "the text's 30 epochs beat the LLM's 5");
		const req = llm.requests.at(-1)!;
		assert.equal(req.url, "/v1/chat/completions");
		assert.equal(req.headers.authorization, `Bearer ${API_KEY}`);
		assert.deepEqual([req.body.model, req.body.response_format], ["tiny-test", { type: "json_object" }]);
		assert.equal(req.body.messages.at(-1)!.content, LLM_TEXT);
	});

	it("falls back to the offline reading with a note when the answer is schema-invalid, not JSON, an error or too slow", async () => {
		for (const mode of ["invalid", "not-json", "error", "slow"] as const) {
			llm.mode = mode;
			const started = Date.now();
			const p = await parseWithLlm(LLM_TEXT);
			assert.deepEqual([p.status, p.reader, p.intent.task_type, p.intent.hyperparameters.epochs], ["needs_clarification", "offline", undefined, 30], mode);
			const note = p.intent.notes.find((n) => n.startsWith("The language model was not used"));
			assert.ok(note, `${mode}: ${p.intent.notes.join(" | ")}`);
			assert.ok(!note.includes(API_KEY));
			if (mode === "invalid") assert.match(note, /does not match the TrainingIntent schema .*learning_rate/);
			if (mode === "not-json") assert.match(note, /not JSON/);
			if (mode === "error") assert.match(note, /HTTP 500/);
			if (mode === "slow") {
				assert.match(note, /no answer within 300 ms/);
				assert.ok(Date.now() - started < 1_200, "the slow answer was not waited for");
			}
		}
	});

	it("is off without settings: the platform's default service never calls out", async () => {
		const calls = llm.requests.length;
		const other = await startBroker(llmNats.url, "intent-offline", [intentService(testConfig())]);
		try {
			const p = await other.call<IntentParse, object>("intent.parse", { workspace: WS, text: LLM_TEXT });
			assert.deepEqual([p.reader, p.status], ["offline", "needs_clarification"]);
			assert.equal(llm.requests.length, calls);
		} finally {
			await other.stop();
		}
	});
});
