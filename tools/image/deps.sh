#!/usr/bin/env bash
# The Debian packages the image build and its test need (no Docker engine: buildah builds and runs).
set -euo pipefail
missing=""
for b in buildah debootstrap skopeo docker-registry; do command -v "$b" >/dev/null || missing="$missing $b"; done
if [ -n "$missing" ]; then
  echo "installing:$missing" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap skopeo docker-registry >/dev/null
fi
# --arm64: what building and running the linux/arm64 image on an x86_64 machine needs: qemu-user-static
# registered in binfmt_misc with the F flag (the interpreter is opened at registration, so it works inside
# buildah's chroot).
if [ "${1:-}" = "--arm64" ] && [ "$(dpkg --print-architecture)" != arm64 ]; then
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
      || { echo "deps: cannot mount binfmt_misc (needs root and a kernel with it)" >&2; exit 2; }
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support >/dev/null
    update-binfmts --enable qemu-aarch64 2>/dev/null || true
  fi
  grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || { echo "deps: qemu-aarch64 is registered without the F flag: buildah's chroot cannot find it" >&2; exit 2; }
fi
