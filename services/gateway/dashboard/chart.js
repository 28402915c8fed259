// The loss/accuracy chart, drawn on a <canvas> (no library: the page loads nothing from elsewhere). Points come
// from the run's metric series (history) and from live heartbeats; the canvas's data-points says how many it holds.

const SERIES = [
	{ key: "loss", color: "#d9480f" },
	{ key: "accuracy", color: "#1c7ed6" },
];
const PAD = { left: 48, right: 48, top: 14, bottom: 26 };

/** The two values a heartbeat's metrics carry under the names trainers print (`acc` or `accuracy`). */
export function pointOf(t, metrics) {
	const loss = metrics.loss;
	const accuracy = metrics.acc ?? metrics.accuracy;
	if (typeof loss !== "number" && typeof accuracy !== "number") return undefined;
	return { t, loss, accuracy };
}

export class Chart {
	constructor(canvas) {
		this.canvas = canvas;
		this.points = [];
		this.frame = 0;
	}

	reset() {
		this.points = [];
		this.render();
	}

	/** History from `GET /v1/runs/:id/series`; live points already drawn that are newer are kept. */
	setHistory(view) {
		const byTime = new Map();
		for (const s of view.series) {
			const key = s.metric === "acc" || s.metric === "accuracy" ? "accuracy" : s.metric === "loss" ? "loss" : undefined;
			if (!key) continue;
			for (const p of s.points) {
				const point = byTime.get(p.t) ?? { t: p.t };
				point[key] ??= p.last;
				byTime.set(p.t, point);
			}
		}
		const history = [...byTime.values()].sort((a, b) => a.t - b.t);
		const until = history.length ? history[history.length - 1].t : -Infinity;
		this.points = [...history, ...this.points.filter((p) => p.t > until)];
		this.render();
	}

	add(point) {
		const last = this.points[this.points.length - 1];
		if (last && point.t <= last.t) return;
		this.points.push(point);
		this.render();
	}

	/** Redraws at most once a frame however many heartbeats arrive. */
	render() {
		this.canvas.dataset.points = String(this.points.length);
		if (this.frame) return;
		this.frame = requestAnimationFrame(() => {
			this.frame = 0;
			this.draw();
		});
	}

	draw() {
		const { canvas } = this;
		const ratio = window.devicePixelRatio || 1;
		const width = canvas.clientWidth || canvas.width;
		const height = canvas.clientHeight || canvas.height;
		canvas.width = Math.round(width * ratio);
		canvas.height = Math.round(height * ratio);
		const g = canvas.getContext("2d");
		g.setTransform(ratio, 0, 0, ratio, 0, 0);
		g.clearRect(0, 0, width, height);
		g.font = "11px system-ui, sans-serif";
		const plot = { x: PAD.left, y: PAD.top, w: width - PAD.left - PAD.right, h: height - PAD.top - PAD.bottom };
		if (this.points.length === 0) {
			g.fillStyle = "#6b7482";
			g.fillText("waiting for heartbeats…", plot.x + 8, plot.y + plot.h / 2);
			return;
		}
		const t0 = this.points[0].t;
		const span = Math.max(1, this.points[this.points.length - 1].t - t0);
		const x = (t) => plot.x + ((t - t0) / span) * plot.w;
		this.grid(g, plot, span);
		SERIES.forEach((s, i) => {
			const values = this.points.map((p) => p[s.key]).filter((v) => typeof v === "number");
			if (!values.length) return;
			const [lo, hi] = range(values);
			const y = (v) => plot.y + plot.h - ((v - lo) / (hi - lo)) * plot.h;
			axis(g, plot, i === 0 ? "left" : "right", lo, hi, s.color);
			g.strokeStyle = s.color;
			g.lineWidth = 2;
			g.beginPath();
			let started = false;
			for (const p of this.points) {
				const v = p[s.key];
				if (typeof v !== "number") continue;
				started ? g.lineTo(x(p.t), y(v)) : g.moveTo(x(p.t), y(v));
				started = true;
			}
			g.stroke();
		});
	}

	grid(g, plot, spanMs) {
		g.strokeStyle = "#e4e8ee";
		g.lineWidth = 1;
		g.fillStyle = "#6b7482";
		g.textAlign = "center";
		for (let i = 0; i <= 4; i++) {
			const yy = plot.y + (plot.h * i) / 4;
			g.beginPath();
			g.moveTo(plot.x, yy);
			g.lineTo(plot.x + plot.w, yy);
			g.stroke();
			const xx = plot.x + (plot.w * i) / 4;
			g.fillText(`${((spanMs * i) / 4 / 1000).toFixed(1)} s`, xx, plot.y + plot.h + 16);
		}
	}
}

/** The value range of an axis, padded so a flat line sits in the middle rather than on an edge. */
function range(values) {
	let lo = Math.min(...values);
	let hi = Math.max(...values);
	if (hi - lo < 1e-9) {
		lo -= 0.5;
		hi += 0.5;
	}
	const pad = (hi - lo) * 0.05;
	return [lo - pad, hi + pad];
}

function axis(g, plot, side, lo, hi, color) {
	g.fillStyle = color;
	g.textAlign = side === "left" ? "right" : "left";
	const xx = side === "left" ? plot.x - 6 : plot.x + plot.w + 6;
	for (let i = 0; i <= 4; i++) {
		const v = lo + ((hi - lo) * i) / 4;
		g.fillText(v.toPrecision(3), xx, plot.y + plot.h - (plot.h * i) / 4 + 4);
	}
}
