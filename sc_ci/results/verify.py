"""What one verify check found: the payload of a verify step's result, from which the evidence report, the
SLSA level and the VSA are made. Plain values: artifacts by digest, the signer as its certificate says."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Check = Literal["tag", "signature", "sbom", "provenance", "vuln"]


@dataclass(frozen=True)
class SignerFound:
    """Who signed an artifact: a key (its label and fingerprint) or a certificate (subject, issuer, Fulcio
    extensions as the certificate carries them)."""

    kind: Literal["key", "keyless", "unknown"]
    identity: str = ""
    issuer: str = ""
    extensions: Mapping[str, str] = field(default_factory=dict)
    key: str = ""
    certificate_serial: str = ""


@dataclass(frozen=True)
class ArtifactFound:
    """One stored signature or attestation a check rests on."""

    kind: str  # signature | attestation
    format: str  # legacy | bundle
    digest: str  # its layer (signature payload, DSSE envelope or bundle)
    manifest: str  # the manifest holding it
    predicate_type: str = ""
    signer: SignerFound | None = None
    rekor_log_index: int | None = None


@dataclass(frozen=True)
class Level:
    """The SLSA v1.0 Build level an image reaches, and why not higher."""

    level: int
    reason: str
    builder: str = ""
    violation: str = ""  # a requirement broken outright (a trusted builder at a branch): fails the check


@dataclass(frozen=True)
class CheckEvidence:
    """A check's inputs and findings: what was expected (with where it came from), what was found, the
    artifacts it rests on, what was present but not counted (and why), and check-specific facts."""

    check: Check
    subject: str
    expected: Mapping[str, str] = field(default_factory=dict)
    found: Mapping[str, str] = field(default_factory=dict)
    artifacts: tuple[ArtifactFound, ...] = ()
    ignored: tuple[str, ...] = ()
    facts: Mapping[str, object] = field(default_factory=dict)
    level: Level | None = None  # provenance checks: the SLSA Build level
    document: object = field(default=None, compare=False, repr=False)  # what was verified (an SBOM), for saving
