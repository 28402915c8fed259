import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { appendFile, chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Artifact } from "../events/telemetry";
import { PROJECT_ROOT } from "../lib/paths";
import { ATTACH_FILES } from "../lib/run-env";
import { sha256OfFile as sha256File } from "../lib/blob";
import { CheckpointWatcher } from "../runner/checkpoints";
import { MAX_METRICS, MetricParser, type ParsedLine } from "../runner/metrics";
import { ResourceSampler, parseNvidiaSmiCsv, parseProcStat } from "../runner/resources";
import { LineSplitter, attachTrainer, spawnTrainer, type TrainerStream } from "../runner/trainer";
import { sleep, waitFor } from "./support/wait";

const TRAINER = join(PROJECT_ROOT, "examples", "trainer.js");
const MiB = 1024 * 1024;

/** Temp dirs and processes made by these tests, removed/killed at the end even when a test fails. */
const tempDirs: string[] = [];
const pids = new Set<number>();
after(async () => {
	for (const pid of pids) {
		try {
			process.kill(pid, "SIGKILL");
		} catch {
			// already gone
		}
	}
	await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
	const dir = await mkdtemp(join(tmpdir(), "savassan-runner-"));
	tempDirs.push(dir);
	return dir;
}

/** Alive and not a zombie (an orphan may wait for a reaper that never comes in a container). */
function alive(pid: number): boolean {
	try {
		process.kill(pid, 0);
	} catch {
		return false;
	}
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
	} catch {
		return false;
	}
}

function parseAll(lines: string[]): { parser: MetricParser; results: ParsedLine[] } {
	const parser = new MetricParser();
	return { parser, results: lines.map((l) => parser.parse(l)) };
}

