# Agent Immune control plane.
#   docker build -t agent-immune .
#   docker run -p 8090:8090 -v immune-cache:/data/immune-cache agent-immune
# Checked by test/deploy/dockerfile.test.ts (parsed, not built: no container engine runs in CI).

# ---- build: compile TypeScript and the dashboard, then keep only production dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 downloads a prebuilt binary for linux x64/arm64; the toolchain is the fallback when none matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own prepare script (the build) needs the sources, copied below;
# the two packages whose install scripts are needed (package.json allowScripts) are then rebuilt explicitly.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 esbuild
COPY . .
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts

# ---- runtime ----
FROM node:20-bookworm-slim
WORKDIR /app
# Listen on every interface inside the container (the product default, 127.0.0.1, is unreachable from outside it).
ENV HOST=0.0.0.0 \
    PORT=8090 \
    IMMUNE_CACHE_DIR=/data/immune-cache \
    LOG_FORMAT=json
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
# The application files stay root-owned (read-only for the service); only the cache directory is writable.
RUN mkdir -p /data/immune-cache && chown node:node /data/immune-cache
USER node
VOLUME ["/data/immune-cache"]
EXPOSE 8090
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8090) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/immune.js"]
CMD ["serve"]
