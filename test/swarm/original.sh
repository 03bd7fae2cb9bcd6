# shellcheck shell=bash
# Sourced by run.sh: the original Go Docker Flow Proxy (../shared/tools/dfp-go) beside dfp in the
# single-node Swarm, through the same rolling update (issue 23, docs/swarm.md "Deployments").
#
# original_image: test/swarm/original.Dockerfile built with buildah on dfp's image (the image
# test's debootstrap base, Debian's haproxy) and loaded into the engine as $ORIGINAL_TAG. Needs
# buildah's storage lock: run.sh calls it before it lets the lock go.
# original_roll: the original as service `proxy-go` (one replica, dnsrr, CHECK_RESOLVERS=true so
# its server-template has `resolvers docker`: with its default, false, the template keeps the
# addresses of its last reload), given the rolling service by the reconfigure the listener sends
# for its labels, then `docker service update --force --update-parallelism 1` of that service
# while the same four clients as dfp's send through the original's HAProxy. Its figures are
# printed, not checked: they are the original's.
ORIGINAL_TOOLS=${ORIGINAL_TOOLS:-$REPO/../shared/tools}
[[ -x $ORIGINAL_TOOLS/dfp-go/bin/docker-flow-proxy ]] || ORIGINAL_TOOLS=/work/shared/tools
ORIGINAL_TAG=dfp-go:swarm-test

original_image() {
  local t=$SECONDS log=$tmp/original-build.log
  if "${B[@]}" bud --isolation chroot --pull=never --format docker --build-arg BASE="$IMAGE" \
    -f "$REPO/test/swarm/original.Dockerfile" -t localhost/dfp-go:test "$ORIGINAL_TOOLS" >"$log" 2>&1 &&
    "${B[@]}" push --quiet localhost/dfp-go:test "docker-archive:$tmp/original.tar:$ORIGINAL_TAG" >>"$log" 2>&1 &&
    "${D[@]}" load -q -i "$tmp/original.tar" >>"$log" 2>&1; then
    images+=("$ORIGINAL_TAG")
    pass "the original's image $ORIGINAL_TAG (buildah on dfp's image; $((SECONDS - t)) s)"
  else
    fail "the original's image $ORIGINAL_TAG"
    show "$log" 15
  fi
  rm -f "$tmp/original.tar"
}

original_roll() {
  local gctr reply kind label requests failed not_ready first_failure seconds started
  "${D[@]}" image inspect "$ORIGINAL_TAG" >/dev/null 2>&1 || return 0
  services+=(proxy-go)
  "${D[@]}" service create --quiet --detach --no-resolve-image --name proxy-go --network proxy \
    --endpoint-mode dnsrr --container-label dfp-swarm-test=1 --env CHECK_RESOLVERS=true "$ORIGINAL_TAG" >/dev/null ||
    { fail 'docker service create proxy-go (the original)'; return 0; }
  go_ctr() { "${D[@]}" ps -q --filter label=com.docker.swarm.service.name=proxy-go --filter status=running | head -n 1; }
  go_ping() { [[ $(probe "$(go_ctr)" get http://127.0.0.1:8080/v1/docker-flow-proxy/ping 2>/dev/null) == 200* ]]; }
  wait_until 180 go_ping
  gctr=$(go_ctr)
  reply=$(probe "$gctr" get 'http://127.0.0.1:8080/v1/docker-flow-proxy/reconfigure?serviceName=roll&servicePath=/roll&port=80&discoveryType=DNS&replicas=3')
  check "the original: the listener's reconfigure of the rolling service answers 200 (${reply:0:50})" test "${reply%% *}" == 200
  eventually 60 'the original routes the rolling service' routes "$gctr" /roll/a roll
  "${D[@]}" exec "$gctr" rm -f /tmp/dfp-load-stop
  started=$SECONDS
  probe "$gctr" load http://127.0.0.1/roll/fast 600 4 10 GET close >"$tmp/go-new" &
  load_pids=($!)
  probe "$gctr" load http://127.0.0.1/roll/fast 600 2 20 GET keep-alive >"$tmp/go-keep" &
  load_pids+=($!)
  probe "$gctr" load http://127.0.0.1/roll/slow 600 6 0 GET close >"$tmp/go-slow" &
  load_pids+=($!)
  probe "$gctr" load http://127.0.0.1/roll/post 600 2 20 POST close >"$tmp/go-post" &
  load_pids+=($!)
  sleep 5
  if timeout 480 "${D[@]}" service update --quiet --detach=false --force --update-parallelism 1 roll >/dev/null 2>&1; then
    pass 'the original: the rolling update converged'
  else
    fail 'the original: the rolling update did not converge within 480 s'
  fi
  sleep 5
  "${D[@]}" exec "$gctr" touch /tmp/dfp-load-stop
  wait "${load_pids[@]}"
  seconds=$((SECONDS - started))
  for kind in new keep slow post; do
    read -r requests failed not_ready first_failure _ <"$tmp/go-$kind" || true
    label=$(case $kind in new) echo 'GETs on new connections' ;; keep) echo 'GETs on kept-alive connections' ;; slow) echo 'GETs taking 2 s' ;; post) echo 'POSTs' ;; esac)
    note "the original, rolling update, $label: ${requests:-0} requests in $seconds s, ${failed:-?} failed (first: ${first_failure:-none}), ${not_ready:-?} answered by a task not ready"
  done
  "${D[@]}" service rm proxy-go >/dev/null 2>&1
}
