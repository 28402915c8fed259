// The dashboard's wiring: sign-in, the runs list of a workspace and a run's page (#/runs/<id>), each loaded over
// the HTTP API and then kept current by the live WebSocket, without reloading the page.

import { ApiError, call, login, logout, query, session } from "./api.js";
import { Chart, pointOf } from "./chart.js";
import { Live } from "./live.js";
import { LogTail } from "./logs.js";
import * as view from "./views.js";

const LOG_PAGES = 10;

const state = {
	workspace: "",
	/** run id → run summary, for the list. */
	runs: new Map(),
	/** Unsubscribes of the workspace's topics. */
	workspaceTopics: [],
	/** Set while the list loads: transitions that arrive meanwhile (run id → run). */
	loadingRuns: undefined,
	/** The open run page: { id, run, chart, logs, unsubscribe }. */
	page: undefined,
};

const live = new Live({
	token: () => session.accessToken,
	onState: view.liveState,
	onError: (message) => (message.status === 401 ? checkSession() : view.showError(message)),
	onRefused: () => checkSession(),
});

/** A cheap authenticated call: it refreshes an expired access token, or ends a session that cannot be. */
function checkSession() {
	call("GET", `/v1/runs?${query({ workspace: state.workspace, limit: 1 })}`).catch(failed);
}

/** Any failure of a call: a 401 that could not be refreshed means the session is over. */
function failed(err) {
	if (err instanceof ApiError && err.status === 401) return signedOut(err);
	view.showError(err instanceof ApiError ? err : { message: "the page failed unexpectedly; reload it to try again." });
}

function signedOut(reason) {
	live.stop();
	closeRunPage();
	state.workspaceTopics.forEach((off) => off());
	state.workspaceTopics = [];
	state.runs.clear();
	view.clearAlerts();
	view.show("signin");
	$form().elements.workspace.value = session.workspace;
	if (reason) view.showError(reason);
}

const $form = () => view.$("signin-form");

async function onSignIn(e) {
	e.preventDefault();
	view.clearError();
	const form = $form().elements;
	const button = view.$("signin-submit");
	button.disabled = true;
	try {
		await login(form.username.value.trim(), form.password.value);
		session.workspace = form.workspace.value.trim();
		form.password.value = "";
		signedIn();
	} catch (err) {
		view.showError(err);
	} finally {
		button.disabled = false;
	}
}

function signedIn() {
	view.$("workspace-input").value = session.workspace;
	live.start();
	setWorkspace(session.workspace);
	route();
}

function setWorkspace(workspace) {
	if (workspace === state.workspace && state.workspaceTopics.length) return;
	state.workspaceTopics.forEach((off) => off());
	state.workspace = workspace;
	session.workspace = workspace;
	view.$("workspace-input").value = workspace;
	state.runs.clear();
	view.clearAlerts();
	view.renderRuns(workspace, []);
	state.workspaceTopics = [
		live.subscribe(`runs:${workspace}`, { onEvent: onRunTransitioned, onGap: () => loadRuns() }),
		live.subscribe(`alerts:${workspace}`, { onEvent: (m) => view.addAlert(m.event, m.data) }),
	];
	loadRuns();
}

async function loadRuns() {
	const workspace = state.workspace;
	// Transitions that arrive while the list loads are newer than it: they win over the loaded rows.
	const loading = new Map();
	state.loadingRuns = loading;
	try {
		const page = await call("GET", `/v1/runs?${query({ workspace, limit: 50 })}`);
		if (state.workspace !== workspace) return;
		state.runs = new Map(page.items.map((run) => [run.id, run]));
		for (const [id, run] of loading) state.runs.set(id, run);
		view.renderRuns(workspace, state.runs.values());
	} catch (err) {
		failed(err);
	} finally {
		if (state.loadingRuns === loading) state.loadingRuns = undefined;
	}
}

