#!/usr/bin/env bash
# Courier's container image, built and run here with Podman and no container registry: the base
# images the Dockerfile names cannot be pulled, so stand-ins for them are made once from Debian's
# own packages (scripts/image/README.md says how, and what differs from the real ones), tagged with
# the names the Dockerfile uses, and the project's unmodified Dockerfile is built on them.
#
# Usage:
#   scripts/image.sh install          # podman, runc, mmdebstrap (Debian packages), podman-compose
#   scripts/image.sh bases            # the stand-in base images (once; cached)
#   scripts/image.sh build            # courier:VERSION from the Dockerfile; prints the image name
#   scripts/image.sh run [PODMAN-RUN-OPTIONS...] [-- COURIER-ARGS...]
#                                     # podman run --rm courier:VERSION ...; options before `--`
#                                     # go to podman (-e, --network host, -d ...)
#   scripts/image.sh podman ARGS...   # podman with this project's settings (CONTAINERS_CONF)
#   scripts/image.sh compose ARGS...  # podman-compose with the same settings (compose.yaml), after
#                                     # making stand-ins for its apache/kafka and node:20-bookworm-slim
#   scripts/image.sh name             # prints courier:VERSION
#   scripts/image.sh clean            # removes the stand-ins, the image and .image/
#
# Each command does what the ones before it need, once: `build` installs and makes the bases when
# they are missing. Progress goes to stderr; stdout has only what a command prints on purpose.
# Caches: .image/ (git-ignored: the base tarballs, podman-compose), Podman's image store.
# Env: IMAGE_BUILD_OPTS (extra `podman build` options, e.g. --no-cache); IMAGE_BUILD_LOG (a file
# for podman build's output instead of stderr, its last lines shown when the build fails).
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
readonly SCRIPT_DIR REPO_ROOT
readonly RECIPES=$SCRIPT_DIR/image
readonly CACHE_DIR=$REPO_ROOT/.image
readonly LOCK_DIR=$CACHE_DIR/locks
export CONTAINERS_CONF=$RECIPES/containers.conf

# The names the Dockerfile's FROM lines use (Podman expands short names to docker.io/library/).
readonly BUILDER_IMAGE=docker.io/library/node:20-bookworm
readonly RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot
# The Debian both stand-ins are made of (not a name the Dockerfile uses).
readonly DEBIAN_IMAGE=localhost/courier-standin/debian:bookworm-minbase
readonly SUITE=bookworm
readonly MIRROR=http://deb.debian.org/debian
# The packages the distroless stand-in is made of, as distroless's nodejs20-debian12 (cc + base).
readonly RUNTIME_PACKAGES=libc6,libgcc-s1,libstdc++6,libssl3,ca-certificates,tzdata,netbase,base-files
readonly COMPOSE_VERSION=1.6.0
# compose.yaml's other images: stand-ins made by `compose` (the broker's jars from scripts/kafka.sh).
readonly KAFKA_IMAGE=docker.io/apache/kafka:4.1.1
readonly KAFKA_VERSION=4.1.1
readonly SLIM_IMAGE=docker.io/library/node:20-bookworm-slim

log() { printf 'image.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Podman as root (its default store, /var/lib/containers), with this project's containers.conf.
podman() { as_root env CONTAINERS_CONF="$CONTAINERS_CONF" podman "$@"; }

version() { node -p 'require(process.argv[1]).version' "$REPO_ROOT/package.json"; }
image_name() { printf 'courier:%s' "$(version)"; }

# One `bases`/`build` at a time (parallel test runs, several worktrees): they share Podman's store.
# Released as soon as the step is done: a container started later (compose) would inherit the fd
# through conmon and hold the lock for as long as it runs.
LOCK_FD=
lock() {
  mkdir -p "$LOCK_DIR"
  exec {LOCK_FD}>"$LOCK_DIR/$1.lock"
  flock -w 1800 "$LOCK_FD" || die "timed out waiting for another '$1'"
}
unlock() {
  [[ -z $LOCK_FD ]] || exec {LOCK_FD}>&-
  LOCK_FD=
}

# A recipe's fingerprint, stored as a label on what it made, so a changed recipe makes it again.
fingerprint() { sha256sum | cut -c1-16; }
label_of() { podman image inspect --format "{{ index .Labels \"$2\" }}" "$1" 2>/dev/null || true; }

# -------------------------------------------------------------- install ----

cmd_install() {
  local missing=()
  type -P podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  # Compose's networks: netavark with aardvark-dns resolves service names (kafka:9092).
  command -v aardvark-dns >/dev/null 2>&1 || [ -x /usr/lib/podman/aardvark-dns ] || missing+=(aardvark-dns)
  [ -x /usr/lib/podman/netavark ] || missing+=(netavark)
  # netavark sets up a network's NAT and port forwarding with iptables.
  type -P iptables >/dev/null || missing+=(iptables)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]} (first run only)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# podman-compose from PyPI: Debian's 1.0.3 cannot run compose.yaml (it turns network_mode:
