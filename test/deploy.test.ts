/**
 * The deploy files (deploy/, Dockerfile) checked without a cluster or a Docker engine: every YAML document
 * parses, every Kubernetes object validates against its schema, the compose file against the compose spec,
 * and the files agree with the code: variables it reads, services it has, API calls it makes, labels it puts
 * on training pods. The NATS configs go through `nats-server -t`, the bootstrap script and the health probe
 * run for real.
 */
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { defaultNatsServerBin, freePort, startEmbeddedNats } from "../lib/nats-server";
import { PROJECT_ROOT, SCHEMAS_DIR } from "../lib/paths";
import { KubernetesRuntime } from "../services/execution/runtime/kubernetes";
import { buildJob } from "../services/execution/runtime/kubernetes-manifests";
import type { WorkloadSpec } from "../services/execution/runtime/runtime";
import { SERVICE_NAMES } from "../services/index";
import { runCli } from "./support/cli";
import { FakeKubeApi } from "./support/fake-kube-api";
import {
	DEPLOY_DIR,
	composeProblems,
	copySources,
	dockerStages,
	kubernetesProblems,
	loadYaml,
	platformEnvVars,
	rbacPermissions,
	roleGrants,
	yamlFiles,
	type YamlDocument,
} from "./support/manifests";
import { startTestNats, type TestNats } from "./support/nats";

const run = promisify(execFile);
const NATS_BIN = process.env.NATS_SERVER_BIN ?? defaultNatsServerBin();
const K8S_DIR = join(DEPLOY_DIR, "k8s");
const COMPOSE_FILE = join(DEPLOY_DIR, "compose.yaml");

const k8sDocs = (): YamlDocument[] =>
	yamlFiles(K8S_DIR)
		.filter((f) => !f.endsWith("kustomization.yaml"))
		.flatMap(loadYaml);
const k8sObjects = () => k8sDocs().map((d) => d.value);
const compose = () => loadYaml(COMPOSE_FILE)[0]!.value;

function find(objects: any[], kind: string, name: string, namespace?: string): any {
	const o = objects.find((x) => x.kind === kind && x.metadata?.name === name && (!namespace || x.metadata?.namespace === namespace));
	assert.ok(o, `no ${kind} ${namespace ? `${namespace}/` : ""}${name} in deploy/k8s`);
	return o;
}

/** Pod templates of the workloads, with the object they belong to. */
function podTemplates(objects: any[]): { owner: string; spec: any; labels: Record<string, string> }[] {
	return objects
		.filter((o) => ["Deployment", "StatefulSet", "DaemonSet", "Job"].includes(o.kind))
		.map((o) => ({ owner: `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`, spec: o.spec.template.spec, labels: o.spec.template.metadata?.labels ?? {} }));
}

const PLATFORM_IMAGE = (objects: any[]) => find(objects, "Deployment", "gateway", "savassan").spec.template.spec.containers[0].image as string;

/** Containers running the platform image: (where, env names, SERVICES value). */
function platformContainers(): { where: string; env: string[]; services?: string }[] {
	const out: { where: string; env: string[]; services?: string }[] = [];
	const objects = k8sObjects();
	const image = PLATFORM_IMAGE(objects);
	for (const t of podTemplates(objects)) {
		for (const c of t.spec.containers.filter((c: any) => c.image === image)) {
			const env = (c.env ?? []) as { name: string; value?: string }[];
			out.push({ where: `${t.owner} container ${c.name}`, env: env.map((e) => e.name), services: env.find((e) => e.name === "SERVICES")?.value });
		}
	}
	const c = compose();
	for (const [name, svc] of Object.entries<any>(c.services)) {
		if (svc.image !== image) continue;
		const env = svc.environment ?? {};
		assert.ok(!Array.isArray(env), `compose service ${name}: environment as a map, so it can be checked`);
		out.push({ where: `compose service ${name}`, env: Object.keys(env), services: env.SERVICES });
	}
	return out;
}

