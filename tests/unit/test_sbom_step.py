"""The SBOM step's pure parts: parsing a file against the expected format, summaries, settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from sc_ci.config import SecurityConfig
from sc_ci.errors import StepFailed
from sc_ci.imageref import parse as parse_ref
from sc_ci.sbom.formats import CYCLONEDX, SPDX, SYFT, Package
from sc_ci.sbom.validate import InvalidSbom
from sc_ci.steps.sbom import SbomSettings, Target, package_summary, parse

DATA = Path(__file__).parent / "data" / "sbom"
TARGET = Target(parse_ref("127.0.0.1:5000/demo/alpine-app@sha256:" + "f" * 64))


def test_parse_detects_validates_and_names() -> None:
    sbom = parse((DATA / "alpine-app.spdx.json").read_bytes(), TARGET, "given.json")
    assert sbom.format is SPDX
    assert sbom.shown == "given.json"
    assert sbom.filename.endswith(".spdx.json")
    assert "spdx-tools" in sbom.validated.validator
    entry = sbom.entry(attached=True)
    assert (entry.format, entry.sha256, entry.size) == ("spdx-json", sbom.sha256, len(sbom.data))


def test_parse_rejects_the_wrong_format() -> None:
    with pytest.raises(StepFailed, match="holds SPDX JSON, not the requested CycloneDX JSON") as caught:
        parse((DATA / "alpine-app.spdx.json").read_bytes(), TARGET, "x.json", CYCLONEDX)
    assert caught.value.fix.startswith("Use --format spdx-json")


def test_parse_rejects_an_invalid_document() -> None:
    broken = (DATA / "alpine-app.cdx.json").read_text().replace('"type": "library"', '"type": "gadget"', 1)
    broken = broken.replace('"type":"library"', '"type":"gadget"', 1)
    with pytest.raises(InvalidSbom, match="not a valid CycloneDX JSON SBOM"):
        parse(broken.encode(), TARGET, "x.json")


def test_package_summary_splits_os_and_language() -> None:
    packages = [Package("musl", "1", "apk"), Package("zlib", "1", "apk"), Package("requests", "2", "python"),
                Package("lodash", "4", "npm"), Package("x", "1", "")]
    assert package_summary(packages) == "5 packages: 2 OS (apk 2), 3 language (npm 1, python 1, unknown 1)"
    assert package_summary([]) == "0 packages: 0 OS, 0 language"


def test_settings_from_config() -> None:
    sbom = SecurityConfig.model_validate({"sbom": {"format": "syft-json", "extraFormats": ["spdx-json"],
                                                   "cyclonedxVersion": "1.5",
                                                   "attach": {"maxSize": "2MiB", "oversize": "fail"}}}).sbom
    settings = SbomSettings.from_config(sbom)
    assert settings.formats == (SYFT, SPDX)
    assert (settings.cyclonedx_version, settings.max_size, settings.oversize) == ("1.5", 2 * 1024 * 1024, "fail")
