"""The three SBOM formats: syft names, file extensions, attestation types, and detection from content."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sc_ci.errors import UsageError

FormatName = Literal["cyclonedx-json", "spdx-json", "syft-json"]


@dataclass(frozen=True)
class SbomFormat:
    """One SBOM format: how syft names it, how its files end, and how it is attested.

    `cosign_type` is what `cosign attest/verify-attestation --type` takes; `predicate_type` is the
    URI cosign writes into the in-toto statement for it."""

    name: FormatName
    extension: str
    cosign_type: str
    predicate_type: str
    label: str

    def syft_output(self, cyclonedx_version: str | None = None) -> str:
        """The `-o` format id for syft (`cyclonedx-json@1.6`)."""
        if self.name == "cyclonedx-json" and cyclonedx_version:
            return f"{self.name}@{cyclonedx_version}"
        return self.name


CYCLONEDX = SbomFormat("cyclonedx-json", "cdx.json", "cyclonedx", "https://cyclonedx.org/bom", "CycloneDX JSON")
SPDX = SbomFormat("spdx-json", "spdx.json", "spdxjson", "https://spdx.dev/Document", "SPDX JSON")
# cosign has no short name for syft's own format; this URI is the one `syft attest` uses for it.
SYFT = SbomFormat("syft-json", "syft.json", "https://syft.dev/bom", "https://syft.dev/bom", "Syft JSON")
FORMATS: tuple[SbomFormat, ...] = (CYCLONEDX, SPDX, SYFT)
FORMAT_NAMES: tuple[str, ...] = tuple(f.name for f in FORMATS)


def by_name(name: str) -> SbomFormat:
    wanted = name.strip().lower()
    for fmt in FORMATS:
        if fmt.name == wanted:
            return fmt
    raise UsageError(f"unknown SBOM format {name!r}", why=f"the formats are {', '.join(FORMAT_NAMES)}",
                     fix="Pass --format cyclonedx-json, spdx-json or syft-json (XML and tag-value are not "
                         "supported).")


def by_predicate_type(predicate_type: str) -> SbomFormat | None:
    for fmt in FORMATS:
        if predicate_type in (fmt.predicate_type, fmt.cosign_type):
            return fmt
    return None


class NotAnSbom(UsageError):
    """A file that is not one of the three JSON SBOM formats."""


def load_document(text: str, source: str) -> dict[str, Any]:
    """Parse an SBOM file's text as a JSON object (NotAnSbom with the reason otherwise)."""
    stripped = text.lstrip()
    if stripped.startswith("<"):
        raise NotAnSbom(f"{source} is XML, not a JSON SBOM",
                        fix="Generate JSON: sc-ci sbom generate --format cyclonedx-json (or spdx-json).")
    if stripped.startswith("SPDXVersion:"):
        raise NotAnSbom(f"{source} is SPDX tag-value, not SPDX JSON",
                        fix="Generate SPDX JSON: sc-ci sbom generate --format spdx-json.")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise NotAnSbom(f"{source} is not valid JSON", why=str(exc),
                        fix="Pass the SBOM file exactly as syft wrote it (sc-ci sbom generate --output DIR).") from exc
    if not isinstance(data, dict):
        raise NotAnSbom(f"{source} is JSON but not an SBOM document (its top level is not an object)",
                        fix="Pass a CycloneDX JSON, SPDX JSON or Syft JSON SBOM.")
    return data


