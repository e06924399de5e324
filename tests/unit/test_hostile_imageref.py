"""Hostile image references: refused with a bounded, escaped, one-screen UsageError (exit 2)."""

from __future__ import annotations

import pytest

from sc_ci import imageref
from sc_ci.errors import ScError
from sc_ci.sanitize import is_command_line

PLANTED = "PLANTED-imageref-s3cr3t"
GOOD = "sha256:" + "a" * 64


def assert_clean(exc: BaseException, planted: tuple[str, ...] = (PLANTED,), code: int = 2) -> str:
    """The error is in the ScError family with `code`, fits one screen, injects no command, leaks nothing."""
    assert isinstance(exc, ScError), type(exc)
    assert exc.exit_code == code
    text = exc.diagnostics()
    assert len(text.splitlines()) < 25, text
    assert not any(is_command_line(line) for line in text.splitlines()), text
    for secret in planted:
        assert secret not in text
    return text


HOSTILE = [
    ("reg.example.com:0/app:1", "1 to 65535"),
    ("reg.example.com:65536/app:1", "1 to 65535"),
    ("reg.example.com:99999/app:1", "1 to 65535"),
    ("reg.example.com:/app:1", "1 to 65535"),
    ("reg.example.com:12a/app", "1 to 65535"),
    ("[::1/app:1", "brackets"),
    ("[::g]:5000/app:1", "not an IPv6 address"),
    ("[1.2.3.4]:5000/app", "not an IPv6 address"),
    ("[::1]x/app", "only :port"),
    ("[::1]:0/app", "1 to 65535"),
    ("-bad.example.com/app", "labels"),
    ("bad-.example.com/app", "labels"),
    ("a..b.com/app", "labels"),
    (("x" * 64) + ".example.com/app", "labels"),
    ("reg.example.com/app:1\r\n::error::pwned", "whitespace"),
    ("reg.example.com/app:1\x1b[2K", "control"),
    ("reg.example.com/app\x00:1", "control"),
    ("reg.example.com/app:1\u202e", "non-ASCII"),
    ("reg.example.com/" + "a" * 5000, "at most 1024"),
    ("reg.example.com/app@sha384:" + "a" * 96, "sha256"),
    ("reg.example.com/app@sha1:" + "a" * 40, "sha256"),
    ("reg.example.com/app@sha512:" + "a" * 127, "128"),
    ("reg.example.com/app:" + PLANTED + "x" * 200, "not valid"),
]


@pytest.mark.parametrize(("ref", "why"), HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def test_hostile_reference_is_refused_cleanly(ref: str, why: str) -> None:
    with pytest.raises(ScError) as info:
        imageref.parse(ref)
    text = assert_clean(info.value, planted=())
    assert why in text
    assert "\n::" not in text
    assert "\r" not in text
    assert len(info.value.what) < 200


def test_echoed_value_is_bounded_and_escaped() -> None:
    with pytest.raises(ScError) as info:
        imageref.parse("reg.example.com/app:1\n::add-mask::x" + "y" * 3000)
    what = info.value.what
    assert "\\n::add-mask::" in what
    assert len(what) < 200


@pytest.mark.parametrize("ref", ["[::1]:5000/app:1", "[fe80::1]/team/app", "reg.example.com:1/a",
                                 "reg.example.com:65535/a", f"reg.example.com/a@sha512:{'b' * 128}",
                                 f"localhost:5000/a@{GOOD}"])
def test_good_edge_references_still_parse(ref: str) -> None:
    parsed = imageref.parse(ref)
    assert str(parsed) == ref


def test_with_digest_refuses_unregistered_algorithm() -> None:
    ref = imageref.parse("reg.example.com/app:1")
    with pytest.raises(ScError) as info:
        ref.with_digest("md5:" + "a" * 32)
    assert_clean(info.value)
