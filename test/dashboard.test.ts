import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { PROJECT_ROOT } from "../lib/paths";
import type { Run } from "../services/execution/run";
import { launchBrowser, type TestBrowser } from "./support/browser";
import { startEdgePlatform, USER_PASSWORD, type EdgePlatform } from "./support/edge-platform";
import { sleep, waitFor } from "./support/wait";

const WS = "vision";
const USER = "dana";
const SCREENSHOT = "/tmp/exp/dashboard.png";
const DROPPABLE_SOCKETS = `{
	const Native = window.WebSocket;
	window.openSockets = [];
	window.WebSocket = class extends Native {
		constructor(...args) { super(...args); window.openSockets.push(this); }
	};
}`;
const DROP_SOCKETS = "window.openSockets.splice(0).forEach((s) => s.close(4000, 'dropped by the test'))";

/** The trainer for `epochs` seconds (10 steps of 100 ms an epoch). */
const trainer = (epochs: number) => [process.execPath, join(PROJECT_ROOT, "examples", "trainer.js"), "--epochs", String(epochs), "--steps", "10", "--step-ms", "100"];

describe("the dashboard in headless chromium", () => {
	let platform: EdgePlatform;
	let browser: TestBrowser | undefined;
	let page: Page;
	let token: string;
	/** Uncaught page errors and console errors (a CSP violation is one): the page must have none. */
	const pageErrors: string[] = [];

	const api = async <T>(method: string, path: string, body?: unknown, bearer = token): Promise<T> => {
		const res = await fetch(`${platform.url}${path}`, {
			method,
			headers: { authorization: `Bearer ${bearer}`, ...(body ? { "content-type": "application/json" } : {}) },
			body: body ? JSON.stringify(body) : undefined,
		});
		const json = (await res.json()) as T;
		assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
		return json;
	};
	const lossSamples = async (runId: string) =>
		(await api<{ series: { metric: string; samples: number }[] }>("GET", `/v1/runs/${runId}/series?metric=loss`)).series[0]?.samples ?? 0;
	const submit = (epochs: number) => api<Run>("POST", "/v1/runs", { workspace: WS, command: trainer(epochs) });
	const attr = async (testid: string, name: string) => (await page.getByTestId(testid).getAttribute(name)) ?? "";
	const count = async (testid: string, name: string) => Number(await attr(testid, name));
	const waitAttr = (testid: string, name: string, value: string, timeoutMs = 15_000) =>
		waitFor(`${testid} ${name}=${value}`, async () => (await attr(testid, name)) === value, timeoutMs);

	before(async () => {
		platform = await startEdgePlatform("dashboard", { api: { maxBodyBytes: 1 << 20 }, live: { maxBufferedBytes: 1 << 20, idleTimeoutSec: 30 }, dashboard: true });
		await platform.addUser(USER, "editor", [WS]);
		token = (await platform.login(USER)).access_token;
		browser = await launchBrowser();
		page = await browser.context.newPage();
		// Keeps the page's WebSockets reachable, so a test can drop the live connection under the page's feet.
		await page.addInitScript(DROPPABLE_SOCKETS);
		page.on("pageerror", (err) => pageErrors.push(err.message));
		// Chromium also logs each refused request (the 401s these tests provoke) as a console error: not a page error.
		page.on("console", (m) => void (m.type() === "error" && !/^Failed to load resource|^WebSocket connection to/.test(m.text()) && pageErrors.push(m.text())));
	});

	after(async () => {
		await browser?.close();
		await platform?.close();
	});

	it("serves the page and its scripts with their content types, no-cache and a strict CSP", async () => {
		for (const [path, type] of [
			["/", "text/html"],
			["/dashboard", "text/html"],
			["/dashboard/app.js", "text/javascript"],
			["/dashboard/style.css", "text/css"],
		] as const) {
			const res = await fetch(`${platform.url}${path}`);
			assert.equal(res.status, 200, path);
			assert.ok(res.headers.get("content-type")?.startsWith(type), `${path}: ${res.headers.get("content-type")}`);
			assert.equal(res.headers.get("cache-control"), "no-cache");
			const csp = res.headers.get("content-security-policy") ?? "";
			assert.match(csp, /script-src 'self'(;|$)/);
			assert.match(csp, /connect-src 'self'(;|$)/);
			assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
		}
		assert.equal((await fetch(`${platform.url}/dashboard/secrets.js`)).status, 404, "only the page's own files are served");
	});

	it("shows the API's error (message and trace id, not JSON) on a wrong password", async () => {
		await page.goto(platform.url);
		await page.getByTestId("signin-username").fill(USER);
		await page.getByTestId("signin-password").fill("not-the-password");
		await page.getByTestId("signin-workspace").fill(WS);
		await page.getByTestId("signin-submit").click();
		const error = page.getByTestId("error");
		await error.waitFor({ state: "visible" });
		const text = await error.innerText();
		assert.match(text, /^Wrong username or password\. — trace id [0-9a-f-]{36}$/);
		assert.ok(await page.getByTestId("signin").isVisible(), "still on the sign-in");
	});

	it("merges history and live updates once each: log batches by stream sequence, chart points by time", async () => {
		// The page's own modules, in the page: what arrives both ways (read back, replayed) must count once.
		const merged = await page.evaluate(`(async () => {
			const { LogTail } = await import("/dashboard/logs.js");
			const tail = new LogTail();
			tail.addLive(12, { stream: "stdout", lines: ["c"] });
			tail.addStored([{ seq: 10, stream: "stdout", line: "a" }, { seq: 10, stream: "stderr", line: "b" }, { seq: 12, stream: "stdout", line: "c" }]);
			const liveAgain = tail.addLive(10, { stream: "stdout", lines: ["a", "b"] });
			const { Chart } = await import("/dashboard/chart.js");
			const canvas = document.createElement("canvas");
			const chart = new Chart(canvas);
			chart.add({ t: 300, loss: 0.5 });
			chart.setHistory({ series: [
				{ metric: "loss", points: [{ t: 100, last: 0.9 }, { t: 200, last: 0.7 }, { t: 300, last: 0.5 }] },
				{ metric: "acc", points: [{ t: 100, last: 0.1 }] },
			] });
			chart.add({ t: 300, loss: 0.5 });
			chart.add({ t: 400, loss: 0.4, accuracy: 0.8 });
			return { lines: tail.tail().map((l) => l.stream + ":" + l.line), liveAgain, points: chart.points, dataPoints: canvas.dataset.points };
		})()`);
		assert.deepEqual(merged, {
			lines: ["stdout:a", "stderr:b", "stdout:c"],
			liveAgain: false,
			points: [{ t: 100, loss: 0.9, accuracy: 0.1 }, { t: 200, loss: 0.7 }, { t: 300, loss: 0.5 }, { t: 400, loss: 0.4, accuracy: 0.8 }],
			dataPoints: "4",
		});
	});

	it("shows a run's progress arriving live: the list, the chart, the status and the logs, without a reload", async () => {
		// An alert that holds while the loss is high, then resolves as it falls: it comes over the alerts topic.
		await api("POST", "/v1/alerts/rules", { name: "loss still high", workspace: WS, metric: "loss", op: ">", threshold: 0.5 }, platform.admin.access_token);
		await page.getByTestId("signin-password").fill(USER_PASSWORD);
		await page.getByTestId("signin-submit").click();
		await page.getByTestId("runs-view").waitFor({ state: "visible" });
		assert.ok(await page.getByTestId("error").isHidden(), "the earlier error is cleared");
		await waitAttr("live-status", "data-state", "connected");
		// Survives only as long as the page is not reloaded.
		await page.evaluate("window.notReloaded = true");

		const run = await submit(6);
		const row = page.locator(`[data-testid="run-row"][data-run-id="${run.id}"]`);
		await row.waitFor({ state: "visible", timeout: 10_000 });
		await row.click();
		await page.getByTestId("run-view").waitFor({ state: "visible" });
		assert.equal(await page.getByTestId("run-id").innerText(), run.id);
		await waitAttr("run-status", "data-status", "RUNNING");

		await waitFor("the first points", async () => (await count("chart", "data-points")) >= 2);
		const early = await count("chart", "data-points");
		await sleep(1_500);
		const later = await count("chart", "data-points");
		assert.ok(later >= early + 3, `points keep arriving: ${early} then ${later}`);
		await waitFor("log lines", async () => (await count("logs", "data-lines")) > 0);
		assert.match(await page.getByTestId("logs").innerText(), /epoch 1\/6 step \d+\/10 loss=/);
		await page.screenshot({ path: SCREENSHOT, fullPage: true });

		// The connection drops mid-run: the page reconnects and resumes each topic from its last offset.
		await page.evaluate(DROP_SOCKETS);
		await waitAttr("live-status", "data-state", "reconnecting", 2_000);
		await waitAttr("live-status", "data-state", "connected", 5_000);

		await waitAttr("run-status", "data-status", "SUCCEEDED", 20_000);
		const final = await count("chart", "data-points");
		assert.ok(final > later, `points until the end: ${final}`);
		// Nothing missed across the reconnect, nothing counted twice: every heartbeat with a loss is one point...
		// (the status and the heartbeats are separate topics: the last heartbeat may come just after the status)
		await waitFor("the last heartbeat on the page", async () => (await count("chart", "data-points")) === (await lossSamples(run.id)), 5_000).catch(() => undefined);
		assert.equal(await count("chart", "data-points"), await lossSamples(run.id), "one point per heartbeat");
		// ...and every stored log line is in the tail once.
		const logs = await api<{ lines: unknown[] }>("GET", `/v1/runs/${run.id}/logs`);
		assert.equal(await count("logs", "data-lines"), logs.lines.length, "one tail line per stored line");
		assert.match(await page.getByTestId("logs").innerText(), /Epoch 6\/6 done/);
		assert.ok(await page.getByTestId("cancel-button").isDisabled(), "a finished run cannot be cancelled");

		await waitFor("the alert to be resolved", async () => (await page.locator('[data-testid="alert-item"][data-state="resolved"]').count()) === 1);
		assert.match(await page.getByTestId("alerts").innerText(), new RegExp(`loss still high.*${run.id}`));

		await page.getByRole("link", { name: "← all runs" }).click();
		await page.getByTestId("runs-view").waitFor({ state: "visible" });
		assert.equal(await row.getByTestId("run-row-status").getAttribute("data-status"), "SUCCEEDED");
		assert.equal(await page.evaluate("window.notReloaded"), true, "no reload happened");
	});

	it("cancels a running run with its cancel button", async () => {
		const run = await submit(100);
		await page.evaluate(`location.hash = "#/runs/${run.id}"`);
		await waitAttr("run-status", "data-status", "RUNNING");
		await page.getByTestId("cancel-button").click();
		await waitAttr("run-status", "data-status", "CANCELLED");
		assert.equal((await api<Run>("GET", `/v1/runs/${run.id}`)).status, "CANCELLED");
		assert.ok(await page.getByTestId("cancel-button").isDisabled());
	});

	it("goes back to the sign-in when the session is no longer valid", async () => {
		await page.evaluate(`sessionStorage.setItem("savassan.access_token", "not-a-token"); sessionStorage.removeItem("savassan.refresh_token")`);
		await page.reload();
		await page.getByTestId("signin").waitFor({ state: "visible" });
		assert.match(await page.getByTestId("error").innerText(), /trace id/);
		assert.deepEqual(pageErrors, [], "no script error and no CSP violation on the page");
	});
});
