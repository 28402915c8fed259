import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { actionSchemaId } from "../lib/moleculer/params-validation.middleware";
import { PROJECT_ROOT } from "../lib/paths";
import { platformSchemas } from "../lib/schemas";
import { continueSession } from "../services/intent/clarification";
import { editDistance } from "../services/intent/edit-distance";
import { evaluate, meetsTargets, type EvalPrompt } from "../services/intent/evaluation";
import type { TrainingIntent } from "../services/intent/intent";
import { parseNumber } from "../services/intent/numbers";
import { parseIntent } from "../services/intent/parser";
import { buildPlan, PlanError, TRAINING_INTENT_SCHEMA, TRAINING_PLAN_SCHEMA } from "../services/intent/plan";

const { prompts } = JSON.parse(readFileSync(join(PROJECT_ROOT, "test", "intent-eval", "prompts.json"), "utf8")) as { prompts: EvalPrompt[] };

/** The fields a test compares, without the bookkeeping. */
function core(i: TrainingIntent) {
	return { status: i.status, task_type: i.task_type, model_name: i.model_name, model_source: i.model_source, dataset: i.dataset?.value };
}

describe("numbers and distance", () => {
	it("reads numbers as people type them", () => {
		for (const raw of ["1e-4", "0.0001", '"1e-4"', "1x10^-4", "1e−4", "1 × 10^-4"]) assert.equal(parseNumber(raw), 0.0001, raw);
		assert.equal(parseNumber(".001"), 0.001);
		assert.equal(parseNumber("1,000"), 1000);
		assert.equal(parseNumber("four"), 4);
	});

	it("counts a swap of neighbours as one edit and stops past the bound", () => {
		assert.equal(editDistance("yolov8nsge", "yolov8nseg", 2), 1);
		assert.equal(editDistance("reznet50", "resnet50", 2), 1);
		assert.equal(editDistance("resnet50", "efficientnetb0", 2), 3);
	});
});

