/** Stopping a process together with everything it started: the children run in their own process group. */

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Sends a signal to a process group; false when the group no longer exists. 0 only tests that it exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
	try {
		process.kill(-pgid, signal);
		return true;
	} catch (err) {
		return (err as NodeJS.ErrnoException).code === "EPERM";
	}
}

/**
 * SIGTERM to the whole group; whatever of it is still there after `graceMs` gets SIGKILL. The grace is the
 * group's, not only its leader's: workers may still be saving. Resolves once the group is gone (or 5 s after the
 * SIGKILL, should a process be stuck in the kernel).
 */
export async function terminateGroup(pgid: number, graceMs: number): Promise<void> {
	if (!signalGroup(pgid, "SIGTERM")) return;
	const deadline = Date.now() + graceMs;
	while (Date.now() < deadline && signalGroup(pgid, 0)) await sleep(Math.min(50, graceMs));
	if (!signalGroup(pgid, "SIGKILL")) return;
	const killedBy = Date.now() + 5_000;
	while (Date.now() < killedBy && signalGroup(pgid, 0)) await sleep(20);
}
