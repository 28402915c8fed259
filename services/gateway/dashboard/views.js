// DOM rendering. Everything the platform sends is written with textContent, never as HTML: a run's command or a
// log line cannot inject markup (and the page's CSP would refuse inline script anyway).

export const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const SECTIONS = ["signin", "runs-view", "run-view"];

/** Shows one main section (and the signed-in chrome unless it is the sign-in). */
export function show(section) {
	for (const s of SECTIONS) $(s).hidden = s !== section;
	const signedIn = section !== "signin";
	$("session").hidden = !signedIn;
	$("alerts-panel").hidden = !signedIn;
}

/** An API or live error as a sentence, with the trace id an operator needs to find it. */
export function showError(err) {
	const banner = $("error");
	const field = err.field ? ` (field: ${err.field})` : "";
	const trace = err.traceId ?? err.trace_id;
	banner.textContent = `${err.message}${field}${trace ? ` — trace id ${trace}` : ""}`;
	banner.hidden = false;
}

export function clearError() {
	$("error").hidden = true;
	$("error").textContent = "";
}

export function liveState(state, detail) {
	const badge = $("live-status");
	badge.dataset.state = state;
	badge.textContent = state === "connected" ? "live" : state;
	badge.title = detail ?? "";
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

function setBadge(el, status) {
	el.textContent = status;
	el.dataset.status = status;
}

function row(run) {
	const tr = document.createElement("tr");
	tr.dataset.testid = "run-row";
	tr.dataset.runId = run.id;
	const cells = ["id", "status", "attempt", "created", "command"].map((name) => {
		const td = document.createElement("td");
		td.className = name;
		tr.append(td);
		return td;
	});
	const badge = document.createElement("span");
	badge.className = "badge";
	badge.dataset.testid = "run-row-status";
	cells[1].append(badge);
	const link = document.createElement("a");
	link.href = `#/runs/${encodeURIComponent(run.id)}`;
	cells[0].append(link);
	tr.addEventListener("click", () => (location.hash = link.getAttribute("href")));
	return tr;
}

function fillRow(tr, run) {
	tr.querySelector(".id a").textContent = run.id;
	setBadge(tr.querySelector(".status .badge"), run.status);
	tr.querySelector(".attempt").textContent = String(run.attempt);
	tr.querySelector(".created").textContent = when(run.created_at);
	tr.querySelector(".command").textContent = (run.command ?? []).join(" ");
}

/** The runs table, newest first; rows are reused so a live update does not rebuild the table. */
export function renderRuns(workspace, runs) {
	$("runs-workspace").textContent = `in ${workspace}`;
	const body = $("runs-list");
	const existing = new Map([...body.children].map((tr) => [tr.dataset.runId, tr]));
	const sorted = [...runs].sort((a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? "") || b.id.localeCompare(a.id));
	sorted.forEach((run, i) => {
		const tr = existing.get(run.id) ?? row(run);
		existing.delete(run.id);
		fillRow(tr, run);
		if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] ?? null);
	});
	for (const tr of existing.values()) tr.remove();
	$("runs-empty").hidden = sorted.length > 0;
}

export function renderRun(run) {
	$("run-id").textContent = run.id;
	setBadge($("run-status"), run.status);
	$("run-attempt").textContent = `${run.attempt} (retries ${run.retry_count ?? 0} of ${run.max_retries ?? 0})`;
	$("run-created").textContent = when(run.created_at);
	$("run-command").textContent = (run.command ?? []).join(" ");
	$("run-outcome").textContent = outcomeOf(run);
	$("cancel-button").disabled = ["SUCCEEDED", "FAILED", "CANCELLED"].includes(run.status);
}

function outcomeOf(run) {
	if (run.status === "SUCCEEDED") return `succeeded ${when(run.completed_at)}`;
	if (run.status === "FAILED") return `failed (${run.failure_reason ?? "unknown"}): ${run.failure_message ?? ""}`;
	if (run.status === "CANCELLED") return `cancelled ${when(run.completed_at)}`;
	return run.started_at ? `running since ${when(run.started_at)}` : "not started yet";
}

export function renderLatest(point) {
	const parts = [];
	if (typeof point.loss === "number") parts.push(`loss ${point.loss.toFixed(4)}`);
	if (typeof point.accuracy === "number") parts.push(`accuracy ${point.accuracy.toFixed(4)}`);
	$("chart-latest").textContent = parts.length ? `— latest: ${parts.join(", ")}` : "";
}

/** The logs tail: the last lines, scrolled to the end unless the reader scrolled up. */
export function renderLogs(lines) {
	const pre = $("logs");
	const atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
	pre.replaceChildren(
		...lines.map((l) => {
			const span = document.createElement("span");
			span.className = l.stream;
			span.textContent = `${l.line}\n`;
			return span;
		}),
	);
	pre.dataset.lines = String(lines.length);
	if (atEnd) pre.scrollTop = pre.scrollHeight;
}

/** Adds an alert at the top of the panel; a resolved one replaces its raised entry. */
export function addAlert(kind, alert) {
	const list = $("alerts");
	const key = `${alert.rule_id}:${alert.run_id}:${alert.attempt}`;
	const resolved = kind.endsWith("resolved");
	const li = [...list.children].find((el) => el.dataset.key === key) ?? document.createElement("li");
	li.dataset.testid = "alert-item";
	li.dataset.key = key;
	li.dataset.state = resolved ? "resolved" : "raised";
	li.textContent =
		`${resolved ? "Resolved" : "Raised"}: ${alert.rule_name} — ${alert.metric} ${alert.op} ${alert.threshold} ` +
		`(value ${alert.value}) on run ${alert.run_id} at ${when(alert.at)}`;
	list.prepend(li);
	$("alerts-empty").hidden = true;
}

export function clearAlerts() {
	$("alerts").replaceChildren();
	$("alerts-empty").hidden = false;
}
