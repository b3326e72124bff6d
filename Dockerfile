# vitgraph serve in a container. `docker build -t vitgraph .` then
#   docker run -p 8080:8080 -v /path/to/Qwen3-VL-2B-Instruct:/models/qwen:ro vitgraph \
#     node dist/cli/main.js serve --host 0.0.0.0 --port 8080 --model /models/qwen
# (without a model it serves the embedded tiny random-weight tower, whose numbers mean nothing).
# The server is node itself under tini (PID 1 forwards SIGTERM and reaps), never npm/npx, so a
# SIGTERM drains in-flight requests and exits 0 (README "Stopping"). test/dockerfile.test.ts checks
# this file's paths and runs its CMD and HEALTHCHECK commands outside Docker.

# ---- build: TypeScript, the native addon, then production dependencies only ------------------
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# onnxruntime-node's postinstall would fetch CUDA libraries from NuGet; the CPU image needs none.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json tsconfig.json index.ts ./
COPY scripts scripts
COPY src src
COPY graphs graphs
COPY cli cli
COPY bench bench
COPY test test
COPY fixtures fixtures
# npm ci runs prepare (tsc → dist/) and postinstall (the native addon → src/runtime/native/build/).
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: node, tini, the built files; no compiler, no devDependencies, not root ----------
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production VITGRAPH_CACHE=/var/cache/vitgraph
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/fixtures/encoder/tiny fixtures/encoder/tiny
COPY --from=build /app/src/runtime/native/build/Release/vitgraph_native.node src/runtime/native/build/Release/vitgraph_native.node
# The export cache (checkpoints are exported on first use) belongs to the unprivileged user.
RUN mkdir -p /var/cache/vitgraph && chown node:node /var/cache/vitgraph
USER node
EXPOSE 8080
# Ready means loaded and warmed; /readyz turns 503 as soon as a SIGTERM starts the drain.
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/cli/main.js", "serve", "--host", "0.0.0.0", "--port", "8080"]