describe("deploy files", () => {
	it("every YAML document under deploy/ parses, and the kustomization lists every manifest", () => {
		const files = yamlFiles(DEPLOY_DIR);
		const docs = files.flatMap(loadYaml);
		assert.ok(docs.length >= 20, `expected the compose file and the manifests, found ${docs.length} documents`);
		const kustomization = loadYaml(join(K8S_DIR, "kustomization.yaml"))[0]!.value;
		const manifests = yamlFiles(K8S_DIR)
			.filter((f) => !f.endsWith("kustomization.yaml"))
			.map((f) => relative(K8S_DIR, f));
		assert.deepEqual([...kustomization.resources].sort(), manifests);
	});

	it("every Kubernetes object is valid against the schema of its kind", async () => {
		const docs = k8sDocs();
		const problems = (await Promise.all(docs.map(async (d) => (await kubernetesProblems(d.value)).map((p) => `${d.where}: ${p}`)))).flat();
		assert.deepEqual(problems, []);
		const kinds = new Set(docs.map((d) => d.value.kind));
		for (const kind of ["Namespace", "StatefulSet", "Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "Role", "RoleBinding", "ServiceAccount", "NetworkPolicy"]) {
			assert.ok(kinds.has(kind), `no ${kind} in deploy/k8s`);
		}
	});

	it("the validator names the object and the field of a broken manifest, and refuses unknown kinds", async () => {
		const broken = {
			apiVersion: "apps/v1",
			kind: "Deployment",
			metadata: { name: "broken", namespace: "savassan" },
			spec: {
				replicas: "three",
				selector: { matchLabels: { app: "x" } },
				template: { metadata: { labels: { app: "x" } }, spec: { containers: [{ name: "x", image: "x", ports: [{ containerPort: "http" }] }] } },
			},
		};
		const problems = await kubernetesProblems(broken);
		assert.ok(problems.includes("Deployment savassan/broken: spec.replicas must be integer"), problems.join("\n"));
		assert.ok(problems.includes("Deployment savassan/broken: spec.template.spec.containers[0].ports[0].containerPort must be integer"), problems.join("\n"));
		assert.deepEqual(await kubernetesProblems({ apiVersion: "apps/v1", kind: "Frobnicator", metadata: { name: "f" } }), [
			"Frobnicator f: unknown kind Frobnicator in apps/v1",
		]);
		assert.deepEqual(await kubernetesProblems({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }), [
			"Widget w: unknown apiVersion example.com/v1",
		]);
	});

	it("compose.yaml matches the compose spec, and a broken one is refused with the field named", () => {
		const c = compose();
		assert.deepEqual(composeProblems(c), []);
		const broken = structuredClone(c);
		broken.services.gateway.enviroment = { SERVICES: "gateway" };
		broken.services.gateway.healthcheck.interval = 10;
		const problems = composeProblems(broken);
		assert.ok(problems.includes("services.gateway must NOT have additional properties (enviroment)"), problems.join("\n"));
		assert.ok(problems.includes("services.gateway.healthcheck.interval must be string"), problems.join("\n"));
	});

	it("compose services refer only to declared services and volumes", () => {
		const c = compose();
		const services = Object.keys(c.services);
		const volumes = Object.keys(c.volumes);
		for (const [name, svc] of Object.entries<any>(c.services)) {
			for (const dep of Object.keys(svc.depends_on ?? {})) assert.ok(services.includes(dep), `${name} depends on unknown service ${dep}`);
			for (const v of svc.volumes ?? []) {
				const source = String(v).split(":")[0]!;
				if (source.startsWith(".")) assert.ok(existsSync(join(DEPLOY_DIR, source)), `${name} mounts missing file ${source}`);
				else assert.ok(volumes.includes(source), `${name} mounts undeclared volume ${source}`);
			}
		}
	});

	it("platform containers set only variables the code reads, and together run every service", () => {
		const known = platformEnvVars();
		assert.ok(known.has("NATS_URL") && known.has("K8S_NAMESPACE") && !known.has("MONGO_URL"), `parsed ${[...known].join(", ")}`);
		const containers = platformContainers();
		assert.ok(containers.length >= 10, `found ${containers.length} platform containers`);
		const k8sRun = new Set<string>();
		const composeRun = new Set<string>();
		for (const c of containers) {
			const unknown = c.env.filter((name) => !known.has(name));
			assert.deepEqual(unknown, [], `${c.where} sets variables no code reads`);
			for (const s of (c.services ?? "").split(",").filter(Boolean)) {
				assert.ok(SERVICE_NAMES.includes(s), `${c.where}: SERVICES names unknown service ${s}`);
				(c.where.startsWith("compose") ? composeRun : k8sRun).add(s);
			}
		}
		assert.deepEqual([...k8sRun].sort(), [...SERVICE_NAMES].sort(), "deploy/k8s runs every service");
		assert.deepEqual([...composeRun].sort(), [...SERVICE_NAMES].sort(), "compose.yaml runs every service");
	});

	it("the compose platform joins all three NATS servers with 3 stream replicas and runs execution locally", () => {
		const c = compose();
		const natsServers = Object.keys(c.services).filter((s) => /^nats-\d$/.test(s));
		assert.equal(natsServers.length, 3);
		for (const name of SERVICE_NAMES) {
			const env = c.services[name].environment;
			assert.deepEqual(env.NATS_URL.split(",").sort(), natsServers.map((s) => `nats://${s}:4222`), `${name} NATS_URL`);
			assert.equal(env.STREAM_REPLICAS, "3", `${name} STREAM_REPLICAS`);
			for (const s of natsServers) assert.equal(c.services[name].depends_on[s]?.condition, "service_healthy", `${name} waits for ${s}`);
			assert.ok(c.services[name].healthcheck?.test, `${name} has a health check`);
		}
		assert.equal(c.services.execution.environment.RUNTIME, "local");
	});

	it("the execution Role grants exactly what the kubernetes runtime calls, without wildcards", async () => {
		const objects = k8sObjects();
		const execution = find(objects, "Deployment", "execution", "savassan").spec.template.spec;
		const env = Object.fromEntries(execution.containers[0].env.map((e: any) => [e.name, e.value]));
		assert.equal(env.RUNTIME, "kubernetes");
		const namespace = env.K8S_NAMESPACE as string;
		const role = find(objects, "Role", "savassan-execution", namespace);
		const binding = find(objects, "RoleBinding", "savassan-execution", namespace);
		assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name });
		assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: execution.serviceAccountName, namespace: "savassan" }]);
		find(objects, "ServiceAccount", execution.serviceAccountName, "savassan");
		for (const rule of role.rules) {
			for (const field of ["apiGroups", "resources", "verbs"]) assert.ok(!rule[field].includes("*"), `wildcard in ${field}`);
		}

		// Every call the runtime makes: start (and a repeated start: 409 paths), cancel, list, observe.
		const api = await FakeKubeApi.start();
		const { KubeConfig } = await import("@kubernetes/client-node");
		const kubeConfig = new KubeConfig();
		kubeConfig.loadFromOptions(api.kubeConfigOptions(namespace));
		const runtime = await KubernetesRuntime.create({
			namespace,
			sidecarImage: env.K8S_SIDECAR_IMAGE,
			kubeConfig,
			log: pino({ level: "silent" }),
			watchRetryMs: 20,
			settleMs: 20,
		});
		try {
			const stopObserving = await runtime.observe(() => undefined);
			await runtime.start(workload());
			await runtime.start(workload());
			await runtime.list();
			await runtime.cancel(workload().runId, workload().attempt);
			while (api.openWatches(namespace, "jobs") === 0 || api.openWatches(namespace, "pods") === 0) await new Promise((r) => setTimeout(r, 10));
			await stopObserving();
		} finally {
			await runtime.close();
			await api.stop();
		}
		assert.ok(api.requests.every((r) => r.path.includes(`/namespaces/${namespace}/`)), "every call stays in the training namespace");
		assert.deepEqual([...roleGrants(role)].sort(), [...rbacPermissions(api.requests)].sort());
	});

	it("every container requests resources, runs as non-root and drops all capabilities", () => {
		const objects = k8sObjects();
		const image = PLATFORM_IMAGE(objects);
		const templates = podTemplates(objects);
		assert.ok(templates.length >= 6);
		for (const t of templates) {
			for (const c of [...(t.spec.initContainers ?? []), ...t.spec.containers]) {
				const where = `${t.owner} container ${c.name}`;
				assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${where}: cpu and memory requests`);
				assert.ok(c.resources?.limits?.memory, `${where}: a memory limit`);
				assert.equal(c.securityContext?.runAsNonRoot ?? t.spec.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
				assert.ok((c.securityContext?.runAsUser ?? t.spec.securityContext?.runAsUser) > 0, `${where}: a non-root uid`);
				assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
				assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"], `${where}: drops ALL capabilities`);
				assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where}: read-only root filesystem`);
				if (c.image === image) assert.equal(c.securityContext?.runAsUser ?? t.spec.securityContext?.runAsUser, 10001, `${where}: the image's user`);
			}
		}
		for (const [name, svc] of Object.entries<any>(compose().services)) {
			const r = svc.deploy?.resources;
			assert.ok(r?.limits?.memory && r?.reservations?.memory, `compose service ${name}: memory limit and reservation`);
			if (svc.image === image) {
				assert.match(svc.user, /^[1-9]\d*:[1-9]\d*$/, `compose service ${name}: numeric non-root user`);
				assert.equal(svc.read_only, true, `compose service ${name}: read-only root filesystem`);
				assert.deepEqual(svc.cap_drop, ["ALL"], `compose service ${name}: drops ALL capabilities`);
			}
		}
	});

	it("training pods are denied everything but the NATS client port and DNS; NATS admits only platform and training pods", () => {
		const objects = k8sObjects();
		const namespace = find(objects, "Deployment", "execution", "savassan").spec.template.spec.containers[0].env.find((e: any) => e.name === "K8S_NAMESPACE").value;
		find(objects, "Namespace", namespace);
		const policies = objects.filter((o) => o.kind === "NetworkPolicy");
		const training = policies.filter((p) => p.metadata.namespace === namespace);
		const selects = (selector: any, labels: Record<string, string>) =>
			Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v) && !selector?.matchExpressions;

		const denyAll = training.find((p) => Object.keys(p.spec.podSelector).length === 0);
		assert.ok(denyAll, `no default-deny policy in ${namespace}`);
		assert.deepEqual([...denyAll.spec.policyTypes].sort(), ["Egress", "Ingress"]);
		assert.equal(denyAll.spec.ingress, undefined);
		assert.equal(denyAll.spec.egress, undefined);

		// The labels the runtime really puts on a training pod.
		const podLabels = buildJob(workload(), { sidecarImage: "x", ttlSecondsAfterFinished: 60 }).spec!.template.metadata!.labels!;
		const applying = training.filter((p) => selects(p.spec.podSelector, podLabels));
		assert.ok(applying.some((p) => p !== denyAll), "a policy selects the training pods");
		const natsService = find(objects, "Service", "nats", "savassan");
		const natsPort = natsService.spec.ports.find((p: any) => p.name === "client").port;
		const natsLabels = find(objects, "StatefulSet", "nats", "savassan").spec.template.metadata.labels;
		for (const p of applying) {
			assert.equal(p.spec.ingress, undefined, `${p.metadata.name}: no ingress to training pods`);
			for (const rule of p.spec.egress ?? []) {
				const ports = rule.ports.map((x: any) => `${x.protocol}/${x.port}`).sort();
				const peer = rule.to[0];
				const toNats = peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === "savassan" && selects(peer.podSelector, natsLabels);
				const toDns = peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === "kube-system";
				assert.equal(rule.to.length, 1, `${p.metadata.name}: one destination per rule`);
				if (toNats) assert.deepEqual(ports, [`TCP/${natsPort}`]);
				else if (toDns) assert.deepEqual(ports, ["TCP/53", "UDP/53"]);
				else assert.fail(`${p.metadata.name}: egress to something other than NATS and DNS: ${JSON.stringify(rule.to)}`);
			}
		}

		// NATS's client port: the platform's pods and the training pods, nobody else.
		const natsPolicy = policies.find((p) => p.metadata.namespace === "savassan" && p.spec.podSelector.matchLabels && selects(p.spec.podSelector, natsLabels));
		assert.ok(natsPolicy, "a policy guards the NATS pods");
		const clientRule = natsPolicy.spec.ingress.find((r: any) => r.ports.some((x: any) => x.port === natsPort));
		const platformLabels = find(objects, "Deployment", "gateway", "savassan").spec.template.metadata.labels;
		assert.equal(clientRule.from.length, 2);
		assert.ok(clientRule.from.some((f: any) => !f.namespaceSelector && selects(f.podSelector, platformLabels)), "platform pods may connect");
		assert.ok(
			clientRule.from.some((f: any) => f.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === namespace && selects(f.podSelector, podLabels)),
			"training pods may connect",
		);
		assert.ok(policies.some((p) => p.metadata.namespace === "savassan" && Object.keys(p.spec.podSelector).length === 0 && p.spec.policyTypes.includes("Ingress")), "default-deny ingress in savassan");
	});

	it("execution hands training pods the platform image as sidecar and the NATS client Service", () => {
		const objects = k8sObjects();
		const container = find(objects, "Deployment", "execution", "savassan").spec.template.spec.containers[0];
		const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
		assert.equal(env.K8S_SIDECAR_IMAGE, container.image);
		const natsService = find(objects, "Service", "nats", "savassan");
		const url = new URL(env.RUN_NATS_URL);
		assert.equal(url.hostname, `${natsService.metadata.name}.${natsService.metadata.namespace}.svc.cluster.local`);
		assert.equal(Number(url.port), natsService.spec.ports[0].port);
		assert.equal(env.STREAM_REPLICAS, "3");
	});

	it("NATS is a 3-node JetStream StatefulSet whose routes name each of its pods", () => {
		const objects = k8sObjects();
		const sts = find(objects, "StatefulSet", "nats", "savassan");
		assert.equal(sts.spec.replicas, 3);
		const headless = find(objects, "Service", sts.spec.serviceName, "savassan");
		assert.equal(headless.spec.clusterIP, "None");
		assert.equal(sts.spec.volumeClaimTemplates[0].metadata.name, "data");
		assert.ok(sts.spec.template.spec.containers[0].volumeMounts.some((m: any) => m.name === "data"));
		const pdb = objects.find((o) => o.kind === "PodDisruptionBudget" && o.spec.selector.matchLabels["app.kubernetes.io/name"] === "nats");
		assert.equal(pdb?.spec.minAvailable, 2);
		const conf = find(objects, "ConfigMap", "nats-config", "savassan").data["nats.conf"] as string;
		const routes = [...conf.matchAll(/nats-route:\/\/(\S+)/g)].map((m) => m[1]);
		assert.deepEqual(
			routes,
			[0, 1, 2].map((i) => `${sts.metadata.name}-${i}.${headless.metadata.name}.savassan.svc.cluster.local:6222`),
		);
		for (const c of platformContainers().filter((c) => c.where.startsWith("Deployment"))) {
			const d = find(objects, "Deployment", c.where.split(" ")[1]!.split("/")[1]!, "savassan");
			const natsUrl = d.spec.template.spec.containers[0].env.find((e: any) => e.name === "NATS_URL").value as string;
			assert.deepEqual(natsUrl.split(",").map((u) => new URL(u).hostname), [0, 1, 2].map((i) => `nats-${i}.${headless.metadata.name}.savassan.svc.cluster.local`));
		}
	});

	it("the Dockerfile is multi-stage, ends as a numeric non-root user, and copies only files that exist", () => {
		const stages = dockerStages(readFileSync(join(PROJECT_ROOT, "Dockerfile"), "utf8"));
		assert.ok(stages.length >= 2, `${stages.length} stage(s)`);
		const final = stages.at(-1)!;
		const users = final.instructions.filter((i) => i.op === "USER");
		assert.ok(users.length, "a USER in the final stage");
		assert.match(users.at(-1)!.args, /^[1-9]\d*(:[1-9]\d*)?$/, "numeric, non-root");
		const sources = stages.flatMap((s) => s.instructions.filter((i) => i.op === "COPY" || i.op === "ADD").flatMap((i) => copySources(i.args)));
		for (const s of sources) assert.ok(existsSync(join(PROJECT_ROOT, s)), `COPY source ${s} does not exist`);
		// What the code reads from disk at run time, and the deploy helpers the compose file and manifests call.
		const finalCopies = final.instructions.filter((i) => i.op === "COPY").flatMap((i) => copySources(i.args));
		for (const needed of [relative(PROJECT_ROOT, SCHEMAS_DIR), "examples"]) {
			assert.ok(finalCopies.includes(needed), `the final stage copies ${needed}`);
		}
		assert.deepEqual(JSON.parse(final.instructions.find((i) => i.op === "ENTRYPOINT")!.args), ["node", "dist/bin/savassan.js"]);
		assert.ok(existsSync(join(PROJECT_ROOT, "bin", "savassan.ts")));
		// The kubernetes runtime starts the sidecar by name: the image must have it on PATH.
		const sidecarCommand = buildJob(workload(), { sidecarImage: "x", ttlSecondsAfterFinished: 60 }).spec!.template.spec!.initContainers![0]!.command![0]!;
		// So do the compose file and the probes, for the NATS bootstrap and the health probe; each link names a compiled command.
		for (const command of [sidecarCommand, "savassan-nats-authority", "savassan-healthcheck"]) {
			const link = final.instructions.find((i) => i.op === "RUN" && i.args.includes(`/usr/local/bin/${command} `));
			assert.ok(link, `${command} on PATH`);
			const target = new RegExp(`/app/(dist/bin/[\\w-]+\\.js) /usr/local/bin/${command} `).exec(link.args)?.[1];
			assert.ok(target && existsSync(join(PROJECT_ROOT, target)), `${command} links to a compiled command (${target})`);
		}
		const ignored = readFileSync(join(PROJECT_ROOT, ".dockerignore"), "utf8").split("\n").map((l) => l.trim());
		for (const p of ["node_modules", "dist", "data", ".git"]) assert.ok(ignored.includes(p), `.dockerignore keeps ${p} out`);
	});
});

