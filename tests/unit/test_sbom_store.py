"""Where SBOM files go: atomic writes, .gitignore in directories sc-ci makes, output choice, index parsing,
and the reference predicate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sc_ci.commands.sbom import Destination
from sc_ci.errors import StepFailed, UsageError, VerificationFailed
from sc_ci.sbom import multiarch, reference, store


def test_new_output_dir_gets_a_gitignore(tmp_path: Path) -> None:
    target = tmp_path / "a" / "sbom"
    assert store.prepare_dir(target) == ""
    assert (target / ".gitignore").read_text().splitlines()[-1] == "*"


def test_empty_existing_dir_gets_one_too(tmp_path: Path) -> None:
    assert store.prepare_dir(tmp_path) == ""
    assert (tmp_path / ".gitignore").exists()


def test_a_dir_with_other_files_is_left_alone_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("mine")
    warning = store.prepare_dir(tmp_path)
    assert "has no .gitignore" in warning
    assert not (tmp_path / ".gitignore").exists()


def test_an_existing_gitignore_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("custom\n")
    assert store.prepare_dir(tmp_path) == ""
    assert (tmp_path / ".gitignore").read_text() == "custom\n"


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = store.write_atomic(tmp_path / "x.json", b"{}")
    store.write_atomic(path, b'{"a": 1}')
    assert path.read_bytes() == b'{"a": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_destination_choice(tmp_path: Path) -> None:
    assert Destination.choose(None, attaching=False, count=1).kind == "stdout"
    assert Destination.choose(None, attaching=True, count=5).kind == "none"
    assert Destination.choose("out/", attaching=False, count=1).kind == "dir"
    assert Destination.choose(str(tmp_path), attaching=False, count=1).kind == "dir"
    assert Destination.choose("app.cdx.json", attaching=False, count=1).kind == "file"
    with pytest.raises(UsageError, match="cannot all go to stdout"):
        Destination.choose(None, attaching=False, count=2)
    with pytest.raises(UsageError, match="is one file") as caught:
        Destination.choose("app.cdx.json", attaching=False, count=3)
    assert caught.value.fix == "Give a directory: --output app.cdx.json/"


INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "1" * 64,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "2" * 64,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "3" * 64,
         "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + "4" * 64},
    ],
}


def test_index_platforms_skip_attestation_manifests() -> None:
    found = multiarch.platform_manifests(json.dumps(INDEX).encode(), "reg/app:1")
    assert [(p.platform, p.digest[-1]) for p in found] == [("linux/amd64", "1"), ("linux/arm64/v8", "2")]


def test_index_without_platform_images_fails() -> None:
    with pytest.raises(StepFailed, match="lists no platform image"):
        multiarch.platform_manifests(json.dumps({"manifests": INDEX["manifests"][2:]}).encode(), "reg/app:1")
    with pytest.raises(StepFailed, match="cannot be read"):
        multiarch.platform_manifests(b"{}", "reg/app:1")


def test_reference_predicate_round_trip() -> None:
    entry = reference.SbomEntry("reg/app@sha256:" + "1" * 64, "spdx-json", "https://spdx.dev/Document",
                                reference.sha256_hex(b"{}"), 2, "x.spdx.json", "linux/amd64", attached=True)
    doc = json.loads(json.dumps(reference.predicate("index", [entry])))
    assert doc["reason"] == "index"
    assert doc["sboms"][0]["digest"] == {"sha256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
    assert reference.entries(doc) == [entry]
    with pytest.raises(VerificationFailed, match="lists no SBOMs"):
        reference.entries({"reason": "index"})
    with pytest.raises(VerificationFailed, match="malformed"):
        reference.entries({"sboms": [{"subject": "x"}]})
