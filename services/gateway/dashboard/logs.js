// A run's log tail from two sources: the lines already stored (`GET /v1/runs/:id/logs`, each with the stream
// sequence of its batch) and live `log` events (whose offset is that same sequence). Batches are keyed by that
// sequence, so a batch seen both ways is shown once and the order holds whichever arrived first.

const MAX_LINES = 500;

export class LogTail {
	constructor() {
		/** stream sequence → [{stream, line}] */
		this.batches = new Map();
	}

	/** Lines of `GET /v1/runs/:id/logs`; a batch already held live is kept as it is. */
	addStored(lines) {
		const stored = new Map();
		for (const l of lines) {
			if (!stored.has(l.seq)) stored.set(l.seq, []);
			stored.get(l.seq).push({ stream: l.stream, line: l.line });
		}
		for (const [seq, batch] of stored) if (!this.batches.has(seq)) this.batches.set(seq, batch);
	}

	/** A live `log` event; false when its batch is already held. */
	addLive(offset, batch) {
		if (this.batches.has(offset)) return false;
		this.batches.set(offset, batch.lines.map((line) => ({ stream: batch.stream, line })));
		return true;
	}

	/** The newest lines, oldest first. */
	tail() {
		const seqs = [...this.batches.keys()].sort((a, b) => a - b);
		const lines = seqs.flatMap((seq) => this.batches.get(seq));
		return lines.slice(-MAX_LINES);
	}
}
