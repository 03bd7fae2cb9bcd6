# dfp: Docker Flow Proxy in TypeScript. The daemon starts HAProxy (master-worker) itself.
#
#   docker build -t dfp .
#   docker run -d -p 80:80 -p 443:443 -p 8080:8080 dfp
#
# Settings: docs/config.md (every variable can also be a secret /run/secrets/dfp_<name>).
# Without a Docker engine: `npm run image:test` builds and runs this file with buildah (as root).
# Plain Dockerfile syntax only (no heredocs, no --mount): buildah 1.28 and `docker build` alike.

# --- build: compile TypeScript with the dev dependencies ---------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src/ src/
RUN npx tsc -p tsconfig.json

# --- run: Node 20, Debian's HAProxy, production dependencies only -------------------------------
FROM node:20-bookworm-slim

# haproxy: the proxy the daemon drives (bookworm ships 2.6 LTS).
# tini: the init that forwards signals to the daemon and reaps HAProxy's old workers.
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
COPY scripts/healthcheck.mjs scripts/

# CONFIG_DIR, CERTS_DIR and TEMPLATES_DIR (mount volumes here). Runs as root: HAProxy binds 80/443.
# The CLI on PATH, for `docker exec proxy dfp reconfigure …`.
RUN mkdir -p /cfg /certs /templates \
 && chmod +x /app/dist/cli.js \
 && ln -s /app/dist/cli.js /usr/local/bin/dfp

# The official image's defaults (docker-flow-proxy's Dockerfile), for the variables dfp reads.
# They equal the code's own defaults (src/settings.ts; test/image checks that they agree), and an
# empty variable means "the default", so the image behaves as the daemon run without them.
# HEALTHCHECK=false turns the health check below into a no-op, as in the original.
ENV CAPTURE_REQUEST_HEADER="" \
    CHECK_RESOLVERS="false" \
    CONNECTION_MODE="http-keep-alive" \
    CRT_LIST_PATH="" \
    DEFAULT_PORTS="80,443:ssl" \
    DEFAULT_REQ_MODE="http" \
    DEBUG="false" \
    DO_NOT_RESOLVE_ADDR="false" \
    ENABLE_H2="true" \
    EXTRA_FRONTEND="" \
    FILTER_PROXY_INSTANCE_NAME="false" \
    HEALTHCHECK="true" \
    HTTPS_ONLY="false" \
    LISTENER_ADDRESS="" \
    PROXY_INSTANCE_NAME="docker-flow" \
    RELOAD_ATTEMPTS="5" \
    RELOAD_INTERVAL="5000" \
    REPEAT_RELOAD="false" \
    RESOLVERS="nameserver dns 127.0.0.11:53" \
    SEPARATOR="," \
    SERVICE_DOMAIN_ALGO="hdr_beg(host)" \
    SERVICE_NAME="proxy" \
    SKIP_ADDRESS_VALIDATION="true" \
    SSL_BIND_CIPHERS="ECDH+AESGCM:ECDH+CHACHA20:DH+AESGCM:ECDH+AES256:DH+AES256:ECDH+AES128:DH+AES:RSA+AESGCM:RSA+AES:!aNULL:!MD5:!DSS" \
    SSL_BIND_OPTIONS="no-sslv3" \
    STATS_PASS_ENV="STATS_PASS" \
    STATS_PORT="" \
    STATS_URI_ENV="STATS_URI" \
    STATS_USER_ENV="STATS_USER" \
    TIMEOUT_CONNECT="5" \
    TIMEOUT_CLIENT="20" \
    TIMEOUT_SERVER="20" \
    TIMEOUT_QUEUE="30" \
    TIMEOUT_TUNNEL="3600" \
    TIMEOUT_HTTP_REQUEST="5" \
    TIMEOUT_HTTP_KEEP_ALIVE="15" \
    USERS=""

# HTTP and HTTPS (DEFAULT_PORTS), and the control API (PORT).
EXPOSE 80 443 8080

# Healthy when the control API answers /ping and, with a listener configured, once the listener's
# services are applied (/successfulinitreload), as the original's check.sh. Node's fetch: no curl.
HEALTHCHECK --interval=5s --start-period=3s --timeout=10s --retries=3 \
  CMD ["node", "/app/scripts/healthcheck.mjs"]

# SIGTERM (docker stop, a Swarm update) goes to tini, which passes it to the daemon alone (no -g):
# the daemon stops taking requests, finishes the running apply and stops HAProxy gracefully
# (SIGUSR1, in-flight requests complete, at most 10 s), then exits 0. Signalled as a group,
# HAProxy's workers would cut the requests they are serving. Give the task a stop grace period
# above 10 s (Docker's default is 10 s): `stop_grace_period: 20s` in a stack file.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
# A 1 MiB young generation: the heap returns to about 120 MB at 10 000 services once a load of
# changes is over, instead of keeping about 250 MB (docs/performance.md).
# One malloc arena, as `npm start` runs the daemon: glibc gives each thread that allocates
# (libuv's file-system pool) an arena of its own, and their pages stay resident. Measured at
# 10 000 services: peak RSS 163 MB with the default arenas, 147-151 MB with one
# (docs/performance.md); the daemon's work is on one thread, so nothing waits on the lock.
ENV MALLOC_ARENA_MAX=1
CMD ["node", "--max-semi-space-size=1", "--heap-growing-percent=20", "dist/main.js"]
