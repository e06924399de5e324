"""syft argv, environment and failure classification (pure; the real syft runs in integration tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sc_ci.errors import StepFailed, ToolError
from sc_ci.runner import Completed
from sc_ci.tools.syft import Syft, classify

IMAGE = "127.0.0.1:5000/app@sha256:" + "a" * 64


def syft(env: dict[str, str] | None = None) -> Syft:
    return Syft(Path("/opt/syft"), "v1.51.0", {"PATH": "/usr/bin", "HOME": "/root", "SECRET_TOKEN": "x",
                                                 **(env or {})})


def test_one_run_writes_every_format() -> None:
    argv = syft().scan_argv(IMAGE, [("cyclonedx-json@1.6", Path("/t/a.cdx.json")),
                                    ("spdx-json", Path("/t/a.spdx.json"))])
    assert argv == ["/opt/syft", "scan", f"registry:{IMAGE}", "-o", "cyclonedx-json@1.6=/t/a.cdx.json",
                    "-o", "spdx-json=/t/a.spdx.json"]  # no --quiet: it hides the errors failures are named from


def test_no_outputs_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="at least one output"):
        syft().scan_argv(IMAGE, [])


def test_environment_is_minimal_and_quiet() -> None:
    env = syft().env_for(plain_http=False)
    assert env["SYFT_CHECK_FOR_APP_UPDATE"] == "false"
    assert "SYFT_REGISTRY_INSECURE_USE_HTTP" not in env
    assert "SECRET_TOKEN" not in env
    assert syft().version == "1.51.0"


def test_plain_http_and_docker_config() -> None:
    env = syft({"DOCKER_CONFIG": "/home/u/.docker"}).env_for(plain_http=True)
    assert env["SYFT_REGISTRY_INSECURE_USE_HTTP"] == "true"
    assert env["DOCKER_CONFIG"] == "/home/u/.docker"
    assert syft().env_for(plain_http=False, docker_config="/tmp/private")["DOCKER_CONFIG"] == "/tmp/private"


def done(stderr: str, code: int = 1) -> Completed:
    return Completed(("syft",), code, "", stderr, 0.1)


@pytest.mark.parametrize(("stderr", "kind", "what", "fix"), [
    ("GET http://x/v2/: UNAUTHORIZED: authentication required", StepFailed, "denied access", "SC_CI_REGISTRY"),
    ("MANIFEST_UNKNOWN: manifest unknown", StepFailed, "could not find", "pushed"),
    ("http: server gave HTTP response to HTTPS client", StepFailed, "plain HTTP", "HTTPS"),
    ("write /tmp/x: no space left on device", ToolError, "disk space", "TMPDIR"),
    ("panic: something odd", ToolError, "syft failed", "-v"),
])
def test_failures_are_classified(stderr: str, kind: type[Exception], what: str, fix: str) -> None:
    error = classify(done(stderr), IMAGE)
    assert type(error) is kind
    assert what in error.what
    assert fix in error.fix
