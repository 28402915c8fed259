import { Errors, type ServiceBroker } from "moleculer";
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t, WebSocket } from "uWebSockets.js";
import type { Bus } from "../../../lib/bus";
import type { Authenticated } from "../../../lib/moleculer/authz.middleware";
import { authorizeParams, type AuthorizeParams } from "../../authz/edge-rules";
import type { Decision } from "../../authz/policy/decision-point";
import { credentialOf, newTraceId, toErrorBody, type Credential } from "../edge";
import { sendError, type ErrorBody } from "../http";
import { errorFrame, parseClientMessage, subscribedFrame, unsubscribedFrame, type ClientMessage } from "./protocol";
import { Pump, Pumps } from "./pump";
import { resume } from "./replay";
import { parseTopic, TopicError, topicSource, type TopicLookups } from "./topics";

export interface LiveSettings {
	/** Bytes a socket may have waiting before it is closed as a slow consumer. */
	maxBufferedBytes: number;
	/** Seconds without traffic (pings included) before a socket is dropped. */
	idleTimeoutSec: number;
	/** Most messages one resume replays; beyond, a `gap` and live from now. Default 10,000. */
	maxReplay?: number;
	/** Topics one socket may hold at once. Default 64. */
	maxTopicsPerSocket?: number;
	/** How often buffered bytes are checked, ms. Default 50. */
	slowCheckMs?: number;
}

export interface Live {
	/** How many topics have a feed running (each stops when its last subscriber leaves). */
	readonly feeds: number;
	close(): Promise<void>;
}

/** Close codes: 1001 the gateway stops; 4008 the client does not read fast enough. */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_SLOW_CONSUMER = 4008;

/** uWS `send` result when the message was dropped (over maxBackpressure). */
const SEND_DROPPED = 2;
const MAX_MESSAGE_BYTES = 4096;

/** A topic a socket holds; `live` once joined to the uWS topic (before, it is being authorized or resumed). */
interface Subscription {
	live: boolean;
}

interface Session {
	credential: Credential;
	source: string;
	topics: Map<string, Subscription>;
	closed: boolean;
}

type Socket = WebSocket<Session>;

/** The credential of an upgrade: headers, or for browsers (which cannot set them on a WebSocket) the query. */
function upgradeCredential(req: HttpRequest): Credential | undefined {
	const fromHeaders = credentialOf((name) => req.getHeader(name));
	if (fromHeaders) return fromHeaders;
	const bearer = req.getQuery("access_token");
	if (bearer) return { bearer };
	const apiKey = req.getQuery("api_key");
	return apiKey ? { apiKey } : undefined;
}

/**
 * Mounts the live WebSocket `/v1/live`: authenticated on upgrade, each subscription authorized (`live.subscribe` on
 * the Topic) with the credential re-checked, one JetStream feed per topic fanned out with uWS pub/sub, resumes
 * replayed from the stream, slow sockets closed with 4008 rather than skipped.
 */
