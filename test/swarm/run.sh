#!/usr/bin/env bash
# `npm run swarm:test`: dfp's image as a Docker Swarm service next to the real Docker Flow Swarm
# Listener, on a single-node Swarm of this machine (docs/swarm.md, "What the Swarm test proves").
# Run as root; `.ci/run` runs it after the image test.
#
#   1. a Docker engine: the one at $DOCKER_HOST or /var/run/docker.sock when it answers, else a
#      dockerd of its own (data in a temporary folder, vfs, no iptables or bridge), stopped and
#      removed at the end; `docker swarm init` when the engine is not in a Swarm yet;
#   2. the image: ./Dockerfile built with the image test's build (test/image/build.sh, buildah,
#      cached under /var/tmp/dfp-image), `buildah push … docker-archive:` and `docker load`; the
#      listener's image from ../shared/tools/docker-flow-swarm-listener (or LISTENER_IMAGE, an
#      image already in the engine, e.g. dockerflow/docker-flow-swarm-listener);
#   3. an overlay network `proxy`, dfp as service `proxy` (--endpoint-mode dnsrr: this kernel has
#      no IPVS for virtual IPs), the listener as service `swarm-listener`, and upstreams: services
#      of the same image running a small node HTTP server that answers with its service name;
#   4. the checks, each through the HAProxy of every proxy replica (`docker exec` in the replica's
#      container, requests to 127.0.0.1): routing from labels, a label change, removal, three
#      replicas, a certificate upload reaching every replica and a replica started afterwards, a
#      killed replica coming back complete, the listener down and back; with timings; then the
#      deployments of issue 23 (rolling update, the same through the original Go Docker Flow
#      Proxy built as an image by original.sh, blue-green, canary weights, sticky sessions),
#      with HAProxy's own log of every failed or retried request and server event (DEBUG).
#      SWARM_BUSY=N runs N bounded busy loops during the rolling update and the canary.
#
# Output is TAP; exit 1 when a check failed. Every wait is bounded. Everything it created
# (services, network, images, the Swarm it initialised, its dockerd) is removed on any exit.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TAP_SUITE=swarm
# shellcheck source=test/image/build.sh
source "$REPO/test/image/build.sh"
LISTENER_BIN=${LISTENER_BIN:-$REPO/../shared/tools/docker-flow-swarm-listener}
[[ -x $LISTENER_BIN ]] || LISTENER_BIN=/work/shared/tools/docker-flow-swarm-listener
DFP_TAG=dfp:swarm-test
UPSTREAM_JS='const os = require("node:os"); require("node:http").createServer((q, s) => s.end(`${process.env.NAME} ${os.hostname()} ${q.url}\n`)).listen(80)'
PROBE_JS=$(cat "$REPO/test/swarm/probe.js")
# shellcheck source=test/swarm/deploy.sh
source "$REPO/test/swarm/deploy.sh"
# shellcheck source=test/swarm/original.sh
source "$REPO/test/swarm/original.sh"

buildah_setup /usr/sbin/dockerd:docker.io /usr/bin/docker:docker.io openssl:openssl
D=(/usr/bin/docker)
own_dockerd='' dockerd_pid='' swarm_made=0 services=() images=() network_made=0 tmp=$(mktemp -d)

