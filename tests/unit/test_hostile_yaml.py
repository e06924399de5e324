"""Hostile YAML and secrets files: bounded size, regular files only, no alias bombs or deep nesting,
and errors that name file:line:col without echoing the line."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from sc_ci.config import yamlio
from sc_ci.config.refs import SecretRef, read_secrets_file
from sc_ci.errors import ConfigError, ScError
from sc_ci.sanitize import is_command_line

PLANTED = "PLANTED-yaml-s3cr3t-value"


def assert_clean(exc: BaseException, planted: tuple[str, ...] = (PLANTED,)) -> str:
    assert isinstance(exc, ScError), type(exc)
    assert isinstance(exc, ConfigError)
    assert exc.exit_code == 2
    text = exc.diagnostics()
    assert len(text.splitlines()) < 25, text
    assert not any(is_command_line(line) for line in text.splitlines()), text
    for secret in planted:
        assert secret not in text, text
    return text


def load_error(tmp_path: Path, content: bytes | str, name: str = "c.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(ScError) as info:
        yamlio.load_yaml(path, purpose="configuration file")
    return assert_clean(info.value)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)
MERGE_BOMB = "a0: &a0 {k: v}\n" + "".join(f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}]}}\n" for i in range(1, 40))

HOSTILE_TEXT = [
    (BOMB, "alias bomb"),
    (MERGE_BOMB, "alias bomb"),
    ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
    ("x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)), "nested deeper"),
    ("a: &a [*a]\n", "refers to itself"),
    ("a: &a {b: *a}\n", "refers to itself"),
    ("l: [" + ", ".join(["*x"] * 1) + "]\n", "undefined alias"),
    ("base: &b [1]\nuses: [" + ", ".join(["*b"] * 1500) + "]\n", "aliases"),
    (f"security:\n  signing:\n    password: {PLANTED}\n     bad: [\n", "malformed YAML"),
    (f"security: {{a: {PLANTED}\n", "malformed YAML"),
    (f'k: "{PLANTED}\\q"\n', "malformed YAML"),
    (f"k: !!python/object:os.system {PLANTED}\n", "malformed YAML"),
    (f"a: {PLANTED}\na: {PLANTED}\n", "duplicate key"),
    ("k: v\n\x07bell\n", "malformed YAML"),
    ("a: 1\n---\nb: 2\n", "malformed YAML"),
    ("k: v\n::error::injected\n", "malformed YAML"),
]


@pytest.mark.parametrize(("text", "why"), HOSTILE_TEXT, ids=[f"y{i}" for i in range(len(HOSTILE_TEXT))])
def test_hostile_yaml_is_a_clean_config_error(tmp_path: Path, text: str, why: str) -> None:
    started = time.monotonic()
    message = load_error(tmp_path, text)
    assert why in message, message
    assert str(tmp_path / "c.yaml") in message
    assert time.monotonic() - started < 2


def test_syntax_error_names_line_and_column_but_not_the_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, f"a: 1\nb: [{PLANTED}\n")
    assert f"{tmp_path / 'c.yaml'}:3:1" in message


@pytest.mark.parametrize(("content", "why"), [
    (b"a: 1\n\x00\x01\x02", "NUL byte"),
    (b"a: 1\nb: \xff\xfe\n", "not valid UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "NUL byte"),
    (b"a: \xc3\x28\n", "not valid UTF-8"),
], ids=["nul", "latin1", "png", "bad-utf8"])
def test_binary_and_non_utf8_are_config_errors(tmp_path: Path, content: bytes, why: str) -> None:
    message = load_error(tmp_path, content)
    assert why in message
    assert any(f"c.yaml:{n}:" in message for n in (1, 2, 3))


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert yamlio.load_yaml(path, purpose="x").data == {"a": 1}


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    message = load_error(tmp_path, "a: " + "x" * (yamlio.MAX_BYTES + 1) + "\n")
    assert "larger than" in message


def _refuses_quickly(path: Path, why: str) -> None:
    result: list[BaseException] = []
    done = threading.Event()

    def attempt() -> None:
        try:
            yamlio.load_yaml(path, purpose="configuration file")
        except BaseException as exc:
            result.append(exc)
        done.set()

    threading.Thread(target=attempt, daemon=True).start()
    assert done.wait(5), f"blocked reading {path}"
    assert result, "no error raised"
    assert why in assert_clean(result[0])


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    _refuses_quickly(fifo, "not a regular file")


def test_dev_zero_and_directory_are_refused(tmp_path: Path) -> None:
    _refuses_quickly(Path("/dev/zero"), "not a regular file")
    _refuses_quickly(tmp_path, "is a directory")
    link = tmp_path / "link.yaml"
    link.symlink_to("/dev/zero")
    _refuses_quickly(link, "not a regular file")


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ScError) as info:
        yamlio.load_yaml(tmp_path / "nope.yaml", purpose="configuration file")
    assert "not found" in assert_clean(info.value)


def test_wide_alias_use_stays_linear(tmp_path: Path) -> None:
    """Many aliases of a small anchor are fine; the position walk is bounded by the expansion check."""
    text = "base: &b {x: 1, y: [1, 2]}\n" + "".join(f"k{i}: *b\n" for i in range(900))
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    started = time.monotonic()
    doc = yamlio.load_yaml(path, purpose="x")
    assert time.monotonic() - started < 2
    assert doc.where(("k899", "y", 1)).endswith(":1:24")


def test_merge_keys_and_positions_still_work(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("base: &b\n  a: 1\n  b: 2\nchild:\n  <<: *b\n  b: 3\n")
    doc = yamlio.load_yaml(path, purpose="x")
    assert doc.data == {"base": {"a": 1, "b": 2}, "child": {"a": 1, "b": 3}}
    assert doc.where(("child", "b")).endswith(":6:3")


# ---------------------------------------------------------------------------------------------- secrets file


@pytest.mark.parametrize(("content", "why"), [
    (b"COSIGN_PASSWORD=" + PLANTED.encode() + b"\xff\n", "not valid UTF-8"),
    (b"KEY=" + PLANTED.encode() + b"\x00\n", "NUL byte"),
    (("a: &a [" + PLANTED + "]\nb: [*a, *a]\n" + BOMB.replace("a:", "z:", 1)).encode(), "neither"),
    (f"K: {PLANTED}\nK: {PLANTED}\n".encode(), "neither"),
    (f"- {PLANTED}\n".encode(), "flat mapping"),
    (f"{{K: [{PLANTED}\n".encode(), "neither"),
], ids=["non-utf8", "nul", "bomb", "dup", "list", "syntax"])
def test_hostile_secrets_file(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_bytes(content)
    with pytest.raises(ScError) as info:
        read_secrets_file(path)
    message = assert_clean(info.value)
    assert why in message
    assert "SC_CI_SECRETS_FILE" in message


def test_secrets_file_fifo_and_size(tmp_path: Path) -> None:
    fifo = tmp_path / "secrets.env"
    os.mkfifo(fifo)
    with pytest.raises(ScError) as info:
        read_secrets_file(fifo)
    assert "not a regular file" in assert_clean(info.value)
    big = tmp_path / "big.env"
    big.write_text("K=" + "x" * (2 * 1024 * 1024))
    with pytest.raises(ScError) as info:
        read_secrets_file(big)
    assert "larger than" in assert_clean(info.value)
    with pytest.raises(ScError) as info:
        SecretRef("secret", "k").resolve({}, Path("/dev/zero"))
    assert_clean(info.value)
