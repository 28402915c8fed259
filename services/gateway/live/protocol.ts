import type { ErrorBody } from "../http";

/**
 * The wire protocol of `/v1/live` (JSON text frames). Client → server: subscribe / unsubscribe. Server → client:
 * subscribed, event, gap, unsubscribed, error. Parsing is strict and never throws: anything else is a 400 reply.
 */

export type ClientMessage =
	| { op: "subscribe"; topic: string; offset?: number; epoch?: string; id?: string }
	| { op: "unsubscribe"; topic: string; id?: string };

export type GapReason = "epoch_changed" | "history_gone";

/** A client message, or the sentence saying what is wrong with it. */
export function parseClientMessage(text: string): { message: ClientMessage } | { problem: string; id?: string } {
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch {
		return { problem: "a message must be JSON: {\"op\":\"subscribe\",\"topic\":\"run:<id>\"}" };
	}
	if (!value || typeof value !== "object" || Array.isArray(value)) return { problem: "a message must be a JSON object with an op" };
	const { op, topic, offset, epoch, id, ...rest } = value as Record<string, unknown>;
	const ref = typeof id === "string" ? { id } : {};
	const problem = (p: string) => ({ problem: p, ...ref });
	if (id !== undefined && (typeof id !== "string" || id.length > 128)) return problem("id must be a string of at most 128 characters");
	if (op !== "subscribe" && op !== "unsubscribe") return problem(`op must be "subscribe" or "unsubscribe", got ${JSON.stringify(op) ?? "nothing"}`);
	const extra = Object.keys(rest);
	if (extra.length) return problem(`unknown field ${JSON.stringify(extra[0])}`);
	if (typeof topic !== "string" || topic.length === 0 || topic.length > 200) return problem("topic must be a non-empty string of at most 200 characters");
	if (op === "unsubscribe") {
		if (offset !== undefined || epoch !== undefined) return problem("unsubscribe takes only topic and id");
		return { message: { op, topic, ...ref } };
	}
	if (offset !== undefined && !(Number.isSafeInteger(offset) && (offset as number) >= 0)) return problem("offset must be a non-negative integer (the last offset received)");
	if (epoch !== undefined && (typeof epoch !== "string" || epoch.length > 64)) return problem("epoch must be a string of at most 64 characters");
	if (epoch !== undefined && offset === undefined) return problem("epoch goes with an offset");
	return { message: { op, topic, ...(offset !== undefined ? { offset: offset as number } : {}), ...(epoch !== undefined ? { epoch } : {}), ...ref } };
}

export const subscribedFrame = (topic: string, epoch: string, offset: number, id?: string) =>
	JSON.stringify({ type: "subscribed", topic, epoch, offset, ...(id !== undefined ? { id } : {}) });

export const eventFrame = (topic: string, offset: number, epoch: string, event: string, data: unknown) =>
	JSON.stringify({ type: "event", topic, offset, epoch, event, data });

export const gapFrame = (topic: string, reason: GapReason, message: string, epoch: string, offset: number) =>
	JSON.stringify({ type: "gap", topic, reason, message, epoch, offset });

export const unsubscribedFrame = (topic: string, id?: string) => JSON.stringify({ type: "unsubscribed", topic, ...(id !== undefined ? { id } : {}) });

export const errorFrame = (body: ErrorBody, ref: { topic?: string; id?: string } = {}) =>
	JSON.stringify({ type: "error", ...ref, status: body.status, code: body.code, message: body.message, trace_id: body.trace_id });
