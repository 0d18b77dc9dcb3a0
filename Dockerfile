# syntax=docker/dockerfile:1
# sayswitch-billing: one image, every role. `docker compose up` runs it (see docker-compose.yml);
# `docker run IMAGE start --roles worker` runs one role, `docker run IMAGE sandbox` the simulator.
# A role started with `--health-file /tmp/billing-health.json` is checked by
# `node bin/billing.js health --health-file /tmp/billing-health.json` (the compose healthchecks).
# Logs go to stderr; stdout carries command results only.

ARG NODE_IMAGE=node:24-slim

# ---- build: compile TypeScript to dist/, then drop dev dependencies --------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# Manifests first so the dependency layer is reused until they change.
COPY package.json package-lock.json ./
# No dependency's install script runs (package.json `allowScripts`; README, Development).
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.json ./
COPY src ./src
# tsc emits only .js; copy any non-TypeScript asset under src/ (e.g. Lua scripts) next to it.
RUN npm run build \
 && (cd src && find . -type f ! -name '*.ts' -exec cp --parents {} ../dist/ \;) \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime ----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app

# Owned by root and only readable by the `node` user the process runs as: the app cannot
# rewrite its own code.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY examples ./examples

USER node
# 3000: the `api` role (PORT); 4010: `billing sandbox`.
EXPOSE 3000 4010
# bin/billing.js loads dist/ when NODE_ENV=production. Node is PID 1 and handles SIGTERM itself
# (graceful drain); run with `--init` or compose `init: true` to also reap stray children.
ENTRYPOINT ["node", "bin/billing.js"]
CMD ["start"]
