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
# shellcheck source=test/image/build.sh
source "$REPO/test/image/build.sh"
buildah_setup


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

build_image

config=$("${B[@]}" inspect --type image "$IMAGE" | jq -c '.Docker.config')
cfg() { jq -c ".$1" <<<"$config"; }
check 'ENTRYPOINT is tini, CMD node dist/main.js' test "$(cfg Entrypoint)$(cfg Cmd)" == '["/usr/bin/tini","--"]["node","--max-semi-space-size=1","--heap-growing-percent=20","dist/main.js"]'
check 'the daemon runs with one malloc arena, as npm start runs it (MALLOC_ARENA_MAX=1)' grep -qx 'MALLOC_ARENA_MAX=1' <<<"$(cfg Env | jq -r '.[]')"
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
