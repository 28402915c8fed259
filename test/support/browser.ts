import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { processesMentioning } from "./cli";
import { waitFor } from "./wait";

/** Debian's chromium: the machine has no internet, so Playwright's own browser downloads are not an option. */
const CHROMIUM = "/usr/bin/chromium";

/** Quiet and offline: no QUIC, no update or sync traffic, no first-run pages. No sandbox: tests may run as root. */
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export interface TestBrowser {
	context: BrowserContext;
	/** Closes the browser and checks that none of its processes is left. */
	close(): Promise<void>;
}

/**
 * Headless chromium with a fresh profile directory of its own. Every process of this browser has that directory
 * on its command line, so `close` can prove none survived (and kill any that did, by pid).
 */
export async function launchBrowser(): Promise<TestBrowser> {
	const userDataDir = mkdtempSync(join(tmpdir(), "savassan-chromium-"));
	let context: BrowserContext;
	try {
		context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1200, height: 900 } });
	} catch (err) {
		killLeft(userDataDir);
		throw err;
	}
	return {
		context,
		async close() {
			await context.close().catch(() => undefined);
			// Helper processes may need a moment after the main one is gone.
			await waitFor("chromium to exit", () => processesMentioning(userDataDir).length === 0, 3_000).catch(() => undefined);
			const left = killLeft(userDataDir);
			if (left.length) throw new Error(`chromium processes ${left.join(", ")} outlived the browser's close (killed now)`);
		},
	};
}

/** Kills the processes still using `userDataDir`, removes it, and returns their pids. */
function killLeft(userDataDir: string): number[] {
	const left = processesMentioning(userDataDir);
	for (const pid of left) {
		try {
			process.kill(pid, "SIGKILL");
		} catch {
			/* exited meanwhile */
		}
	}
	rmSync(userDataDir, { recursive: true, force: true });
	return left;
}
