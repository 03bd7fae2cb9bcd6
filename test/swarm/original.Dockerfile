# The original Go Docker Flow Proxy (../shared/tools/dfp-go, docker-flow/docker-flow-proxy at
# f321956) as an image for the Swarm test's side-by-side rolling update (test/swarm/original.sh):
# on dfp's image (the debootstrap base, Debian's haproxy 2.6, tini), with the original's own
# files at the paths it uses and its official image's ENV. Build context: ../shared/tools.
ARG BASE=localhost/dfp:test
FROM ${BASE}
COPY dfp-go/ /dfp-go/
RUN mkdir -p /cfg/tmpl /templates /certs /logs /errorfiles /run/secrets \
 && cp /dfp-go/haproxy.tmpl /cfg/tmpl/haproxy.tmpl \
 && cp /dfp-go/haproxy.cfg /cfg/haproxy.cfg \
 && cp /dfp-go/errorfiles/*.http /errorfiles/
# The official image's ENV (../shared/tools/dfp-go/env.sh, with its ports 80 and 443); the
# haproxy wrapper first on PATH (the Go code writes haproxy.cfg without the final newline
# HAProxy 2.6 needs). CHECK_RESOLVERS: see original.sh.
ENV CERTS="" CAPTURE_REQUEST_HEADER="" CFG_TEMPLATE_PATH="/cfg/tmpl/haproxy.tmpl" \
    CHECK_RESOLVERS=false RESOLVERS="nameserver dns 127.0.0.11:53" \
    CONNECTION_MODE="http-keep-alive" CRT_LIST_PATH="" DEBUG="false" \
    DEFAULT_PORTS="80,443:ssl" DEFAULT_REQ_MODE="http" DO_NOT_RESOLVE_ADDR="false" \
    ENABLE_H2="true" FILTER_PROXY_INSTANCE_NAME="false" HEALTHCHECK="true" HTTPS_ONLY="false" \
    EXTRA_FRONTEND="" LISTENER_ADDRESS="" MODE="default" PROXY_INSTANCE_NAME="docker-flow" \
    RELOAD_ATTEMPTS="5" RELOAD_INTERVAL="5000" REPEAT_RELOAD=false RECONFIGURE_ATTEMPTS="20" \
    SEPARATOR="," SERVICE_NAME="proxy-go" SERVICE_DOMAIN_ALGO="hdr_beg(host)" \
    STATS_USER="" STATS_USER_ENV="STATS_USER" STATS_PASS="" STATS_PASS_ENV="STATS_PASS" \
    STATS_URI="" STATS_URI_ENV="STATS_URI" STATS_PORT="" \
    TIMEOUT_HTTP_REQUEST="5" TIMEOUT_HTTP_KEEP_ALIVE="15" TIMEOUT_CLIENT="20" TIMEOUT_CONNECT="5" \
    TIMEOUT_QUEUE="30" TIMEOUT_SERVER="20" TIMEOUT_TUNNEL="3600" \
    USERS="" SKIP_ADDRESS_VALIDATION="true" SSL_BIND_OPTIONS="no-sslv3" \
    SSL_BIND_CIPHERS="ECDH+AESGCM:ECDH+CHACHA20:DH+AESGCM:ECDH+AES256:DH+AES256:ECDH+AES128:DH+AES:RSA+AESGCM:RSA+AES:!aNULL:!MD5:!DSS" \
    PATH=/dfp-go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /
HEALTHCHECK NONE
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["/dfp-go/bin/docker-flow-proxy", "server"]
