#!/usr/bin/env bash
# Build the sc-security-action image with buildah (no Docker engine): `make image`.
#   BASE / GO_IMAGE   base images by digest; default: the local ones tools/image/build-base.sh makes
#   IMAGE             the tag to commit (default localhost/sc-security-action:dev, :dev-arm64 for arm64)
#   SC_CI_IMAGE_PLATFORM=linux/amd64|linux/arm64   the target (default this machine's). Another platform
#                     needs qemu-user-static in binfmt_misc (tools/image/deps.sh --arm64): the tools are
#                     cross-compiled natively, only the OS layer, pip and the final checks are emulated.
#   SC_CI_IMAGE_GO_CACHE=host|none   host (default): mount this machine's Go module and build caches into
#                     the tools stage, so `go install` reuses what `make tools` compiled (same Go, same
#                     flags: the binaries are the same bytes); none: compile from an empty cache.
#   SC_CI_IMAGE_NO_CACHE=1           rebuild every layer (buildah --no-cache).
# Prints the build time, and on the last line IMAGE_ID=… IMAGE_DIGEST=… IMAGE_SIZE=… (bytes) for the test.
set -euo pipefail
cd "$(dirname "$0")/../.."
log() { echo "image: $*" >&2; }
command -v buildah >/dev/null || { log "buildah is missing: tools/image/deps.sh"; exit 2; }

host_platform="linux/$(dpkg --print-architecture)"
PLATFORM="${SC_CI_IMAGE_PLATFORM:-$host_platform}"
case "$PLATFORM" in linux/amd64|linux/arm64) ;; *) log "SC_CI_IMAGE_PLATFORM=$PLATFORM: linux/amd64 or linux/arm64"; exit 2 ;; esac
if [ -z "${BASE:-}" ] || [ -z "${GO_IMAGE:-}" ] || [ -z "${BUILD_BASE:-}" ]; then
  bases=$(bash tools/image/build-base.sh)
  BUILD_BASE="${BUILD_BASE:-$(sed -n 's/^BASE=//p' <<<"$bases")}"
  GO_IMAGE="${GO_IMAGE:-$(sed -n 's/^GO_IMAGE=//p' <<<"$bases")}"
  if [ "$PLATFORM" = "$host_platform" ]; then
    BASE="${BASE:-$BUILD_BASE}"
  else  # the target's own base: local images are single-platform, upstream's digest is an index
    BASE="${BASE:-$(SC_CI_IMAGE_ARCH="${PLATFORM#linux/}" bash tools/image/build-base.sh | sed -n 's/^BASE=//p')}"
  fi
fi
suffix=""; [ "$PLATFORM" = "$host_platform" ] || suffix="-${PLATFORM#linux/}"
IMAGE="${IMAGE:-localhost/sc-security-action:dev$suffix}"
VERSION="${VERSION:-$(sed -n 's/^__version__ = "\(.*\)".*/\1/p' sc_ci/__init__.py)}"
REVISION="${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
# The commit's time, not the clock's: the same commit gives the same label.
CREATED="${CREATED:-$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)}"

volumes=()
if [ "${SC_CI_IMAGE_GO_CACHE:-host}" = host ] && command -v go >/dev/null; then
  gomod=$(go env GOMODCACHE); gocache=$(go env GOCACHE)
  mkdir -p "$gomod" "$gocache"
  volumes+=(-v "$gomod:/root/go/pkg/mod" -v "$gocache:/root/.cache/go-build")
fi
# This machine's CA bundle for the build's downloads (Go proxy, PyPI), mounted for RUN steps only; the
# image keeps Debian's ca-certificates. SC_CI_IMAGE_CA=none skips it.
ca="${SC_CI_IMAGE_CA:-/etc/ssl/certs/ca-certificates.crt}"
if [ "$ca" != none ] && [ -f "$ca" ]; then
  volumes+=(-v "$(readlink -f "$ca"):/run/sc-ci-build-ca.crt:ro")
  cargs=(--build-arg BUILD_CA_BUNDLE=/run/sc-ci-build-ca.crt)
else
  cargs=()
fi
flags=()
[ "${SC_CI_IMAGE_NO_CACHE:-0}" = 1 ] && flags+=(--no-cache)
# The Dockerfile's LABEL takes these from build arguments (what docker buildx uses); buildah 1.28 reuses a
# cached LABEL step when only an ARG changed, so the per-commit labels are also set on the commit itself.

log "PLATFORM=$PLATFORM"
log "BASE=$BASE"
log "BUILD_BASE=$BUILD_BASE"
log "GO_IMAGE=$GO_IMAGE"
log "building $IMAGE (version $VERSION, revision ${REVISION:0:12})"
# buildah 1.28 leaves a working container behind for each RUN --mount=…,from=go: remove the ones this
# build made (by image id, so no other container is touched).
go_id=$(buildah inspect --type image --format '{{.FromImageID}}' "$GO_IMAGE")
before=$(buildah containers -q --notruncate | sort)
cleanup() {
  comm -13 <(echo "$before") <(buildah containers -q --notruncate | sort) | while read -r c; do
    [ "$(buildah inspect --type container --format '{{.FromImageID}}' "$c" 2>/dev/null)" = "$go_id" ] \
      && buildah rm "$c" >/dev/null
  done
}
trap cleanup EXIT
started=$(date +%s)
buildah bud --isolation chroot --layers --pull-never --format oci "${flags[@]}" "${volumes[@]}" "${cargs[@]}" \
  --platform "$PLATFORM" --build-arg "BASE=$BASE" --build-arg "BUILD_BASE=$BUILD_BASE" --build-arg "GO_IMAGE=$GO_IMAGE" \
  --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "CREATED=$CREATED" \
  --label "org.opencontainers.image.version=$VERSION" --label "org.opencontainers.image.revision=$REVISION" \
  --label "org.opencontainers.image.created=$CREATED" \
  -f Dockerfile -t "$IMAGE" . >&2
seconds=$(( $(date +%s) - started ))
id=$(buildah images --no-trunc --format '{{.ID}}' "$IMAGE" | sed -n 1p)  # sed reads it all: no SIGPIPE under pipefail
digest=$(buildah images --digests --format '{{.Digest}}' "$IMAGE" | sed -n 1p)  # sed reads it all: no SIGPIPE under pipefail
size=$(buildah images --format '{{.Size}}' "$IMAGE" | sed -n 1p)  # sed reads it all: no SIGPIPE under pipefail
log "built $IMAGE in ${seconds}s ($size)"
echo "IMAGE=$IMAGE IMAGE_ID=$id IMAGE_DIGEST=$digest REVISION=$REVISION BUILD_SECONDS=$seconds"
