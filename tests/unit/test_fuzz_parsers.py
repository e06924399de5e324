"""Bounded fuzzing (hypothesis, derandomized): every input parses or raises the ScError family, never
anything else; the Docker-config reader never raises; neutralized output has no live command."""

from __future__ import annotations

import json
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sc_ci import imageref, sanitize, secrets  # noqa: E402
from sc_ci.config import yamlio  # noqa: E402
from sc_ci.config.refs import read_secrets_file  # noqa: E402
from sc_ci.errors import ScError  # noqa: E402
from sc_ci.services import dockerconfig, registry  # noqa: E402

TRIED: Counter[str] = Counter()
T = TypeVar("T")


def attempt(fn: Callable[..., T], *args: object, **kwargs: object) -> tuple[T | None, ScError | None]:
    """fn's result, or the ScError it raised; any other exception propagates and fails the test."""
    try:
        return fn(*args, **kwargs), None
    except ScError as exc:
        return None, exc
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
FUZZ_FILES = settings(FUZZ, max_examples=150)

# ---------------------------------------------------------------------------------------------- image refs

_REF_CHARS = "abcz09AZ./:@-_[]" + "\n\r\t \x00\x1b;$`|&%" + "\u00e9\u202e\u2028"
_hosts = st.sampled_from(["", "reg.example.com", "localhost", "127.0.0.1:5000", "[::1]:5000", "[::g]",
                          "reg.example.com:0", "reg.example.com:65536", "a..b", "-x.com", "REG.io"])
_parts = st.lists(st.text(alphabet="abz09._-", min_size=0, max_size=12), min_size=1, max_size=4)
_digests = st.one_of(
    st.just(""),
    st.builds(lambda a, h: f"@{a}:{h}", st.sampled_from(["sha256", "sha512", "sha384", "md5", "SHA256"]),
              st.text(alphabet="0123456789abcdefA", min_size=0, max_size=130)),
)
_structured_refs = st.builds(
    lambda h, p, t, d: (f"{h}/" if h else "") + "/".join(p) + (f":{t}" if t else "") + d,
    _hosts, _parts, st.text(alphabet="abz09._-", max_size=20), _digests,
)


@FUZZ
@given(st.one_of(st.text(alphabet=_REF_CHARS, max_size=80), _structured_refs, st.text(max_size=40)))
def test_fuzz_image_reference(ref: str) -> None:
    TRIED["imageref"] += 1
    parsed, error = attempt(imageref.parse, ref)
    if error is not None:
        assert error.exit_code == 2
        assert "\n" not in error.what
        assert len(error.what) < 400
        return
    assert imageref.parse(str(parsed)) == parsed  # what parses round-trips


# ---------------------------------------------------------------------------------------------- YAML

_YAML_CHARS = "ab:-[]{}&*!|>'\"#%@`,?<= \n\t\\01.~" + "\x00\x07\u00e9\ufeff"
_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _mutate(text: str, cuts: list[int], inserts: list[str]) -> str:
    for pos, piece in zip(cuts, inserts, strict=False):
        at = pos % (len(text) + 1)
        text = text[:at] + piece + text[at:]
    return text


_mutated_yaml = st.builds(
    _mutate,
    st.builds(lambda d: __import__("yaml").safe_dump(d, default_flow_style=None), _json),
    st.lists(st.integers(0, 500), max_size=4),
    st.lists(st.sampled_from(["&a ", "*a", "<<: *a\n", "[", "]", "{", ":", "\n  ", "- ", "!!binary ", "\"",
                              "? ", "%YAML 1.1\n", "---\n", "\x00"]), max_size=4),
)