describe("MetricParser", () => {
	const table: Array<{ name: string; line: string; metrics: Record<string, number>; progress?: object }> = [
		{
			name: "PyTorch Lightning tqdm bar",
			line: "Epoch 0:  50%|█████     | 16/32 [00:01<00:01, 12.00it/s, loss=0.693, v_num=0, train_acc=0.51]",
			metrics: { loss: 0.693, v_num: 0, train_acc: 0.51 },
			progress: { epoch: 0, step: 16, steps: 32 },
		},
		{
			name: "PyTorch Lightning end of epoch with validation",
			line: "Epoch 1: 100%|██████████| 32/32 [00:02<00:00, 14.2it/s, v_num=3, train_loss=0.412, val_loss=0.388, val_acc=0.871]",
			metrics: { v_num: 3, train_loss: 0.412, val_loss: 0.388, val_acc: 0.871 },
			progress: { epoch: 1, step: 32, steps: 32 },
		},
		{ name: "Keras epoch header", line: "Epoch 1/5", metrics: {}, progress: { epoch: 1, epochs: 5, fraction: 0 } },
		{
			name: "Keras step line",
			line: "32/32 [==============================] - 1s 3ms/step - loss: 0.5123 - accuracy: 0.8000 - val_loss: 0.4500 - val_accuracy: 0.8200",
			metrics: { loss: 0.5123, accuracy: 0.8, val_loss: 0.45, val_accuracy: 0.82 },
			progress: { step: 32, steps: 32, fraction: 1 },
		},
		{
			name: "HuggingFace Trainer log (Python dict repr)",
			line: "{'loss': 0.5, 'learning_rate': 5e-05, 'epoch': 0.5}",
			metrics: { loss: 0.5, learning_rate: 5e-5 },
			progress: { epoch: 1 },
		},
		{
			name: "HuggingFace Trainer eval",
			line: "{'eval_loss': 0.31, 'eval_accuracy': 0.9, 'eval_runtime': 1.5, 'eval_samples_per_second': 200.0, 'epoch': 1.0}",
			metrics: { eval_loss: 0.31, eval_accuracy: 0.9, eval_runtime: 1.5, eval_samples_per_second: 200 },
			progress: { epoch: 1 },
		},
		{
			name: "JSON line: numbers only, top level only",
			line: '{"epoch": 2, "epochs": 4, "loss": 0.3, "name": "x", "ok": true, "nested": {"acc": 9}, "acc": 0.7}',
			metrics: { loss: 0.3, accuracy: 0.7 },
			progress: { epoch: 2, epochs: 4, fraction: 0.25 },
		},
		{
			name: "plain key=value, colon, space, percent, scientific",
			line: "loss=0.12 lr=1e-4 acc: 91.2% val_loss 0.3 grad_norm=-2.5E+1",
			metrics: { loss: 0.12, lr: 1e-4, accuracy: 0.912, val_loss: 0.3, grad_norm: -25 },
		},
		{
			name: "slash and dot names keep their case-folded spelling",
			line: "Train/Loss: 0.25 | Val/Acc: 0.8 | val.f1=0.66",
			metrics: { "train/loss": 0.25, "val/acc": 0.8, "val.f1": 0.66 },
		},
		{ name: "epoch N of M", line: "epoch 3 of 10", metrics: {}, progress: { epoch: 3, epochs: 10, fraction: 0.2 } },
		{ name: "global step", line: "step 120/500 loss 0.9", metrics: { loss: 0.9 }, progress: { step: 120, steps: 500, fraction: 0.24 } },
		{ name: "prose with numbers", line: "Saving checkpoint 3 to /tmp/x; model has 12 layers, downloaded 45.2MB", metrics: {} },
		{ name: "non-numeric values", line: "loss=NaN acc=Infinity lr=inf optimizer=adam status: ok", metrics: {} },
		{ name: "NaN next to a good value", line: "loss=nan, acc=0.5", metrics: { accuracy: 0.5 } },
		{ name: "key longer than 64 characters", line: `${"a".repeat(70)}=1 b=2`, metrics: { b: 2 } },
	];
	for (const row of table) {
		it(`reads ${row.name}`, () => {
			const got = new MetricParser().parse(row.line);
			assert.deepEqual(got.metrics, row.metrics);
			assert.deepEqual(got.progress, row.progress);
			assert.equal(got.epochEnded, undefined);
		});
	}

	it("follows Keras epochs: ends epoch 1 with its metrics when epoch 2 starts, and finish() ends the last", () => {
		const { parser, results } = parseAll([
			"Epoch 1/2",
			"16/32 [==============>...............] - ETA: 0s - loss: 0.7000 - accuracy: 0.5000",
			"32/32 [==============================] - 1s 3ms/step - loss: 0.6000 - accuracy: 0.6000 - val_loss: 0.6500",
			"Epoch 2/2",
			"32/32 [==============================] - 1s 3ms/step - loss: 0.4000 - accuracy: 0.8000",
		]);
		assert.deepEqual(results[1].progress, { epoch: 1, epochs: 2, step: 16, steps: 32, fraction: 0.25 });
		assert.deepEqual(
			results.map((r) => r.epochEnded),
			[undefined, undefined, undefined, { epoch: 1, epochs: 2, metrics: { loss: 0.6, accuracy: 0.6, val_loss: 0.65 } }, undefined],
		);
		assert.deepEqual(parser.progress(), { epoch: 2, epochs: 2, step: 32, steps: 32, fraction: 1 });
		assert.deepEqual(parser.finish(), { epoch: 2, epochs: 2, metrics: { loss: 0.4, accuracy: 0.8 } });
		assert.equal(parser.finish(), undefined, "the last epoch ends once");
		assert.deepEqual(parser.latest(), { loss: 0.4, accuracy: 0.8, val_loss: 0.65 });
	});

	it("follows the example trainer's lines", () => {
		const { parser, results } = parseAll([
			"starting run r-1 trace t-1 (2 epochs of 2 steps)",
			"epoch 1/2 step 1/2 loss=0.8123 acc=0.41",
			"epoch 1/2 step 2/2 loss=0.7000 acc=0.50",
			"Epoch 1/2 done: loss=0.7000 accuracy=0.5000",
			"epoch 2/2 step 1/2 loss=0.6000 acc=0.61",
		]);
		assert.deepEqual(results[0], { metrics: {} });
		assert.deepEqual(results[1].progress, { epoch: 1, epochs: 2, step: 1, steps: 2, fraction: 0.25 });
		assert.deepEqual(results[4].epochEnded, { epoch: 1, epochs: 2, metrics: { loss: 0.7, accuracy: 0.5 } });
		assert.deepEqual(results[4].progress, { epoch: 2, epochs: 2, step: 1, steps: 2, fraction: 0.75 });
		assert.deepEqual(parser.finish(), { epoch: 2, epochs: 2, metrics: { loss: 0.6, accuracy: 0.61 } });
	});

	it("counts HuggingFace's fractional epochs: 1.5 is in the second epoch, 1.0 still the first", () => {
		const { results } = parseAll([
			"{'loss': 0.9, 'learning_rate': 5e-05, 'epoch': 0.5}",
			"{'eval_loss': 0.8, 'epoch': 1.0}",
			"{'loss': 0.7, 'learning_rate': 2.5e-05, 'epoch': 1.5}",
		]);
		assert.deepEqual(results[1].epochEnded, undefined);
		assert.deepEqual(results[2].epochEnded, { epoch: 1, metrics: { loss: 0.9, learning_rate: 5e-5, eval_loss: 0.8 } });
		assert.deepEqual(results[2].progress, { epoch: 2 });
	});

	it("reads ultralytics' tables: header rows name the columns of the rows under them", () => {
		const { parser, results } = parseAll([
			"      Epoch    GPU_mem   box_loss   cls_loss   dfl_loss  Instances       Size",
			"        1/3      0.52G      1.234      2.345      1.456         12        640:  50%|█████     | 4/8 [00:01<00:01,  3.5it/s]",
			"                 Class     Images  Instances      Box(P          R      mAP50  mAP50-95): 100%|██████████| 1/1 [00:00<00:00,  5.0it/s]",
			"                   all          4         17      0.641      0.833      0.888      0.623",
			"      Epoch    GPU_mem   box_loss   cls_loss   dfl_loss  Instances       Size",
			"        2/3      0.52G      1.100      2.000      1.300         15        640: 100%|██████████| 8/8 [00:02<00:00,  3.5it/s]",
		]);
		assert.deepEqual(results[0], { metrics: {} });
		assert.deepEqual(results[1].metrics, { box_loss: 1.234, cls_loss: 2.345, dfl_loss: 1.456, instances: 12, size: 640 });
		assert.deepEqual(results[1].progress, { epoch: 1, epochs: 3, step: 4, steps: 8, fraction: 0.5 / 3 });
		assert.deepEqual(results[3].metrics, { images: 4, instances: 17, r: 0.833, map50: 0.888, "map50-95": 0.623 });
		assert.equal(results[5].epochEnded?.epoch, 1);
		assert.equal(results[5].epochEnded?.metrics.map50, 0.888);
		assert.deepEqual(parser.progress(), { epoch: 2, epochs: 3, step: 8, steps: 8, fraction: 2 / 3 });
	});

	it("counts from epoch 0 like Lightning, and reports nothing when the epoch goes back (a restart)", () => {
		const { results } = parseAll([
			"Epoch 0: 100%|██████████| 32/32 [00:01<00:00, loss=0.5]",
			"Epoch 1:  50%|█████     | 16/32 [00:00<00:00, loss=0.4]",
			"Epoch 0:  10%|█         | 3/32 [00:00<00:00, loss=0.9]",
			"Epoch 1:  10%|█         | 3/32 [00:00<00:00, loss=0.45]",
		]);
		assert.deepEqual(
			results.map((r) => r.epochEnded),
			[undefined, { epoch: 0, metrics: { loss: 0.5 } }, undefined, { epoch: 0, metrics: { loss: 0.9 } }],
		);
	});

	it("survives hostile lines quickly: 1 MB, near-limit adversarial, binary garbage, too many names", () => {
		const parser = new MetricParser();
		const started = performance.now();
		assert.deepEqual(parser.parse("loss=0.5 ".repeat(120_000)), { metrics: {} }, "over 16 KiB: not parsed");
		const nearLimit = [
			`x=${"9".repeat(16_000)}`,
			`{'${"a'".repeat(8000)}`,
			"a ".repeat(8000),
			"a".repeat(16_000),
			`${"1/".repeat(8000)}[`,
			`Epoch ${"1 ".repeat(7990)}`,
			`${"loss".repeat(3000)}=${"1.".repeat(2000)}`,
			`k${" ".repeat(16_000)}`,
			"a:".repeat(8000),
			"a=1e".repeat(4000),
		];
		for (const line of nearLimit) assert.ok(line.length <= 16 * 1024, "each is parsed, not skipped");
		for (const line of nearLimit) parser.parse(line);
		let seed = 42;
		const garbage = Array.from({ length: 16_000 }, () => {
			seed = (seed * 1103515245 + 12345) % 2 ** 31;
			return String.fromCharCode(seed % 256);
		}).join("");
		const got = parser.parse(garbage);
		for (const v of Object.values(got.metrics)) assert.ok(Number.isFinite(v));
		const elapsed = performance.now() - started;
		assert.ok(elapsed < 500, `took ${elapsed} ms`);

		const many = Array.from({ length: 80 }, (_, i) => `m${i}=${i}`).join(" ");
		assert.equal(Object.keys(new MetricParser().parse(many).metrics).length, MAX_METRICS);
	});
});

