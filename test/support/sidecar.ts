import { headers as natsHeaders, connect, type NatsConnection } from "@nats-io/transport-node";
import { AckedPublisher, type PubAck } from "../../events/acked-publisher";
import { HEADERS } from "../../events/headers";
import { subjects, type TelemetryKind } from "../../events/subjects";
import { credsAuthenticator, type NatsAuthority } from "../../lib/nats-auth";
import { TelemetryPublisher } from "../../runner/publisher";

/**
 * A runner sidecar's connection as the platform hands it out: logged in with the run's own credential (it may
 * publish only to `tlm.<workspace>.<run>.>`), with the runner's own outbox. `raw` sends bytes the outbox would never
 * produce, the way a buggy or hostile producer holding that credential could.
 */
export class SidecarConnection {
	private constructor(
		readonly nc: NatsConnection,
		readonly acked: AckedPublisher,
		readonly out: TelemetryPublisher,
		readonly workspace: string,
		readonly runId: string,
	) {}

	static async open(url: string, authority: NatsAuthority, workspace: string, runId: string, attempt = 1): Promise<SidecarConnection> {
		const { creds } = await authority.runCreds({ workspace, runId, attempt, ttlSec: 600 });
		const inbox = subjects.inboxOfRun(runId);
		const nc = await connect({ servers: url, authenticator: credsAuthenticator(creds), inboxPrefix: inbox });
		const acked = new AckedPublisher(nc, 10_000, inbox);
		const out = new TelemetryPublisher(acked, { workspace, runId, attempt, traceId: `trace-${runId}` }, {
			maxQueued: 1_000_000,
			log: { warn: (m) => process.stderr.write(`sidecar ${runId}: ${m}\n`) },
		});
		return new SidecarConnection(nc, acked, out, workspace, runId);
	}

	/** Publishes `data` as it is on this run's `kind` subject, with the headers a sidecar sets. */
	raw(kind: TelemetryKind, data: string, msgId: string): Promise<PubAck> {
		const h = natsHeaders();
		h.set(HEADERS.msgId, msgId);
		h.set(HEADERS.traceId, `trace-${this.runId}`);
		h.set(HEADERS.eventType, `telemetry.${kind}`);
		h.set(HEADERS.schemaVersion, "1");
		return this.acked.publish(subjects.telemetry(this.workspace, this.runId, kind), data, h);
	}

	async close(): Promise<void> {
		this.acked.close();
		await this.nc.close();
	}
}