function onRunTransitioned(message) {
	const t = message.data;
	const run = { ...(state.runs.get(t.run_id) ?? {}), ...t.run, status: t.to };
	state.runs.set(t.run_id, run);
	state.loadingRuns?.set(t.run_id, run);
	view.renderRuns(state.workspace, state.runs.values());
	const page = state.page;
	if (page?.id === t.run_id) {
		page.run = { ...page.run, ...t.run, status: t.to };
		view.renderRun(page.run);
	}
}

function route() {
	if (!session.accessToken) return signedOut();
	view.clearError();
	const match = /^#\/runs\/([^/]+)$/.exec(location.hash);
	if (match) return openRunPage(decodeURIComponent(match[1]));
	closeRunPage();
	view.show("runs-view");
}

function closeRunPage() {
	state.page?.unsubscribe();
	state.page = undefined;
}

async function openRunPage(id) {
	closeRunPage();
	const page = { id, run: undefined, chart: new Chart(view.$("chart")), logs: new LogTail() };
	state.page = page;
	page.chart.reset();
	view.renderLogs([]);
	view.renderLatest({});
	view.show("run-view");
	// Subscribed before the history is read, so nothing falls between the two; overlaps are merged.
	page.unsubscribe = live.subscribe(`run:${id}`, { onEvent: (m) => onRunTelemetry(page, m), onGap: () => loadHistory(page) });
	try {
		page.run = await call("GET", `/v1/runs/${encodeURIComponent(id)}`);
		if (state.page !== page) return;
		view.renderRun(page.run);
		// Status changes come from the run's workspace topic.
		if (page.run.workspace !== state.workspace) setWorkspace(page.run.workspace);
		await loadHistory(page);
	} catch (err) {
		failed(err);
	}
}

async function loadHistory(page) {
	const id = encodeURIComponent(page.id);
	const [series] = await Promise.all([
		// No telemetry yet is a 404: the chart simply starts empty.
		call("GET", `/v1/runs/${id}/series`).catch((err) => (err instanceof ApiError && err.status === 404 ? undefined : Promise.reject(err))),
		loadLogs(page),
	]);
	if (state.page !== page) return;
	if (series) page.chart.setHistory(series);
	view.renderLogs(page.logs.tail());
}

async function loadLogs(page) {
	let after = 0;
	for (let i = 0; i < LOG_PAGES; i++) {
		const batch = await call("GET", `/v1/runs/${encodeURIComponent(page.id)}/logs?${query({ after })}`);
		page.logs.addStored(batch.lines);
		if (!batch.lines.length || batch.next === after) return;
		after = batch.next;
	}
}

function onRunTelemetry(page, message) {
	if (state.page !== page) return;
	const data = message.data;
	if (message.event === "heartbeat") {
		const point = pointOf(Date.parse(data.at), data.metrics ?? {});
		if (!point) return;
		page.chart.add(point);
		view.renderLatest(point);
	} else if (message.event === "log") {
		if (page.logs.addLive(message.offset, data)) view.renderLogs(page.logs.tail());
	}
}

async function onCancel() {
	const page = state.page;
	if (!page) return;
	const button = view.$("cancel-button");
	button.disabled = true;
	view.clearError();
	try {
		page.run = await call("POST", `/v1/runs/${encodeURIComponent(page.id)}/cancel`, {});
		if (state.page === page) view.renderRun(page.run);
	} catch (err) {
		button.disabled = false;
		failed(err);
	}
}

function onWorkspaceChange(e) {
	const workspace = e.target.value.trim();
	if (!workspace) return;
	setWorkspace(workspace);
	if (state.page) location.hash = "#/";
}

async function onSignOut() {
	await logout();
	signedOut();
}

$form().addEventListener("submit", onSignIn);
view.$("workspace-input").addEventListener("change", onWorkspaceChange);
view.$("signout").addEventListener("click", onSignOut);
view.$("cancel-button").addEventListener("click", onCancel);
window.addEventListener("hashchange", route);

if (session.accessToken) signedIn();
else signedOut();
