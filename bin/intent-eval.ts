#!/usr/bin/env node
/**
 * Runs the intent parser over the evaluation set (test/intent-eval/prompts.json) and prints task accuracy,
 * per-field precision/recall/F1, clarification precision/recall and every failure. Exits 1 below the targets
 * (task accuracy ≥ 0.95, field F1 ≥ 0.90). Usage: node dist/bin/intent-eval.js [path/to/prompts.json]
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../lib/paths";
import { evaluate, formatReport, meetsTargets, type EvalPrompt } from "../services/intent/evaluation";
import { parseIntent } from "../services/intent/parser";

const EVAL_SET = join(PROJECT_ROOT, "test", "intent-eval", "prompts.json");

const file = process.argv[2] ?? EVAL_SET;
const { prompts } = JSON.parse(readFileSync(file, "utf8")) as { prompts: EvalPrompt[] };
const started = process.hrtime.bigint();
const report = evaluate(prompts, parseIntent);
const ms = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(`${formatReport(report)}\n\nparsed ${prompts.length} prompts in ${ms.toFixed(0)} ms\n`);
process.exitCode = meetsTargets(report) ? 0 : 1;
