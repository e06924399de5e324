"""Bad input through the real CLI entry point: exit 2, a one-screen error with the fix, and no tool started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sc_ci import cli

GOOD_DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in cosign that records any call: bad input must never reach a tool."""
    log = tmp_path / "calls.log"
    tool = tmp_path / "cosign"
    tool.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\necho "{{\\"gitVersion\\": \\"v3.1.2\\"}}"\n')
    tool.chmod(0o755)
    for name in [k for k in os.environ if k.startswith(("SC_CI_", "INPUT_", "GITHUB_"))]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SC_CI_COSIGN_PATH", str(tool))
    monkeypatch.chdir(tmp_path)
    return log


def run_bad(argv: list[str], capsys: pytest.CaptureFixture[str], shim: Path) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ")
    assert "fix: " in err
    assert len(err.splitlines()) <= 25, "one screen"
    assert not shim.exists(), f"a tool was started: {shim.read_text()}"
    return err


BAD_REFS = [
    ("registry.example.com/app:1.0;rm -rf /", "shell metacharacters"),
    ("registry.example.com/app:$(id)", "shell metacharacters"),
    ("registry.example.com/app:`id`", "shell metacharacters"),
    ("registry.example.com/app|cat", "shell metacharacters"),
    ("registry.example.com/app&&true", "shell metacharacters"),
    ("registry.example.com/app :1.0", "whitespace"),
    ("registry.example.com/app:1.0\nother", "whitespace"),
    ("", "empty"),
    ("registry.example.com/app@sha256:abc", "64 lower-case hex"),
    ("registry.example.com/app@sha256:" + "A" * 64, "64 lower-case hex"),
    ("registry.example.com/app@md5:" + "a" * 32, "must be sha256"),
    ("registry.example.com:5000", "no repository"),
    ("localhost:5000", "no repository"),
    (":1.0", "no repository name"),
    ("registry.example.com/Team/App:1.0", "lower case"),
    ("https://registry.example.com/app:1.0", "URL scheme"),
    ("registry.example.com//app:1.0", "empty component"),
    ("registry.example.com/app/:1.0", "empty component"),
    ("registry.example.com/app:" + "t" * 129, "not valid"),
    ("registry.example.com/app:.hidden", "not valid"),
    ("registry.example.com/app@" + GOOD_DIGEST + "@" + GOOD_DIGEST, "more than one '@'"),
    ("registry.example.com/app:1.0\u00e9", "non-ASCII"),
    ("reg!stry.example.com/app:1.0", "shell metacharacters"),
]


@pytest.mark.parametrize(("ref", "why"), BAD_REFS, ids=[f"ref{i}" for i in range(len(BAD_REFS))])
def test_bad_image_reference(ref: str, why: str, capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    err = run_bad(["image", "sign", "--image", ref, "--key", "cosign.key"], capsys, shim)
    assert "invalid image reference" in err
    assert why in err


def test_good_reference_after_bad_one_is_not_touched(capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    err = run_bad(["image", "verify", "-i", "127.0.0.1:1/ok/app:1", "-i", "bad ref", "-k", "k.pub"], capsys, shim)
    assert "'bad ref'" in err


def _config(tmp: Path, text: str) -> str:
    path = tmp / "security.yaml"
    path.write_text(text)
    return str(path)


BAD_CONFIGS = [
    ("security:\n  signing: [unclosed\n", "security.yaml:"),
    ("security:\n  signing:\n    enabled: true\n    colour: blue\n", "security.signing.colour"),
    ("security:\n  signin:\n    enabled: true\n", "did you mean 'signing'"),
    ("security:\n  signing:\n    verify:\n      enabled: maybe\n", "security.signing.verify.enabled"),
    ("security:\n  sbom:\n    enabled: true\n    format: xml\n", "security.sbom.format"),
    ("security:\n  signing:\n    keyless: false\n", "keyless: false needs a privateKey"),
    ("security:\n  scan:\n    enabled: true\n    tools:\n      - name: clair\n", "security.scan.tools"),
    ("security:\n  signing:\n    enabled: true\n    verify:\n      enabled: true\n      identityRegexp: '(['\n",
     "identityRegexp"),
    ("security:\n  signing:\n    enabled: true\n    enabled: false\n", "duplicate"),
    ("security:\n  provenance:\n    enabled: true\n    version: '0.2'\n", "security.provenance.version"),
]


@pytest.mark.parametrize(("text", "expect"), BAD_CONFIGS, ids=[f"cfg{i}" for i in range(len(BAD_CONFIGS))])
def test_bad_config(text: str, expect: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    err = run_bad(["image", "sign", "-i", "127.0.0.1:1/ok/app:1", "--config", _config(tmp_path, text)], capsys, shim)
    assert expect in err


def test_missing_key_file(capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    err = run_bad(["image", "sign", "-i", "127.0.0.1:1/ok/app:1", "--key", "nope/cosign.key"], capsys, shim)
    assert "does not exist" in err


def test_env_key_variable_unset(capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    err = run_bad(["image", "sign", "-i", "127.0.0.1:1/ok/app:1", "--key", "env://NO_SUCH_KEY_VAR"], capsys, shim)
    assert "NO_SUCH_KEY_VAR" in err


def test_unresolvable_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    cfg = _config(tmp_path, "security:\n  signing:\n    enabled: true\n    privateKey: ${secret:release-key}\n")
    err = run_bad(["image", "sign", "-i", "127.0.0.1:1/ok/app:1", "--config", cfg], capsys, shim)
    assert "RELEASE_KEY" in err


def test_missing_config_file(capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    err = run_bad(["image", "sign", "-i", "127.0.0.1:1/ok/app:1", "--config", "absent.yaml"], capsys, shim)
    assert "absent.yaml" in err


def test_unknown_flag(capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    err = run_bad(["image", "sign", "--imag", "x"], capsys, shim)
    assert "--help" in err


def test_no_image(capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    err = run_bad(["image", "sign", "--key", "cosign.key"], capsys, shim)
    assert "no image given" in err


def test_unknown_stack(capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    err = run_bad(["stack", "sign", "-s", "ghost", "-e", "prod"], capsys, shim)
    assert "ghost" in err


def test_stack_needs_env(capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    err = run_bad(["stack", "sign", "-s", "ghost"], capsys, shim)
    assert "--env" in err


def test_bad_boolean_in_environment(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                    shim: Path) -> None:
    monkeypatch.setenv("SC_CI_SECURITY__SIGNING__VERIFY__ENABLED", "sometimes")
    err = run_bad(["image", "sign", "-i", "127.0.0.1:1/ok/app:1", "--key", "x"], capsys, shim)
    assert "SC_CI_SECURITY__SIGNING__VERIFY__ENABLED" in err


def test_bad_workers(capsys: pytest.CaptureFixture[str], shim: Path) -> None:
    err = run_bad(["image", "sign", "-i", "127.0.0.1:1/ok/app:1", "--workers", "0", "--key", "x"], capsys, shim)
    assert "workers" in err