# service:app into a bridge network option, and ignores depends_on conditions).
install_compose() {
  local venv=$CACHE_DIR/compose
  if [ ! -x "$venv/bin/podman-compose" ] || [ "$(cat "$venv/.version" 2>/dev/null)" != "$COMPOSE_VERSION" ]; then
    command -v python3 >/dev/null 2>&1 || die "python3 not found (podman-compose needs it)"
    log "installing podman-compose $COMPOSE_VERSION from PyPI into ${venv#"$REPO_ROOT"/} (first run only)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "podman-compose==$COMPOSE_VERSION" >&2
    printf '%s\n' "$COMPOSE_VERSION" >"$venv/.version"
  fi
}

# ---------------------------------------------------------------- bases ----

# This machine's Node.js 20: the stand-ins carry it (bookworm's own nodejs is 18).
host_node() {
  local node
  node=$(readlink -f "$(type -P node)") || die "node not found"
  [[ $("$node" --version) == v20.* ]] || die "$node is $("$node" --version); the stand-ins need Node.js 20 (the Dockerfile's NODE_MAJOR)"
  printf '%s' "$node"
}

# The CA bundle this machine's npm and Node trust (its TLS proxy's CA included).
host_ca() {
  local f
  for f in "${NODE_EXTRA_CA_CERTS:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
    [[ -n $f && -f $f ]] && { printf '%s' "$f"; return 0; }
  done
  die "no CA bundle found (set NODE_EXTRA_CA_CERTS)"
}

debian_sources() {
  printf '%s\n' "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
    "deb ${MIRROR%/debian}/debian-security $SUITE-security main"
}