export async function openLive(app: TemplatedApp, deps: { broker: ServiceBroker; bus: Bus; settings: LiveSettings }): Promise<Live> {
	const { broker, bus, settings } = deps;
	const maxReplay = settings.maxReplay ?? 10_000;
	const maxTopics = settings.maxTopicsPerSocket ?? 64;
	const sockets = new Set<Socket>();
	const pumps = new Pumps((source) =>
		Pump.start(bus.js, bus.jsm, source, { publish: (frame) => app.publish(source.topic, frame, false), ended: (reason) => feedEnded(source.topic, reason) }, broker.logger),
	);
	const lookups: TopicLookups = {
		run: (id) => broker.call<{ workspace: string; owner?: string }, { id: string }>("execution.get", { id }),
		modelWorkspace: cachedModelWorkspace(broker),
	};

	/** Sends to one socket; a message uWS would drop (over its backpressure limit) closes the socket instead. */
	const send = (ws: Socket, frame: string): boolean => {
		if (ws.getUserData().closed) return false;
		if (ws.send(frame, false) !== SEND_DROPPED) return true;
		cutOff(ws);
		return false;
	};
	const cutOff = (ws: Socket) => {
		const session = ws.getUserData();
		if (session.closed) return;
		session.closed = true;
		ws.end(CLOSE_SLOW_CONSUMER, `slow consumer: more than ${settings.maxBufferedBytes} bytes unread`);
	};
	const fail = (ws: Socket, err: unknown, ref: { topic?: string; id?: string }) => {
		const traceId = newTraceId();
		const body: ErrorBody =
			err instanceof TopicError ? { status: err.status, code: err.status === 404 ? "NOT_FOUND" : "BAD_TOPIC", message: err.message, trace_id: traceId } : toErrorBody(err, traceId);
		if (body.status >= 500) broker.logger.warn(`live: ${ref.topic ?? "message"} failed (trace ${traceId}): ${(err as Error)?.message}`);
		send(ws, errorFrame(body, ref));
	};

	/** A feed that ended by itself: its sockets leave the topic and are told to subscribe again with their offset. */
	function feedEnded(topic: string, reason: string): void {
		pumps.forget(topic);
		const body: ErrorBody = { status: 503, code: "FEED_ENDED", message: `the feed of ${topic} ended (${reason}); subscribe again with your last offset and epoch`, trace_id: newTraceId() };
		for (const ws of sockets) {
			const session = ws.getUserData();
			if (!session.topics.get(topic)?.live) continue;
			session.topics.delete(topic);
			ws.unsubscribe(topic);
			send(ws, errorFrame(body, { topic }));
		}
	}

	async function subscribe(ws: Socket, m: Extract<ClientMessage, { op: "subscribe" }>): Promise<void> {
		const session = ws.getUserData();
		const ref = { topic: m.topic, ...(m.id !== undefined ? { id: m.id } : {}) };
		try {
			parseTopic(m.topic); // a bad name is answered at once, before anything is looked up
		} catch (err) {
			return fail(ws, err, ref);
		}
		if (session.topics.has(m.topic)) return fail(ws, new TopicError(400, `already subscribed to ${m.topic}`), ref);
		if (session.topics.size >= maxTopics) return fail(ws, new TopicError(400, `at most ${maxTopics} topics per connection`), ref);
		const sub: Subscription = { live: false };
		session.topics.set(m.topic, sub);
		const ours = () => !session.closed && session.topics.get(m.topic) === sub;
		let pump: Pump;
		try {
			pump = await authorizedFeed(session, m.topic);
		} catch (err) {
			if (ours()) session.topics.delete(m.topic);
			return fail(ws, err, ref);
		}
		try {
			if (!ours() || !send(ws, subscribedFrame(m.topic, pump.epoch, pump.last, m.id))) return;
			const join = () => {
				ws.subscribe(m.topic);
				sub.live = true;
			};
			if (m.offset === undefined) return join();
			await resume(bus.jsm, pump, m.offset, m.epoch, maxReplay, { send: (frame) => send(ws, frame), join, wanted: ours });
		} catch (err) {
			if (ours()) fail(ws, err, ref);
		} finally {
			// Until it joined, the subscription holds the feed; left (closed, unsubscribed, failed) before, it gives it back.
			if (!sub.live) {
				if (ours()) session.topics.delete(m.topic);
				pumps.release(m.topic);
			}
		}
	}

	/** Authenticates the socket's credential again, decides `live.subscribe` on the topic, and holds its feed. */
	async function authorizedFeed(session: Session, topic: string): Promise<Pump> {
		// Re-checked on every subscribe: a revoked key or an expired token opens nothing new.
		const who = await broker.call<Authenticated, Credential>("authz.authenticate", session.credential);
		const source = await topicSource(topic, lookups);
		const traceId = newTraceId();
		const decision = await broker.call<Decision, AuthorizeParams>(
			"authz.authorize",
			authorizeParams("live.subscribe", source.resource, { principal: who.user_id, via: who.via, source: session.source, traceId }),
		);
		if (decision.decision !== "allow") {
			throw new Errors.MoleculerClientError(`live.subscribe on ${topic} is not allowed: ${decision.reason} (trace ${traceId}).`, 403, "FORBIDDEN");
		}
		return pumps.acquire(source);
	}

	function unsubscribe(ws: Socket, m: Extract<ClientMessage, { op: "unsubscribe" }>): void {
		const session = ws.getUserData();
		const sub = session.topics.get(m.topic);
		if (sub) {
			session.topics.delete(m.topic);
			// A subscription still being resumed gives its feed back itself when it finds itself gone.
			if (sub.live) {
				ws.unsubscribe(m.topic);
				pumps.release(m.topic);
			}
		}
		send(ws, unsubscribedFrame(m.topic, m.id));
	}

	app.ws<Session>("/v1/live", {
		maxPayloadLength: MAX_MESSAGE_BYTES,
		idleTimeout: settings.idleTimeoutSec,
		sendPingsAutomatically: true,
		// The periodic check closes a socket past maxBufferedBytes with 4008; this hard limit (with headroom for
		// what a burst adds between two checks) closes rather than skips, so no socket that stays open misses a message.
		maxBackpressure: settings.maxBufferedBytes + Math.max(settings.maxBufferedBytes, 4 * 1024 * 1024),
		closeOnBackpressureLimit: 1,
		upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
			const key = req.getHeader("sec-websocket-key");
			const protocol = req.getHeader("sec-websocket-protocol");
			const extensions = req.getHeader("sec-websocket-extensions");
			const credential = upgradeCredential(req);
			const source = `ws ${Buffer.from(res.getRemoteAddressAsText()).toString()}`;
			const traceId = newTraceId();
			if (!credential) {
				return sendError(res, { status: 401, code: "UNAUTHENTICATED", message: "/v1/live needs a credential: a bearer token or API key header, or ?access_token= / ?api_key=.", trace_id: traceId });
			}
			let aborted = false;
			res.onAborted(() => (aborted = true));
			broker.call<Authenticated, Credential>("authz.authenticate", credential).then(
				() => {
					if (aborted) return;
					res.cork(() => res.upgrade<Session>({ credential, source, topics: new Map(), closed: false }, key, protocol, extensions, context));
				},
				(err) => {
					if (!aborted) sendError(res, toErrorBody(err, traceId));
				},
			);
		},
		open: (ws: Socket) => {
			sockets.add(ws);
		},
		message: (ws: Socket, data: ArrayBuffer, isBinary: boolean) => {
			const parsed = isBinary ? { problem: "messages must be JSON text frames" } : parseClientMessage(Buffer.from(data).toString("utf8"));
			if ("problem" in parsed) return void send(ws, errorFrame({ status: 400, code: "BAD_MESSAGE", message: parsed.problem, trace_id: newTraceId() }, parsed.id !== undefined ? { id: parsed.id } : {}));
			if (parsed.message.op === "unsubscribe") return unsubscribe(ws, parsed.message);
			void subscribe(ws, parsed.message);
		},
		close: (ws: Socket) => {
			sockets.delete(ws);
			const session = ws.getUserData();
			session.closed = true;
			for (const [topic, sub] of session.topics) if (sub.live) pumps.release(topic);
			session.topics.clear();
		},
	});

	// Slow consumers: a socket whose unread bytes pass the bound is closed with a clear code, never left behind.
	const slowCheck = setInterval(() => {
		for (const ws of sockets) if (ws.getBufferedAmount() > settings.maxBufferedBytes) cutOff(ws);
	}, settings.slowCheckMs ?? 50);

	return {
		get feeds() {
			return pumps.size;
		},
		async close() {
			clearInterval(slowCheck);
			for (const ws of [...sockets]) {
				ws.getUserData().closed = true;
				ws.end(CLOSE_GOING_AWAY, "gateway going away");
			}
			await pumps.stopAll();
		},
	};
}

/** The workspace of a model (alias changes do not carry it); a model never moves, so the answer is kept. */
function cachedModelWorkspace(broker: ServiceBroker): (modelId: string) => Promise<string | undefined> {
	const known = new Map<string, string>();
	return async (modelId) => {
		const hit = known.get(modelId);
		if (hit) return hit;
		const model = await broker.call<{ workspace?: string }, object>("catalog.get", { id: modelId, kind: "model" }).catch(() => undefined);
		if (model?.workspace) known.set(modelId, model.workspace);
		return model?.workspace;
	};
}
