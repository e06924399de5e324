"""SBOM formats: detection from content (never the file name), packages, subject digest, attestation types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sc_ci.errors import UsageError
from sc_ci.sbom import formats
from sc_ci.sbom.formats import CYCLONEDX, SPDX, SYFT, NotAnSbom
from testbed.images import known_packages

DATA = Path(__file__).parent / "data" / "sbom"
DIGEST = "sha256:fac7eb7157f7ef48871773a4fcc819c8cef080ee783e6c0e413b121bba58ab22"


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(("name", "expected"), [
    ("alpine-app.cdx.json", CYCLONEDX), ("alpine-app.spdx.json", SPDX), ("alpine-app.syft.json", SYFT),
])
def test_detects_each_recorded_format(name: str, expected: formats.SbomFormat) -> None:
    assert formats.detect(recorded(name)) is expected


def test_detection_ignores_the_file_name(tmp_path: Path) -> None:
    misleading = tmp_path / "really-cyclonedx.cdx.json"
    misleading.write_text((DATA / "alpine-app.spdx.json").read_text())
    document = formats.load_document(misleading.read_text(), str(misleading))
    assert formats.detect(document, str(misleading)) is SPDX


@pytest.mark.parametrize(("text", "message"), [
    ("<?xml version='1.0'?><bom xmlns='http://cyclonedx.org/schema/bom/1.6'/>", "is XML"),
    ("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n", "SPDX tag-value"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "top level is not an object"),
])
def test_unreadable_documents_say_why(text: str, message: str) -> None:
    with pytest.raises(NotAnSbom) as caught:
        formats.load_document(text, "x.json")
    assert message in caught.value.what
    assert caught.value.fix


def test_json_that_is_no_sbom_is_rejected_with_its_keys() -> None:
    with pytest.raises(NotAnSbom) as caught:
        formats.detect({"name": "package.json", "version": "1.0.0"}, "package.json")
    assert "not a CycloneDX, SPDX or Syft JSON SBOM" in caught.value.what
    assert "name, version" in caught.value.why


def test_spdx3_json_ld_is_named() -> None:
    with pytest.raises(NotAnSbom, match="SPDX 3"):
        formats.detect({"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph": []})


@pytest.mark.parametrize("name", ["alpine-app.cdx.json", "alpine-app.spdx.json", "alpine-app.syft.json"])
def test_packages_are_the_known_os_and_language_packages(name: str) -> None:
    document = recorded(name)
    listed = {(p.name, p.version, p.type) for p in formats.packages(document, formats.detect(document))}
    known = known_packages("alpine-app")
    assert {(p.name, p.version, p.type) for p in known.packages} == listed
    assert {p.type for p in known.os_packages} == {"apk"}
    assert {p.type for p in known.language_packages} == {"python", "npm"}


@pytest.mark.parametrize("name", ["alpine-app.cdx.json", "alpine-app.spdx.json", "alpine-app.syft.json"])
def test_subject_digest_is_what_syft_scanned(name: str) -> None:
    document = recorded(name)
    assert formats.subject_digest(document, formats.detect(document)) == DIGEST


def test_attestation_types_match_cosign() -> None:
    assert (CYCLONEDX.cosign_type, CYCLONEDX.predicate_type) == ("cyclonedx", "https://cyclonedx.org/bom")
    assert (SPDX.cosign_type, SPDX.predicate_type) == ("spdxjson", "https://spdx.dev/Document")
    assert SYFT.cosign_type == SYFT.predicate_type == "https://syft.dev/bom"
    assert formats.by_predicate_type("https://spdx.dev/Document") is SPDX
    assert formats.by_predicate_type("cyclonedx") is CYCLONEDX
    assert formats.by_predicate_type("https://slsa.dev/provenance/v1") is None


def test_syft_output_names() -> None:
    assert CYCLONEDX.syft_output("1.6") == "cyclonedx-json@1.6"
    assert CYCLONEDX.syft_output(None) == "cyclonedx-json"
    assert SPDX.syft_output("1.6") == "spdx-json"


def test_unknown_format_name_is_a_usage_error() -> None:
    assert formats.by_name(" SPDX-JSON ") is SPDX
    with pytest.raises(UsageError, match="unknown SBOM format 'cyclonedx-xml'"):
        formats.by_name("cyclonedx-xml")
