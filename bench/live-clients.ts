/**
 * The client side of the live fan-out benchmark, in its own process: `n` WebSocket clients, each optionally
 * subscribing to a topic, counting event frames and their latency (publish time carried in the payload as
 * `sent_at`, wall-clock ms with sub-ms precision, to receipt). Started with its ClientsTarget as JSON in argv[2];
 * answers `{ ready }` once every client is connected (and subscribed), then each `{ ms }` message measures a window.
 */
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";

export interface ClientsTarget {
	/** `ws://host:port/path` */
	url: string;
	n: number;
	headers: Record<string, string>;
	/** Sent as a subscribe message once open (the platform path); the raw baseline subscribes server-side. */
	topic?: string;
}

export interface WindowResult {
	deliveries: number;
	ms: number;
	/** Latency histogram in 0.1 ms buckets: [bucket, count] pairs. */
	histogram: Array<[number, number]>;
	closed: number;
}

const now = () => performance.timeOrigin + performance.now();
const MARK = Buffer.from('"sent_at":');
const SUBSCRIBED = Buffer.from('{"type":"subscribed"');
const ERROR = Buffer.from('{"type":"error"');
const BUCKETS = 600_000; // 0.1 ms up to 60 s

let deliveries = 0;
let closed = 0;
let histogram = new Uint32Array(BUCKETS);

function onFrame(frame: Buffer): void {
	const at = frame.indexOf(MARK);
	if (at < 0) return;
	const sentAt = parseFloat(frame.toString("latin1", at + MARK.length, at + MARK.length + 24));
	deliveries++;
	histogram[Math.min(BUCKETS - 1, Math.max(0, Math.round((now() - sentAt) * 10)))]!++;
}

/** A client-to-server frame (masked, as RFC 6455 requires of clients); payloads under 126 bytes only. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
	const mask = randomBytes(4);
	const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
	return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]);
}

/**
 * One client on a bare TCP socket with a minimal frame reader: the measuring side must cost far less than the
 * fan-out it measures (the `ws` package's per-frame cost made both paths client-bound on 2 cores).
 */
function open(target: ClientsTarget): Promise<void> {
	const url = new URL(target.url);
	return new Promise((resolve, reject) => {
		const socket = connect(Number(url.port), url.hostname);
		socket.setNoDelay(true);
		const headers = { ...target.headers, host: url.host, upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": randomBytes(16).toString("base64"), "sec-websocket-version": "13" };
		socket.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`);
		let buffer: Buffer = Buffer.alloc(0);
		let upgraded = false;
		socket.on("error", reject);
		socket.on("close", () => closed++);
		socket.on("data", (chunk: Buffer) => {
			buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
			if (!upgraded) {
				const end = buffer.indexOf("\r\n\r\n");
				if (end < 0) return;
				if (!buffer.toString("latin1", 0, 12).endsWith("101")) return reject(new Error(`upgrade refused: ${buffer.toString("utf8", 0, 200)}`));
				upgraded = true;
				buffer = buffer.subarray(end + 4);
				if (target.topic) socket.write(clientFrame(0x1, Buffer.from(JSON.stringify({ op: "subscribe", topic: target.topic }))));
				else resolve();
			}
			let at = 0;
			for (;;) {
				if (buffer.length - at < 2) break;
				const opcode = buffer[at]! & 0x0f;
				let len = buffer[at + 1]! & 0x7f;
				let head = 2;
				if (len === 126) {
					if (buffer.length - at < 4) break;
					len = buffer.readUInt16BE(at + 2);
					head = 4;
				} else if (len === 127) {
					if (buffer.length - at < 10) break;
					len = Number(buffer.readBigUInt64BE(at + 2));
					head = 10;
				}
				if (buffer.length - at < head + len) break;
				const payload = buffer.subarray(at + head, at + head + len);
				at += head + len;
				if (opcode === 0x9) socket.write(clientFrame(0xa, payload));
				else if (opcode === 0x1 && payload.indexOf(SUBSCRIBED) === 0) resolve();
				else if (opcode === 0x1 && payload.indexOf(ERROR) === 0) reject(new Error(payload.toString()));
				else if (opcode === 0x1) onFrame(payload);
			}
			buffer = at === buffer.length ? Buffer.alloc(0) : buffer.subarray(at);
		});
	});
}

async function main(): Promise<void> {
	const target = JSON.parse(process.argv[2]!) as ClientsTarget;
	for (let i = 0; i < target.n; i += 100) await Promise.all(Array.from({ length: Math.min(100, target.n - i) }, () => open(target)));
	process.send!({ ready: true });
	process.on("message", (m: { ms: number }) => {
		deliveries = 0;
		histogram = new Uint32Array(BUCKETS);
		const started = now();
		setTimeout(() => {
			const pairs: Array<[number, number]> = [];
			histogram.forEach((count, bucket) => count && pairs.push([bucket, count]));
			const result: WindowResult = { deliveries, ms: now() - started, histogram: pairs, closed };
			process.send!(result);
		}, m.ms);
	});
}

main().catch((err) => {
	console.error(`live clients: ${(err as Error).message}`);
	process.exit(1);
});