describe("ResourceSampler", () => {
	it("parses /proc/<pid>/stat, even with parentheses and spaces in the command name", () => {
		const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
		fields[0] = "S"; // state
		fields[1] = "77"; // ppid
		fields[11] = "150"; // utime
		fields[12] = "50"; // stime
		fields[19] = "9999"; // starttime
		fields[21] = "321"; // rss
		assert.deepEqual(parseProcStat(`1234 (my (odd) proc) ${fields.join(" ")}`), {
			pid: 1234,
			ppid: 77,
			ticks: 200,
			rssPages: 321,
			startTime: 9999,
		});
		assert.equal(parseProcStat("garbage"), undefined);
	});

	it("parses nvidia-smi's csv: MiB to bytes, [N/A] left out, junk lines skipped", () => {
		assert.deepEqual(parseNvidiaSmiCsv("0, 45, 1024, 16384\n1, [N/A], 0, 40960\n\nnot a gpu\n2, [Not Supported], [N/A], [N/A]\n"), [
			{ index: 0, util_percent: 45, memory_bytes: 1024 * MiB, memory_total_bytes: 16384 * MiB },
			{ index: 1, memory_bytes: 0, memory_total_bytes: 40960 * MiB },
			{ index: 2 },
		]);
	});

	it("sums CPU and memory over the process tree of a real child burning CPU in a grandchild", async () => {
		// The root idles; its child spins. CPU above 20% proves the tree is summed.
		const burner = `require("child_process").spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "inherit" }); setInterval(() => {}, 1000);`;
		const root = spawn(process.execPath, ["-e", burner], { detached: true, stdio: "ignore" });
		pids.add(-root.pid!);
		try {
			await sleep(300);
			const sampler = new ResourceSampler({ rootPid: root.pid! }, { nvidiaSmi: null });
			const first = await sampler.sample();
			assert.equal(first.cpu_percent, 0, "no previous sample");
			assert.ok(first.memory_bytes! > 10 * MiB, `two node processes: ${first.memory_bytes}`);
			await sleep(400);
			const second = await sampler.sample();
			assert.ok(second.cpu_percent! > 20, `cpu ${second.cpu_percent}`);
			assert.ok(second.cpu_percent! < 250, `cpu ${second.cpu_percent}`);
			assert.equal(second.gpus, undefined);

		} finally {
			process.kill(-root.pid!, "SIGKILL");
		}
	});

	it("counts a process that is not its own descendant in allExceptSelf mode", async () => {
		// Double fork: the burner is orphaned, like a trainer in another container of the pod.
		const orphan = `const c = require("child_process").spawn(process.execPath, ["-e", "for(;;){}"], { detached: true, stdio: "ignore" }); console.log(c.pid); c.unref();`;
		const burnerPid = Number(await execOut(process.execPath, ["-e", orphan]));
		assert.ok(burnerPid > 0);
		pids.add(burnerPid);
		try {
			const everyone = new ResourceSampler({ allExceptSelf: true }, { nvidiaSmi: null });
			await everyone.sample();
			await sleep(300);
			const got = await everyone.sample();
			assert.ok(got.cpu_percent! > 20, `cpu ${got.cpu_percent}`);
			assert.ok(got.memory_bytes! > 10 * MiB);
		} finally {
			process.kill(burnerPid, "SIGKILL");
		}
	});

	it("leaves out itself, its ancestors and its children in allExceptSelf mode (fake /proc)", async () => {
		const proc = await tempDir();
		const stat = (pid: number, ppid: number, rss: number) =>
			mkdir(join(proc, String(pid))).then(() =>
				writeFile(join(proc, String(pid), "stat"), `${pid} (x) S ${ppid} ${"0 ".repeat(9)}10 10 ${"0 ".repeat(6)}5 0 ${rss} 0\n`),
			);
		const other = 2_000_000_001;
		await stat(process.ppid, 0, 1000); // ancestor
		await stat(process.pid, process.ppid, 2000); // self
		await stat(2_000_000_000, process.pid, 4000); // our child
		await stat(other, 1, 10); // the trainer
		await stat(other + 1, other, 20); // its child
		await writeFile(join(proc, "uptime"), "not a pid\n");
		const pageSize = Number(await execOut("getconf", ["PAGESIZE"]));
		const all = await new ResourceSampler({ allExceptSelf: true }, { procRoot: proc, nvidiaSmi: null }).sample();
		assert.equal(all.memory_bytes, 30 * pageSize);
		const tree = await new ResourceSampler({ rootPid: other + 1 }, { procRoot: proc, nvidiaSmi: null }).sample();
		assert.equal(tree.memory_bytes, 20 * pageSize);
		const gone = await new ResourceSampler({ rootPid: 3 }, { procRoot: proc, nvidiaSmi: null }).sample();
		assert.deepEqual(gone, { cpu_percent: 0, memory_bytes: 0 });
	});

	it("runs nvidia-smi when there is one, and stops asking when it is absent or keeps failing", async () => {
		const dir = await tempDir();
		const fake = join(dir, "nvidia-smi");
		await writeFile(
			fake,
			`#!/bin/sh\n[ "$1" = "--query-gpu=index,utilization.gpu,memory.used,memory.total" ] && [ "$2" = "--format=csv,noheader,nounits" ] || exit 9\necho "0, 87, 2048, 24576"\n`,
		);
		await chmod(fake, 0o755);
		const withGpu = await new ResourceSampler({ rootPid: process.pid }, { nvidiaSmi: fake }).sample();
		assert.deepEqual(withGpu.gpus, [{ index: 0, util_percent: 87, memory_bytes: 2048 * MiB, memory_total_bytes: 24576 * MiB }]);

		const absent = new ResourceSampler({ rootPid: process.pid }, { nvidiaSmi: join(dir, "no-such-nvidia-smi") });
		assert.equal((await absent.sample()).gpus, undefined);
		assert.equal(absent.gpuEnabled, false, "absent is remembered");

		const failing = join(dir, "failing-smi");
		const calls = join(dir, "calls");
		await writeFile(failing, `#!/bin/sh\necho x >> "${calls}"\nexit 1\n`);
		await chmod(failing, 0o755);
		const broken = new ResourceSampler({ rootPid: process.pid }, { nvidiaSmi: failing });
		for (let i = 0; i < 5; i++) assert.equal((await broken.sample()).gpus, undefined);
		assert.equal((await readFile(calls, "utf8")).split("\n").filter(Boolean).length, 3);
		assert.equal(broken.gpuEnabled, false);

		// This machine's own PATH: no GPU here means no gpus field, and no error.
		const local = await new ResourceSampler({ rootPid: process.pid }).sample();
		if (!existsSyncOnPath("nvidia-smi")) assert.equal(local.gpus, undefined);
	});
});

