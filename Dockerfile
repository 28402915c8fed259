# syntax=docker/dockerfile:1
# One image for every platform process (SERVICES picks what runs) and for the runner sidecar of Kubernetes
# training pods (`savassan-runner --attach`). Build from the repository root:
#   docker build -t savassan/platform:0.1.0 .

# ---- build: compile the TypeScript with the dev dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json moleculer.config.ts ./
COPY bin ./bin
COPY lib ./lib
COPY events ./events
COPY services ./services
COPY runner ./runner
# tsconfig also lists test/ and bench/; they are not copied, so dist/ holds only what runs.
RUN npx tsc -p .

# ---- runtime: production dependencies, compiled code, and the files read at run time ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
# lib/paths.ts: event and action schemas are loaded from <project root>/schemas when a process starts.
COPY schemas ./schemas
# The example trainer, for trying runs (RUNTIME=local runs it beside the runner).
COPY examples ./examples
# The Kubernetes runtime starts the sidecar as `savassan-runner`; compose and the probes call the NATS authority
# bootstrap and the health probe (no curl in this image) by name: all on PATH.
# DATA_DIR is the only place a process writes; read-only root filesystems mount volumes at its folders, which
# exist here owned by the user so that new Docker volumes inherit that owner.
RUN groupadd --gid 10001 savassan \
	&& useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin savassan \
	&& chmod 0755 dist/bin/*.js \
	&& ln -s /app/dist/bin/savassan.js /usr/local/bin/savassan \
	&& ln -s /app/dist/bin/runner.js /usr/local/bin/savassan-runner \
	&& ln -s /app/dist/bin/nats-authority.js /usr/local/bin/savassan-nats-authority \
	&& ln -s /app/dist/bin/healthcheck.js /usr/local/bin/savassan-healthcheck \
	&& mkdir -p /var/lib/savassan/auth /var/lib/savassan/runs /var/lib/savassan/blobs /var/lib/savassan/datasets \
	&& chown -R 10001:10001 /var/lib/savassan
ENV DATA_DIR=/var/lib/savassan
# Numeric, so Kubernetes can verify runAsNonRoot without a passwd lookup.
USER 10001:10001
EXPOSE 8080
# Probes this process's gateway (GET /readyz). A container without the gateway gets its own probe
# (`savassan-healthcheck http://<gateway>:8080`, see deploy/compose.yaml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["savassan-healthcheck"]
ENTRYPOINT ["node", "dist/bin/savassan.js"]