def detect(document: Mapping[str, Any], source: str = "the SBOM") -> SbomFormat:
    """Which format a parsed document is, from its content (never from a file name)."""
    if document.get("bomFormat") == "CycloneDX":
        return CYCLONEDX
    version = document.get("spdxVersion")
    if isinstance(version, str) and version.startswith("SPDX-"):
        return SPDX
    if "@context" in document and "spdx" in json.dumps(document.get("@context", "")).lower():
        raise NotAnSbom(f"{source} is SPDX 3 (JSON-LD), which attestations here do not carry",
                        fix="Generate SPDX 2.3 JSON with syft: sc-ci sbom generate --format spdx-json.")
    if _is_syft_json(document):
        return SYFT
    keys = ", ".join(sorted(document)[:8]) or "none"
    raise NotAnSbom(f"{source} is not a CycloneDX, SPDX or Syft JSON SBOM",
                    why=f"no bomFormat=CycloneDX, spdxVersion=SPDX-… or syft schema found (top-level keys: {keys})",
                    fix="Pass the SBOM file exactly as syft wrote it (sc-ci sbom generate --output DIR).")


def _is_syft_json(document: Mapping[str, Any]) -> bool:
    descriptor, schema = document.get("descriptor"), document.get("schema")
    if isinstance(descriptor, dict) and descriptor.get("name") == "syft":
        return True
    return isinstance(schema, dict) and "anchore/syft" in str(schema.get("url", "")) and "artifacts" in document


@dataclass(frozen=True)
class Package:
    """One package an SBOM lists; `type` is syft's package type (apk, deb, python, npm, …) when known."""

    name: str
    version: str
    type: str


def packages(document: Mapping[str, Any], fmt: SbomFormat) -> list[Package]:
    """The packages (not files, not the OS entry) an SBOM lists, in document order."""
    if fmt is CYCLONEDX:
        return [_cdx_package(c) for c in document.get("components") or []
                if isinstance(c, dict) and c.get("type") not in ("file", "operating-system", "container")]
    if fmt is SPDX:
        return [_spdx_package(p) for p in document.get("packages") or []
                if isinstance(p, dict) and p.get("primaryPackagePurpose") not in ("CONTAINER", "OPERATING-SYSTEM")]
    return [Package(str(a.get("name", "")), str(a.get("version", "")), str(a.get("type", "")))
            for a in document.get("artifacts") or [] if isinstance(a, dict)]


def _cdx_package(component: Mapping[str, Any]) -> Package:
    kind = ""
    for prop in component.get("properties") or []:
        if isinstance(prop, dict) and prop.get("name") == "syft:package:type":
            kind = str(prop.get("value", ""))
    return Package(str(component.get("name", "")), str(component.get("version", "")),
                   kind or _purl_type(str(component.get("purl", ""))))


def _spdx_package(package: Mapping[str, Any]) -> Package:
    purl = ""
    for ref in package.get("externalRefs") or []:
        if isinstance(ref, dict) and ref.get("referenceType") == "purl":
            purl = str(ref.get("referenceLocator", ""))
    return Package(str(package.get("name", "")), str(package.get("versionInfo", "")), _purl_type(purl))


_PURL_TYPES = {"pypi": "python", "deb": "deb", "apk": "apk", "npm": "npm", "golang": "go-module",
               "maven": "java-archive", "gem": "gem", "cargo": "rust-crate", "rpm": "rpm"}
OS_TYPES = frozenset({"apk", "deb", "rpm", "alpm", "portage"})


def _purl_type(purl: str) -> str:
    if not purl.startswith("pkg:"):
        return ""
    return _PURL_TYPES.get(purl[4:].split("/", 1)[0], purl[4:].split("/", 1)[0])


def subject_digest(document: Mapping[str, Any], fmt: SbomFormat) -> str | None:
    """The image digest the SBOM says it describes (syft records it), or None when it does not say."""
    found: object = None
    if fmt is CYCLONEDX:
        component = (document.get("metadata") or {}).get("component") or {}
        found = component.get("version") if component.get("type") == "container" else None
    elif fmt is SPDX:
        for package in document.get("packages") or []:
            if isinstance(package, dict) and package.get("primaryPackagePurpose") == "CONTAINER":
                found = package.get("versionInfo")
                break
    else:
        source = document.get("source") or {}
        metadata = source.get("metadata") or {}
        found = metadata.get("manifestDigest") or source.get("version")
    return found if isinstance(found, str) and found.startswith("sha256:") else None