describe("CheckpointWatcher", () => {
	/** A fake store: hashes the file like a real upload would, and can be told to fail. */
	function store() {
		const calls: string[] = [];
		const failNext = new Set<string>();
		const upload = async (abs: string, rel: string): Promise<Artifact> => {
			calls.push(rel);
			if (failNext.delete(rel)) throw new Error(`store refused ${rel}`);
			const { sha256, bytes } = await sha256File(abs);
			return { uri: `mem://ckpt/${rel}`, path: rel, bytes, sha256 };
		};
		return { calls, failNext, upload };
	}

	it("uploads a file once it stopped changing, once per version, with subfolders, skipping hidden and .tmp", async () => {
		const dir = join(await tempDir(), "ckpt"); // created by start()
		const s = store();
		const errors: Array<[string, string | undefined]> = [];
		const uploaded: string[] = [];
		const w = new CheckpointWatcher({
			dir,
			upload: s.upload,
			intervalMs: 3_600_000, // polled by hand below
			onError: (err, rel) => errors.push([(err as Error).message, rel]),
			onUploaded: (a) => uploaded.push(a.path),
		});
		await w.start();
		try {
			await writeFile(join(dir, "a.ckpt"), "half");
			await w.poll();
			assert.deepEqual(s.calls, [], "first seen: maybe still being written");
			await appendFile(join(dir, "a.ckpt"), " and the rest");
			await w.poll();
			assert.deepEqual(s.calls, [], "it grew: still being written");
			await mkdir(join(dir, "sub"));
			await writeFile(join(dir, "sub", "b.ckpt"), "bbb");
			await writeFile(join(dir, "c.ckpt.tmp"), "tmp");
			await writeFile(join(dir, "d.partial"), "partial");
			await writeFile(join(dir, ".hidden"), "hidden");
			await w.poll();
			assert.deepEqual(s.calls, ["a.ckpt"]);
			await w.poll();
			await w.poll();
			assert.deepEqual(s.calls, ["a.ckpt", "sub/b.ckpt"], "each version once; .tmp, .partial and hidden never");

			const content = "half and the rest";
			assert.deepEqual(w.artifacts()[0], {
				uri: "mem://ckpt/a.ckpt",
				path: "a.ckpt",
				bytes: content.length,
				sha256: createHash("sha256").update(content).digest("hex"),
			});

			// A new version of a file is a new upload; a refused upload is tried again at the next poll.
			await writeFile(join(dir, "a.ckpt"), "second version, longer");
			s.failNext.add("a.ckpt");
			await w.poll();
			await w.poll();
			assert.deepEqual(errors, [["store refused a.ckpt", "a.ckpt"]]);
			await w.poll();
			assert.deepEqual(s.calls, ["a.ckpt", "sub/b.ckpt", "a.ckpt", "a.ckpt"]);
			assert.deepEqual(uploaded, ["a.ckpt", "sub/b.ckpt", "a.ckpt"]);
			assert.equal(w.artifacts().length, 3);
		} finally {
			await w.stop();
		}
	});

	it("polls on its own timer, and a flush on stop uploads what is left without waiting and waits for uploads under way", async () => {
		const dir = await tempDir();
		const s = store();
		let slowStarted = false;
		let slowDone = false;
		const w = new CheckpointWatcher({
			dir,
			intervalMs: 20,
			upload: async (abs, rel) => {
				if (rel === "slow.ckpt") {
					slowStarted = true;
					await sleep(150);
					slowDone = true;
				}
				return s.upload(abs, rel);
			},
		});
		await w.start();
		let stopped = false;
		try {
			await writeFile(join(dir, "timer.ckpt"), "t");
			await waitFor("the timer to upload", () => s.calls.includes("timer.ckpt"), 3000);
			await writeFile(join(dir, "slow.ckpt"), "s");
			await waitFor("the slow upload to start", () => slowStarted, 3000);
			assert.equal(slowDone, false);
			await writeFile(join(dir, "last.ckpt"), "written just before the trainer exited");
			await w.stop({ flush: true });
			stopped = true;
			assert.equal(slowDone, true, "stop waited for the upload under way");
			assert.deepEqual(
				w.artifacts().map((a) => a.path),
				["timer.ckpt", "slow.ckpt", "last.ckpt"],
			);
			const after = s.calls.length;
			await sleep(80);
			assert.equal(s.calls.length, after, "no polling after stop");
		} finally {
			if (!stopped) await w.stop();
		}
	});

	it("hashes a file by streaming it", async () => {
		const file = join(await tempDir(), "big.bin");
		const data = Buffer.alloc(3 * MiB + 7, 0xab);
		await writeFile(file, data);
		assert.deepEqual(await sha256File(file), {
			sha256: createHash("sha256").update(data).digest("hex"),
			bytes: data.length,
		});
	});
});

