import WebSocket from "ws";

/** A frame the live WebSocket sends (see services/gateway/live/protocol.ts). */
export interface LiveFrame {
	type: "subscribed" | "event" | "gap" | "unsubscribed" | "error";
	topic?: string;
	offset?: number;
	epoch?: string;
	event?: string;
	data?: any;
	reason?: string;
	status?: number;
	code?: string;
	message?: string;
	id?: string;
}

/** How an upgrade was refused: the HTTP status and the JSON body. */
export class UpgradeRefused extends Error {
	constructor(
		readonly status: number,
		readonly body: any,
	) {
		super(`upgrade refused with ${status}: ${JSON.stringify(body)}`);
	}
}

/**
 * A small promise-based client of `/v1/live` for tests and the benchmark: frames are queued as they arrive and
 * taken in order with `next`, so nothing is missed between two awaits.
 */
export class LiveClient {
	private readonly queue: LiveFrame[] = [];
	private waiter?: () => void;
	/** Resolves with the close code and reason once the socket closed. */
	readonly closed: Promise<{ code: number; reason: string }>;

	private constructor(readonly ws: WebSocket) {
		ws.on("message", (data) => {
			this.queue.push(JSON.parse(data.toString()) as LiveFrame);
			this.waiter?.();
		});
		this.closed = new Promise((resolve) =>
			ws.on("close", (code, reason) => {
				resolve({ code, reason: reason.toString() });
				this.waiter?.();
			}),
		);
	}

	/** `gatewayUrl` is `http://host:port`; rejects with UpgradeRefused when the gateway answers the upgrade with an error. */
	static connect(gatewayUrl: string, opts: { headers?: Record<string, string>; query?: Record<string, string> } = {}): Promise<LiveClient> {
		const url = new URL("/v1/live", gatewayUrl.replace(/^http/, "ws"));
		for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
		const ws = new WebSocket(url, { headers: opts.headers ?? {} });
		const client = new LiveClient(ws);
		return new Promise((resolve, reject) => {
			ws.once("open", () => resolve(client));
			ws.once("error", reject);
			ws.once("unexpected-response", (_req, res) => {
				let body = "";
				res.on("data", (c: Buffer) => (body += c.toString()));
				res.on("end", () => {
					let parsed: unknown = body;
					try {
						parsed = JSON.parse(body);
					} catch {
						// not JSON: kept as text
					}
					reject(new UpgradeRefused(res.statusCode ?? 0, parsed));
				});
			});
		});
	}

	/** `Authorization: Bearer <token>`. */
	static withToken(gatewayUrl: string, token: string): Promise<LiveClient> {
		return LiveClient.connect(gatewayUrl, { headers: { authorization: `Bearer ${token}` } });
	}

	send(message: unknown): void {
		this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
	}

	/** The next frame (matching `match` when given; frames before it that do not match are dropped). */
	async next(match: (f: LiveFrame) => boolean = () => true, timeoutMs = 5_000): Promise<LiveFrame> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			while (this.queue.length) {
				const f = this.queue.shift()!;
				if (match(f)) return f;
			}
			if (this.ws.readyState === WebSocket.CLOSED) throw new Error("the socket closed before the frame arrived");
			const left = deadline - Date.now();
			if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms`);
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, left);
				this.waiter = () => {
					clearTimeout(timer);
					resolve();
				};
			});
			this.waiter = undefined;
		}
	}

	/** Subscribes and returns the `subscribed` frame (or throws with the error frame). */
	async subscribe(topic: string, resume: { offset?: number; epoch?: string } = {}): Promise<LiveFrame> {
		this.send({ op: "subscribe", topic, ...resume });
		const f = await this.next((x) => x.topic === topic && (x.type === "subscribed" || x.type === "error"));
		if (f.type === "error") throw Object.assign(new Error(`subscribe ${topic}: ${f.status} ${f.message}`), { frame: f });
		return f;
	}

	/** The frames waiting right now, taken. */
	drain(): LiveFrame[] {
		return this.queue.splice(0);
	}

	close(): Promise<{ code: number; reason: string }> {
		if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
		return this.closed;
	}

	/** Drops the TCP connection without a close handshake (a client that vanished). */
	kill(): Promise<{ code: number; reason: string }> {
		this.ws.terminate();
		return this.closed;
	}
}
