#!/usr/bin/env node
// A small, deterministic stand-in for a training job: prints progress and metrics like real trainers do, writes a
// checkpoint after each epoch, and honours SIGTERM. No dependencies. Used by the runner tests and for demos:
//   CHECKPOINT_DIR=/tmp/ckpt node examples/trainer.js --epochs 3 --steps 5 --step-ms 100
"use strict";

const fs = require("node:fs");
const path = require("node:path");

function parseArgs(argv) {
	const opts = { epochs: 3, steps: 5, stepMs: 100, failAtEpoch: 0, checkpointEvery: 1 };
	const names = {
		"--epochs": "epochs",
		"--steps": "steps",
		"--step-ms": "stepMs",
		"--fail-at-epoch": "failAtEpoch",
		"--checkpoint-every": "checkpointEvery",
	};
	for (let i = 0; i < argv.length; i++) {
		const [flag, inline] = argv[i].split("=", 2);
		const key = names[flag];
		const value = Number(inline ?? argv[++i]);
		if (!key || !Number.isInteger(value) || value < 0) {
			process.stderr.write(`usage: trainer.js [--epochs N] [--steps N] [--step-ms N] [--fail-at-epoch N] [--checkpoint-every N] (bad: ${argv[i]})\n`);
			process.exit(2);
		}
		opts[key] = value;
	}
	return opts;
}

const opts = parseArgs(process.argv.slice(2));
const checkpointDir = process.env.CHECKPOINT_DIR;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

process.on("SIGTERM", () => {
	process.stdout.write("stopping\n", () => process.exit(143));
});

// A smooth, deterministic curve: the loss falls and the accuracy rises with the number of steps done.
function metricsAt(done, total) {
	const decay = Math.exp((-3 * done) / total);
	return { loss: 0.1 + 0.9 * decay, acc: 0.95 - 0.6 * decay };
}

function saveCheckpoint(epoch, metrics) {
	if (!checkpointDir) return;
	fs.mkdirSync(checkpointDir, { recursive: true });
	const file = path.join(checkpointDir, `epoch-${epoch}.ckpt`);
	const body = JSON.stringify({ epoch, loss: metrics.loss, accuracy: metrics.acc, weights: [epoch, epoch * 0.5, 1 / epoch] });
	// Written aside then renamed: whoever watches the folder never sees half a checkpoint.
	fs.writeFileSync(`${file}.tmp`, body);
	fs.renameSync(`${file}.tmp`, file);
}

async function main() {
	const { epochs, steps, stepMs, failAtEpoch, checkpointEvery } = opts;
	console.log(`starting run ${process.env.RUN_ID ?? "-"} trace ${process.env.TRACE_ID ?? "-"} (${epochs} epochs of ${steps} steps)`);
	const total = Math.max(1, epochs * steps);
	let m = metricsAt(0, total);
	for (let epoch = 1; epoch <= epochs; epoch++) {
		for (let step = 1; step <= steps; step++) {
			await sleep(stepMs);
			if (epoch === failAtEpoch && step === Math.ceil(steps / 2)) {
				process.stderr.write(`Error: simulated failure at epoch ${epoch}\n`, () => process.exit(1));
				return;
			}
			m = metricsAt((epoch - 1) * steps + step, total);
			console.log(`epoch ${epoch}/${epochs} step ${step}/${steps} loss=${m.loss.toFixed(4)} acc=${m.acc.toFixed(2)}`);
		}
		console.log(`Epoch ${epoch}/${epochs} done: loss=${m.loss.toFixed(4)} accuracy=${m.acc.toFixed(4)}`);
		if (checkpointEvery > 0 && epoch % checkpointEvery === 0) saveCheckpoint(epoch, m);
	}
}

main().catch((err) => {
	process.stderr.write(`${err && err.stack ? err.stack : err}\n`, () => process.exit(1));
});
