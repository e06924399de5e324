#!/bin/sh
# The image's OS layer: Debian packages by version, the venv the engine runs in, git's safe directory.
# Run by the Dockerfile twice, from a bind mount (it is in no layer): in the runtime stage (the target
# platform) and in the tools stage (the build platform, where the installer cross-compiles the tools).
# Versions are bookworm's (main, -updates, -security). A Debian point or security release removes the old
# version from the archive and this step then fails: bump the versions (docs/image.md, "Updating").
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  ca-certificates=20250419~deb12u2 \
  git=1:2.39.5-0+deb12u3 \
  python3.11=3.11.2-6+deb12u9 \
  python3.11-venv=3.11.2-6+deb12u9
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
python3.11 -m venv /opt/venv
git config --system --add safe.directory /github/workspace
