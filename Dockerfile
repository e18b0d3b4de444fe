# housekeeper: multi-stage build on Debian 12 (bookworm), matching the machines it is tested on.
# Stage 1 builds faiss-node against Debian's libfaiss-dev (no downloads: see
# scripts/build-faiss-node.sh); stage 2 carries only runtime libraries and the app.

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
# Runtime libraries of the static FAISS build, and the Postgres client tools the backup
# actions call (pg_dump, pg_restore).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 libblas3 liblapack3 libgfortran5 libopenblas0 postgresql-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY rules ./rules
ENV NODE_ENV=production \
    HOUSEKEEPER_CONFIG=/etc/housekeeper/housekeeper.yml \
    HOUSEKEEPER_HEALTH_URL=http://127.0.0.1:9847/healthz
USER node
EXPOSE 9847
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.HOUSEKEEPER_HEALTH_URL).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--max-semi-space-size=2", "dist/src/main.js"]
