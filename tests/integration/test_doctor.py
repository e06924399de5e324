"""`sc-ci doctor` on this machine: real tool versions, CI detection, OIDC readiness and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def doctor(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_", "GITLAB_", "CI_", "SIGSTORE_", "ACTIONS_"))}
    base.pop("CI", None)
    return subprocess.run([sys.executable, "-m", "sc_ci", "doctor", *args], env={**base, **(env or {})}, cwd=cwd,
                          text=True, capture_output=True, timeout=120, check=False)


def test_all_pinned_tools_ready(tool: Callable[[str], Path]) -> None:
    for name in ("cosign", "syft", "grype", "trivy"):
        tool(name)
    done = doctor()
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("cosign", "syft", "grype", "trivy"):
        assert any(line.split()[:2] == ["ok", name] for line in done.stdout.splitlines()), done.stdout
    assert "platform          local" in done.stdout
    assert done.stdout.rstrip().endswith("ready")


def test_missing_tool_needed_by_config_exits_1(tool: Callable[[str], Path], tmp_path: Path) -> None:
    tool("cosign")
    cfg = tmp_path / "security.yaml"
    cfg.write_text("security:\n  scan:\n    enabled: true\n    tools: [grype]\n")
    done = doctor("--config", str(cfg), env={"SC_CI_GRYPE_PATH": str(tmp_path / "no-grype")})
    assert done.returncode == 1
    assert "FAIL grype" in done.stdout
    assert "make tools" in done.stdout
    assert "not ready: grype" in done.stdout


def test_keyless_config_without_oidc_on_github_shows_the_fix(tool: Callable[[str], Path], tmp_path: Path) -> None:
    tool("cosign")
    cfg = tmp_path / "security.yaml"
    cfg.write_text("security:\n  signing:\n    enabled: true\n")
    github = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_SHA": "b" * 40,
              "GITHUB_REF": "refs/heads/main", "GITHUB_SERVER_URL": "https://github.com",
              "GITHUB_WORKFLOW_REF": "acme/shop/.github/workflows/release.yml@refs/heads/main",
              "GITHUB_RUN_ID": "7", "GITHUB_RUN_ATTEMPT": "2"}
    done = doctor("--config", str(cfg), env=github)
    assert done.returncode == 1
    assert "platform          github" in done.stdout
    assert "https://github.com/acme/shop/actions/runs/7/attempts/2" in done.stdout
    assert "FAIL oidc" in done.stdout
    assert "id-token: write" in done.stdout

    ready = doctor("--config", str(cfg), env={**github, "ACTIONS_ID_TOKEN_REQUEST_URL": "https://t.example/x",
                                                  "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token-value"})
    assert ready.returncode == 0, ready.stdout
    assert "ok   oidc" in ready.stdout
    assert "request-token-value" not in ready.stdout + ready.stderr


def test_tools_only_ignores_ci(tool: Callable[[str], Path]) -> None:
    tool("cosign")
    done = doctor("--tools-only")
    assert done.returncode == 0
    assert "CI context" not in done.stdout


@pytest.mark.parametrize("bad", ["security:\n  signing: {enabled: sure}\n"])
def test_doctor_reports_config_errors_with_exit_2(bad: str, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(bad)
    done = doctor("--config", str(cfg))
    assert done.returncode == 2
    assert "security.signing.enabled" in done.stderr