describe("LineSplitter", () => {
	it("splits on \\n, \\r\\n and bare \\r across chunks, and keeps UTF-8 characters whole", () => {
		const lines: string[] = [];
		const s = new LineSplitter((l) => lines.push(l));
		const euro = Buffer.from("€", "utf8"); // 3 bytes
		for (const chunk of [
			Buffer.from("ab"),
			Buffer.from("c\r"),
			Buffer.from("\nd\re"),
			Buffer.from("f\n"),
			Buffer.from("\n"),
			euro.subarray(0, 1),
			euro.subarray(1),
			Buffer.from("\r\r\n50%\r100%\nno newline"),
		])
			s.push(chunk);
		s.end();
		assert.deepEqual(lines, ["abc", "d", "ef", "", "€", "50%", "100%", "no newline"]);
	});

	it("cuts a line over 16 KiB into pieces at character boundaries", () => {
		const lines: string[] = [];
		const s = new LineSplitter((l) => lines.push(l));
		const long = "é".repeat(20_000); // 40,000 bytes
		const bytes = Buffer.from(`${long}\n`);
		for (let i = 0; i < bytes.length; i += 1000) s.push(bytes.subarray(i, i + 1000));
		assert.equal(lines.length, 3);
		for (const l of lines) assert.ok(Buffer.byteLength(l) <= 16 * 1024 && !l.includes("\uFFFD"));
		assert.equal(lines.join(""), long);
	});
});

