"""Hostile values that used to get through: each is refused at once with exit 2, and nothing it holds is echoed
as a live workflow command."""

from __future__ import annotations

from pathlib import Path

import pytest

from sc_ci import cli, retry
from sc_ci.ci import oidc
from sc_ci.config.paths import confine
from sc_ci.errors import ConfigError, UsageError


def _run(argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv, env)
    out = capsys.readouterr()
    return code, out.out + out.err


def _no_live_command(text: str) -> None:
    for line in text.splitlines():
        stripped = line.lstrip()
        assert not (stripped.startswith("::") and not stripped.startswith("::error title=sc-ci")), line
        assert not stripped.startswith("##["), line


def test_a_token_file_path_with_a_newline_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        oidc.generic({"SC_CI_OIDC_TOKEN_FILE": "/nope\n::warning::X"})
    assert caught.value.exit_code == 2
    assert "\n::warning" not in caught.value.diagnostics()


@pytest.mark.parametrize(("key", "value"), [("OIDCISSUER", "https://x\n::warning::y"),
                                            ("IDENTITYREGEXP", "^x\n::warning::y"),
                                            ("IDENTITY", "https://x\r##[warning]y")])
def test_verify_values_with_line_breaks_are_config_errors(key: str, value: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {f"SC_CI_SECURITY__SIGNING__VERIFY__{key}": value, "GITHUB_ACTIONS": "true"}
    code, text = _run(["image", "verify", "-i", "reg.example.com/a:1", "--dry-run"], env, capsys)
    assert code == 2, text
    _no_live_command(text)


@pytest.mark.parametrize("size", [".inf", "-.inf", ".nan", "1e400", "1e30GiB"])
def test_a_size_that_is_not_finite_is_a_config_error(size: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(f"security:\n  sbom:\n    attach:\n      maxSize: {size}\n")
    code, text = _run(["image", "verify", "-c", "s.yaml", "-i", "reg.example.com/a:1", "--dry-run"], {}, capsys)
    assert code == 2, text
    assert "maxSize" in text


def test_a_path_with_a_nul_byte_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        confine(tmp_path / "docker\x00compose.yaml", tmp_path, what="docker-compose file", key="dockerComposeFile",
                where="client.yaml:7:7")
    assert caught.value.exit_code == 2
    assert "\\x00" in caught.value.diagnostics()


def test_unknown_keys_everywhere_fit_one_screen(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sections = {"signing": ["verify", "sigstore"], "sbom": ["attach", "output"], "provenance": ["builder"],
                "scan": ["db"], "policy": [], "verify": []}
    lines = ["security:", "  bogus0: 1"]
    for n, (section, subs) in enumerate(sections.items()):
        lines += [f"  {section}:", f"    bogus{n}a: 1"] + [f"    {sub}:\n      bogus{n}{sub}: 1" for sub in subs]
    (tmp_path / "s.yaml").write_text("\n".join(lines) + "\n")
    code, text = _run(["image", "verify", "-c", "s.yaml", "-i", "reg.example.com/a:1", "--dry-run"], {}, capsys)
    assert code == 2
    assert "problems in the security configuration" in text
    assert len(text.splitlines()) <= 24, text
    assert text.count("bogus") >= 10  # every unknown key is still named


def test_a_dry_run_never_waits_out_the_retry_budget() -> None:
    assert retry.default_budget() == retry.BUDGET
    with retry.at_most(5.0):
        assert retry.default_budget() == 5.0
        with retry.at_most(1.0):
            assert retry.default_budget() == 1.0
        assert retry.default_budget() == 5.0
    assert retry.default_budget() == retry.BUDGET