describe("parser", () => {
	it("parses the request of the product brief", () => {
		const i = parseIntent("Fine-tune resnet50 on ds-42 to tell apart 3 kinds of cats: siamese, persian, bengal. 20 epochs, lr 1e-4, on 2 A100s");
		assert.deepEqual(core(i), { status: "complete", task_type: "classification", model_name: "resnet50", model_source: "timm", dataset: "ds-42" });
		assert.deepEqual([i.num_classes, i.class_names], [3, ["siamese", "persian", "bengal"]]);
		assert.deepEqual([i.hyperparameters.epochs, i.hyperparameters.learning_rate], [20, 0.0001]);
		assert.deepEqual(i.resources, { gpu_count: 2, gpu_type: "A100" });
		assert.ok(i.defaults_applied.includes("hyperparameters.batch_size") && !i.defaults_applied.includes("hyperparameters.epochs"));
	});

	it("takes the task from the model when the text names none", () => {
		assert.equal(parseIntent("fine-tune yolov8n-seg on ds-1").task_type, "instance_segmentation");
		assert.equal(parseIntent("fine-tune yolov8s-cls on ds-1").task_type, "classification");
		assert.equal(parseIntent("fine-tune mistral 7b on ds-1").task_type, "llm_sft");
		assert.equal(parseIntent("segment apples with yolov8n-seg on ds-1").task_type, "instance_segmentation", "segment narrows to the model's variant");
	});

	it("matches typos within the bound, says so and trusts them less", () => {
		const exact = parseIntent("train resnet50 on ds-1 for classification");
		const typo = parseIntent("train reznet50 on ds-1 for classification");
		assert.equal(typo.model_name, "resnet50");
		assert.match(typo.notes.join(" "), /"reznet50" as resnet50/);
		assert.ok(typo.confidence < exact.confidence, `${typo.confidence} < ${exact.confidence}`);
	});

	it("never picks a far or ambiguous match: it asks", () => {
		const far = parseIntent("train rsnxt9000 on ds-1 for classification");
		assert.equal(far.model_name, undefined);
		assert.equal(far.status, "needs_clarification");
		assert.deepEqual(far.missing, ["model_name"]);
		assert.match(far.questions[0]!.question, /"rsnxt9000"/);

		const ambiguous = parseIntent("fine-tune yolov9n on ds-7");
		assert.equal(ambiguous.model_name, undefined);
		assert.deepEqual(ambiguous.questions[0]!.options, ["yolov8n", "yolov5n"]);
	});

	it("prefers the library the text names", () => {
		assert.deepEqual([parseIntent("resnet50 from torchvision on ds-1").model_source], ["torchvision"]);
		assert.equal(parseIntent("mmdetection faster rcnn on ds-1").model_name, "faster-rcnn_r50_fpn_1x_coco");
		const wrong = parseIntent("train resnet50 from ultralytics on ds-1");
		assert.deepEqual(wrong.missing, ["model_source"]);
		assert.deepEqual(wrong.questions[0]!.options, ["timm", "torchvision"]);
	});

	it("names the conflict between the task and the model", () => {
		const i = parseIntent("detect objects in ds-5 using resnet50");
		assert.equal(i.status, "needs_clarification");
		assert.equal(i.task_type, "detection");
		assert.equal(i.model_name, undefined);
		assert.match(i.questions[0]!.question, /resnet50 is an image classification model, but the request asks for object detection\. Should I use an object detection model such as yolov8n/);
		assert.deepEqual(i.questions[0]!.options, ["yolov8n", "resnet50"]);
	});

	it("refuses values out of range with the reason", () => {
		const lr = parseIntent("fine-tune resnet50 on ds-1 with lr 5");
		assert.equal(lr.status, "invalid");
		assert.deepEqual(lr.errors, [
			{ field: "hyperparameters.learning_rate", value: "5", reason: "5 is not a valid value for the learning rate: it must be greater than 0 and at most 1." },
		]);
		assert.equal(lr.hyperparameters.learning_rate, 1e-4, "the refused value is not used; the default stands in the draft");
		const epochs = parseIntent("train yolov8n on ds-2 for -1 epochs");
		assert.deepEqual(epochs.errors.map((e) => [e.field, e.value]), [["hyperparameters.epochs", "-1"]]);
		assert.match(epochs.questions.at(-1)!.question, /a whole number from 1 to 10000/);
	});

	it("reads Korean keywords, GPU counts and class counts", () => {
		const i = parseIntent("klue/bert-base로 감성 분석 텍스트 분류, 데이터셋 ds-nsmc, 에폭 3, 학습률 2e-5, 배치 32, A100 4장, 클래스 2개");
		assert.deepEqual(core(i), { status: "complete", task_type: "text_classification", model_name: "klue/bert-base", model_source: "huggingface", dataset: "ds-nsmc" });
		assert.deepEqual([i.hyperparameters.epochs, i.hyperparameters.learning_rate, i.hyperparameters.batch_size, i.num_classes], [3, 2e-5, 32, 2]);
		assert.deepEqual(i.resources, { gpu_count: 4, gpu_type: "A100" });
		assert.equal(parseIntent("이상 탐지 patchcore ds-1").task_type, "anomaly_detection");
		assert.deepEqual(parseIntent("yolov8n on ds-1 on cpu").resources, { gpu_count: 0 });
	});

	it("asks for the class names when the count and the list disagree", () => {
		const i = parseIntent("3 kinds of cats: siamese, persian on ds-cats");
		assert.deepEqual(i.missing, ["class_names"]);
		assert.equal(i.class_names, undefined);
		assert.match(i.questions[0]!.question, /says 3 classes but names 2 \(siamese, persian\)/);
	});

	it("scores confidence by how much was guessed", () => {
		const said = parseIntent("train yolov8n on ds-1 to detect cars").confidence;
		const defaulted = parseIntent("train a detector on ds-1").confidence;
		const incomplete = parseIntent("train a detector").confidence;
		assert.ok(said > defaulted && defaulted > incomplete, `${said} > ${defaulted} > ${incomplete}`);
		assert.ok(said >= 0.9 && incomplete <= 0.6);
	});

	it("is deterministic and every intent matches its schema", () => {
		const validate = platformSchemas().validator(TRAINING_INTENT_SCHEMA);
		for (const p of prompts) {
			const intent = parseIntent(p.text);
			assert.deepEqual(validate(intent), [], p.id);
			assert.deepEqual(parseIntent(p.text), intent, p.id);
		}
	});
});