describe("spawnTrainer", () => {
	function collect(t: { onLine(cb: (s: TrainerStream, l: string) => void): void }) {
		const lines: Array<[TrainerStream, string]> = [];
		t.onLine((stream, line) => lines.push([stream, line]));
		return lines;
	}

	it("runs the example trainer: lines, metrics, checkpoints, exit 0", async () => {
		const ckpt = join(await tempDir(), "ckpt");
		const env = { ...process.env, RUN_ID: "run-42", TRACE_ID: "trace-7", CHECKPOINT_DIR: ckpt };
		const t = spawnTrainer([process.execPath, TRAINER, "--epochs", "2", "--steps", "3", "--step-ms", "20"], env);
		assert.ok(t.pid! > 0);
		pids.add(-t.pid!);
		const lines = collect(t);
		const parser = new MetricParser();
		const ends: number[] = [];
		t.onLine((stream, line) => {
			const ended = stream === "stdout" ? parser.parse(line).epochEnded : undefined;
			if (ended) ends.push(ended.epoch);
		});
		const watcher = new CheckpointWatcher({
			dir: ckpt,
			intervalMs: 20,
			upload: async (abs, rel) => ({ uri: `mem://${rel}`, path: rel, ...(await sha256File(abs)) }),
		});
		await watcher.start();
		assert.deepEqual(await t.exited, { code: 0, signal: null });
		await watcher.stop({ flush: true });

		assert.deepEqual(lines[0], ["stdout", "starting run run-42 trace trace-7 (2 epochs of 3 steps)"]);
		assert.equal(lines.filter(([s, l]) => s === "stdout" && /^epoch \d\/2 step \d\/3 loss=/.test(l)).length, 6);
		assert.deepEqual(
			lines.filter(([s]) => s === "stderr"),
			[],
		);
		const losses = lines.map(([, l]) => /step.*loss=([\d.]+)/.exec(l)?.[1]).filter(Boolean).map(Number);
		assert.ok(losses.every((l, i) => i === 0 || l < losses[i - 1]), `loss decreases: ${losses}`);
		ends.push(parser.finish()!.epoch);
		assert.deepEqual(ends, [1, 2]);
		assert.ok(parser.latest().accuracy! > 0.5);
		assert.deepEqual((await readdir(ckpt)).sort(), ["epoch-1.ckpt", "epoch-2.ckpt"]);
		assert.deepEqual(
			watcher.artifacts().map((a) => a.path).sort(),
			["epoch-1.ckpt", "epoch-2.ckpt"],
		);
		assert.equal(JSON.parse(await readFile(join(ckpt, "epoch-2.ckpt"), "utf8")).epoch, 2);
	});

	it("reports a failing trainer's exit code and its error", async () => {
		const ckpt = join(await tempDir(), "ckpt");
		const t = spawnTrainer(
			[process.execPath, TRAINER, "--epochs", "3", "--steps", "2", "--step-ms", "5", "--fail-at-epoch", "2"],
			{ ...process.env, CHECKPOINT_DIR: ckpt },
		);
		pids.add(-t.pid!);
		const lines = collect(t);
		assert.deepEqual(await t.exited, { code: 1, signal: null });
		assert.deepEqual(
			lines.filter(([s]) => s === "stderr"),
			[["stderr", "Error: simulated failure at epoch 2"]],
		);
		assert.deepEqual(await readdir(ckpt), ["epoch-1.ckpt"]);
	});

	it("terminate() lets the trainer stop on SIGTERM", async () => {
		const t = spawnTrainer([process.execPath, TRAINER, "--epochs", "100", "--step-ms", "20"], process.env);
		pids.add(-t.pid!);
		const lines = collect(t);
		await waitFor("a step", () => lines.some(([, l]) => l.includes("step")), 5000);
		await t.terminate(5000);
		assert.deepEqual(await t.exited, { code: 143, signal: null });
		assert.deepEqual(lines.at(-1), ["stdout", "stopping"]);
	});

	it("terminate() kills the whole tree, SIGKILL for a grandchild that ignores SIGTERM", async () => {
		const grandchild = `process.on("SIGTERM", () => {}); console.log("ready " + process.pid); setInterval(() => {}, 1000);`;
		const child = `require("child_process").spawn(process.execPath, ["-e", ${JSON.stringify(grandchild)}], { stdio: "inherit" }); setInterval(() => {}, 1000);`;
		const t = spawnTrainer([process.execPath, "-e", child], process.env);
		pids.add(-t.pid!);
		const lines = collect(t);
		await waitFor("the grandchild", () => lines.some(([, l]) => l.startsWith("ready ")), 5000);
		const gpid = Number(lines.find(([, l]) => l.startsWith("ready "))![1].slice(6));
		pids.add(gpid);
		assert.ok(alive(gpid));
		const started = Date.now();
		await t.terminate(300);
		assert.ok(Date.now() - started >= 250, "the group had its grace period");
		assert.deepEqual(await t.exited, { code: null, signal: "SIGTERM" });
		await waitFor("the grandchild to be gone", () => !alive(gpid), 2000);
	});

	it("a command that does not exist exits 127 and says so, without throwing", async () => {
		const t = spawnTrainer(["savassan-no-such-trainer-xyz", "--epochs", "1"], process.env);
		assert.deepEqual(await t.exited, { code: 127, signal: null });
		assert.deepEqual(collect(t), [["stderr", "savassan-no-such-trainer-xyz: command not found"]]);
		await t.terminate();
		const empty = spawnTrainer([], process.env);
		assert.equal((await empty.exited).code, 127);
	});
});