describe("deploy: NATS configs and the operator-mode bootstrap", () => {
	let dir: string;
	before(async () => {
		dir = mkdtempSync(join(tmpdir(), "savassan-deploy-"));
		await run(process.execPath, [join(__dirname, "..", "bin", "nats-authority.js"), join(dir, "auth")]);
	});
	after(() => rmSync(dir, { recursive: true, force: true }));

	it("writes the servers' trust and the platform's credentials, secrets private", () => {
		assert.equal(statSync(join(dir, "auth", "authority.json")).mode & 0o077, 0);
		assert.equal(statSync(join(dir, "auth", "platform.creds")).mode & 0o077, 0);
		assert.match(readFileSync(join(dir, "auth", "auth.conf"), "utf8"), /^operator: /);
		assert.doesNotMatch(readFileSync(join(dir, "auth", "auth.conf"), "utf8"), /SEED|"S[A-Z]{2}[A-Z2-7]{50,}/, "no seed in the servers' file");
	});

	it("nats-server accepts the compose and the Kubernetes configs with that trust", () => {
		const configs = {
			compose: readFileSync(join(DEPLOY_DIR, "nats", "nats.conf"), "utf8"),
			k8s: find(k8sObjects(), "ConfigMap", "nats-config", "savassan").data["nats.conf"] as string,
		};
		for (const [name, text] of Object.entries(configs)) {
			const file = join(dir, `${name}.conf`);
			writeFileSync(file, text);
			try {
				execFileSync(NATS_BIN, ["-t", "-c", file], { env: { SERVER_NAME: "nats-0" }, stdio: "pipe" });
			} catch (err) {
				assert.fail(`${name} nats.conf refused: ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
			}
		}
		// The check is real: without the trust file the same config is refused.
		rmSync(join(dir, "auth2"), { recursive: true, force: true });
		writeFileSync(join(dir, "broken.conf"), configs.compose.replace("auth/auth.conf", "auth2/auth.conf"));
		assert.throws(() => execFileSync(NATS_BIN, ["-t", "-c", join(dir, "broken.conf")], { env: { SERVER_NAME: "n" }, stdio: "pipe" }));
	});

	it("a server trusting auth.conf admits the platform's credentials and nobody without them", async () => {
		const serverDir = join(dir, "server");
		mkdirSync(serverDir);
		const server = await startEmbeddedNats({ bin: NATS_BIN, dir: serverDir, extraConfig: readFileSync(join(dir, "auth", "auth.conf"), "utf8") });
		try {
			const creds = readFileSync(join(dir, "auth", "platform.creds"));
			const nc = await connect({ servers: server.url, authenticator: credsAuthenticator(creds), timeout: 2000 });
			await nc.flush();
			await nc.close();
			await assert.rejects(connect({ servers: server.url, timeout: 2000, reconnect: false }), /Authorization|auth/i);
		} finally {
			await server.stop();
		}
	});
});

describe("deploy: the container health probe", () => {
	let nats: TestNats;
	let port: number;
	let cli: ReturnType<typeof runCli>;
	const probe = (env: Record<string, string>, ...args: string[]) =>
		run(process.execPath, [join(__dirname, "..", "bin", "healthcheck.js"), ...args], { env: { PATH: process.env.PATH ?? "", ...env } }).then(
			() => ({ code: 0, stderr: "" }),
			(err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
		);

	before(async () => {
		nats = await startTestNats();
		port = await freePort();
		cli = runCli({ NATS_URL: nats.url, SERVICES: "gateway,deadletters", GATEWAY_PORT: String(port) });
		await cli.waitFor(/Savassan is up/);
	});
	after(async () => {
		cli.child.kill("SIGTERM");
		await cli.exited;
		await nats.stop();
	});

	it("passes for a running gateway and for a worker the gateway sees, and says why it fails otherwise", async () => {
		const gateway = `http://127.0.0.1:${port}`;
		assert.deepEqual(await probe({ SERVICES: "gateway,deadletters", GATEWAY_PORT: String(port) }), { code: 0, stderr: "" });
		assert.deepEqual(await probe({ SERVICES: "deadletters" }, gateway), { code: 0, stderr: "" });
		const missing = await probe({ SERVICES: "deadletters,telemetry" }, gateway);
		assert.equal(missing.code, 1);
		assert.match(missing.stderr, /sees no node of this container offering telemetry/);
		const otherNode = await probe({ SERVICES: "deadletters", NODE_ID: "somewhere-else" }, gateway);
		assert.equal(otherNode.code, 1);
		const noGateway = await probe({ SERVICES: "gateway", GATEWAY_PORT: String(await freePort()) });
		assert.equal(noGateway.code, 1);
		assert.match(noGateway.stderr, /no answer from http:\/\/127\.0\.0\.1:\d+\/readyz/);
		const worker = await probe({ SERVICES: "deadletters" });
		assert.match(worker.stderr, /no gateway: give the gateway's URL/);
	});
});

/** An attempt as the execution service would hand it to the runtime. */
function workload(): WorkloadSpec {
	return {
		runId: "run_deploy1",
		attempt: 1,
		workspace: "ws",
		traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
		image: "python:3.11-slim",
		command: ["python", "train.py"],
		env: {},
		resources: { cpu: "1", memory: "1Gi" },
		timeoutSec: 600,
		credentials: "-----BEGIN NATS USER JWT-----\nx\n------END NATS USER JWT------\n",
		sidecar: { natsUrl: "nats://nats.savassan.svc.cluster.local:4222", heartbeatIntervalMs: 5000, storageUrl: "file:///var/lib/savassan/blobs" },
	};
}
