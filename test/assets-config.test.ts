import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../lib/config";

const problemsOf = (env: Record<string, string>): string[] => {
	try {
		loadConfig(env, []);
	} catch (err) {
		if (err instanceof ConfigError) return err.problems;
		throw err;
	}
	return [];
};

describe("assets configuration", () => {
	it("defaults to the embedded store, a signing key file under DATA_DIR and the gateway's address", () => {
		const { assets } = loadConfig({ DATA_DIR: "/srv/savassan", GATEWAY_HOST: "10.0.0.7", GATEWAY_PORT: "9000" }, []);
		assert.deepEqual(assets, {
			storageUrl: "file:///srv/savassan/blobs",
			signingKeyFile: join("/srv/savassan", "blob-signing.key"),
			publicUrl: "http://10.0.0.7:9000",
		});
	});

	it("reads an S3 store and an explicit key and public URL", () => {
		const { assets } = loadConfig(
			{
				S3_BUCKET: "ml-assets",
				S3_ENDPOINT: "http://minio:9000",
				S3_REGION: "eu-west-1",
				S3_ACCESS_KEY_ID: "AKIA",
				S3_SECRET_ACCESS_KEY: "secret",
				BLOB_SIGNING_KEY: "k".repeat(32),
				PUBLIC_URL: "https://ml.example.com/",
			},
			[],
		);
		assert.deepEqual(assets.s3, {
			endpoint: "http://minio:9000",
			bucket: "ml-assets",
			region: "eu-west-1",
			credentials: { accessKeyId: "AKIA", secretAccessKey: "secret" },
			forcePathStyle: true,
		});
		assert.equal(assets.signingKey, "k".repeat(32));
		assert.equal(assets.publicUrl, "https://ml.example.com");
	});

	it("reports every bad storage value at once, never showing the signing key", () => {
		const problems = problemsOf({
			S3_BUCKET: "My_Bucket",
			S3_ENDPOINT: "minio:9000",
			S3_REGION: "EU WEST",
			S3_ACCESS_KEY_ID: "AKIA",
			S3_FORCE_PATH_STYLE: "yes",
			BLOB_SIGNING_KEY: "short-secret",
			PUBLIC_URL: "ftp://x",
		});
		assert.deepEqual(problems, [
			'S3_FORCE_PATH_STYLE="yes": expected one of true, false',
			`S3_BUCKET="My_Bucket": expected a bucket name of 3 to 63 lowercase letters, digits, '.' and '-'`,
			'S3_ENDPOINT: "minio:9000" is not an http(s) URL',
			"S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY: set both or neither",
			'S3_REGION="EU WEST": expected a region name such as us-east-1',
			"BLOB_SIGNING_KEY: expected at least 32 characters (the value is not shown)",
			'PUBLIC_URL: "ftp://x" is not an http(s) URL',
		]);
		assert.ok(problems.every((p) => !p.includes("short-secret")));
	});

	it("refuses S3 settings without a bucket rather than quietly using the embedded store", () => {
		assert.deepEqual(problemsOf({ S3_ENDPOINT: "http://minio:9000", S3_REGION: "us-east-1" }), [
			"S3_ENDPOINT, S3_REGION: set S3_BUCKET too, or remove them to keep assets in the embedded store",
		]);
	});
});
