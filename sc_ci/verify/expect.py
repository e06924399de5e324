"""What `release verify` checks each image against, and where every expectation came from (a flag, the
config, or the release manifest's own record — untrusted until pinned): pure values, built once per run."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from sc_ci.provenance.check import same_repository
from sc_ci.signing.signers import Key

Match = Literal["exact", "regexp", "repository", "commit", "prefix", "glob", "ref"]


@dataclass(frozen=True)
class Pin:
    """One expected value, how it is compared, and where it came from (what the evidence shows)."""

    value: str
    source: str  # "--source-repo", "security.signing.verify.sourceRepository (client.yaml:12:7)", "release.json"
    match: Match = "exact"

    @property
    def from_manifest(self) -> bool:
        """Defaulted from the release manifest (untrusted input): checked where the artifact says it."""
        return self.source.startswith("release.json")

    def matches(self, actual: str | None) -> bool:
        if actual is None:
            return False
        if self.match == "regexp":
            return re.search(self.value, actual) is not None
        if self.match == "repository":
            return same_repository(self.value, actual)
        if self.match == "commit":
            return actual.strip().lower() == self.value.strip().lower()
        if self.match == "prefix":
            return actual.startswith(self.value)
        if self.match == "glob":
            return fnmatch.fnmatchcase(actual, self.value)
        if self.match == "ref":  # a short name (GitLab's provenance records one) equals either full form
            full = actual.startswith("refs/") and self.value.startswith("refs/")
            return actual == self.value or (not full and short_ref(actual) == short_ref(self.value))
        return actual == self.value

    def describe(self) -> str:
        how = {"regexp": "matching ", "prefix": "starting with "}.get(self.match, "")
        return f"{how}{self.value}"


def short_ref(ref: str) -> str:
    """`refs/heads/main` → `main`, `refs/tags/v1` → `v1` (GitLab's provenance records the short name)."""
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref


#: The Fulcio extensions a verifier pins on a CI certificate, in the order the evidence lists them.
CERTIFICATE_PINS = ("sourceRepositoryURI", "sourceRepositoryDigest", "sourceRepositoryRef", "buildSignerURI",
                    "runnerEnvironment")


@dataclass(frozen=True)
class Signer:
    """Who must have signed: a public key (file, env:// or KMS), or a keyless identity and issuer."""

    kind: Literal["key", "keyless"]
    source: str
    key: Key | None = None  # what cosign verifies with (a file, env:// or KMS key), for kind "key"
    key_label: str = ""
    identity: Pin | None = None
    issuer: Pin | None = None
    certificate: Mapping[str, Pin] = field(default_factory=dict)  # Fulcio extension name → pin

    def describe(self) -> str:
        if self.kind == "key":
            return f"key {self.key_label}"
        who = self.identity.describe() if self.identity else "?"
        by = self.issuer.describe() if self.issuer else "?"
        return f"identity {who}, issuer {by}"


@dataclass(frozen=True)
class Expectations:
    """Everything the verify steps check, decided before any tool runs."""

    signer: Signer
    builder_id: Pin | None = None
    source_repo: Pin | None = None
    source_ref: Pin | None = None
    git_sha: Pin | None = None
    trusted_builders: tuple[Pin, ...] = ()
    sbom_formats: tuple[str, ...] = ()
    sbom_source: str = ""
    max_scan_age: timedelta = timedelta(days=7)
    fail_on: Pin | None = None  # a severity; None: the gate the release's own vuln attestation recorded
    rescan: bool = False
    release: Mapping[str, str] = field(default_factory=dict)  # version, stack, environment, tag (shown only)

    def describe(self) -> dict[str, Any]:
        """Every expectation with where it came from, as plain values (the evidence's `expected`, and what the
        VSA's policy digest is taken over)."""
        signer = self.signer
        who: dict[str, Any] = {"kind": signer.kind, "source": signer.source}
        if signer.kind == "key":
            who["key"] = signer.key_label
        else:
            who.update({"identity": _plain(signer.identity), "issuer": _plain(signer.issuer),
                        "certificate": {k: _plain(v) for k, v in signer.certificate.items()}})
        return {"signer": who, "builderId": _plain(self.builder_id), "sourceRepository": _plain(self.source_repo),
                "sourceRef": _plain(self.source_ref), "gitCommit": _plain(self.git_sha),
                "trustedBuilders": [_plain(p) for p in self.trusted_builders],
                "sbomFormats": list(self.sbom_formats), "sbomFormatsSource": self.sbom_source,
                "maxScanAgeSeconds": int(self.max_scan_age.total_seconds()), "failOn": _plain(self.fail_on),
                "rescan": self.rescan}

    def provenance_pins(self) -> dict[str, Pin]:
        return {name: pin for name, pin in (("builder id", self.builder_id), ("source repository", self.source_repo),
                                            ("source ref", self.source_ref), ("git commit", self.git_sha))
                if pin is not None}


def _plain(pin: Pin | None) -> dict[str, str] | None:
    return None if pin is None else {"value": pin.value, "match": pin.match, "source": pin.source}


DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta | None:
    """'7d', '36h', '2w', '90m' (None: not a duration)."""
    found = DURATION.match(text)
    if not found:
        return None
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def human_age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return f"{human_age(-delta)} in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}" + (f" {seconds % size // 3600}h" if unit == "d" and seconds % size >= 3600
                                                  else "")
    return f"{seconds}s"
