"""The in-toto Statement v1 parts of cosign attestations without cosign: the route per major, format and signer,
the statement built from a predicate (subject = the image digest), what falls back to `cosign attest`, and the
argv of attest-blob + attach (secrets never in argv) against the vendored Statement v1 JSON Schema."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from sc_ci import runner
from sc_ci.runner import Completed
from sc_ci.secrets import Secret
from sc_ci.signing.signers import Key, Keyless
from sc_ci.tools.cosign import TOKEN_PLACEHOLDER, Cosign, SignOptions
from sc_ci.tools.cosign_statement import (
    PREDICATE_TYPES,
    STATEMENT_V1,
    load_predicate,
    predicate_uri,
    route,
    statement_v1,
    subject_of,
    write_statement,
)

HEX = "c" * 64
IMG = f"registry.example.com:5000/team/app@sha256:{HEX}"
V3, V2 = Cosign(Path("/bin/cosign"), "v3.1.2", {}), Cosign(Path("/bin/cosign"), "v2.6.4", {})
KEY = Key("cosign.key", label="cosign.key")
TOKEN = Keyless(Secret("eyJ.statement.token", "t"), "test")


@pytest.mark.parametrize(("major", "fmt", "keyless", "tlog", "expected"), [
    (3, "bundle", False, False, "bundle"), (3, "bundle", False, True, "bundle"),
    (3, "bundle", True, False, "bundle"), (3, "bundle", True, True, "bundle"),
    (2, "bundle", False, False, None), (2, "bundle", True, True, None),
    (3, "legacy", False, False, "envelope"), (2, "legacy", False, False, "envelope"),
    (3, "legacy", False, True, None), (2, "legacy", False, True, None),
    (3, "legacy", True, False, None), (2, "legacy", True, False, None),
])
def test_route_per_major_format_and_signer(major: int, fmt: Any, keyless: bool, tlog: bool,
                                           expected: str | None) -> None:
    assert route(major, fmt, keyless=keyless, tlog=tlog) == expected


def test_statement_v1_names_the_digest_and_carries_the_predicate_unchanged(attestation_schemas: Any) -> None:
    predicate = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": "é", "n": 1.5}]}
    statement = statement_v1(IMG, predicate, "cyclonedx")
    assert statement == {"_type": STATEMENT_V1,
                         "subject": [{"name": "registry.example.com:5000/team/app", "digest": {"sha256": HEX}}],
                         "predicateType": "https://cyclonedx.org/bom", "predicate": predicate}
    attestation_schemas.check(statement)


@pytest.mark.parametrize("image", ["registry.example.com/app:1.0", f"app@sha512:{HEX}", f"@sha256:{HEX}",
                                   "registry.example.com/app@sha256:" + "C" * 64, "r/app@sha256:abc"])
def test_subject_needs_a_sha256_digest_reference(image: str) -> None:
    with pytest.raises(ValueError, match="by sha256 digest"):
        subject_of(image)


def test_predicate_types_follow_cosign_and_uris_pass_through() -> None:
    assert predicate_uri("slsaprovenance1") == "https://slsa.dev/provenance/v1"
    assert predicate_uri("spdxjson") == predicate_uri("spdx") == "https://spdx.dev/Document"
    assert predicate_uri("https://syft.dev/bom") == "https://syft.dev/bom"
    assert set(PREDICATE_TYPES) == {"custom", "slsaprovenance", "slsaprovenance02", "slsaprovenance1", "spdx",
                                    "spdxjson", "cyclonedx", "link", "vuln", "openvex"}


@pytest.mark.parametrize(("content", "cosign_type", "loaded"), [
    ('{"a": [1, 2]}', "cyclonedx", {"a": [1, 2]}),
    ('{"a": 1}', "https://example.com/p/v1", {"a": 1}),
    ('{"a": 1}', "custom", None),  # cosign wraps it as {"Data": …, "Timestamp": …}
    ('{"a": 1}', "https://cosign.sigstore.dev/attestation/v1", None),
    ("SPDXVersion: SPDX-2.3\n", "spdx", None),  # tag-value: cosign embeds a string
    ("[1, 2]", "cyclonedx", None),
    ('"text"', "cyclonedx", None),
])
def test_only_json_object_predicates_become_v1(tmp_path: Path, content: str, cosign_type: str,
                                               loaded: dict[str, Any] | None) -> None:
    path = tmp_path / "p"
    path.write_text(content)
    assert load_predicate(path, cosign_type) == loaded


def test_statement_file_is_private_compact_and_new(tmp_path: Path) -> None:
    path = write_statement(tmp_path / "s.json", statement_v1(IMG, {"x": "ü"}, "cyclonedx"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith('{"_type":"https://in-toto.io/Statement/v1","subject":[')
    assert json.loads(path.read_text())["predicate"] == {"x": "ü"}
    with pytest.raises(FileExistsError):
        write_statement(path, {})


def test_attest_blob_argv_per_format_and_major() -> None:
    opts = SignOptions(tlog=False)
    bundle = V3.attest_blob_argv(Path("s.json"), KEY, opts, "bundle", "b.json")
    assert bundle == ["/bin/cosign", "attest-blob", "--yes", "--key", "cosign.key", "--statement", "s.json",
                      "--use-signing-config=false", "--tlog-upload=false", "--bundle", "b.json"]
    legacy = V3.attest_blob_argv(Path("s.json"), KEY, opts, "legacy", "e.json")
    assert legacy[-2:] == ["--output-signature", "e.json"]  # the DSSE envelope (--output-attestation: no)
    assert "--new-bundle-format=false" in legacy
    assert "--use-signing-config=false" in legacy
    v2 = V2.attest_blob_argv(Path("s.json"), KEY, opts, "legacy", "e.json")
    assert v2 == ["/bin/cosign", "attest-blob", "--yes", "--key", "cosign.key", "--statement", "s.json",
                  "--tlog-upload=false", "--output-signature", "e.json"]
    assert V3.attach_attestation_argv(IMG, "b.json") == ["/bin/cosign", "attach", "attestation", "--attestation",
                                                         "b.json", IMG]


def test_keyless_attest_blob_takes_the_token_file_and_the_signing_config() -> None:
    opts = SignOptions(tlog=False, ct_log=False, signing_config="sc.json", trusted_root="tr.json")
    argv = V3.attest_blob_argv(Path("s.json"), TOKEN, opts, "bundle", "b.json")
    assert argv[3:5] == ["--identity-token", TOKEN_PLACEHOLDER]
    assert argv[7:11] == ["--signing-config", "sc.json", "--trusted-root", "tr.json"]
    assert "eyJ.statement.token" not in " ".join(argv)


def test_dry_run_commands_show_each_route() -> None:
    predicate = Path("bom.json")
    both = V3.attest_argvs(IMG, KEY, predicate, "cyclonedx", SignOptions(tlog=False, storage="both"))
    assert [argv[1] for argv in both] == ["attest-blob", "attach", "attest-blob", "attach"]
    assert "--output-signature" in both[0]
    assert "--bundle" in both[2]
    keyless = V2.attest_argvs(IMG, TOKEN, predicate, "cyclonedx", SignOptions(storage="both"))
    assert [argv[1] for argv in keyless] == ["attest", "attest"]  # v2.6 keyless: no v1 route at all
    mixed = V3.attest_argvs(IMG, TOKEN, predicate, "cyclonedx", SignOptions(storage="both"))
    assert [argv[1] for argv in mixed] == ["attest", "attest-blob", "attach"]


class Recorder:
    """Stands in for runner.run: records argv (and the files cosign would read), answers success."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.statements: list[dict[str, Any]] = []

    def __call__(self, argv: list[str], env: Any = None, **_: Any) -> Completed:
        self.calls.append(argv)
        if "--statement" in argv:
            self.statements.append(json.loads(Path(argv[argv.index("--statement") + 1]).read_text()))
        return Completed(tuple(argv), 0, "", "", 0.1)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(runner, "run", rec)
    return rec