# mmdebstrap into a directory in .image/, a hook run on it (on the host: the tree may have no shell),
# then `podman import` of its tarball with the given --change options.
make_rootfs_image() {
  local name=$1 stamp=$2 variant=$3 include=$4 hook=$5
  shift 5
  local dir=$CACHE_DIR/bases/${name##*/} args sources=()
  dir=${dir//:/-}
  args=(--variant="$variant" --mode=root --format=directory --quiet)
  [[ -n $include ]] && args+=(--include="$include")
  mapfile -t sources < <(debian_sources)
  rm -rf "$dir" "$dir.tar"
  mkdir -p "$CACHE_DIR/bases"
  nice -n 10 mmdebstrap "${args[@]}" "$SUITE" "$dir" "${sources[@]}" >&2 || die "mmdebstrap failed for $name"
  [[ -z $hook ]] || "$hook" "$dir" || die "$hook failed"
  tar --numeric-owner --xattrs -C "$dir" -cf "$dir.tar" .
  podman import --quiet "$@" --change "LABEL courier.standin.recipe=$stamp" "$dir.tar" "$name" >/dev/null
  rm -rf "$dir" "$dir.tar"
}

base_debian() {
  local stamp
  stamp=$(printf '%s\n' minbase "$(debian_sources)" | fingerprint)
  [[ $(label_of "$DEBIAN_IMAGE" courier.standin.recipe) == "$stamp" ]] && return 0
  log "making $DEBIAN_IMAGE with mmdebstrap --variant=minbase (first run only)..."
  make_rootfs_image "$DEBIAN_IMAGE" "$stamp" minbase "" "" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["bash"]'
}

base_builder() {
  local node stamp ctx=$CACHE_DIR/builder node_version npm_dir include_dir
  node=$(host_node)
  node_version=$("$node" --version)
  npm_dir=$(dirname "$node")/../lib/node_modules/npm
  [[ -d $npm_dir ]] || npm_dir=$(npm root -g)/npm
  include_dir=$(npm config get nodedir 2>/dev/null || true)/include/node
  [[ -f $include_dir/node_api.h ]] || include_dir=$(dirname "$node")/../include/node
  [[ -f $include_dir/node_api.h && -f $include_dir/common.gypi ]] || die "Node.js headers not found (looked in $include_dir)"
  stamp=$({ cat "$RECIPES/builder.Containerfile"; echo "$node_version $(label_of "$DEBIAN_IMAGE" courier.standin.recipe)"; sha256sum "$(host_ca)"; } | fingerprint)
  [[ $(label_of "$BUILDER_IMAGE" courier.standin.recipe) == "$stamp" ]] && return 0
  log "making the stand-in $BUILDER_IMAGE: $DEBIAN_IMAGE, build tools and this machine's Node.js $node_version (first run only)..."
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp "$node" "$ctx/node"
  cp -a "$(readlink -f "$npm_dir")" "$ctx/npm"
  cp -a "$(readlink -f "$include_dir")" "$ctx/include"
  cp "$(host_ca)" "$ctx/machine-ca.crt"
  nice -n 10 env CONTAINERS_CONF="$CONTAINERS_CONF" podman build --quiet --network host --pull=never \
    --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" --build-arg NODE_VERSION="${node_version#v}" \
    --label courier.standin.recipe="$stamp" -f "$RECIPES/builder.Containerfile" -t "$BUILDER_IMAGE" "$ctx" >/dev/null ||
    die "building $BUILDER_IMAGE failed"
  rm -rf "$ctx"
}

distroless_hook() { bash "$RECIPES/distroless.sh" "$1" "$(host_node)"; }

# What distroless's nodejs20-debian12:nonroot image config says (and what `podman import` sets).
readonly RUNTIME_CONFIG=(
  'USER 65532:65532'
  'WORKDIR /home/nonroot'
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
  'ENTRYPOINT ["/nodejs/bin/node"]'
)

base_runtime() {
  local node stamp changes=() c
  node=$(host_node)
  stamp=$({ cat "$RECIPES/distroless.sh"; echo "$RUNTIME_PACKAGES $("$node" --version)"; debian_sources; printf '%s\n' "${RUNTIME_CONFIG[@]}"; } | fingerprint)
  [[ $(label_of "$RUNTIME_IMAGE" courier.standin.recipe) == "$stamp" ]] && return 0
  log "making the stand-in $RUNTIME_IMAGE from Debian packages and this machine's Node.js (first run only)..."
  for c in "${RUNTIME_CONFIG[@]}"; do changes+=(--change "$c"); done
  make_rootfs_image "$RUNTIME_IMAGE" "$stamp" extract "$RUNTIME_PACKAGES" distroless_hook "${changes[@]}"
}

cmd_bases() {
  cmd_install
  lock bases
  local t0=$SECONDS
  base_debian
  base_builder
  base_runtime
  unlock
  (( SECONDS - t0 < 2 )) || log "stand-in base images ready in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- build ----

cmd_build() {
  cmd_bases
  local name t0=$SECONDS
  name=$(image_name)
  lock build
  log "building $name from the Dockerfile..."
  # --pull=never: the FROM names are the stand-ins in the local store, never a registry.
  # --network host: the build's apt-get and npm reach Debian's mirror and the npm registry.
  local out=${IMAGE_BUILD_LOG:-/dev/stderr}
  [[ -z ${IMAGE_BUILD_LOG:-} ]] || { mkdir -p "$(dirname "$out")"; : >"$out"; log "podman build's output: $out"; }
  # shellcheck disable=SC2086 # IMAGE_BUILD_OPTS is a list of options
  if ! nice -n 10 env CONTAINERS_CONF="$CONTAINERS_CONF" podman build --pull=never --network host \
    ${IMAGE_BUILD_OPTS:-} -f "$REPO_ROOT/Dockerfile" -t "$name" "$REPO_ROOT" >>"$out" 2>&1; then
    [[ -z ${IMAGE_BUILD_LOG:-} ]] || tail -n 40 "$out" >&2
    die "podman build failed"
  fi
  unlock
  log "$name built in $((SECONDS - t0)) s, $(podman image inspect --format '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1 / 1e6}')"
  printf '%s\n' "$name"
}

# ------------------------------------------------------------------ run ----

cmd_run() {
  local opts=() args=()
  while (($#)); do
    if [[ $1 == -- ]]; then shift; args=("$@"); break; fi
    opts+=("$1")
    shift
  done
  podman image exists "$(image_name)" || die "no image $(image_name); run: $0 build"
  podman run --rm "${opts[@]}" "$(image_name)" "${args[@]}"
}

# A stand-in built from a Containerfile in scripts/image/ on the Debian stand-in, with the context
# staged by the caller in $3; rebuilt when the Containerfile or the context changes.
build_standin() {
  local name=$1 containerfile=$2 ctx=$3 stamp
  stamp=$({ cat "$RECIPES/$containerfile"; label_of "$DEBIAN_IMAGE" courier.standin.recipe; (cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum); } | fingerprint)
  if [[ $(label_of "$name" courier.standin.recipe) != "$stamp" ]]; then
    log "making the stand-in $name ($containerfile; first run only)..."
    nice -n 10 env CONTAINERS_CONF="$CONTAINERS_CONF" podman build --quiet --network host --pull=never \
      --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" --label courier.standin.recipe="$stamp" \
      -f "$RECIPES/$containerfile" -t "$name" "$ctx" >/dev/null || die "building $name failed"
  fi
  rm -rf "$ctx"
}

# compose.yaml's broker and app images, as stand-ins (Courier's own image is built by compose).
cmd_compose_bases() {
  cmd_bases
  lock compose-bases
  local ctx=$CACHE_DIR/kafka-context
  bash "$SCRIPT_DIR/kafka.sh" fetch
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp -a "$REPO_ROOT/.kafka/$KAFKA_VERSION/libs" "$ctx/libs"
  rm -f "$ctx/libs/.fetched"
  mkdir -p "$ctx/bin"
  cp "$RECIPES/kafka/kafka-run-class.sh" "$ctx/bin/"
  cp "$RECIPES/kafka/run" "$RECIPES/kafka/tools-log4j2.properties" "$ctx/"
  build_standin "$KAFKA_IMAGE" kafka.Containerfile "$ctx"
  ctx=$CACHE_DIR/slim-context
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp "$(host_node)" "$ctx/node"
  build_standin "$SLIM_IMAGE" node-slim.Containerfile "$ctx"
  unlock
}

cmd_compose() {
  cmd_compose_bases
  install_compose
  # podman-compose calls `podman` from PATH; CONTAINERS_CONF is exported above.
  (cd "$REPO_ROOT" && "$CACHE_DIR/compose/bin/podman-compose" "$@")
}

cmd_clean() {
  local name
  name=$(image_name)
  if type -P podman >/dev/null; then
    podman rmi --force "$name" "$BUILDER_IMAGE" "$RUNTIME_IMAGE" "$KAFKA_IMAGE" "$SLIM_IMAGE" "$DEBIAN_IMAGE" >/dev/null 2>&1 || true
  fi
  rm -rf "$CACHE_DIR"
  log "removed $name, the stand-in base images and ${CACHE_DIR#"$REPO_ROOT"/}/"
}

main() {
  (($#)) || usage
  local cmd=$1
  shift
  case $cmd in
    install) cmd_install; install_compose ;;
    bases) cmd_bases ;;
    build) cmd_build ;;
    run) cmd_run "$@" ;;
    podman) cmd_install; podman "$@" ;;
    compose) cmd_compose "$@" ;;
    name) image_name; echo ;;
    clean) cmd_clean ;;
    -h | --help | help) usage 0 ;;
    *) log "unknown command '$cmd'"; usage ;;
  esac
}

main "$@"
