// The HTTP API as the page uses it: the session's tokens (sessionStorage: gone with the tab) and JSON calls whose
// failures become ApiError with the platform's error body (message, code, trace id), never a raw response.

const KEYS = { access: "savassan.access_token", refresh: "savassan.refresh_token", workspace: "savassan.workspace" };

export const session = {
	get accessToken() {
		return sessionStorage.getItem(KEYS.access);
	},
	get workspace() {
		return sessionStorage.getItem(KEYS.workspace) ?? "";
	},
	set workspace(ws) {
		sessionStorage.setItem(KEYS.workspace, ws);
	},
	store(pair) {
		sessionStorage.setItem(KEYS.access, pair.access_token);
		sessionStorage.setItem(KEYS.refresh, pair.refresh_token);
	},
	clear() {
		sessionStorage.removeItem(KEYS.access);
		sessionStorage.removeItem(KEYS.refresh);
	},
	get refreshToken() {
		return sessionStorage.getItem(KEYS.refresh);
	},
};

export class ApiError extends Error {
	constructor(body) {
		super(body.message);
		this.status = body.status;
		this.code = body.code;
		this.field = body.field;
		this.traceId = body.trace_id;
	}
}

/** The error body of a failed response; one the gateway did not write (a proxy's HTML page) gets a plain sentence. */
async function errorOf(res) {
	const body = await res.json().catch(() => undefined);
	if (body && typeof body.message === "string") return new ApiError({ ...body, status: res.status });
	return new ApiError({ status: res.status, code: "HTTP_" + res.status, message: `the gateway answered ${res.status} ${res.statusText}` });
}

async function send(method, path, body, token) {
	const headers = { accept: "application/json" };
	if (token) headers.authorization = `Bearer ${token}`;
	if (body !== undefined) headers["content-type"] = "application/json";
	let res;
	try {
		res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
	} catch {
		throw new ApiError({ status: 0, code: "NETWORK", message: "the gateway cannot be reached; check your connection and try again." });
	}
	if (!res.ok) throw await errorOf(res);
	return res.json();
}

export async function login(username, password) {
	session.store(await send("POST", "/v1/auth/login", { username, password }));
}

export async function logout() {
	const refresh = session.refreshToken;
	session.clear();
	if (refresh) await send("POST", "/v1/auth/logout", { refresh_token: refresh }).catch(() => undefined);
}

/** Trades the refresh token for a new pair once the access token expired; false when that is not possible. */
async function refreshed() {
	const refresh = session.refreshToken;
	if (!refresh) return false;
	try {
		session.store(await send("POST", "/v1/auth/refresh", { refresh_token: refresh }));
		return true;
	} catch {
		return false;
	}
}

const unauthorized = (err) => err instanceof ApiError && err.status === 401;

/** An authenticated call. A 401 that a refresh cannot cure ends the session (the caller shows the sign-in). */
export async function call(method, path, body) {
	try {
		return await send(method, path, body, session.accessToken);
	} catch (err) {
		if (!unauthorized(err)) throw err;
		if (!(await refreshed())) {
			session.clear();
			throw err;
		}
	}
	try {
		return await send(method, path, body, session.accessToken);
	} catch (err) {
		if (unauthorized(err)) session.clear();
		throw err;
	}
}

export const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== "")).toString();
