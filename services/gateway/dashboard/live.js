// The live WebSocket (`/v1/live`) as one client for the whole page: topics are subscribed once and kept across
// reconnects. Each topic remembers the offset and epoch of the last event it saw, so after a drop it resubscribes
// from there and the server replays exactly what was missed (or says plainly, with a `gap`, that it cannot).

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;

export class Live {
	/**
	 * token(): the current access token (null: signed out, do not connect).
	 * onState(state, detail): "connected" | "reconnecting" | "offline".
	 * onError(error): an `error` message of the server ({status, code, message, trace_id, topic?}).
	 * onRefused(): a connection closed before it opened (the browser does not say why: often an expired token).
	 */
	constructor({ token, onState, onError, onRefused }) {
		this.token = token;
		this.onState = onState;
		this.onError = onError;
		this.onRefused = onRefused;
		/** topic → { handlers: Set<{onEvent, onGap}>, offset?, epoch? } */
		this.topics = new Map();
		this.failures = 0;
		this.socket = undefined;
		this.timer = undefined;
		this.stopped = true;
	}

	start() {
		this.stopped = false;
		if (!this.socket && !this.timer) this.connect();
	}

	stop() {
		this.stopped = true;
		clearTimeout(this.timer);
		this.timer = undefined;
		this.socket?.close(1000, "signed out");
		this.socket = undefined;
		this.topics.clear();
		this.onState("offline");
	}

	/** Calls handlers.onEvent(message) for each event of `topic` (and onGap(message) on a gap); returns the unsubscribe. */
	subscribe(topic, handlers) {
		let entry = this.topics.get(topic);
		if (!entry) {
			entry = { handlers: new Set() };
			this.topics.set(topic, entry);
			this.sendSubscribe(topic, entry);
		}
		entry.handlers.add(handlers);
		return () => {
			entry.handlers.delete(handlers);
			if (entry.handlers.size || this.topics.get(topic) !== entry) return;
			this.topics.delete(topic);
			this.send({ op: "unsubscribe", topic });
		};
	}

	connect() {
		this.timer = undefined;
		const token = this.token();
		if (this.stopped || !token) return this.onState("offline");
		const scheme = location.protocol === "https:" ? "wss:" : "ws:";
		const socket = new WebSocket(`${scheme}//${location.host}/v1/live?access_token=${encodeURIComponent(token)}`);
		this.socket = socket;
		let opened = false;
		socket.onopen = () => {
			opened = true;
			this.onState("connected");
			for (const [topic, entry] of this.topics) this.sendSubscribe(topic, entry);
		};
		socket.onmessage = (e) => {
			this.failures = 0;
			this.receive(JSON.parse(e.data));
		};
		socket.onclose = (e) => {
			if (this.socket !== socket) return;
			this.socket = undefined;
			if (this.stopped) return;
			if (!opened) this.onRefused();
			// Exponential backoff with jitter: a restarted gateway is not stormed by every page at once.
			const delay = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** this.failures++) * (0.75 + Math.random() / 2);
			this.onState("reconnecting", e.reason || `connection closed (${e.code})`);
			this.timer = setTimeout(() => this.connect(), delay);
		};
	}

	send(message) {
		if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
	}

	/** From the last offset seen when there is one: after a reconnect the server replays what was missed. */
	sendSubscribe(topic, entry) {
		const resume = entry.offset !== undefined ? { offset: entry.offset, epoch: entry.epoch } : {};
		this.send({ op: "subscribe", topic, id: topic, ...resume });
	}

	receive(message) {
		const entry = message.topic !== undefined ? this.topics.get(message.topic) : undefined;
		switch (message.type) {
			case "subscribed":
				if (!entry) return;
				if (entry.epoch !== message.epoch) entry.offset = undefined;
				entry.epoch = message.epoch;
				if (entry.offset === undefined && typeof message.offset === "number") entry.offset = message.offset;
				return;
			case "event":
				if (!entry) return;
				// A replay may overlap what was already seen: within one epoch offsets only grow.
				if (entry.epoch === message.epoch && entry.offset !== undefined && message.offset <= entry.offset) return;
				entry.epoch = message.epoch;
				entry.offset = message.offset;
				for (const h of entry.handlers) h.onEvent(message);
				return;
			case "gap":
				// Some events cannot be replayed; the server continues from the offset it names.
				if (!entry) return;
				entry.offset = message.offset;
				entry.epoch = message.epoch;
				for (const h of entry.handlers) h.onGap?.(message);
				return;
			case "error":
				// The server's feed of this topic ended (its stream recreated): subscribe again from the last offset.
				if (message.code === "FEED_ENDED" && entry) {
					setTimeout(() => this.topics.get(message.topic) === entry && this.sendSubscribe(message.topic, entry), 500);
					return;
				}
				this.onError(message);
				return;
		}
	}
}