@FUZZ
@given(st.one_of(st.text(alphabet=_YAML_CHARS, max_size=120), _mutated_yaml))
def test_fuzz_yaml_text(text: str) -> None:
    TRIED["yaml"] += 1
    doc, error = attempt(yamlio.parse_yaml, text, Path("fuzz.yaml"))
    if error is not None or doc is None:
        assert error is not None
        assert error.exit_code == 2
        assert len(error.diagnostics().splitlines()) < 25
        return
    for loc in list(doc.positions)[:20]:
        assert doc.where(loc).startswith("fuzz.yaml")


@FUZZ_FILES
@given(st.binary(max_size=200))
def test_fuzz_yaml_and_secrets_file_bytes(data: bytes) -> None:
    TRIED["yaml-file-bytes"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("c.yaml", "secrets.env"):
            path = Path(tmp) / name
            path.write_bytes(data)
            if name.endswith(".yaml"):
                _, error = attempt(yamlio.load_yaml, path, purpose="configuration file")
            else:
                _, error = attempt(read_secrets_file, path)
            assert error is None or error.exit_code == 2
    secrets.reset_for_tests()


# ---------------------------------------------------------------------------------------------- Docker config

_auth_entries = st.one_of(
    _json,
    st.fixed_dictionaries({}, optional={
        "auth": st.one_of(st.text(max_size=20), st.integers(), st.none(),
                          st.binary(max_size=20).map(lambda b: __import__("base64").b64encode(b).decode())),
        "username": st.one_of(st.text(max_size=8), st.integers()),
        "password": st.one_of(st.text(max_size=8), st.lists(st.integers(), max_size=2)),
    }),
)
_configs = st.one_of(
    _json.map(json.dumps),
    st.dictionaries(st.sampled_from(["auths", "credHelpers", "credsStore"]),
                    st.one_of(st.dictionaries(st.text(max_size=12), _auth_entries, max_size=3), _json),
                    max_size=3).map(json.dumps),
    st.text(max_size=60),
)


@FUZZ_FILES
@given(_configs)
def test_fuzz_docker_config_never_raises(content: str) -> None:
    TRIED["dockerconfig"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(content, encoding="utf-8", errors="surrogateescape")
        env = {"DOCKER_CONFIG": tmp}
        found = dockerconfig.read_credentials(env)
        assert all(isinstance(c.username, str) for c in found.values())
        cred = {"reg.example.com": dockerconfig.Credential("u", secrets.Secret("fuzz-password-123"))}
        with dockerconfig.private_docker_config(cred, env) as directory:
            assert directory is not None
            written = json.loads((Path(directory) / "config.json").read_text())
            assert "reg.example.com" in written["auths"]
    secrets.reset_for_tests()


@settings(FUZZ, max_examples=150)
@given(st.one_of(_json.map(lambda d: json.dumps({"manifests": d})), _json.map(json.dumps)).map(str.encode))
def test_fuzz_index_entries(body: bytes) -> None:
    TRIED["index"] += 1
    _, error = attempt(registry.index_entries, body, "src")
    assert error is None or error.exit_code == 1


# ---------------------------------------------------------------------------------------------- output

_LINE = re.compile(r"\r\n|\r|\n")
_DOTNET_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" \
             "\u200a\u2028\u2029\u202f\u205f\u3000"


@FUZZ
@given(st.one_of(st.text(alphabet=":#[] \t\r\n\u00a0\u2028\u200bx\x1b\ufeff", max_size=60), st.text(max_size=60)))
def test_fuzz_no_output_line_is_a_live_command(text: str) -> None:
    TRIED["neutralize"] += 1
    for out in (sanitize.neutralize(text), sanitize.one_line(text)):
        for line in _LINE.split(out):
            assert not line.strip(_DOTNET_WS).startswith(("::", "##[")), (text, out)
    assert len(_LINE.split(sanitize.one_line(text))) == 1


def test_zz_fuzz_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs last in this file: the number of inputs each fuzz target tried (shown with -s)."""
    with capsys.disabled():
        print(f"\nfuzz inputs tried: {dict(TRIED)} total={sum(TRIED.values())}")
    assert sum(TRIED.values()) > 0 or not TRIED