cleanup() {
  set +e
  local svc
  busy_stop
  for svc in "${services[@]}"; do "${D[@]}" service rm "$svc" >/dev/null 2>&1; done
  # Tasks stop with their service; the network can go once their containers are gone.
  for _ in $(seq 1 60); do
    [[ -z $("${D[@]}" ps -aq --filter label=dfp-swarm-test 2>/dev/null) ]] && break
    sleep 0.5
  done
  ((network_made)) && "${D[@]}" network rm proxy >/dev/null 2>&1
  for image in "${images[@]}"; do "${D[@]}" rmi -f "$image" >/dev/null 2>&1; done
  ((swarm_made)) && "${D[@]}" swarm leave --force >/dev/null 2>&1
  if [[ -n $dockerd_pid ]]; then
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$dockerd_pid" 2>/dev/null && kill -KILL "$dockerd_pid"
    # The containerd dockerd started for itself stops with it; left mounts would keep files.
    grep -o " $own_dockerd/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$own_dockerd"
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. the engine and the Swarm ----------------------------------------------------------------
if [[ -n ${DOCKER_HOST:-} ]] && "${D[@]}" info >/dev/null 2>&1; then
  note "using the engine at $DOCKER_HOST"
elif [[ -S /var/run/docker.sock ]] && "${D[@]}" -H unix:///var/run/docker.sock info >/dev/null 2>&1; then
  D+=(-H unix:///var/run/docker.sock)
  note 'using the engine at /var/run/docker.sock'
else
  own_dockerd=$(mktemp -d /var/tmp/dfp-swarm-dockerd.XXXXXX)
  # No iptables, bridge or masquerading: nothing of the machine's own network is touched.
  setsid /usr/sbin/dockerd --data-root "$own_dockerd/root" --exec-root "$own_dockerd/exec" \
    -H "unix://$own_dockerd/docker.sock" --pidfile "$own_dockerd/pid" \
    --iptables=false --ip-forward=false --ip-masq=false --bridge=none --storage-driver=vfs \
    >"$own_dockerd/log" 2>&1 </dev/null 9>&- &
  dockerd_pid=$!
  D+=(-H "unix://$own_dockerd/docker.sock")
  up=0
  for _ in $(seq 1 120); do "${D[@]}" info >/dev/null 2>&1 && { up=1; break; }; sleep 0.5; done
  ((up)) || bail 'dockerd starts within 60 s' "$own_dockerd/log"
  note "started dockerd (pid $dockerd_pid) in $own_dockerd"
fi
if [[ $("${D[@]}" info --format '{{.Swarm.LocalNodeState}}') != active ]]; then
  "${D[@]}" swarm init --advertise-addr 127.0.0.1 >/dev/null 2>"$tmp/swarm.log" || bail 'docker swarm init' "$tmp/swarm.log"
  swarm_made=1
fi
pass "a Swarm manager runs (Docker $("${D[@]}" version --format '{{.Server.Version}}'))"
for svc in proxy swarm-listener; do
  "${D[@]}" service inspect "$svc" >/dev/null 2>&1 && bail "this engine already has a service $svc: not mine to replace"
done

# --- 2. the images ------------------------------------------------------------------------------
build_image
t=$SECONDS
"${B[@]}" push --quiet "$IMAGE" "docker-archive:$tmp/dfp.tar:$DFP_TAG" >"$tmp/push.log" 2>&1 &&
  rm -f "$tmp/push.log" && "${D[@]}" load -q -i "$tmp/dfp.tar" >"$tmp/load.log" 2>&1 ||
  bail "docker load of $IMAGE as $DFP_TAG" "$tmp/load.log"
images+=("$DFP_TAG")
rm -f "$tmp/dfp.tar"
pass "the image is in the engine as $DFP_TAG ($((SECONDS - t)) s)"
original_image
# buildah's storage is no longer needed: another image or swarm test may use it meanwhile.
exec 9>&-

if [[ -n ${LISTENER_IMAGE:-} ]]; then
  listener_image=$LISTENER_IMAGE
  "${D[@]}" image inspect "$listener_image" >/dev/null 2>&1 || bail "LISTENER_IMAGE $listener_image is in the engine (no registry here: docker load it first)"
else
  listener_image=dfsl:swarm-test
  mkdir -p "$tmp/listener"
  cp "$LISTENER_BIN" "$tmp/listener/docker-flow-swarm-listener" || bail "the listener's binary at $LISTENER_BIN"
  # The published image's ENV (../shared/tools/README.md): its defaults differ from the binary's.
  listener_env=(DF_DOCKER_HOST=unix:///var/run/docker.sock DF_NOTIFICATION_URL= DF_NOTIFY_LABEL=com.df.notify
    DF_INCLUDE_NODE_IP_INFO=false DF_NODE_IP_INFO_INCLUDES_TASK_ADDRESS=true DF_RETRY=50 DF_RETRY_INTERVAL=5
    DF_NOTIFY_CREATE_SERVICE_METHOD=GET DF_NOTIFY_REMOVE_SERVICE_METHOD=GET DF_SERVICE_POLLING_INTERVAL=-1
    DF_USE_DOCKER_SERVICE_EVENTS=true DF_NODE_POLLING_INTERVAL=-1 DF_USE_DOCKER_NODE_EVENTS=true
    DF_SERVICE_NAME_PREFIX= DF_NOTIFY_CREATE_SERVICE_IMMEDIATELY=false)
  changes=()
  for e in "${listener_env[@]}"; do changes+=(--change "ENV $e"); done
  tar -C "$tmp/listener" -c . | "${D[@]}" import "${changes[@]}" --change 'CMD ["/docker-flow-swarm-listener"]' - "$listener_image" >/dev/null ||
    bail 'docker import of the listener'
  images+=("$listener_image")
fi
pass "the listener's image $listener_image"

# --- helpers ------------------------------------------------------------------------------------
# wait_until <seconds> <command...>: true once the command is; bounded.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  while ((SECONDS < deadline)); do "$@" && return 0; sleep 0.5; done
  "$@"
}
now_ms() { date +%s%3N; }
# eventually <seconds> <description> <command...>: a TAP point, ok once the command holds within
# the bound, with the time it took.
eventually() {
  local bound=$1 what=$2 started_ms
  shift 2
  started_ms=$(now_ms)
  if wait_until "$bound" "$@"; then pass "$what ($(($(now_ms) - started_ms)) ms)"; else fail "$what (not within $bound s)"; fi
}
replicas() { "${D[@]}" ps -q --filter label=com.docker.swarm.service.name=proxy --filter status=running; }
probe() { local ctr=$1; shift; "${D[@]}" exec "$ctr" node -e "$PROBE_JS" -- "$@" 2>&1; }
api() { probe "$1" get "http://127.0.0.1:8080/v1/docker-flow-proxy/$2"; }
# routes <ctr> <path> <service>: the replica's HAProxy sends <path> to <service>.
routes() { [[ $(probe "$1" get "http://127.0.0.1$2") == "200 "*" $3 "* ]]; }
# every_replica <n> <command words…>: exactly n replicas run and the command holds for each
# (the replica's container is put in place of CTR).
every_replica() {
  local want=$1 ctr list
  shift
  list=$(replicas)
  [[ $(wc -w <<<"$list") == "$want" ]] || return 1
  for ctr in $list; do "${@//CTR/$ctr}" || return 1; done
}
ready() { [[ $(api "$1" successfulinitreload) == 200* ]]; }
serves_cert() { [[ $(probe "$1" tls 443 "$2") == "$2" ]]; }
# upstream <name> [--label …]: a service answering "<name> <task hostname> <path>" on port 80.
upstream() {
  local name=$1
  shift
  services+=("$name")
  "${D[@]}" service create --quiet --detach --no-resolve-image --name "$name" --network proxy \
    --endpoint-mode dnsrr --no-healthcheck --container-label dfp-swarm-test=1 --env NAME="$name" \
    "$@" "$DFP_TAG" node -e "$UPSTREAM_JS" >/dev/null
}
task_running() { [[ $("${D[@]}" service ps --filter desired-state=running --format '{{.CurrentState}}' "$1" 2>/dev/null) == Running* ]]; }
# timings <ctr>: from the replica's log, HAProxy's reloads ("Reloading HAProxy" → "New worker")
# and the answer time of each reconfigure, in ms.
timings() {
  "${D[@]}" logs "$1" 2>&1 | node -e '
    let start; const reloads = [], answers = []
    for (const line of require("node:fs").readFileSync(0, "utf8").split("\n")) {
      let entry; try { entry = JSON.parse(line) } catch { continue }
      const text = entry.haproxy ?? ""
      if (text.includes("Reloading HAProxy")) start = entry.time
      else if (text.includes("New worker") && start) { reloads.push(entry.time - start); start = undefined }
      if (entry.action === "reconfigure") answers.push(`${entry.service} ${entry.ms}`)
    }
    console.log(`reloads: ${reloads.join(", ") || "none"}; reconfigure answers: ${answers.join(", ") || "none"}`)'
}

# haproxy_events <ctr> <since> <what>: HAProxy's own account of a scenario, from the replica's log
# (DEBUG=true, DEBUG_ERRORS_ONLY=true: HAProxy logs every request that failed, was retried or
# redispatched, with its termination state, and every server state change and address change):
# the requests by status and termination state, the first failed ones, and the server events.
haproxy_events() {
  "${D[@]}" logs --since "$2" "$1" 2>&1 | WHAT=$3 node -e '
    const what = process.env.WHAT, byState = new Map(), failed = [], events = []
    for (const line of require("node:fs").readFileSync(0, "utf8").split("\n")) {
      let entry; try { entry = JSON.parse(line) } catch { continue }
      const text = entry.haproxy
      if (typeof text !== "string") continue
      const request = / (\S+\/\S+) \S+ (\d{3}) \S+ \S+ \S+ (\S{4}) (\S+) (\S+) /.exec(text)
      if (request) {
        const [, server, status, state, conns, queues] = request
        const key = `${status} ${state}`
        byState.set(key, (byState.get(key) ?? 0) + 1)
        if (!status.startsWith("2") && failed.length < 8) failed.push(`${new Date(entry.time).toISOString().slice(11, 23)} ${status} ${state} ${server} conns ${conns} queues ${queues}`)
      } else if (!text.startsWith("[") && /server|Server|resolv|DNS|backend|Backend/.test(text)) events.push(`${new Date(entry.time).toISOString().slice(11, 23)} ${text.slice(0, 200)}`)
    }
    console.log(`# ${what}: HAProxy logged ${[...byState].map(([k, n]) => `${n}× ${k}`).join(", ") || "no request that failed or was retried"}`)
    for (const line of failed) console.log(`#   ${what} failed: ${line}`)
    for (const line of events.slice(0, 40)) console.log(`#   ${what} event: ${line}`)
    if (events.length > 40) console.log(`#   ${what}: ${events.length - 40} more server events`)'
}
# busy_start <seconds>: SWARM_BUSY (default 0) bounded busy loops, to run a scenario on a loaded
# machine (the conditions of the 503s of issue 23); busy_stop ends them (by pid).
busy_pids=()
busy_start() {
  local i
  for ((i = 0; i < ${SWARM_BUSY:-0}; i++)); do timeout "$1" bash -c 'while :; do :; done' & busy_pids+=($!); done
}
busy_stop() {
  ((${#busy_pids[@]})) && kill "${busy_pids[@]}" 2>/dev/null
  busy_pids=()
}

# --- 3. the services ----------------------------------------------------------------------------
# The engine's socket, bind-mounted into the listener.
socket=/var/run/docker.sock
[[ -n $own_dockerd ]] && socket=$own_dockerd/docker.sock
[[ ${DOCKER_HOST:-} == unix://* ]] && socket=${DOCKER_HOST#unix://}
"${D[@]}" network create -d overlay --attachable proxy >/dev/null || bail 'docker network create -d overlay proxy'
network_made=1
services+=(proxy swarm-listener)
"${D[@]}" service create --quiet --detach --no-resolve-image --name proxy --network proxy \
  --endpoint-mode dnsrr --container-label dfp-swarm-test=1 --stop-grace-period 20s \
  --env LISTENER_ADDRESS=swarm-listener --env SERVICE_NAME=proxy \
  --env DEBUG=true --env DEBUG_ERRORS_ONLY=true "$DFP_TAG" >/dev/null ||
  bail 'docker service create proxy'
"${D[@]}" service create --quiet --detach --no-resolve-image --name swarm-listener --network proxy \
  --endpoint-mode dnsrr --container-label dfp-swarm-test=1 --constraint node.role==manager \
  --mount "type=bind,source=$socket,target=/var/run/docker.sock" \
  --env DF_NOTIFY_CREATE_SERVICE_URL=http://proxy:8080/v1/docker-flow-proxy/reconfigure \
  --env DF_NOTIFY_REMOVE_SERVICE_URL=http://proxy:8080/v1/docker-flow-proxy/remove \
  "$listener_image" >/dev/null || bail 'docker service create swarm-listener'
# An upstream without labels: the API adds it below, timing a reconfigure with a new host name.
upstream plain
t=$SECONDS
wait_until 180 every_replica 1 ready CTR || bail 'the proxy replica is ready (listener answered) within 180 s'
first=$(replicas)
pass "proxy: one replica ready (successfulinitreload 200) in $((SECONDS - t)) s"

# a labelled service is routed
t0=$(now_ms)
upstream web --label com.df.notify=true --label com.df.servicePath=/web --label com.df.port=80
wait_until 120 task_running web
t1=$(now_ms)
eventually 60 "a labelled service is routed (created → task running $((t1 - t0)) ms; then routed)" every_replica 1 routes CTR /web/a web

# a reconfigure naming a new host, through the API (what the listener sends, distributed)
wait_until 120 task_running plain
reply=$(api "$first" 'reconfigure?serviceName=plain&servicePath=/plain&port=80&distribute=true')
reconfigure_ms=$(cut -d' ' -f2 <<<"$reply")
note "reconfigure of a service with a new host name answered: ${reply:0:60}…"
# The goal is 0.5 s; the check only tells a reload that waited for DNS (5 s and more, see
# docs/swarm.md "Reloads and DNS") from one that did not, whatever else runs on the machine.
note "reconfigure of a new service: $reconfigure_ms ms (goal: under 500 ms; 5 000 ms and more when a reload waited for DNS)"
check "a reconfigure adding a service answers 200 without waiting for DNS (took $reconfigure_ms ms)" \
  test "${reply%% *}" == 200 -a "$reconfigure_ms" -lt 2500
# The new server gets its address from HAProxy's resolvers right after the load.
eventually 10 'that service is routed once the resolvers give its address' routes "$first" /plain/x plain

# a label change re-routes
t0=$(now_ms)
"${D[@]}" service update --quiet --detach --no-resolve-image --label-add com.df.servicePath=/moved web >/dev/null
eventually 60 'a label change re-routes (/web → /moved)' routes "$first" /moved/a web
check 'the old path is no longer routed' test "$(probe "$first" get http://127.0.0.1/web/a | cut -d' ' -f1)" == 503

# --- 4. three replicas, certificates ------------------------------------------------------------
t=$SECONDS
"${D[@]}" service scale --detach proxy=3 >/dev/null
eventually 180 'three replicas ready' every_replica 3 ready CTR
check 'every replica routes the listener service (/moved)' every_replica 3 routes CTR /moved/a web
check 'every replica routes the API service (/plain)' every_replica 3 routes CTR /plain/b plain
upstream late --label com.df.notify=true --label com.df.servicePath=/late --label com.df.port=80
eventually 120 'a service created now is routed by every replica' every_replica 3 routes CTR /late/a late

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 -subj /CN=swarm.test >/dev/null 2>&1
cat "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/swarm.test.pem"
first=$(replicas | head -1)
reply=$("${D[@]}" exec -i "$first" node -e "$PROBE_JS" -- put 'http://127.0.0.1:8080/v1/docker-flow-proxy/cert?certName=swarm.test&distribute=true' <"$tmp/swarm.test.pem")
check "a certificate uploaded to one replica with distribute=true answers 200 (${reply:0:80})" test "${reply%% *}" == 200
check 'every replica serves it on 443' every_replica 3 serves_cert CTR swarm.test

t=$SECONDS
"${D[@]}" service scale --detach proxy=4 >/dev/null
eventually 180 'a fourth replica started afterwards is ready' every_replica 4 ready CTR
check 'the fourth replica serves the uploaded certificate' every_replica 4 serves_cert CTR swarm.test
check 'the fourth replica routes the API-created service (/plain)' every_replica 4 routes CTR /plain/c plain
check 'and the listener services (/moved, /late)' every_replica 4 routes CTR /late/b late

# a killed replica comes back with everything
victim=$(replicas | tail -1)
"${D[@]}" kill "$victim" >/dev/null
t=$SECONDS
eventually 180 'a killed replica is replaced and ready' every_replica 4 ready CTR
check 'it routes the listener services (/moved)' every_replica 4 routes CTR /moved/x web
check 'and /late' every_replica 4 routes CTR /late/x late
check 'and the API service (/plain)' every_replica 4 routes CTR /plain/x plain
check 'and serves the certificate' every_replica 4 serves_cert CTR swarm.test

# --- 5. the listener down and back --------------------------------------------------------------
"${D[@]}" service scale --detach swarm-listener=0 >/dev/null
listener_gone() { [[ -z $("${D[@]}" ps -q --filter label=com.docker.swarm.service.name=swarm-listener) ]]; }
wait_until 60 listener_gone
upstream during --label com.df.notify=true --label com.df.servicePath=/during --label com.df.port=80
wait_until 120 task_running during
check 'with the listener down, every replica still routes every service' every_replica 4 routes CTR /late/c late
"${D[@]}" service scale --detach swarm-listener=1 >/dev/null
t=$SECONDS
eventually 120 'the listener back: the service created while it was down is routed by every replica' every_replica 4 routes CTR /during/a during
check 'nothing was lost: /moved on every replica' every_replica 4 routes CTR /moved/y web
check 'nothing was lost: /plain on every replica' every_replica 4 routes CTR /plain/y plain
check 'nothing was lost: the certificate on every replica' every_replica 4 serves_cert CTR swarm.test

# removal un-routes
"${D[@]}" service rm late >/dev/null
eventually 60 'a removed service is no longer routed by any replica' every_replica 4 eval '[[ $(probe CTR get http://127.0.0.1/late/a) == 503* ]]'

# a rolling update under load (issue 23): 3 replicas with a HEALTHCHECK, dnsrr and
# discoveryType=DNS (one server per task), `docker service update --force --update-parallelism 1`
# while one replica's clients send GETs on new and on kept-alive connections, 2 s GETs and POSTs
services+=(roll)
"${D[@]}" service create --quiet --detach --no-resolve-image --name roll --network proxy \
  --endpoint-mode dnsrr --replicas 3 --container-label dfp-swarm-test=1 --env NAME=roll \
  --health-cmd "node -e '$HEALTH_JS'" --health-interval 1s --health-retries 1 --health-timeout 2s \
  --stop-grace-period 20s --update-parallelism 1 --update-delay 2s \
  --label com.df.notify=true --label com.df.servicePath=/roll --label com.df.port=80 \
  --label com.df.discoveryType=DNS --label com.df.replicas=3 \
  "$DFP_TAG" node -e "$ROLL_JS" >/dev/null
roll_running() { [[ $("${D[@]}" service ps --filter desired-state=running --format '{{.CurrentState}}' roll 2>/dev/null | grep -c '^Running') == 3 ]]; }
wait_until 240 roll_running
eventually 120 'the rolling service is routed' every_replica 4 routes CTR /roll/a roll
ctr=$(replicas | head -n 1)
"${D[@]}" exec "$ctr" rm -f /tmp/dfp-load-stop
log_since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
busy_start 300
load_started=$SECONDS
probe "$ctr" load http://127.0.0.1/roll/fast 600 4 10 GET close >"$tmp/roll-new" &
load_pids=($!)
probe "$ctr" load http://127.0.0.1/roll/fast 600 2 20 GET keep-alive >"$tmp/roll-keep" &
load_pids+=($!)
probe "$ctr" load http://127.0.0.1/roll/slow 600 6 0 GET close >"$tmp/roll-slow" &
load_pids+=($!)
probe "$ctr" load http://127.0.0.1/roll/post 600 2 20 POST close >"$tmp/roll-post" &
load_pids+=($!)
sleep 5
update_started=$SECONDS
if timeout 480 "${D[@]}" service update --quiet --detach=false --force --update-parallelism 1 roll >/dev/null 2>&1; then
  pass "docker service update --force --update-parallelism 1 of 3 replicas converged in $((SECONDS - update_started)) s"
else
  fail 'docker service update --force of the rolling service did not converge within 480 s'
fi
sleep 5
"${D[@]}" exec "$ctr" touch /tmp/dfp-load-stop
wait "${load_pids[@]}"
load_seconds=$((SECONDS - load_started))
busy_stop
roll_figures "$tmp/roll" "$load_seconds"
haproxy_events "$ctr" "$log_since" 'rolling update'
# Tasks Swarm ended other than by the update (e.g. a HEALTHCHECK that failed on a loaded machine).
"${D[@]}" service ps --no-trunc --format '{{.Name}} {{.DesiredState}} {{.CurrentState}} {{.Error}}' roll 2>&1 | grep -v 'Shutdown Shutdown.* $' | sed 's/^/#   roll task: /'

# the original beside dfp: the same rolling update through its HAProxy (test/swarm/original.sh)
original_roll

# blue-green as the Docker Flow CLI's proxy step does it: go-demo-blue serves, go-demo-green is
# deployed beside it, `reconfigure?serviceName=go-demo&serviceColor=green…` switches, blue is removed
upstream go-demo-blue
wait_until 120 task_running go-demo-blue
reply=$(api "$ctr" 'reconfigure?serviceName=go-demo&serviceColor=blue&servicePath=/demo&port=80&distribute=true')
check "the CLI's reconfigure with serviceColor=blue answers 200 (${reply:0:40})" test "${reply%% *}" == 200
eventually 60 'go-demo-blue serves /demo' routes "$ctr" /demo/a go-demo-blue
"${D[@]}" exec "$ctr" rm -f /tmp/dfp-load-stop
load_started=$SECONDS
probe "$ctr" load http://127.0.0.1/demo/x 600 3 20 GET close >"$tmp/bg-new" &
load_pids=($!)
probe "$ctr" load http://127.0.0.1/demo/x 600 2 20 GET keep-alive >"$tmp/bg-keep" &
load_pids+=($!)
upstream go-demo-green
wait_until 120 task_running go-demo-green
reply=$(api "$ctr" 'reconfigure?serviceName=go-demo&serviceColor=green&servicePath=/demo&port=80&distribute=true')
check "the CLI's reconfigure with serviceColor=green answers 200 (${reply:0:40})" test "${reply%% *}" == 200
eventually 60 'go-demo-green serves /demo' routes "$ctr" /demo/b go-demo-green
"${D[@]}" service rm go-demo-blue >/dev/null
wait_until 60 eval '[[ -z $("${D[@]}" ps -q --filter label=com.docker.swarm.service.name=go-demo-blue) ]]'
sleep 3
"${D[@]}" exec "$ctr" touch /tmp/dfp-load-stop
wait "${load_pids[@]}"
for kind in new keep; do
  read -r requests failed _ first_failure split <"$tmp/bg-$kind" || true
  note "blue-green, GETs on ${kind/keep/kept-alive} connections: ${requests:-0} requests in $((SECONDS - load_started)) s, ${failed:-?} failed (first: ${first_failure:-none}; answered: ${split:-none})"
  check "blue-green: 0 failed GETs on ${kind/keep/kept-alive} connections through deploy, switch and removal" test "${failed:-x}" == 0
done
check 'every replica routes /demo to go-demo-green' every_replica 4 routes CTR /demo/c go-demo-green

# canary by weight through labels: the listener sends each label change, dfp applies the
# weights with `set weight` (no reload); moved 100/0 → 50/50 → 0/100 under load
upstream stable --label com.df.notify=true --label com.df.servicePath=/canary --label com.df.port=80 --label com.df.weight=100
upstream canary --label com.df.notify=true --label com.df.servicePath=/canary --label com.df.port=80 --label com.df.weight=0
wait_until 120 task_running stable
wait_until 120 task_running canary
shared_backend() { probe "$ctr" get 'http://127.0.0.1:8080/v1/docker-flow-proxy/config' | grep -Eq 'server canary canary:80 (init-addr [^ ]+ )?resolvers docker weight 0'; }
eventually 90 'the canary (weight 0) is a server of the shared route' shared_backend
# The load starts once the route answers: two services just created may not be in Docker's DNS
# yet (their servers have no address until then; a run's request log showed 92 GETs answered
# 503 <NOSRV> before either name resolved, stable's own backend included).
eventually 60 'the shared route is served (stable, weight 100)' routes "$ctr" /canary/a stable
"${D[@]}" exec "$ctr" rm -f /tmp/dfp-load-stop
log_since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
busy_start 200
load_started=$SECONDS
probe "$ctr" load http://127.0.0.1/canary/x 600 3 20 GET close >"$tmp/canary" &
load_pids=($!)
# (probe prints a body on one line, its whitespace collapsed)
generation() { probe "$ctr" get 'http://127.0.0.1:8080/metrics' | grep -oE 'dfp_haproxy_worker_generation [0-9]+' | cut -d' ' -f2; }
generation_before=$(generation)
weights_are() { probe "$ctr" get 'http://127.0.0.1:8080/metrics' | grep -Eq "haproxy_server_weight\{backend=\"canary-be80_0\",server=\"stable\"\} $1( |\$)"; }
for step in '50 50' '0 100'; do
  read -r stable_weight canary_weight <<<"$step"
  "${D[@]}" service update --quiet --detach --label-add "com.df.weight=$canary_weight" canary >/dev/null
  "${D[@]}" service update --quiet --detach --label-add "com.df.weight=$stable_weight" stable >/dev/null
  eventually 90 "weights $stable_weight/$canary_weight applied" weights_are "$stable_weight"
  sleep 5
done
"${D[@]}" exec "$ctr" touch /tmp/dfp-load-stop
wait "${load_pids[@]}"
busy_stop
read -r requests failed _ first_failure split <"$tmp/canary" || true
haproxy_events "$ctr" "$log_since" canary
note "canary 100/0 → 50/50 → 0/100 by labels: ${requests:-0} requests in $((SECONDS - load_started)) s, ${failed:-?} failed (first: ${first_failure:-none}; answered: ${split:-none})"
check "canary: 0 failed GETs while the weights moved (${requests:-0} requests)" test "${failed:-x}" == 0
generation_after=$(generation)
check "the weight changes reloaded nothing (worker generation $generation_before → $generation_after)" test -n "$generation_before" -a "$generation_after" == "$generation_before"
"${D[@]}" exec "$ctr" rm -f /tmp/dfp-load-stop
last=$(probe "$ctr" load http://127.0.0.1/canary/y 3 1 0 GET close)
check "at 0/100 the stable service receives nothing (${last})" eval '[[ $last != *stable=* && $last == *canary=* ]]'

# sticky sessions across a rolling update (issue 23): sessionType=sticky-server, 3 tasks with a
# HEALTHCHECK replaced one at a time (stop-first, 5 s apart) while 9 clients each keep the cookie
# HAProxy gave them. `--force` replaces every task in turn, so each client's task goes at some
# point: what is checked is that no client is moved while its task still accepts requests, and
# that clients keep their task while another one is replaced (probe.js `sticky`).
services+=(sticky)
"${D[@]}" service create --quiet --detach --no-resolve-image --name sticky --network proxy \
  --endpoint-mode dnsrr --replicas 3 --container-label dfp-swarm-test=1 --env NAME=sticky \
  --health-cmd "node -e '$HEALTH_JS'" --health-interval 1s --health-retries 1 --health-timeout 2s \
  --stop-grace-period 20s --label com.df.notify=true --label com.df.servicePath=/sticky --label com.df.port=80 \
  --label com.df.sessionType=sticky-server --label com.df.replicas=3 \
  "$DFP_TAG" node -e "$ROLL_JS" >/dev/null
sticky_running() { [[ $("${D[@]}" service ps --filter desired-state=running --format '{{.CurrentState}}' sticky 2>/dev/null | grep -c '^Running') == 3 ]]; }
wait_until 240 sticky_running
eventually 120 'the sticky service is routed' routes "$ctr" /sticky/a sticky
"${D[@]}" exec "$ctr" rm -f /tmp/dfp-load-stop
log_since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_started=$SECONDS
probe "$ctr" sticky http://127.0.0.1/sticky/x 600 9 50 >"$tmp/sticky" &
load_pids=($!)
sleep 5
update_started=$SECONDS
if timeout 480 "${D[@]}" service update --quiet --detach=false --force --update-parallelism 1 --update-delay 5s sticky >/dev/null 2>&1; then
  pass "sticky: docker service update --force --update-parallelism 1 of 3 replicas converged in $((SECONDS - update_started)) s"
else
  fail 'sticky: docker service update --force did not converge within 480 s'
fi
sleep 3
"${D[@]}" exec "$ctr" touch /tmp/dfp-load-stop
wait "${load_pids[@]}"
read -r requests failed clients moved wrong kept first_failure <"$tmp/sticky" || true
note "sticky sessions through a rolling update: ${requests:-0} requests of ${clients:-?} clients in $((SECONDS - load_started)) s, ${failed:-?} failed (first: ${first_failure:-none}); ${moved:-?} moves to another task, ${wrong:-?} while the old task still accepted; ${kept:-?} clients kept their task while another was replaced"
haproxy_events "$ctr" "$log_since" sticky
check "sticky: 0 failed GETs (${requests:-0} requests)" test "${failed:-x}" == 0
check 'sticky: no client was moved while its task still accepted requests' test "${wrong:-x}" == 0
check "sticky: clients kept their task while another task was replaced (${kept:-0} of ${clients:-?})" test "${kept:-0}" -ge 1

note 'in ms, per replica:'
for ctr in $(replicas); do note "  $ctr $(timings "$ctr")"; done
if ((failures)); then
  note 'proxy logs (last lines of each replica, requests left out):'
  for ctr in $(replicas); do "${D[@]}" logs "$ctr" 2>&1 | grep -v '"msg":"\(incoming request\|request completed\)"' | grep -v '"component":"haproxy"' | tail -n 12 | cut -c1-300 | sed 's/^/#   /'; done
fi
finish
