# housekeeper: multi-stage build on Debian 12 (bookworm), matching the machines it is tested on.
# Stage 1 builds faiss-node against Debian's libfaiss-dev (no downloads: see
# scripts/build-faiss-node.sh) and compiles the TypeScript to dist/; stage 2 carries only
# runtime libraries, the build and the shipped rules and alerts.
# test/dockerfile.test.ts checks this file without a Docker engine (sources, paths, defaults).

FROM node:24-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libfaiss-dev libopenblas-dev liblapack-dev cmake g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: faiss-node's own install script downloads from the internet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts ./scripts
RUN bash scripts/build-faiss-node.sh
# The service runs as JavaScript (no TypeScript stripping at run time: ~20 MB less resident).
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
# Runtime libraries of the FAISS build, the Postgres client tools the backup actions call
# (pg_dump, pg_restore), and tini: PID 1 that forwards SIGTERM to the service and reaps the
# children it forks (FAISS check and rebuild processes, pg_dump, exec actions).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 libblas3 liblapack3 libgfortran5 libopenblas0 postgresql-client ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
# The CLI (`housekeeper check`): bin/housekeeper runs dist/src/cli.js when there are no sources.
COPY bin ./bin
# The config's directory holds what its relative defaults name: remediation.rules_dir
# (default "rules", relative to the config file) and state.path (default "var/state"), which
# links to /var/lib/housekeeper, the one place the service writes (a volume, or an emptyDir
# under a read-only root). alerts/ is shipped beside them for Prometheus to pick up.
COPY rules /etc/housekeeper/rules
COPY alerts /etc/housekeeper/alerts
RUN ln -s /app/bin/housekeeper /usr/local/bin/housekeeper \
 && mkdir -p /var/lib/housekeeper/state \
 && chown -R node:node /var/lib/housekeeper \
 && ln -s /var/lib/housekeeper /etc/housekeeper/var
ENV NODE_ENV=production \
    HOUSEKEEPER_CONFIG=/etc/housekeeper/housekeeper.yml \
    HOUSEKEEPER_HEALTH_URL=http://127.0.0.1:9847/healthz
USER node
EXPOSE 9847
VOLUME /var/lib/housekeeper
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.HOUSEKEEPER_HEALTH_URL).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--max-semi-space-size=2", "dist/src/main.js"]