def test_attest_runs_blob_then_attach_and_removes_its_files(recorder: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_text(json.dumps({"bomFormat": "CycloneDX"}))
    V3.attest(IMG, KEY, path, "cyclonedx", SignOptions(tlog=False, storage="both"))
    assert [argv[1] for argv in recorder.calls] == ["attest-blob", "attach", "attest-blob", "attach"]
    assert [s["_type"] for s in recorder.statements] == [STATEMENT_V1, STATEMENT_V1]
    assert recorder.statements[0]["subject"][0]["digest"] == {"sha256": HEX}
    files = [Path(argv[argv.index(flag) + 1]) for argv in recorder.calls
             for flag in ("--statement", "--attestation") if flag in argv]
    assert len(files) == 4
    assert not any(f.exists() or f.parent.exists() for f in files)


def test_attest_falls_back_to_cosign_attest_where_no_v1_route(recorder: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_text(json.dumps({"bomFormat": "CycloneDX"}))
    V3.attest(IMG, KEY, path, "cyclonedx", SignOptions(tlog=True, storage="legacy"))  # a logged .att
    V2.attest(IMG, KEY, path, "cyclonedx", SignOptions(tlog=False, storage="referrers"))  # a v2.6 bundle
    V3.attest(IMG, KEY, path, "custom", SignOptions(tlog=False))  # cosign's own wrapper predicate
    V3.attest("registry.example.com/app:1.0", KEY, path, "cyclonedx", SignOptions(tlog=False))  # by tag
    V3.attest(IMG, KEY, tmp_path / "missing.json", "cyclonedx", SignOptions(tlog=False))  # cosign reports it
    assert [argv[1] for argv in recorder.calls] == ["attest"] * 5
    assert all(argv[5] == "--predicate" for argv in recorder.calls)


def test_keyless_attest_blob_token_file_lives_only_while_cosign_runs(recorder: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"buildDefinition": {}}))
    V3.attest(IMG, TOKEN, path, "slsaprovenance1", SignOptions(tlog=False, signing_config="sc.json"))
    blob, attach = recorder.calls
    token_file = Path(blob[blob.index("--identity-token") + 1])
    assert token_file.name == "token"
    assert not token_file.exists()
    assert "--identity-token" not in attach
    assert all("eyJ.statement.token" not in " ".join(argv) for argv in recorder.calls)