describe("clarification across turns", () => {
	it("fills what was asked from the next turn; later values win", () => {
		const t1 = continueSession(undefined, "train yolov8n for 50 epochs");
		assert.deepEqual(t1.intent.missing, ["dataset"]);
		const t2 = continueSession(t1.draft, "ds-77");
		assert.deepEqual(core(t2.intent), { status: "complete", task_type: "detection", model_name: "yolov8n", model_source: "ultralytics", dataset: "ds-77" });
		assert.equal(t2.intent.hyperparameters.epochs, 50);
		const t3 = continueSession(t2.draft, "actually make it 80 epochs on 2 GPUs");
		assert.deepEqual([t3.intent.hyperparameters.epochs, t3.intent.resources.gpu_count, t3.intent.dataset?.value], [80, 2, "ds-77"]);
	});

	it("resolves a conflict, a refused value and a class list answered in later turns", () => {
		const conflict = continueSession(undefined, "detect cars on ds-1 using resnet50");
		const fixed = continueSession(conflict.draft, "ok, use yolov8s then");
		assert.deepEqual(core(fixed.intent), { status: "complete", task_type: "detection", model_name: "yolov8s", model_source: "ultralytics", dataset: "ds-1" });

		const refused = continueSession(undefined, "fine-tune resnet50 on ds-1 with lr 5");
		const corrected = continueSession(refused.draft, "lr 3e-4");
		assert.deepEqual([corrected.intent.status, corrected.intent.errors, corrected.intent.hyperparameters.learning_rate], ["complete", [], 3e-4]);
		const refusedAgain = continueSession(corrected.draft, "learning rate 2");
		assert.equal(refusedAgain.intent.status, "invalid", "a later refused value does not fall back to the earlier one silently");

		const classes = continueSession(undefined, "3 kinds of cats: siamese, persian on ds-cats");
		const listed = continueSession(classes.draft, "siamese, persian, bengal");
		assert.deepEqual([listed.intent.status, listed.intent.num_classes, listed.intent.class_names], ["complete", 3, ["siamese", "persian", "bengal"]]);
	});
});

describe("plan", () => {
	it("turns a complete intent into execution.submit params", () => {
		const intent = parseIntent("fine-tune Llama 3 8B with LoRA rank 16 on ds-support-chats, 3 epochs, lr 2e-4, on 2 A100s");
		const plan = buildPlan(intent, { workspace: "ws-1", request_id: "req-1", intent_ref: "intent-9" });
		assert.deepEqual(platformSchemas().validator(TRAINING_PLAN_SCHEMA)(plan), []);
		assert.deepEqual(platformSchemas().validator(actionSchemaId("execution.submit"))(structuredClone(plan.run)), []);
		assert.equal(plan.run.image, "savassan/trainer-huggingface:0.1.0");
		assert.deepEqual(plan.run.command.slice(0, 3), ["torchrun", "--standalone", "--nproc-per-node=2"]);
		assert.deepEqual(plan.run.command.slice(plan.run.command.indexOf("--lora-rank"), plan.run.command.indexOf("--lora-rank") + 2), ["--lora-rank", "16"]);
		assert.deepEqual(plan.run.resources, { cpu: "32", memory: "256Gi", gpus: 2, gpu_type: "A100" });
		assert.deepEqual([plan.run.workspace, plan.run.request_id, plan.run.env!.DATASET_REF], ["ws-1", "req-1", "ds-support-chats"]);
	});

	it("runs a single-GPU plan with python and the classes in env", () => {
		const plan = buildPlan(parseIntent("detect cars, trucks and buses with yolov8s on ds-traffic"), { workspace: "ws-1" });
		assert.deepEqual(plan.run.command.slice(0, 3), ["python", "-m", "savassan_trainer"]);
		assert.equal(plan.run.env!.CLASS_NAMES, '["cars","trucks","buses"]');
		assert.equal(plan.run.image, "savassan/trainer-ultralytics:0.1.0");
	});

	it("refuses an incomplete intent with a sentence", () => {
		assert.throws(() => buildPlan(parseIntent("train yolov8n"), { workspace: "ws-1" }), (err: unknown) => {
			assert.ok(err instanceof PlanError);
			assert.equal(err.message, "The request is not complete yet; still open: dataset.");
			return true;
		});
	});
});

describe("evaluation set", () => {
	it("has at least 150 prompts, about a fifth of which must ask", () => {
		assert.ok(prompts.length >= 150, `${prompts.length} prompts`);
		const asking = prompts.filter((p) => p.expect.status !== "complete").length / prompts.length;
		assert.ok(asking >= 0.15 && asking <= 0.3, `${asking} must ask`);
		assert.equal(new Set(prompts.map((p) => p.id)).size, prompts.length, "unique ids");
	});

	it("meets the targets: task accuracy ≥ 0.95, field F1 ≥ 0.90", () => {
		const report = evaluate(prompts, parseIntent);
		assert.ok(meetsTargets(report), `task ${report.taskAccuracy}, field F1 ${report.fieldF1}; failures: ${JSON.stringify(report.failures.slice(0, 5))}`);
		assert.ok(report.clarification.precision >= 0.9 && report.clarification.recall >= 0.9, JSON.stringify(report.clarification));
	});

	it("fails a parser that guesses", () => {
		// Always answering "classification with resnet50" must fall well below the targets.
		const report = evaluate(prompts, (text) => ({ ...parseIntent("train resnet50 on ds-1"), dataset: { kind: "id", value: text } }));
		assert.ok(!meetsTargets(report), `task ${report.taskAccuracy}, field F1 ${report.fieldF1}`);
		assert.ok(report.failures.length > 100);
	});
});
