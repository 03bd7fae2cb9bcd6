# Sourced by the Swarm tests (run.sh on one node, cluster.sh on three): what the deployment
# scenarios of issue 23 share (docs/swarm.md, "Deployments").
#
# ROLL_JS, the rolling update's upstream: answers "notready …" until 3 s after it started (its
# HEALTHCHECK, HEALTH_JS, fails until then), a path ending in /slow after 2 s, and on SIGTERM
# finishes what it has in flight before it exits.
# shellcheck disable=SC2034 # used by the scripts that source this file
ROLL_JS='const os = require("node:os"); const started = Date.now(); const ready = () => Date.now() - started > 3000
const server = require("node:http").createServer((q, s) => {
  if (q.url === "/health") { s.statusCode = ready() ? 200 : 503; return s.end() }
  const answer = () => s.end(`${ready() ? "" : "notready "}${process.env.NAME} ${os.hostname()} ${q.url}\n`)
  q.resume(); q.on("end", () => (q.url.endsWith("/slow") ? setTimeout(answer, 2000) : answer()))
}).listen(80)
process.on("SIGTERM", () => { server.close(() => process.exit(0)); server.closeIdleConnections() })'
# shellcheck disable=SC2034
HEALTH_JS='require("node:http").get("http://127.0.0.1/health", (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on("error", () => process.exit(1))'

# roll_figures <prefix> <seconds> [where]: the figures and checks of a rolling update's four
# clients (probe.js `load`), whose lines are in <prefix>-new, -keep, -slow and -post: 0 failed GETs,
# no answer from a task before its health check passed, ≥ 50 requests/s on new connections. POSTs
# that fail are reported, not counted as failures: dfp never sends a POST twice (docs/swarm.md).
roll_figures() {
  local prefix=$1 seconds=$2 where=${3:-} kind label requests failed not_ready first_failure
  ((seconds > 0)) || seconds=1
  for kind in new keep slow post; do
    read -r requests failed not_ready first_failure _ <"$prefix-$kind" || true
    label=$(case $kind in new) echo 'GETs on new connections' ;; keep) echo 'GETs on kept-alive connections' ;; slow) echo 'GETs taking 2 s' ;; post) echo 'POSTs' ;; esac)
    note "rolling update$where, $label: ${requests:-0} requests in $seconds s, ${failed:-?} failed (first: ${first_failure:-none}), ${not_ready:-?} answered by a task not ready"
    if [[ $kind != post ]]; then
      check "rolling update$where: 0 failed $label (${requests:-0} requests)" test "${failed:-x}" == 0
    fi
    check "rolling update$where: no $label answered by a task before its health check passed" test "${not_ready:-x}" == 0
  done
  read -r requests _ <"$prefix-new" || true
  check "rolling update$where: the client sent at least 50 requests/s on new connections ($((${requests:-0} / seconds)) /s)" test "$((${requests:-0} / seconds))" -ge 50
}
