"""The SBOM reference predicate: "the SBOM of this artifact is the file with this SHA-256".

Attested in two cases: for an SBOM too large to attach whole (oversize: digest), and on a multi-arch
index, listing each platform manifest's SBOM (attached to that manifest)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sc_ci.errors import VerificationFailed

PREDICATE_TYPE = "https://simple-container.com/attestations/sbom-reference/v1"
Reason = Literal["oversize", "index"]


@dataclass(frozen=True)
class SbomEntry:
    """One SBOM file: what it describes, its format, and its digest and size."""

    subject: str  # repo@sha256:… of the manifest it describes
    format: str  # cyclonedx-json | spdx-json | syft-json
    predicate_type: str
    sha256: str
    size: int
    file: str  # the file name it was saved under
    platform: str = ""  # os/arch[/variant] for a platform manifest of an index
    attached: bool = False  # True: attached whole to `subject` under `predicate_type`

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"subject": self.subject, "format": self.format,
                                "predicateType": self.predicate_type, "digest": {"sha256": self.sha256},
                                "size": self.size, "file": self.file, "attached": self.attached}
        if self.platform:
            data["platform"] = self.platform
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SbomEntry:
        try:
            return cls(str(data["subject"]), str(data["format"]), str(data["predicateType"]),
                       str(data["digest"]["sha256"]), int(data["size"]), str(data.get("file", "")),
                       str(data.get("platform", "")), bool(data.get("attached", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationFailed("the SBOM reference attestation is malformed", why=repr(exc),
                                     fix="Re-attach the SBOM with sc-ci sbom attach.") from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def predicate(reason: Reason, entries: Sequence[SbomEntry]) -> dict[str, Any]:
    return {"reason": reason, "sboms": [e.to_json() for e in entries]}


def entries(predicate_doc: Mapping[str, Any]) -> list[SbomEntry]:
    items = predicate_doc.get("sboms")
    if not isinstance(items, list):
        raise VerificationFailed("the SBOM reference attestation lists no SBOMs",
                                 fix="Re-attach the SBOM with sc-ci sbom attach.")
    return [SbomEntry.from_json(item) for item in items if isinstance(item, dict)]
