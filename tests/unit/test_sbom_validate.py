"""SBOM validation with the real validators: syft's output passes; a broken document fails with the
validator's own message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sc_ci.sbom import formats
from sc_ci.sbom.formats import CYCLONEDX, SPDX, SYFT
from sc_ci.sbom.validate import InvalidSbom, validate

DATA = Path(__file__).parent / "data" / "sbom"


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


def check(document: dict[str, Any], fmt: formats.SbomFormat) -> str:
    return validate(document, json.dumps(document), fmt, "test.json").validator


def test_recorded_cyclonedx_passes_the_schema() -> None:
    document = recorded("alpine-app.cdx.json")
    assert document["specVersion"] == "1.6"
    assert "cyclonedx-python-lib" in check(document, CYCLONEDX)
    assert "CycloneDX 1.6 JSON schema" in check(document, CYCLONEDX)


@pytest.mark.parametrize("version", ["1.4", "1.5", "1.7"])
def test_the_schema_follows_the_documents_spec_version(version: str) -> None:
    document = recorded("alpine-app.cdx.json")
    document["specVersion"] = version
    document["$schema"] = f"http://cyclonedx.org/schema/bom-{version}.schema.json"
    if version == "1.4":  # 1.4 has no `manufacturer`, `authors` etc.; keep only what 1.4 allows
        document["metadata"] = {"timestamp": document["metadata"]["timestamp"]}
        document.pop("dependencies", None)
        for component in document["components"]:
            for key in ("cpe", "properties", "licenses", "evidence", "externalReferences", "author"):
                component.pop(key, None)
    assert f"CycloneDX {version} JSON schema" in check(document, CYCLONEDX)


def test_cyclonedx_schema_violation_names_the_field() -> None:
    document = recorded("alpine-app.cdx.json")
    document["components"][0]["type"] = "gadget"
    with pytest.raises(InvalidSbom) as caught:
        check(document, CYCLONEDX)
    assert caught.value.what == "test.json is not a valid CycloneDX JSON SBOM"
    assert "at components/0/type: 'gadget' is not one of" in caught.value.why
    assert "cyclonedx-python-lib" in caught.value.why


def test_unknown_cyclonedx_version_is_invalid() -> None:
    document = recorded("alpine-app.cdx.json")
    document["specVersion"] = "9.9"
    with pytest.raises(InvalidSbom, match="not a valid CycloneDX JSON SBOM") as caught:
        check(document, CYCLONEDX)
    assert "9.9" in caught.value.why


def test_recorded_spdx_passes_spdx_tools() -> None:
    assert "spdx-tools" in check(recorded("alpine-app.spdx.json"), SPDX)


def test_spdx_semantic_error_is_reported() -> None:
    document = recorded("alpine-app.spdx.json")
    document["packages"][0]["SPDXID"] = "SPDXRef-not valid"
    with pytest.raises(InvalidSbom) as caught:
        check(document, SPDX)
    assert 'must only contain letters, numbers, "." and "-"' in caught.value.why


def test_spdx_missing_required_field_is_reported() -> None:
    document = recorded("alpine-app.spdx.json")
    del document["dataLicense"]
    with pytest.raises(InvalidSbom) as caught:
        check(document, SPDX)
    assert "data_license" in caught.value.why


def test_recorded_syft_json_passes_the_structure_check() -> None:
    assert "Syft JSON structure" in check(recorded("alpine-app.syft.json"), SYFT)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("artifacts"), "'artifacts' is missing"),
    (lambda d: d.update(source=[]), "'source' is a list, expected a dict"),
    (lambda d: d["artifacts"].append({"version": "1"}), "has no name or type"),
])
def test_broken_syft_json_fails(mutate: Any, message: str) -> None:
    document = copy.deepcopy(recorded("alpine-app.syft.json"))
    mutate(document)
    with pytest.raises(InvalidSbom) as caught:
        check(document, SYFT)
    assert message in caught.value.why


def test_many_problems_are_summarised() -> None:
    document = recorded("alpine-app.cdx.json")
    for component in document["components"]:
        component["type"] = "gadget"
    with pytest.raises(InvalidSbom) as caught:
        check(document, CYCLONEDX)
    assert "… and" in caught.value.why
    assert caught.value.why.count("gadget") == 5


@pytest.mark.parametrize(("value", "ok"), [
    ("https://github.com/anchore/syft", True),
    ("pkg:apk/alpine/musl@1.1.24-r9?arch=x86_64", True),
    ("https://example.com/pâquerette/ü?q=日本", True),
    ("#fragment", True),
    ("relative/path.json", True),
    ("", True),
    ("https://example.com/a b", False),
    ("https://exa<mple>.com", False),
    ("http://[::1", False),
    ("https://example.com/\ufffe", False),
])
def test_the_fast_iri_reference_check(value: str, ok: bool) -> None:
    from sc_ci.sbom.validate import is_iri_reference

    assert is_iri_reference(value) is ok
