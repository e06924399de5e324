"""sanitize and safefile against hostile text and planted files: no live workflow command, no symlink
followed, no blocking open."""

from __future__ import annotations

import os
import re
import stat
import threading
from pathlib import Path

import pytest

from sc_ci import safefile, sanitize
from sc_ci.errors import ScError

# What the GitHub runner does: split on CR, LF or CRLF, trim .NET whitespace, look for `::` / `##[`.
_RUNNER_SPLIT = re.compile(r"\r\n|\r|\n")
_DOTNET_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" \
             "\u200a\u2028\u2029\u202f\u205f\u3000"


def live_commands(output: str) -> list[str]:
    return [line for line in _RUNNER_SPLIT.split(output)
            if line.strip(_DOTNET_WS).startswith(("::", "##["))]


def assert_clean(exc: BaseException, code: int = 2) -> str:
    assert isinstance(exc, ScError), type(exc)
    assert exc.exit_code == code
    text = exc.diagnostics()
    assert len(text.splitlines()) < 25
    assert not live_commands(text)
    return text


INJECTIONS = [
    "::error::pwned",
    "   ::set-output name=x::y",
    "\t::add-mask::x",
    "ok\n::warning::x",
    "ok\r::warning::x",
    "ok\r\n  ##[error]x",
    "ok\u2028::error::x",
    "\u00a0\u3000::error::x",
    "\ufeff::error::x",
    "\u200b::error::x",
    "\x1b[0m\n::stop-commands::abc",
    "a\n\n\n::endgroup::",
    "##[group]x\n::group::y",
]


@pytest.mark.parametrize("text", INJECTIONS, ids=[f"inj{i}" for i in range(len(INJECTIONS))])
def test_neutralize_leaves_no_live_command(text: str) -> None:
    out = sanitize.neutralize(text)
    assert not live_commands(out), out
    assert "\r" not in out
    assert "\x1b" not in out


@pytest.mark.parametrize("text", INJECTIONS, ids=[f"inj{i}" for i in range(len(INJECTIONS))])
def test_one_line_is_one_inert_line(text: str) -> None:
    out = sanitize.one_line(text)
    assert len(_RUNNER_SPLIT.split(out)) == 1
    assert not live_commands(out)


def test_neutralize_keeps_ordinary_text() -> None:
    assert sanitize.neutralize("plain\n  indented: a::b\nlast") == "plain\n  indented: a::b\nlast"


def test_one_line_bounds_and_escapes() -> None:
    out = sanitize.one_line("x\n" * 1000, limit=50)
    assert len(out) <= 50
    assert out.endswith("…")
    assert sanitize.one_line("a\x00b\x7fc\u202ed") == "a\\x00b\\x7fc\\u202ed"
    assert sanitize.one_line("short") == "short"


def test_stop_commands_fence() -> None:
    token = sanitize.stop_commands_token()
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert token != sanitize.stop_commands_token()
    fenced = sanitize.fenced("::error::x\nlog")
    lines = fenced.splitlines()
    assert lines[0].startswith("::stop-commands::")
    assert lines[-1] == f"::{lines[0].split('::')[2]}::"
    assert live_commands("\n".join(lines[1:-1])) == []


# ---------------------------------------------------------------------------------------------- safefile


def test_write_text_replaces_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "summary.md"
    link.symlink_to(victim)
    safefile.write_text(link, "report", mode=0o640)
    assert victim.read_text() == "precious"
    assert not link.is_symlink()
    assert link.read_text() == "report"
    assert stat.S_IMODE(link.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_write_bytes_refuses_parent_symlink_outside_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "ws", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "out").symlink_to(outside)
    with pytest.raises(ScError) as info:
        safefile.write_bytes(root / "out" / "r.json", b"{}", root=root)
    assert "outside" in assert_clean(info.value)
    assert list(outside.iterdir()) == []
    safefile.write_bytes(root / "r.json", b"{}", root=root)
    assert (root / "r.json").read_bytes() == b"{}"


def test_write_refuses_a_directory_target(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(ScError) as info:
        safefile.write_text(tmp_path / "d", "x")
    assert_clean(info.value)


def test_append_text_refuses_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "github_output"
    out.symlink_to(victim)
    with pytest.raises(ScError) as info:
        safefile.append_text(out, "x=1\n")
    assert "symlink" in assert_clean(info.value)
    assert victim.read_text() == "precious\n"


def test_append_text_refuses_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = threading.Event()
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            safefile.append_text(fifo, "x=1\n")
        except BaseException as exc:
            errors.append(exc)
        done.set()

    threading.Thread(target=attempt, daemon=True).start()
    assert done.wait(5), "append_text blocked on a FIFO"
    assert errors
    assert isinstance(errors[0], ScError)
    assert_clean(errors[0])


def test_append_text_appends(tmp_path: Path) -> None:
    out = tmp_path / "out"
    safefile.append_text(out, "a=1\n")
    safefile.append_text(out, "b=2\n")
    assert out.read_text() == "a=1\nb=2\n"
    safefile.append_text(os.devnull, "ignored")


def test_read_bytes_refuses_fifo_device_and_big_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2000)
    for path in (fifo, Path("/dev/zero"), tmp_path, big):
        with pytest.raises(ScError) as info:
            safefile.read_bytes(path, limit=1000)
        assert_clean(info.value)
