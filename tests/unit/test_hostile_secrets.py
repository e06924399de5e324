"""Hostile key references and weak secrets: no ${env:PATH} key material, no reference chains, no
job-wide masking of `true` or `a`."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from sc_ci import secrets
from sc_ci.config.diagnose import Invalid
from sc_ci.config.refs import SecretRef, parse_key_spec, parse_ref
from sc_ci.config.sources import Origin, parse_bool
from sc_ci.errors import ScError
from sc_ci.report import github
from sc_ci.sanitize import is_command_line

PLANTED = "PLANTED-key-material-4c3b2a"


@pytest.fixture(autouse=True)
def _clean() -> None:
    secrets.reset_for_tests()


def assert_clean(exc: BaseException, code: int = 2) -> str:
    assert isinstance(exc, ScError), type(exc)
    assert exc.exit_code == code
    text = exc.diagnostics()
    assert len(text.splitlines()) < 25, text
    assert not any(is_command_line(line) for line in text.splitlines()), text
    assert PLANTED not in text
    return text


@pytest.mark.parametrize("ref", [SecretRef("env", "PATH"), SecretRef("env", "HOME"), SecretRef("secret", "path"),
                                 SecretRef("env", "LC_ALL"), SecretRef("env", "GITHUB_WORKSPACE")],
                         ids=["path", "home", "secret-path", "lc", "workspace"])
def test_process_variables_are_not_key_material(ref: SecretRef) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "LC_ALL": "C", "GITHUB_WORKSPACE": "/w"}
    with pytest.raises(ScError) as info:
        ref.resolve(env, path="security.signing.privateKey")
    assert "not a secret" in assert_clean(info.value)
    assert secrets.mask("/usr/bin:/bin") == "/usr/bin:/bin"


@pytest.mark.parametrize("value", ["${secret:OTHER}", "${env:PATH}", "  ${ secret : x }", "x ${env:Y} y"])
def test_a_reference_that_resolves_to_a_reference_is_refused(value: str) -> None:
    with pytest.raises(ScError) as info:
        SecretRef("secret", "cosign-private-key").resolve({"COSIGN_PRIVATE_KEY": value})
    assert "another reference" in assert_clean(info.value)


def test_secrets_file_value_that_is_a_reference_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.env"
    path.write_text("COSIGN_PRIVATE_KEY=${env:PATH}\n")
    with pytest.raises(ScError) as info:
        SecretRef("secret", "cosign-private-key").resolve({}, path)
    assert "secrets file" in assert_clean(info.value)


def test_mixed_reference_error_is_bounded() -> None:
    with pytest.raises(Invalid) as info:
        parse_ref("pre ${secret:x}\n::error::" + "y" * 5000)
    assert len(str(info.value)) < 300
    assert "\n" not in str(info.value)
    with pytest.raises(Invalid):
        parse_key_spec(f"-----BEGIN KEY-----\n{PLANTED}", field="privateKey")


@pytest.mark.parametrize("value", ["a", "abc", "true", "False", "password", "secret", "admin", "latest",
                                   "main", " TRUE ", "changeme"])
def test_weak_secrets_are_not_masked_job_wide(value: str, caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    github.install_masking(out)
    with caplog.at_level(logging.WARNING, logger="sc_ci.secrets"):
        secrets.Secret(value, "${secret:weak}")
    assert "::add-mask::" not in out.getvalue()
    assert secrets.mask(f"x {value} y") == f"x {value} y"
    assert any("${secret:weak}" in r.getMessage() and "not masked" in r.getMessage() for r in caplog.records)
    if value.strip().lower() in ("password", "admin", "changeme", "latest"):
        assert all(value.strip() not in r.getMessage() for r in caplog.records)


def test_strong_secret_is_masked_but_weak_lines_of_it_are_not() -> None:
    out = io.StringIO()
    github.install_masking(out)
    secrets.register(f"{PLANTED}\ntrue\nab\n")
    masks = out.getvalue().splitlines()
    assert f"::add-mask::{PLANTED}" in masks
    assert "::add-mask::true" not in masks
    assert "::add-mask::ab" not in masks


def test_is_weak() -> None:
    assert secrets.is_weak("abc")
    assert secrets.is_weak("Latest")
    assert not secrets.is_weak(PLANTED)


@pytest.mark.parametrize("value", ["maybe\n::error::x", "y" * 5000, "\x1b[31mred"])
def test_bad_boolean_flag_is_bounded(value: str) -> None:
    with pytest.raises(ScError) as info:
        parse_bool(value, loc=("signing", "enabled"), origin=Origin("env", "SC_CI_X", "SC_CI_X={value}"))
    text = assert_clean(info.value)
    assert len(text) < 600
    assert "\x1b" not in text
