import type { HttpResponse } from "uWebSockets.js";

const STATUS_TEXT: Record<number, string> = {
	200: "OK",
	201: "Created",
	202: "Accepted",
	400: "Bad Request",
	401: "Unauthorized",
	403: "Forbidden",
	404: "Not Found",
	405: "Method Not Allowed",
	409: "Conflict",
	410: "Gone",
	411: "Length Required",
	413: "Payload Too Large",
	415: "Unsupported Media Type",
	422: "Unprocessable Entity",
	423: "Locked",
	429: "Too Many Requests",
	500: "Internal Server Error",
	503: "Service Unavailable",
	504: "Gateway Timeout",
	507: "Insufficient Storage",
};

/** The one error body of the HTTP API. */
export interface ErrorBody {
	status: number;
	code: string;
	message: string;
	field?: string;
	trace_id?: string;
}

/** Extra response headers, lower-case names (e.g. `x-trace-id`, `allow`). */
export type ResponseHeaders = Readonly<Record<string, string>>;

/** Writes a whole response in one cork. `closeConnection`: for a request whose body is left unread (refused early). */
export function sendText(res: HttpResponse, status: number, contentType: string, text: string, headers: ResponseHeaders = {}, closeConnection = false): void {
	res.cork(() => {
		res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ""}`.trim()).writeHeader("content-type", contentType).writeHeader("cache-control", "no-store");
		for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
		res.end(text, closeConnection);
	});
}

export function sendJson(res: HttpResponse, status: number, body: unknown, closeConnection = false, headers: ResponseHeaders = {}): void {
	sendText(res, status, "application/json", JSON.stringify(body), headers, closeConnection);
}

export function sendError(res: HttpResponse, body: ErrorBody, closeConnection = false, headers: ResponseHeaders = {}): void {
	sendJson(res, body.status, body, closeConnection, headers);
}
