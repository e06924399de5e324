"""Version parsing (recorded real outputs), comparison, policy, and detect() with real and fake runners."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from sc_ci.errors import ToolError
from sc_ci.runner import Completed
from sc_ci.tools import pins as pins_mod
from sc_ci.tools.semver import compare_versions, is_version, normalize, parse_version, same_version, version_at_least
from sc_ci.tools.versions import detect, evaluate, parse_output, probe_env, version_argv

# Recorded from the real binaries built by `python -m sc_ci.tools.installer` (go1.26.8, linux/amd64).
COSIGN_V3_JSON = """{
  "gitVersion": "v3.1.2",
  "gitCommit": "unknown",
  "gitTreeState": "unknown",
  "buildDate": "unknown",
  "goVersion": "go1.26.8",
  "compiler": "gc",
  "platform": "linux/amd64"
}
"""
COSIGN_V2_JSON = COSIGN_V3_JSON.replace("v3.1.2", "v2.6.4")
# `cosign version` (text; ASCII-art banner shortened).
COSIGN_V2_TEXT = """  ______   ______        _______. __    _______ .__   __.
 /      | /  __  \\      /       ||  |  /  _____||  \\ |  |
cosign: A tool for Container Signing, Verification and Storage in an OCI registry.

GitVersion:    v2.6.4
GitCommit:     unknown
GitTreeState:  unknown
BuildDate:     unknown
GoVersion:     go1.26.8
Compiler:      gc
Platform:      linux/amd64
"""
SYFT_JSON = """{
 "application": "syft",
 "buildDate": "2026-08-10T14:26:29Z",
 "compiler": "gc",
 "gitCommit": "2293641e3bd628a01bb37639318d62c0ebe89b39",
 "gitDescription": "v1.51.0",
 "goVersion": "go1.26.8",
 "platform": "linux/amd64",
 "schemaVersion": "16.1.10",
 "version": "1.51.0"
}
"""
# What syft prints when built by plain `go install …/cmd/syft@v1.51.1` (no -ldflags -X main.version=…):
# the reason the installer injects the version.
SYFT_NOT_PROVIDED_JSON = """{
 "application": "syft",
 "buildDate": "[not provided]",
 "compiler": "gc",
 "gitCommit": "[not provided]",
 "gitDescription": "[not provided]",
 "goVersion": "go1.26.8",
 "platform": "linux/amd64",
 "schemaVersion": "16.1.10",
 "version": "[not provided]"
}
"""
GRYPE_JSON = """{
 "application": "grype",
 "buildDate": "2026-08-10T16:05:15Z",
 "compiler": "gc",
 "gitCommit": "b5fa92bbcbef655497e3be840a2f718380e2cdd3",
 "gitDescription": "v0.117.0",
 "goVersion": "go1.26.8",
 "platform": "linux/amd64",
 "supportedDbSchema": 6,
 "syftVersion": "v1.51.0",
 "version": "0.117.0"
}
"""
GRYPE_TEXT = """Application:         grype
Version:             0.117.0
BuildDate:           2026-08-10T16:05:15Z
GitCommit:           b5fa92bbcbef655497e3be840a2f718380e2cdd3
GitDescription:      v0.117.0
Platform:            linux/amd64
GoVersion:           go1.26.8
Compiler:            gc
Syft Version:        v1.51.0
Supported DB Schema: 6
"""
TRIVY_JSON = '{"Version":"0.68.2"}'
# Same command once a vulnerability DB is cached (shape from trivy's version printer; not recorded here).
TRIVY_JSON_WITH_DB = """{"Version":"0.68.2","VulnerabilityDB":{"Version":2,
"NextUpdate":"2026-11-23T00:00:00Z","UpdatedAt":"2026-11-22T00:00:00Z","DownloadedAt":"2026-11-22T01:00:00Z"}}"""
TRIVY_TEXT = "Version: 0.68.2\n"


# --- comparison -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("3.1.2", "v3.1.2", 0),
        ("v3.0.2", "3.1.2", -1),
        ("1.10.0", "1.9.9", 1),  # numeric, not lexical
        ("0.68.2", "0.68", 1),
        ("1.2", "1.2.0", 0),
        ("1.2.3.0", "1.2.3", 0),
        ("0.68.2.1", "0.68.2", 1),
        ("1.0.0-rc.1", "1.0.0", -1),  # a pre-release sorts before its release
        ("1.0.0-rc.2", "1.0.0-rc.10", -1),
        ("1.0.0-alpha", "1.0.0-1", 1),  # alphanumeric identifiers sort after numeric ones
        ("1.2.3+build.7", "1.2.3", 0),  # build metadata ignored
        ("V2.6.4", "2.6.4", 0),
    ],
)
def test_compare_versions(a: str, b: str, expected: int) -> None:
    assert compare_versions(a, b) == expected
    assert compare_versions(b, a) == -expected


@pytest.mark.parametrize("bad", ["", "devel", "[not provided]", "v", "1.x", "latest", "1..2"])
def test_parse_version_rejects_non_versions(bad: str) -> None:
    assert not is_version(bad)
    with pytest.raises(ValueError, match="not a version"):
        parse_version(bad)


def test_version_helpers() -> None:
    assert normalize(" v3.1.2 ") == "3.1.2"
    assert normalize("0.68.2") == "0.68.2"
    assert parse_version("v2.6.4").major == 2
    assert version_at_least("0.106.0", "0.106")
    assert not version_at_least("1.40.9", "1.41.0")
    assert same_version("v0.117.0", "0.117.0")


# --- parsing recorded output ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("binary", "output", "expected"),
    [
        ("cosign", COSIGN_V3_JSON, "3.1.2"),
        ("cosign", COSIGN_V2_JSON, "2.6.4"),
        ("cosign", COSIGN_V2_TEXT, "2.6.4"),
        ("syft", SYFT_JSON, "1.51.0"),
        ("grype", GRYPE_JSON, "0.117.0"),  # not syftVersion
        ("grype", GRYPE_TEXT, "0.117.0"),  # not "Syft Version:"
        ("trivy", TRIVY_JSON, "0.68.2"),
        ("trivy", TRIVY_JSON_WITH_DB, "0.68.2"),  # not VulnerabilityDB.Version
        ("trivy", TRIVY_TEXT, "0.68.2"),
        ("trivy", "2026-11-22T00:00:00Z\tWARN\tsomething {odd}\n" + TRIVY_JSON, "0.68.2"),  # log line first
    ],
)
def test_parse_output_recorded(binary: str, output: str, expected: str) -> None:
    assert parse_output(binary, output) == expected


@pytest.mark.parametrize(
    ("binary", "output"),
    [
        ("syft", SYFT_NOT_PROVIDED_JSON),
        ("grype", GRYPE_JSON.replace('"0.117.0"', '"[not provided]"')),
        ("cosign", COSIGN_V3_JSON.replace('"v3.1.2"', '"devel"')),
        ("trivy", ""),
        ("trivy", "panic: runtime error"),
        ("syft", "[1, 2, 3]"),
        ("grype", '{"application": "grype"}'),
    ],
)
def test_parse_output_without_a_version(binary: str, output: str) -> None:
    assert parse_output(binary, output) is None


def test_version_argv_per_tool() -> None:
    assert version_argv("cosign", Path("/x/cosign")) == ["/x/cosign", "version", "--json"]
    assert version_argv("syft", Path("s")) == ["s", "version", "-o", "json"]
    assert version_argv("grype", Path("g")) == ["g", "version", "-o", "json"]
    assert version_argv("trivy", Path("t")) == ["t", "version", "-f", "json"]
    with pytest.raises(ValueError, match="no version command"):
        version_argv("docker", Path("d"))


# --- policy ---------------------------------------------------------------------------------------


def _pin(name: str) -> pins_mod.ToolPin:
    return pins_mod.load().get(name)


def test_evaluate_cosign_v3_ok() -> None:
    result = evaluate(_pin("cosign"), Path("/c"), "3.1.2")
    assert result.ok
    assert result.meets_minimum
    assert not result.forbidden
    assert (result.version, result.major, result.warning, result.fix) == ("3.1.2", 3, None, None)


def test_evaluate_cosign_v2_6_accepted_with_warning() -> None:
    result = evaluate(_pin("cosign"), Path("/c"), "v2.6.4")
    assert result.ok
    assert result.major == 2
    assert result.warning == "cosign v2 is supported for compatibility; v3 is recommended"


@pytest.mark.parametrize("old", ["2.5.9", "2.0.0", "1.13.1", "3.0.1"])
def test_evaluate_cosign_too_old(old: str) -> None:
    result = evaluate(_pin("cosign"), Path("/c"), old)
    assert not result.ok
    assert not result.meets_minimum
    assert result.fix is not None
    assert "3.0.2" in result.fix
    assert "2.6.0" in result.fix
    assert "make tools" in result.fix


def test_evaluate_forbidden_trivy_names_the_advisory() -> None:
    result = evaluate(_pin("trivy"), Path("/t"), "0.69.4")
    assert result.forbidden
    assert not result.ok
    assert result.meets_minimum  # new enough, still never run
    assert result.fix is not None
    assert "GHSA-69fq-xp46-6x23" in result.fix


def test_evaluate_syft_and_grype_minimums() -> None:
    assert evaluate(_pin("syft"), Path("/s"), "1.41.0").ok
    assert not evaluate(_pin("syft"), Path("/s"), "1.40.3").ok
    assert evaluate(_pin("grype"), Path("/g"), "0.106.0").ok
    assert not evaluate(_pin("grype"), Path("/g"), "0.105.1").ok
    assert not evaluate(_pin("trivy"), Path("/t"), "0.68.1").ok


def test_evaluate_unknown_version() -> None:
    result = evaluate(_pin("syft"), Path("/s"), None, why="it reports no version")
    assert not result.ok
    assert result.version is None
    assert result.major is None
    assert result.fix is not None
    assert "it reports no version" in result.fix
    assert "SC_CI_SYFT_PATH" in result.fix


# --- detect ---------------------------------------------------------------------------------------


class FakeRunner:
    """Records the call and answers like sc_ci.runner.run."""

    def __init__(self, stdout: str = "", returncode: int = 0, stderr: str = "",
                 error: Exception | None = None) -> None:
        self.stdout, self.returncode, self.stderr, self.error = stdout, returncode, stderr, error
        self.calls: list[tuple[list[str], dict[str, str], float]] = []

    def __call__(self, argv: Sequence[str | Path], *, env: Mapping[str, str], timeout: float) -> Completed:
        self.calls.append(([str(a) for a in argv], dict(env), timeout))
        if self.error is not None:
            raise self.error
        return Completed(tuple(str(a) for a in argv), self.returncode, self.stdout, self.stderr, 0.01)


def test_detect_runs_version_json_with_minimal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")
    monkeypatch.setenv("SYFT_REGISTRY_AUTH_PASSWORD", "pw")
    fake = FakeRunner(GRYPE_JSON)
    result = detect("grype", Path("/bin/grype"), fake)
    assert result.ok
    assert result.version == "0.117.0"
    argv, env, timeout = fake.calls[0]
    assert argv == ["/bin/grype", "version", "-o", "json"]
    assert timeout == 30
    assert env["GRYPE_CHECK_FOR_APP_UPDATE"] == "false"
    assert env["SYFT_CHECK_FOR_APP_UPDATE"] == "false"
    assert set(env) <= {"PATH", "HOME", "SYFT_CHECK_FOR_APP_UPDATE", "GRYPE_CHECK_FOR_APP_UPDATE",
                        "TRIVY_SKIP_VERSION_CHECK", "TRIVY_DISABLE_TELEMETRY"}


def test_detect_failures_become_fixes() -> None:
    missing = detect("cosign", Path("/nope/cosign"), FakeRunner(error=ToolError("/nope/cosign not found")))
    assert not missing.ok
    assert missing.fix is not None
    assert "not found" in missing.fix

    crashed = detect("trivy", Path("/t"), FakeRunner(returncode=2, stderr="boom\nfatal: bad things"))
    assert not crashed.ok
    assert crashed.fix is not None
    assert "fatal: bad things" in crashed.fix

    unstamped = detect("syft", Path("/s"), FakeRunner(SYFT_NOT_PROVIDED_JSON))
    assert not unstamped.ok
    assert unstamped.fix is not None
    assert "-X main.version" in unstamped.fix


def test_probe_env_keeps_only_path_and_home() -> None:
    env = probe_env({"PATH": "/usr/bin", "HOME": "/root", "AWS_SECRET_ACCESS_KEY": "x", "GOFLAGS": "-x"})
    assert env["PATH"] == "/usr/bin"
    assert env["HOME"] == "/root"
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert "GOFLAGS" not in env


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


def test_detect_with_the_real_runner(tmp_path: Path) -> None:
    """A stand-in binary run through sc_ci.runner: argv reaches it, and so does the minimal env only."""
    seen = tmp_path / "seen"
    fake = _script(tmp_path, "cosign",
                   f'echo "$@" > {seen}; env >> {seen}\necho \'{{"gitVersion": "v2.6.4"}}\'\n')
    result = detect("cosign", fake, env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
                                         "COSIGN_PASSWORD": "hunter2"})
    assert result.ok
    assert result.version == "2.6.4"
    assert result.warning is not None
    recorded = seen.read_text(encoding="utf-8")
    assert recorded.splitlines()[0] == "version --json"
    assert "hunter2" not in recorded


def test_detect_not_executable(tmp_path: Path) -> None:
    plain = tmp_path / "trivy"
    plain.write_text("not a program", encoding="utf-8")
    result = detect("trivy", plain)
    assert not result.ok
    assert result.fix is not None
