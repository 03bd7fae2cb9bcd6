#!/usr/bin/env bash
# `npm run swarm:cluster-test`: dfp's image on a real three-node Docker Swarm built on this machine
# (../shared/reference/swarm-cluster.md): three dockerd, each in a network namespace of its own,
# joined over a bridge as three managers, an overlay network across them. Run as root; `.ci/run`
# runs it after the single-node Swarm test. docs/swarm.md, "What the cluster test proves".
#
# Every check goes through the proxy's port published on a node (mode=host, 10.X.0.N, an address
# of a namespace this test made). Scenarios (issue 22), in the order that keeps the destructive
# ones last: 1 across nodes; 2 distributed changes; issue 23's deployments across the nodes (a
# rolling update with four kinds of clients, a canary by com.df.weight labels, blue-green with
# serviceColor; helpers shared with run.sh in deploy.sh); 4 node drain under load; 3 a replica on a node
# that had none takes the API services and certificates from a peer; 6 the proxy upgraded under
# load; 7 ACME with pebble; 5 a manager lost (kill -9 of the dockerd that runs the listener).
# Output is TAP with figures (requests, failures, seconds); every wait is bounded; the dockerds
# (by pid), their containerd and containers, namespaces, bridge, cgroups, mounts and folders are
# removed on any exit.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TAP_SUITE=cluster
# shellcheck source=test/image/build.sh
source "$REPO/test/image/build.sh"
LISTENER_BIN=${LISTENER_BIN:-$REPO/../shared/tools/docker-flow-swarm-listener}
[[ -x $LISTENER_BIN ]] || LISTENER_BIN=/work/shared/tools/docker-flow-swarm-listener
UPSTREAM_JS='const os = require("node:os"); require("node:http").createServer((q, s) => s.end(`${process.env.NAME} ${os.hostname()} ${q.url}\n`)).listen(80)'
LOAD_JS=$REPO/test/swarm/cluster-load.mjs
PROBE_JS=$(cat "$REPO/test/swarm/probe.js")
# shellcheck source=test/swarm/deploy.sh
source "$REPO/test/swarm/deploy.sh"
TAG=dfp:cluster-test NEXT_TAG=dfp:cluster-next LISTENER_TAG=dfsl:cluster-test

buildah_setup /usr/sbin/dockerd:docker.io /usr/bin/docker:docker.io openssl:openssl pebble:pebble dnsmasq:dnsmasq
exec 9>&- # the image is built below under the lock again; nothing else of buildah's is used

# --- names: all of this run's own ---------------------------------------------------------------
id=$(($$ % 100000))
W=$(mktemp -d /var/tmp/dfp-cluster.XXXXXX)
BR=dc${id}br
NS=()
for i in 1 2 3; do NS[i]=dfpc${id}n$i; done
# A /24 for the nodes that no route of the machine uses yet.
NET=''
for octet in $(seq 99 -1 80); do
  ip -4 route | grep -q "^10\.$octet\." || { NET=10.$octet.0; break; }
done
[[ -n $NET ]] || bail 'a free 10.X.0.0/24 for the nodes'
HOSTIP=$NET.254
addr() { echo "$NET.$1"; }
dk() { local i=$1; shift; /usr/bin/docker -H "unix://$W/n$i/docker.sock" "$@"; }
alive=(1 2 3) # nodes whose dockerd runs
M=1           # the node the Swarm is driven from (a live manager)
pebble_pid='' dnsmasq_pid='' load_pids=()