describe("attachTrainer", () => {
	it("follows a log written in pieces before it exists, and exits with the code in the exit-code file", async () => {
		const dir = await tempDir();
		const log = join(dir, ATTACH_FILES.log);
		const t = attachTrainer(dir, { pollMs: 15 });
		const lines: string[] = [];
		t.onLine((stream, line) => {
			assert.equal(stream, "stdout");
			lines.push(line);
		});
		await sleep(40);
		await appendFile(log, "epoch 1/2 lo");
		await sleep(40);
		await appendFile(log, "ss=0.5\nsecond");
		await sleep(40);
		await appendFile(log, " line\r\n50%\r100%\n");
		await waitFor("the lines so far", () => lines.length === 4, 2000);
		await writeFile(join(dir, ATTACH_FILES.exitCode), ""); // created, not yet written
		await sleep(60);
		await appendFile(log, "last words, no newline");
		await writeFile(join(dir, ATTACH_FILES.exitCode), "3\n");
		assert.deepEqual(await t.exited, { code: 3, signal: null });
		assert.deepEqual(lines, ["epoch 1/2 loss=0.5", "second line", "50%", "100%", "last words, no newline"]);
		await t.terminate(); // after the exit: harmless
	});

	it("starts over on a replaced log, and terminate() stops following", async () => {
		const dir = await tempDir();
		const log = join(dir, ATTACH_FILES.log);
		await writeFile(log, "old 1\n");
		const t = attachTrainer(dir, { pollMs: 15 });
		const lines: string[] = [];
		t.onLine((_, line) => lines.push(line));
		await waitFor("the first line", () => lines.length === 1, 2000);
		await writeFile(`${log}.new`, "new 1\n");
		await rename(`${log}.new`, log);
		await waitFor("the replaced file", () => lines.length === 2, 2000);
		assert.deepEqual(lines, ["old 1", "new 1"]);
		await t.terminate();
		assert.deepEqual(await t.exited, { code: null, signal: null });
		await appendFile(log, "after terminate\n");
		await writeFile(join(dir, ATTACH_FILES.exitCode), "0");
		await sleep(60);
		assert.deepEqual(lines, ["old 1", "new 1"]);
	});
});

function execOut(cmd: string, args: string[]): Promise<string> {
	return new Promise((resolve, reject) => {
		const c: ChildProcess = spawn(cmd, args, { stdio: ["ignore", "pipe", "ignore"] });
		let out = "";
		c.stdout!.on("data", (d) => (out += d));
		c.on("error", reject);
		c.on("close", () => resolve(out.trim()));
	});
}

function existsSyncOnPath(cmd: string): boolean {
	return (process.env.PATH ?? "").split(":").some((d) => d && existsSync(join(d, cmd)));
}
