/**
 * The serving side of the request/reply benchmark, in its own process so that caller and callee use both cores:
 * a raw NATS responder, a bare Moleculer broker and a platform broker, each answering `echo`.
 */
import { connect, JSONCodec } from "nats";
import { bareBroker, platformBroker } from "./support";

const SUBJECT = "bench.raw.echo";

async function main(): Promise<void> {
	const natsUrl = process.argv[2]!;
	const nc = await connect({ servers: natsUrl });
	const codec = JSONCodec();
	nc.subscribe(SUBJECT, { callback: (_err, msg) => msg.respond(codec.encode(codec.decode(msg.data))) });

	const service = { name: "bench", actions: { echo: (ctx: { params: unknown }) => ctx.params } };
	const bare = bareBroker(natsUrl, "bare-responder");
	bare.createService(service);
	const platform = platformBroker(natsUrl, "platform-responder");
	platform.createService(service);
	await Promise.all([bare.start(), platform.start()]);
	process.send!({ ready: true, subject: SUBJECT });
	process.on("message", async (m: { stop?: boolean }) => {
		if (!m.stop) return;
		await Promise.all([bare.stop(), platform.stop()]);
		await nc.close();
		process.exit(0);
	});
}

void main();
