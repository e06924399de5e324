#!/usr/bin/env bash
# Build the local base images the image test builds FROM, without Docker:
#   sc-ci-base  Debian bookworm (minbase) from debootstrap: what debian:bookworm-slim is upstream
#               (SC_CI_IMAGE_ARCH=arm64: for linux/arm64, tagged bookworm-arm64; debootstrap's second stage
#               then runs under qemu-user-static, which needs binfmt_misc: tools/image/deps.sh --arm64)
#   sc-ci-go    a scratch image holding this machine's Go at /usr/local/go: what golang:… is upstream
# Both are committed into buildah's storage and printed as NAME@sha256:DIGEST, the form the Dockerfile's
# BASE / GO_IMAGE build arguments take. Each is rebuilt only when missing (or with --force).
# Output (stdout, one line each):  BASE=localhost/sc-ci-base@sha256:…   GO_IMAGE=localhost/sc-ci-go@sha256:…
set -euo pipefail

SUITE="${SC_CI_IMAGE_SUITE:-bookworm}"
MIRROR="${SC_CI_IMAGE_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${SC_CI_IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
CACHE="${SC_CI_IMAGE_CACHE:-${HOME:-/root}/.cache/sc-ci/image}"
BASE_NAME="${SC_CI_BASE_NAME:-localhost/sc-ci-base}"
GO_NAME="${SC_CI_GO_NAME:-localhost/sc-ci-go}"
# A fixed timestamp for everything committed here (layer mtimes in the config, history): reproducible metadata.
EPOCH="${SOURCE_DATE_EPOCH:-1704067200}"
HOST_ARCH=$(dpkg --print-architecture)
ARCH="${SC_CI_IMAGE_ARCH:-$HOST_ARCH}"
case "$ARCH" in amd64|arm64) ;; *) echo "build-base: SC_CI_IMAGE_ARCH must be amd64 or arm64, not $ARCH" >&2; exit 2 ;; esac
# The host's architecture keeps its historical names (caches made before arm64 existed stay valid).
suffix=""; [ "$ARCH" = "$HOST_ARCH" ] || suffix="-$ARCH"
force=0
[ "${1:-}" = "--force" ] && force=1

log() { echo "build-base: $*" >&2; }
need() { command -v "$1" >/dev/null || { log "$1 is missing: apt-get install $2"; exit 2; }; }
need buildah buildah
need debootstrap debootstrap

digest_of() {  # NAME:TAG -> sha256:… (the manifest digest in local storage), or nothing
  buildah images --digests --format '{{.Name}}:{{.Tag}} {{.Digest}}' 2>/dev/null \
    | awk -v want="$1" '$1 == want { print $2; exit }'
}

mkdir -p "$CACHE"

# --- base: debootstrap minbase --------------------------------------------------------------------------
base_tag="$BASE_NAME:$SUITE$suffix"
if [ "$force" = 1 ] || [ -z "$(digest_of "$base_tag")" ]; then
  rootfs="$CACHE/rootfs-$SUITE$suffix"
  if [ "$force" = 1 ] || [ ! -f "$rootfs/.complete" ]; then
    rm -rf "$rootfs"
    log "debootstrap --arch $ARCH --variant=minbase $SUITE $MIRROR (a few minutes; more under emulation)"
    started=$(date +%s)
    debootstrap --arch "$ARCH" --variant=minbase --components=main "$SUITE" "$rootfs" "$MIRROR" >"$CACHE/debootstrap$suffix.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap$suffix.log" >&2; exit 1; }
    log "debootstrap done in $(( $(date +%s) - started ))s"
    # The sources the image's apt-get uses: the release, its updates and its security archive.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    # What debian:*-slim also does: no recommends, no docs/man pages/locales in later installs.
    cat >"$rootfs/etc/apt/apt.conf.d/90sc-ci-slim" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90sc-ci-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
    # Machine-specific and volatile files out: the same inputs give the same tree.
    rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
           "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* "$rootfs"/root/.cache
    : >"$rootfs/etc/machine-id"
    echo "$SUITE" >"$rootfs/etc/hostname"
    touch "$rootfs/.complete"
  fi
  log "committing $base_tag"
  ctr=$(buildah from scratch)
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  mnt=$(buildah mount "$ctr")
  tar -C "$rootfs" --exclude=./.complete --numeric-owner -cf - . | tar -C "$mnt" --numeric-owner -xpf -
  buildah umount "$ctr" >/dev/null
  buildah config --os linux --arch "$ARCH" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash \
    --label "org.opencontainers.image.description=Debian $SUITE minbase (debootstrap), sc-ci test base" "$ctr"
  buildah commit --quiet --timestamp "$EPOCH" --rm "$ctr" "$base_tag" >/dev/null
  trap - EXIT
fi
echo "BASE=$BASE_NAME@$(digest_of "$base_tag")"

# --- go: this machine's toolchain, as an image the Dockerfile mounts from -------------------------------
command -v go >/dev/null || { log "go is not on PATH (the tools stage compiles cosign, syft and grype)"; exit 2; }
goroot=$(go env GOROOT)
gover=$(go env GOVERSION)
go_tag="$GO_NAME:$gover"
if [ "$force" = 1 ] || [ -z "$(digest_of "$go_tag")" ]; then
  log "committing $go_tag from $goroot"
  ctr=$(buildah from scratch)
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  mnt=$(buildah mount "$ctr")
  mkdir -p "$mnt/usr/local"
  tar -C "$(dirname "$goroot")" --numeric-owner -cf - "$(basename "$goroot")" \
    | tar -C "$mnt/usr/local" --numeric-owner -xpf -
  [ "$(basename "$goroot")" = go ] || mv "$mnt/usr/local/$(basename "$goroot")" "$mnt/usr/local/go"
  buildah umount "$ctr" >/dev/null
  buildah config --os linux --arch "$(dpkg --print-architecture)" --env PATH=/usr/local/go/bin \
    --label "org.opencontainers.image.description=$gover from $goroot" "$ctr"
  buildah commit --quiet --timestamp "$EPOCH" --rm "$ctr" "$go_tag" >/dev/null
  trap - EXIT
fi
echo "GO_IMAGE=$GO_NAME@$(digest_of "$go_tag")"
