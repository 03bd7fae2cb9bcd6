# dfp: Docker Flow Proxy in TypeScript. The daemon starts HAProxy (master-worker) itself.
#
#   docker build -t dfp .
#   docker run -d -p 80:80 -p 443:443 -p 8080:8080 dfp
#
# Settings: docs/config.md (every variable can also be a secret /run/secrets/dfp_<name>).

# --- build: compile TypeScript with the dev dependencies ---------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src/ src/
RUN npx tsc -p tsconfig.json

# --- runtime: Node 20, Debian's HAProxy, production dependencies only ---------------------------
FROM node:20-bookworm-slim

# haproxy: the proxy the daemon drives (bookworm ships 2.6 LTS).
# tini: PID 1 that forwards signals and reaps children, as in the original image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends haproxy tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ERRORFILES_DIR defaults to /app/haproxy/errorfiles and the built-in templates are read from
# /app/templates, so both sit next to dist/.
COPY --from=build /app/dist/ dist/
COPY templates/ templates/
COPY haproxy/ haproxy/

# Default CONFIG_DIR, CERTS_DIR and TEMPLATES_DIR (mount volumes here). Every other default of
# the original image (DEFAULT_PORTS=80,443:ssl, SEPARATOR=",", timeouts, ...) is already the
# code's default, so no ENV is needed. Runs as root: HAProxy binds 80 and 443.
RUN mkdir -p /cfg /certs /templates

EXPOSE 80 443 8080

# Healthy when the control API answers 2xx and, with a listener configured, once the listener's
# services are applied (/successfulinitreload), as the original's check.sh. Node's fetch: no curl.
HEALTHCHECK --interval=5s --start-period=3s --timeout=10s \
  CMD ["node", "-e", "const base = `http://127.0.0.1:${process.env.PORT || 8080}/v1/docker-flow-proxy`; const get = (p) => fetch(base + p, { signal: AbortSignal.timeout(9000) }).then((r) => { if (!r.ok) throw new Error(p) }); get('/ping').then(() => (process.env.LISTENER_ADDRESS ? get('/successfulinitreload') : undefined)).then(() => process.exit(0), () => process.exit(1))"]

# Without -g (the original used it): SIGTERM must reach only the daemon, which then stops HAProxy
# gracefully; signalled as a group, HAProxy's workers would cut the requests they are serving.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/main.js"]
