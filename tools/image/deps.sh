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