cleanup() {
  set +e
  local i pid f c m
  for pid in "${load_pids[@]}" $pebble_pid $dnsmasq_pid; do kill "$pid" 2>/dev/null; done
  for i in 1 2 3; do
    pid=$(cat "$W/n$i/dockerd.pid" 2>/dev/null)
    [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null
  done
  # A test's cluster needs no graceful stop: 5 s for all three, then kill -9.
  for _ in $(seq 1 10); do
    pid=''
    for i in 1 2 3; do kill -0 "$(cat "$W/n$i/dockerd.pid" 2>/dev/null)" 2>/dev/null && pid=1; done
    [[ -z $pid ]] && break
    sleep 0.5
  done
  for i in 1 2 3; do
    pid=$(cat "$W/n$i/dockerd.pid" 2>/dev/null)
    [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  done
  # containerd and shims that name this run's folder, then every process left in its cgroups.
  for pid in $(grep -l -a -F "$W/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [[ $pid != "$$" ]] && kill -KILL "$pid" 2>/dev/null
  done
  for i in 1 2 3; do
    ip netns pids "${NS[i]}" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    for f in /sys/fs/cgroup/pids/dfpc${id}n$i/*/cgroup.procs /sys/fs/cgroup/pids/dfpc${id}n$i/cgroup.procs; do
      [[ -f $f ]] && xargs -r kill -KILL <"$f" 2>/dev/null
    done
  done
  sleep 1
  for i in 1 2 3; do
    for c in /sys/fs/cgroup/*/dfpc${id}n$i; do
      [[ -d $c ]] || continue
      find "$c" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
      rmdir "$c" 2>/dev/null
    done
  done
  for m in $(awk -v w="$W/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m"; done
  for i in 1 2 3; do ip netns del "${NS[i]}" 2>/dev/null; done
  ip link del "$BR" 2>/dev/null
  # The nodes' vfs data (a full copy of the image per container, gigabytes) is deleted in the
  # background, renamed first so nothing can use it: minutes of disk work nobody needs to wait for.
  if mv "$W" "$W.deleted" 2>/dev/null; then
    setsid rm -rf "$W.deleted" </dev/null >/dev/null 2>&1 &
  else
    rm -rf "$W"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers ------------------------------------------------------------------------------------
now_ms() { date +%s%3N; }
wait_until() { # wait_until <seconds> <command...>: true once the command is; bounded
  local deadline=$((SECONDS + $1))
  shift
  while ((SECONDS < deadline)); do "$@" && return 0; sleep 0.5; done
  "$@"
}
eventually() { # eventually <seconds> <description> <command...>: a TAP point with the time it took
  local bound=$1 what=$2 t0
  shift 2
  t0=$(now_ms)
  if wait_until "$bound" "$@"; then pass "$what ($(($(now_ms) - t0)) ms)"; else fail "$what (not within $bound s)"; fi
}
# get <node> <path> [port]: "<status> <body>" of a request through that node's published port.
get() {
  local out
  out=$(curl -s --max-time 5 -w '\n%{http_code}' "http://$(addr "$1"):${3:-80}$2" 2>/dev/null)
  echo "${out##*$'\n'} ${out%$'\n'*}"
}
routes_on() { [[ $(get "$1" "$2") == "200 $3 "* ]]; }
# routed <path> <service> [nodes…]: every node given (default: the live ones) sends path to service.
routed() {
  local path=$1 svc=$2 i
  shift 2
  for i in "${@:-${alive[@]}}"; do routes_on "$i" "$path" "$svc" || return 1; done
}
unrouted() { # the path answers 503 (no backend) on every live node
  local i
  for i in "${alive[@]}"; do [[ $(get "$i" "$1") == 503* ]] || return 1; done
}
api() { curl -s --max-time 60 "http://$(addr "$1"):8080/v1/docker-flow-proxy/$2" 2>/dev/null; }
ready_on() { [[ $(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://$(addr "$1"):8080/v1/docker-flow-proxy/successfulinitreload") == 200 ]]; }
all_ready() { local i; for i in "${@:-${alive[@]}}"; do ready_on "$i" || return 1; done; }
# cert_on <node> <name>: the subject CN served on the node's 443 for SNI <name>.
cert_cn() { openssl s_client -connect "$(addr "$1"):443" -servername "$2" </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null | sed -n 's/.*CN *= *//p'; }
serves_cert() { local i name=$1; shift; for i in "${@:-${alive[@]}}"; do [[ $(cert_cn "$i" "$name") == "$name" ]] || return 1; done; }
upstream() { # upstream <name> [service create options…]: answers "<name> <task host> <path>" on 80
  local name=$1
  shift
  dk $M service create --quiet --detach --no-resolve-image --name "$name" --network proxy \
    --endpoint-mode dnsrr --no-healthcheck --env NAME="$name" "$@" "$TAG" node -e "$UPSTREAM_JS" >/dev/null
}
labels() { echo --label com.df.notify=true --label "com.df.servicePath=$1" --label com.df.port=80; }
task_node() { dk $M service ps --filter desired-state=running --format '{{.Node}}' "$1" 2>/dev/null | head -1; }
proxy_tasks_on() { dk $M service ps --filter desired-state=running --filter "node=node$1" --format '{{.CurrentState}}' proxy 2>/dev/null | grep -c '^Running'; }
# load <seconds> <out> <url=name…>: the client in the background (one request every 20 ms).
load() {
  local seconds=$1 out=$2
  shift 2
  rm -f "$W/stop"
  node "$LOAD_JS" "$seconds" 20 "$W/stop" "$@" >"$out" 2>&1 &
  load_pids+=($!)
}
stop_load() { # stop_load <out>: the figures line of the last client
  touch "$W/stop"
  local pid=${load_pids[-1]}
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  cat "$1"
}
figure() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; } # figure <name> <line>: name=value
dlog_grep() { # dlog_grep <pattern>: those lines of the proxy's logs on every live node
  local i c
  for i in "${alive[@]}"; do
    for c in $(dk "$i" ps -q --filter label=com.docker.swarm.service.name=proxy); do
      dk "$i" logs "$c" 2>&1 | grep -e "$1" | tail -n 10 | cut -c1-300 | sed "s/^/#   node$i /"
    done
  done
}
dlog() { # the last lines of the proxy's logs on every live node, for a failure
  local i c
  for i in "${alive[@]}"; do
    for c in $(dk "$i" ps -q --filter label=com.docker.swarm.service.name=proxy); do
      note "node$i $c:"
      dk "$i" logs "$c" 2>&1 | grep -v '"msg":"\(incoming request\|request completed\)"' | tail -n "${1:-8}" | cut -c1-300 | sed 's/^/#   /'
    done
  done
}

# --- 0. the image, built (or reused) by the image test's build ----------------------------------
exec 9>"$WORK/lock"
flock -w 3600 9 || bail "waited an hour for $WORK/lock"
build_image
t=$SECONDS
# One layer: the vfs driver of the nodes copies the whole tree once per layer when it loads an
# image, so a squashed copy (kept, and made again only when the image changed) loads in a third
# of the time.
SQUASHED=localhost/dfp:cluster-squashed
image_id=$("${B[@]}" inspect --type image --format '{{.FromImageID}}' "$IMAGE" 2>/dev/null)
if [[ $("${B[@]}" inspect --type image --format '{{index .Docker.Config.Labels "dfp.cluster.source"}}' "$SQUASHED" 2>/dev/null) != "$image_id" ]]; then
  ctr=$("${B[@]}" from --pull-never "$IMAGE") && "${B[@]}" config --label "dfp.cluster.source=$image_id" "$ctr" &&
    "${B[@]}" commit --quiet --squash --format docker "$ctr" "$SQUASHED" >/dev/null 2>"$W/squash.log"
  squashed=$?
  [[ -n ${ctr:-} ]] && "${B[@]}" rm "$ctr" >/dev/null 2>&1
  ((squashed == 0)) || bail "a one-layer copy of $IMAGE" "$W/squash.log"
fi
"${B[@]}" push --quiet "$SQUASHED" "docker-archive:$W/dfp.tar:$TAG" >"$W/push.log" 2>&1 || bail "buildah push of $SQUASHED" "$W/push.log"
pass "$IMAGE as one layer, in an archive ($((SECONDS - t)) s)"
exec 9>&-
mkdir -p "$W/listener"
cp "$LISTENER_BIN" "$W/listener/docker-flow-swarm-listener" || bail "the listener's binary at $LISTENER_BIN"

# --- 1. the nodes -------------------------------------------------------------------------------
t=$SECONDS
ip link add "$BR" type bridge && ip addr add "$HOSTIP/24" dev "$BR" && ip link set "$BR" up || bail "bridge $BR"
for i in 1 2 3; do
  ns=${NS[i]}
  ip netns add "$ns" &&
    ip link add "dc${id}v$i" type veth peer name "dc${id}e$i" &&
    ip link set "dc${id}e$i" netns "$ns" &&
    ip link set "dc${id}v$i" master "$BR" && ip link set "dc${id}v$i" up &&
    ip netns exec "$ns" ip addr add "$(addr $i)/24" dev "dc${id}e$i" &&
    ip netns exec "$ns" ip link set "dc${id}e$i" up &&
    ip netns exec "$ns" ip link set lo up || bail "namespace $ns"
  mkdir -p "$W/n$i"
  # nsenter, not `ip netns exec` (which remounts /sys and hides the cgroups); a private /run so
  # the node's own socket is /var/run/docker.sock for the listener's bind mount.
  setsid nsenter --net="/var/run/netns/$ns" unshare --uts --mount --propagation private sh -c "hostname node$i; \
    mount -t tmpfs tmpfs /run; exec /usr/sbin/dockerd -H unix:///run/docker.sock -H unix://$W/n$i/docker.sock \
    --cgroup-parent=/dfpc${id}n$i --data-root $W/n$i/root --exec-root $W/n$i/exec --pidfile $W/n$i/pid \
    --iptables=false --ip-forward=false --ip-masq=false --bridge=none --storage-driver=vfs" >"$W/n$i/log" 2>&1 </dev/null &
  echo $! >"$W/n$i/dockerd.pid"
  disown # stopped by pid (cleanup, scenario 5), without the shell's job notices
done
for i in 1 2 3; do
  wait_until 60 dk "$i" info >/dev/null 2>&1 || bail "dockerd of node$i answers within 60 s" "$W/n$i/log"
done
dk 1 swarm init --advertise-addr "$(addr 1)" >/dev/null 2>"$W/swarm.log" || bail 'docker swarm init' "$W/swarm.log"
token=$(dk 1 swarm join-token -q manager)
for i in 2 3; do
  dk "$i" swarm join --advertise-addr "$(addr $i)" --token "$token" "$(addr 1):2377" >/dev/null 2>"$W/swarm.log" || bail "node$i joins" "$W/swarm.log"
done
managers() { [[ $(dk $M node ls --format '{{.ManagerStatus}}' 2>/dev/null | grep -cE 'Leader|Reachable') == "$1" ]]; }
wait_until 30 managers 3 || bail 'three managers'
pass "three nodes, three managers, one Swarm ($NET.1-3, bridge $BR, $((SECONDS - t)) s; Docker $(dk 1 version --format '{{.Server.Version}}'))"

# Images on every node (each has its own store; there is no registry).
t=$SECONDS
loading=()
for i in 1 2 3; do
  (dk "$i" load -q -i "$W/dfp.tar" >"$W/n$i/load.log" 2>&1 && dk "$i" tag "$TAG" "$NEXT_TAG" &&
    tar -C "$W/listener" -c . | dk "$i" import --change 'ENV DF_DOCKER_HOST=unix:///var/run/docker.sock' \
      --change 'ENV DF_NOTIFY_LABEL=com.df.notify' --change 'ENV DF_INCLUDE_NODE_IP_INFO=false' \
      --change 'ENV DF_NODE_IP_INFO_INCLUDES_TASK_ADDRESS=true' --change 'ENV DF_RETRY=50' --change 'ENV DF_RETRY_INTERVAL=5' \
      --change 'ENV DF_NOTIFY_CREATE_SERVICE_METHOD=GET' --change 'ENV DF_NOTIFY_REMOVE_SERVICE_METHOD=GET' \
      --change 'ENV DF_SERVICE_POLLING_INTERVAL=-1' --change 'ENV DF_USE_DOCKER_SERVICE_EVENTS=true' \
      --change 'ENV DF_NODE_POLLING_INTERVAL=-1' --change 'ENV DF_USE_DOCKER_NODE_EVENTS=true' \
      --change 'ENV DF_SERVICE_NAME_PREFIX=' --change 'ENV DF_NOTIFY_CREATE_SERVICE_IMMEDIATELY=false' \
      --change 'CMD ["/docker-flow-swarm-listener"]' - "$LISTENER_TAG" >>"$W/n$i/load.log" 2>&1) &
  loading+=($!)
done
wait "${loading[@]}" # not a bare `wait`: the dockerds are jobs of this shell too
for i in 1 2 3; do
  dk "$i" image inspect "$TAG" "$NEXT_TAG" "$LISTENER_TAG" >/dev/null 2>&1 || bail "images on node$i" "$W/n$i/load.log"
done
rm -f "$W/dfp.tar"
pass "dfp's image ($TAG, $NEXT_TAG) and the listener's on every node ($((SECONDS - t)) s)"

# Pebble and its DNS on the bridge's address (the machine's side of the test's namespaces); the
# nodes forward their containers' traffic for that one address (masquerade in the node's own
# namespace; the test's dockerds run with --iptables=false).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/pebble-key.pem" -out "$W/pebble-ca.pem" \
  -days 2 -subj /CN=pebble -addext "subjectAltName=IP:$HOSTIP" >/dev/null 2>&1 || bail 'pebble key pair'
ACME_HOST=acme.cluster.test
cat >"$W/pebble.json" <<JSON
{"pebble": {"listenAddress": "$HOSTIP:14000", "managementListenAddress": "$HOSTIP:15000", "certificate": "$W/pebble-ca.pem",
 "privateKey": "$W/pebble-key.pem", "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address="$HOSTIP" --bind-interfaces --port=10053 \
  --address="/$ACME_HOST/$(addr 2)" --log-facility="$W/dnsmasq.log" --pid-file="$W/dnsmasq.pid" >/dev/null 2>&1 &
dnsmasq_pid=$!
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 pebble -config "$W/pebble.json" -dnsserver "$HOSTIP:10053" >"$W/pebble.log" 2>&1 &
pebble_pid=$!
for i in 1 2 3; do
  ip netns exec "${NS[i]}" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "${NS[i]}" nft -f - <<NFT || note "no masquerade to $HOSTIP on node$i: the replicas there cannot reach pebble"
table ip dfpcluster {
  chain dfppost {
    type nat hook postrouting priority 100
    ip daddr $HOSTIP oifname "dc${id}e$i" masquerade
  }
  chain dfpforward {
    type filter hook forward priority 0; policy drop
    ip daddr $HOSTIP accept
    ip saddr $HOSTIP accept
  }
}
NFT
done
wait_until 10 curl -s --max-time 2 --cacert "$W/pebble-ca.pem" -o /dev/null "https://$HOSTIP:14000/dir" || bail 'pebble answers' "$W/pebble.log"

# --- the services -------------------------------------------------------------------------------
t=$SECONDS
dk $M network create -d overlay --attachable proxy >/dev/null || bail 'overlay network proxy'
dk $M service create --quiet --detach --no-resolve-image --name proxy --mode global --network proxy \
  --endpoint-mode dnsrr --stop-grace-period 20s \
  --publish mode=host,target=80,published=80 --publish mode=host,target=443,published=443 \
  --publish mode=host,target=8080,published=8080 \
  --mount "type=bind,source=$W/pebble-ca.pem,target=/pebble-ca.pem,readonly" \
  --env LISTENER_ADDRESS=swarm-listener --env SERVICE_NAME=proxy \
  --env ACME_DIRECTORY_URL="https://$HOSTIP:14000/dir" --env ACME_CA_FILE=/pebble-ca.pem --env ACME_RETRY_MIN=5 \
  "$TAG" >/dev/null || bail 'docker service create proxy'
dk $M service create --quiet --detach --no-resolve-image --name swarm-listener --network proxy \
  --endpoint-mode dnsrr --constraint node.role==manager \
  --mount type=bind,source=/var/run/docker.sock,target=/var/run/docker.sock \
  --env DF_NOTIFY_CREATE_SERVICE_URL=http://proxy:8080/v1/docker-flow-proxy/reconfigure \
  --env DF_NOTIFY_REMOVE_SERVICE_URL=http://proxy:8080/v1/docker-flow-proxy/remove \
  "$LISTENER_TAG" >/dev/null || bail 'docker service create swarm-listener'
eventually 240 'the proxy: one replica per node, each ready (successfulinitreload 200 through its node)' all_ready 1 2 3
listener_node=$(task_node swarm-listener)
note "the listener runs on $listener_node; services up in $((SECONDS - t)) s"

# --- scenario 1: across nodes -------------------------------------------------------------------
s=$SECONDS
# shellcheck disable=SC2046
upstream web --constraint node.hostname==node2 $(labels /web)
eventually 90 '1. a service placed on node2 only is routed by the proxy of every node (/web)' routed /web/a web
check "1. its task runs on node2 (it runs on $(task_node web))" test "$(task_node web)" == node2
# shellcheck disable=SC2046
upstream web2 --constraint node.hostname==node3 $(labels /web2)
eventually 90 '1. a later service whose path extends a routed one (/web2 beside /web) is routed by every node' routed /web2/a web2
check '1. /web still goes to web everywhere' routed /web/b web
dk $M service update --quiet --detach --no-resolve-image --label-add com.df.servicePath=/moved web >/dev/null
eventually 60 '1. a label change (/web → /moved) reaches every node' routed /moved/a web
eventually 30 '1. the old path is no longer routed by any node' unrouted /web/a
dk $M service rm web2 >/dev/null
eventually 60 '1. a removal reaches every node' unrouted /web2/a
note "scenario 1: $((SECONDS - s)) s"

# --- scenario 2: distributed changes ------------------------------------------------------------
s=$SECONDS
upstream plain --constraint node.hostname==node1
wait_until 60 eval '[[ $(task_node plain) == node1 ]]'
reply=$(api 3 'reconfigure?serviceName=plain&servicePath=/plain&port=80&distribute=true')
check "2. reconfigure with distribute=true sent to node3 answers OK ($(cut -c1-90 <<<"$reply"))" grep -q '"Status":"OK"' <<<"$reply"
eventually 20 '2. the API service is routed by all three nodes (/plain)' routed /plain/a plain
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" -days 2 -subj /CN=one.cluster.test >/dev/null 2>&1
cat "$W/cert.pem" "$W/key.pem" >"$W/one.pem"
reply=$(curl -s --max-time 60 -X PUT --data-binary "@$W/one.pem" "http://$(addr 1):8080/v1/docker-flow-proxy/cert?certName=one.cluster.test&distribute=true")
check "2. a certificate uploaded to node1 with distribute=true answers OK ($(cut -c1-90 <<<"$reply"))" grep -q '"Status":"OK"' <<<"$reply"
eventually 20 '2. all three nodes serve it on 443' serves_cert one.cluster.test
note "scenario 2: $((SECONDS - s)) s"

# --- deployments across nodes (issue 23) --------------------------------------------------------
# The clients are probe.js `load` on the machine, each sending in turn through the published port
# of every node (one URL per node); $W/probe-stop ends them.
probe_load() { # probe_load <out> <url,url,…> <seconds> <workers> <pause ms> <method> <connection>
  local out=$1
  shift
  DFP_LOAD_STOP=$W/probe-stop node -e "$PROBE_JS" -- load "$@" >"$out" 2>&1 &
  load_pids+=($!)
}
probe_stop() { # probe_stop <pids…>: ends the clients started since and waits for them (bounded by their seconds)
  touch "$W/probe-stop"
  wait "$@"
  rm -f "$W/probe-stop"
}
on_nodes() { local i out=''; for i in "${alive[@]}"; do out+="${out:+,}http://$(addr "$i")$1"; done; echo "$out"; }

# Rolling update: 3 replicas, one per node, a HEALTHCHECK, discoveryType=DNS (one server per task).
s=$SECONDS
dk $M service create --quiet --detach --no-resolve-image --name roll --network proxy \
  --endpoint-mode dnsrr --replicas 3 --replicas-max-per-node 1 --env NAME=roll \
  --health-cmd "node -e '$HEALTH_JS'" --health-interval 1s --health-retries 1 --health-timeout 2s \
  --stop-grace-period 20s --update-parallelism 1 --update-delay 2s \
  $(labels /roll) --label com.df.discoveryType=DNS --label com.df.replicas=3 \
  "$TAG" node -e "$ROLL_JS" >/dev/null || fail 'roll: docker service create'
roll_nodes() { dk $M service ps --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' roll 2>/dev/null | grep Running | cut -d' ' -f1 | sort | tr '\n' ' '; }
wait_until 120 eval '[[ $(roll_nodes) == "node1 node2 node3 " ]]'
eventually 90 "roll. a service with 3 healthy tasks, one per node ($(roll_nodes)), is routed by every node (/roll)" routed /roll/a roll
rm -f "$W/probe-stop"
load_started=$SECONDS
pids=()
probe_load "$W/roll-new" "$(on_nodes /roll/fast)" 300 4 10 GET close
pids+=($!)
probe_load "$W/roll-keep" "$(on_nodes /roll/fast)" 300 2 20 GET keep-alive
pids+=($!)
probe_load "$W/roll-slow" "$(on_nodes /roll/slow)" 300 6 0 GET close
pids+=($!)
probe_load "$W/roll-post" "$(on_nodes /roll/post)" 300 2 20 POST close
pids+=($!)
sleep 3 # the clients are under way before the update starts
t0=$SECONDS
if timeout 240 /usr/bin/docker -H "unix://$W/n$M/docker.sock" service update --quiet --detach=false --force --update-parallelism 1 roll >/dev/null 2>&1; then
  pass "roll. docker service update --force --update-parallelism 1 of 3 tasks on 3 nodes converged in $((SECONDS - t0)) s (now on $(roll_nodes))"
else
  fail 'roll. docker service update --force did not converge within 240 s'
fi
sleep 3 # and keep going a little after it
probe_stop "${pids[@]}"
roll_figures "$W/roll" "$((SECONDS - load_started))" ' across nodes'
dk $M service rm roll >/dev/null
note "rolling update across nodes: $((SECONDS - s)) s"

# Canary: two services on one path with com.df.weight 90/10; the split through every node, then
# 50/50 and 0/100 by label updates under load (`set weight` on every replica, no reload).
s=$SECONDS
# shellcheck disable=SC2046
upstream stable $(labels /canary) --label com.df.weight=90
# shellcheck disable=SC2046
upstream canary $(labels /canary) --label com.df.weight=10
both_answer() { # both_answer <node>: a second of requests through it reaches both services
  local reply
  reply=$(DFP_LOAD_STOP=$W/probe-stop node -e "$PROBE_JS" -- load "http://$(addr "$1")/canary/w" 1 1 0 GET close)
  [[ $reply == *stable=* && $reply == *canary=* ]]
}
both_everywhere() { local i; for i in "${alive[@]}"; do both_answer "$i" || return 1; done; }
eventually 120 'canary. stable (weight 90) and canary (weight 10) share /canary on every node' both_everywhere
pids=()
for i in "${alive[@]}"; do
  probe_load "$W/split-$i" "http://$(addr "$i")/canary/s" 8 2 0 GET close
  pids+=($!)
done
wait "${pids[@]}"
for i in "${alive[@]}"; do
  read -r requests failed _ _ split <"$W/split-$i" || true
  stable_n=$(grep -o 'stable=[0-9]*' <<<"$split" | cut -d= -f2)
  canary_n=$(grep -o 'canary=[0-9]*' <<<"$split" | cut -d= -f2)
  total=$((${stable_n:-0} + ${canary_n:-0}))
  share=$((total > 0 ? ${stable_n:-0} * 1000 / total : 0))
  check "canary. through node$i: 90/10 within ±3 % (${requests:-0} requests, ${failed:-?} failed; ${split:-none}: stable $((share / 10)).$((share % 10)) %)" \
    eval "[[ ${failed:-x} == 0 && $total -ge 200 && $share -ge 870 && $share -le 930 ]]"
done
weight_of() { # weight_of <node> <server>: its weight in the shared backend, as that node's HAProxy reports it
  curl -s --max-time 5 "http://$(addr "$1"):8080/metrics" | sed -n "s/^haproxy_server_weight{backend=\"canary-be80_0\",server=\"$2\"} \([0-9]*\).*/\1/p"
}
weight_is() { # weight_is <server> <weight>: every node's HAProxy has it
  local i
  for i in "${alive[@]}"; do [[ $(weight_of "$i" "$1") == "$2" ]] || return 1; done
}
generations() { local i; for i in "${alive[@]}"; do curl -s --max-time 5 "http://$(addr "$i"):8080/metrics" | grep -oE '^dfp_haproxy_worker_generation [0-9]+' | cut -d' ' -f2; done | tr '\n' ' '; }
generations_before=$(generations)
load_started=$SECONDS
pids=()
probe_load "$W/canary-move" "$(on_nodes /canary/m)" 300 3 20 GET close
pids+=($!)
# One label update at a time, each applied on every node before the next: of two updates sent
# 0.1 s apart, the listener sent only the first one's notification in one run (docs/swarm.md).
for step in 'canary 50' 'stable 50' 'canary 100' 'stable 0'; do
  read -r svc weight <<<"$step"
  dk $M service update --quiet --detach --label-add "com.df.weight=$weight" "$svc" >/dev/null
  eventually 90 "canary. $svc's com.df.weight=$weight applied on every node" weight_is "$svc" "$weight"
  sleep 2 # requests at these weights
done
note "canary. weights as HAProxy reports them (stable/canary): $(for i in "${alive[@]}"; do echo "node$i $(weight_of "$i" stable)/$(weight_of "$i" canary)"; done | tr '\n' ' ')"
probe_stop "${pids[@]}"
read -r requests failed _ first_failure split <"$W/canary-move" || true
note "canary across nodes, 90/10 → 50/10 → 50/50 → 50/100 → 0/100 by labels: ${requests:-0} requests in $((SECONDS - load_started)) s, ${failed:-?} failed (first: ${first_failure:-none}; answered: ${split:-none})"
check "canary. 0 failed GETs through the three nodes while the weights moved (${requests:-0} requests)" test "${failed:-x}" == 0
generations_after=$(generations)
check "canary. the weight changes reloaded no node's HAProxy (worker generations $generations_before→ $generations_after)" \
  test -n "${generations_before// /}" -a "$generations_after" == "$generations_before"
last=$(DFP_LOAD_STOP=$W/probe-stop node -e "$PROBE_JS" -- load "$(on_nodes /canary/z)" 3 1 0 GET close)
check "canary. at 0/100 the stable service receives nothing through any node ($last)" eval '[[ $last != *stable=* && $last == *canary=* ]]'
dk $M service rm stable canary >/dev/null
note "canary across nodes: $((SECONDS - s)) s"

# Blue-green as the Docker Flow CLI's proxy step does it, sent to one node with distribute=true.
s=$SECONDS
upstream go-demo-blue
wait_until 90 eval '[[ -n $(task_node go-demo-blue) ]]'
reply=$(api 1 'reconfigure?serviceName=go-demo&serviceColor=blue&servicePath=/demo&port=80&distribute=true')
check "blue-green. the CLI's reconfigure with serviceColor=blue to node1 answers OK ($(cut -c1-60 <<<"$reply"))" grep -q '"Status":"OK"' <<<"$reply"
eventually 60 'blue-green. go-demo-blue serves /demo on every node' routed /demo/a go-demo-blue
load_started=$SECONDS
pids=()
probe_load "$W/bg-new" "$(on_nodes /demo/x)" 300 3 20 GET close
pids+=($!)
probe_load "$W/bg-keep" "$(on_nodes /demo/x)" 300 2 20 GET keep-alive
pids+=($!)
upstream go-demo-green
wait_until 90 eval '[[ -n $(task_node go-demo-green) ]]'
reply=$(api 2 'reconfigure?serviceName=go-demo&serviceColor=green&servicePath=/demo&port=80&distribute=true')
check "blue-green. the reconfigure with serviceColor=green to node2 answers OK ($(cut -c1-60 <<<"$reply"))" grep -q '"Status":"OK"' <<<"$reply"
eventually 60 'blue-green. go-demo-green serves /demo on every node' routed /demo/b go-demo-green
dk $M service rm go-demo-blue >/dev/null
blue_gone() { local i; for i in "${alive[@]}"; do [[ -z $(dk "$i" ps -q --filter label=com.docker.swarm.service.name=go-demo-blue) ]] || return 1; done; }
eventually 60 'blue-green. go-demo-blue removed, its task gone' blue_gone
probe_stop "${pids[@]}"
for kind in new keep; do
  read -r requests failed _ first_failure split <"$W/bg-$kind" || true
  note "blue-green across nodes, GETs on ${kind/keep/kept-alive} connections: ${requests:-0} requests in $((SECONDS - load_started)) s, ${failed:-?} failed (first: ${first_failure:-none}; answered: ${split:-none})"
  check "blue-green. 0 failed GETs on ${kind/keep/kept-alive} connections through deploy, switch and removal (${requests:-0})" test "${failed:-x}" == 0
done
check 'blue-green. every node routes /demo to go-demo-green' routed /demo/c go-demo-green
note "blue-green across nodes: $((SECONDS - s)) s"

# --- scenario 4: node drain under load ----------------------------------------------------------
s=$SECONDS
# Two tasks (one would leave the service down while it moves, whatever the proxy does), on node2
# and node3, found through DNS (discoveryType=DNS: one server per task, health-checked).
# shellcheck disable=SC2046
upstream drained --replicas 2 --constraint node.hostname!=node1 $(labels /drained) --label com.df.discoveryType=DNS
drained_nodes() { dk $M service ps --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' drained 2>/dev/null | grep Running | cut -d' ' -f1 | sort | tr '\n' ' '; }
wait_until 90 eval '[[ $(drained_nodes | wc -w) == 2 ]]'
X=3
[[ $(drained_nodes) == *node3* ]] || X=2
Y=$((5 - X))
eventually 60 "4. a service with tasks on node$X and node$Y ($(drained_nodes)) is routed by every node (/drained)" routed /drained/a drained
load 120 "$W/drain.out" "http://$(addr 1)/drained/x=drained" "http://$(addr $Y)/drained/x=drained" "http://$(addr 1)/plain/x=plain" "http://$(addr $Y)/moved/x=web"
dk $M node update --availability drain "node$X" >/dev/null
moved() { [[ $(drained_nodes) == "node$Y node$Y " ]] && [[ $(proxy_tasks_on "$X") == 0 ]]; }
eventually 60 "4. node$X drained: its proxy replica stops and the backend task moves to node$Y" moved
wait_until 30 routed /drained/b drained 1 "$Y"
sleep 2 # the client keeps going a little after the move
out=$(stop_load "$W/drain.out")
note "4. drain under load: $out"
check "4. 0 failed of $(figure requests "$out") requests through node1 and node$Y during the drain ($(figure seconds "$out") s)" test "$(figure failures "$out")" == 0
alive=(1 "$Y")
check '4. every route is still served on the remaining nodes' routed /drained/c drained
check '4. and /moved, /plain' eval 'routed /moved/c web && routed /plain/c plain'
note "scenario 4: $((SECONDS - s)) s"

# --- scenario 3: a replica on a node that had none ---------------------------------------------
s=$SECONDS
# Changes made while node$X has no replica: only its peers can give them to the new one.
upstream plain2
wait_until 60 eval '[[ -n $(task_node plain2) ]]'
reply=$(api 1 'reconfigure?serviceName=plain2&servicePath=/plain2&port=80&distribute=true')
check "3. an API service added while node$X has no replica answers OK" grep -q '"Status":"OK"' <<<"$reply"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/key2.pem" -out "$W/cert2.pem" -days 2 -subj /CN=two.cluster.test >/dev/null 2>&1
cat "$W/cert2.pem" "$W/key2.pem" >"$W/two.pem"
reply=$(curl -s --max-time 60 -X PUT --data-binary "@$W/two.pem" "http://$(addr $Y):8080/v1/docker-flow-proxy/cert?certName=two.cluster.test&distribute=true")
check "3. a certificate uploaded meanwhile answers OK" grep -q '"Status":"OK"' <<<"$reply"
dk $M node update --availability active "node$X" >/dev/null
t0=$(now_ms)
eventually 180 "3. node$X active again: a new replica starts there and is ready" all_ready "$X"
ready_ms=$(($(now_ms) - t0))
alive=(1 2 3)
# Checked at once: ready means it has taken them from a peer.
check "3. once ready, the new replica routes the API services (/plain2) (ready after $ready_ms ms)" routed /plain2/a plain2 "$X"
check '3. and /plain' routed /plain/a plain "$X"
check '3. and serves both uploaded certificates' eval 'serves_cert one.cluster.test $X && serves_cert two.cluster.test $X'
check '3. and the listener services (/moved, /drained)' eval 'routed /moved/a web $X && routed /drained/a drained $X'
note "scenario 3: $((SECONDS - s)) s"

# --- scenario 6: the proxy upgraded ------------------------------------------------------------
# With ports published in host mode (no IPVS here, so no routing mesh), Docker cannot start the new
# task of a node before the old one has freed the port: start-first keeps it pending ("host-mode
# port already in use"). Checked: that nothing is lost meanwhile; then the upgrade as Docker can do
# it here, stop-first one node at a time, and what every new replica has (docs/swarm.md).
s=$SECONDS
urls=()
for i in 1 2 3; do urls+=("http://$(addr $i)/plain/u=plain" "http://$(addr $i)/moved/u=web"); done
load 120 "$W/upgrade-a.out" "${urls[@]}"
dk $M service update --quiet --detach --no-resolve-image --image "$NEXT_TAG" --update-order start-first \
  --update-parallelism 1 --update-delay 2s proxy >"$W/update.log" 2>&1 || { fail '6. docker service update --update-order start-first'; show "$W/update.log"; }
held() { dk $M service ps --filter desired-state=running --format '{{.Image}} {{.CurrentState}} {{.Error}}' proxy 2>/dev/null | grep -q "^$NEXT_TAG Pending.*host-mode port already in use"; }
eventually 60 '6. start-first: Docker holds the first new replica pending, its node'"'"'s port being in use (a limit of host-mode ports)' held
sleep 10 # the client's window while the update is held
out=$(stop_load "$W/upgrade-a.out")
note "6. start-first held, under load: $out"
check "6. 0 failed of $(figure requests "$out") requests through the three nodes while the update is held ($(figure seconds "$out") s)" test "$(figure failures "$out")" == 0
load 300 "$W/upgrade-b.out" "${urls[@]}"
t0=$(now_ms)
dk $M service update --quiet --detach --no-resolve-image --update-order stop-first --update-parallelism 1 --update-delay 5s proxy >"$W/update.log" 2>&1 ||
  { fail '6. docker service update --update-order stop-first'; show "$W/update.log"; }
upgraded() {
  local images
  images=$(dk $M service ps --filter desired-state=running --format '{{.Image}} {{.CurrentState}}' proxy 2>/dev/null)
  [[ $(grep -c "^$NEXT_TAG Running" <<<"$images") == 3 ]] && [[ $(wc -l <<<"$images") == 3 ]] && all_ready
}
eventually 300 '6. stop-first, one node at a time: every node runs a ready replica of the next image' upgraded
out=$(stop_load "$W/upgrade-b.out")
note "6. stop-first upgrade under load ($(($(now_ms) - t0)) ms): $out"
note "6. (each node's port is closed while its own replica is replaced: those failures are the limit above)"
check '6. services kept on every node (/plain, /plain2, /moved, /drained)' eval 'routed /plain/v plain && routed /plain2/v plain2 && routed /moved/v web && routed /drained/v drained'
check '6. certificates kept on every node' eval 'serves_cert one.cluster.test && serves_cert two.cluster.test'
note "scenario 6: $((SECONDS - s)) s"

# --- scenario 7: ACME in the cluster ------------------------------------------------------------
s=$SECONDS
# shellcheck disable=SC2046
upstream secure $(labels /secure) --label "com.df.letsencrypt.host=$ACME_HOST" --label com.df.letsencrypt.email=ops@cluster.test
eventually 60 '7. the service asking for a certificate is routed by every node' routed /secure/a secure
eventually 90 "7. all three nodes serve a certificate for $ACME_HOST" serves_cert "$ACME_HOST"
orders=$(grep -c 'POST /order-plz' "$W/pebble.log")
issuer=$(openssl s_client -connect "$(addr 3):443" -servername "$ACME_HOST" </dev/null 2>/dev/null | openssl x509 -noout -issuer 2>/dev/null)
check "7. exactly one order for $ACME_HOST across the three replicas (pebble saw $orders; issuer: ${issuer#issuer=})" test "$orders" == 1 ||
  { grep -n 'order' "$W/pebble.log" | tail -n 20 | sed 's/^/#   /'; dlog_grep 'ACME'; }
note "scenario 7: $((SECONDS - s)) s"

# --- scenario 5: a manager lost -----------------------------------------------------------------
s=$SECONDS
lost=$(task_node swarm-listener)
lost=${lost#node}
[[ $lost =~ ^[123]$ ]] || bail "the listener's node ($lost)"
alive=()
for i in 1 2 3; do [[ $i != "$lost" ]] && alive+=("$i"); done
M=${alive[0]}
note "5. the listener runs on node$lost (leader: $(dk $M node ls --format '{{.Hostname}} {{.ManagerStatus}}' | grep Leader | cut -d' ' -f1)); killing its dockerd"
# The routes whose backend task runs on a node that stays: a backend on the lost node is lost with it.
kept=()
for route in /plain=plain /plain2=plain2 /moved=web /drained=drained /secure=secure; do
  if [[ $(task_node "${route#*=}") == "node$lost" ]]; then note "5. ${route#*=} runs on node$lost: left out of the checks"; else kept+=("$route"); fi
done
urls=()
for i in "${alive[@]}"; do for route in "${kept[@]}"; do urls+=("http://$(addr $i)${route%=*}/k=${route#*=}"); done; done
load 180 "$W/lost.out" "${urls[@]}"
# The machine is lost: dockerd killed, then everything it ran, and the node's link cut.
kill -KILL "$(cat "$W/n$lost/dockerd.pid")"
for pid in $(grep -l -a -F "$W/n$lost/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do kill -KILL "$pid" 2>/dev/null; done
ip netns pids "${NS[lost]}" | xargs -r kill -KILL 2>/dev/null
for f in /sys/fs/cgroup/pids/dfpc${id}n$lost/*/cgroup.procs; do [[ -f $f ]] && xargs -r kill -KILL <"$f" 2>/dev/null; done
ip link set "dc${id}v$lost" down
t0=$(now_ms)
listener_back() {
  local node
  node=$(dk $M service ps --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' swarm-listener 2>/dev/null | grep Running | head -1)
  [[ -n $node && $node != "node$lost "* ]]
}
eventually 120 "5. the listener runs again on another manager" listener_back
note "5. the listener now runs on $(task_node swarm-listener), $(($(now_ms) - t0)) ms after the kill"
# shellcheck disable=SC2046
upstream after $(labels /after)
t0=$(now_ms)
eventually 30 '5. a service created after the failover is routed by every remaining replica within 30 s' routed /after/a after
out=$(stop_load "$W/lost.out")
note "5. manager lost under load: $out"
check "5. no route lost: 0 failed of $(figure requests "$out") requests through the remaining nodes ($(figure seconds "$out") s)" test "$(figure failures "$out")" == 0
every_kept() { local route; for route in "${kept[@]}"; do routed "${route%=*}/z" "${route#*=}" || return 1; done; }
check "5. every route whose backend runs on a remaining node still served by the remaining replicas (${kept[*]})" every_kept
note "scenario 5: $((SECONDS - s)) s"

((failures)) && dlog 10
finish
