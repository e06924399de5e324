"""Admission policies from a release's expectations: the same signer (a key, or a keyless identity and issuer)
and the same attestation types `release verify` checks, enforced at deploy time — a Kyverno `ClusterPolicy`
(kyverno.io/v1, `verifyImages` with attestors and attestations with conditions) and a Sigstore policy-controller
`ClusterImagePolicy` (policy.sigstore.dev/v1beta1, authorities with attestations and CUE policies). Field
names as the projects' CRDs define them (kyverno config/crds/kyverno/kyverno.io_clusterpolicies.yaml,
policy-controller config/300-clusterimagepolicy.yaml); tests validate the output against both."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sc_ci.imageref import ImageRef
from sc_ci.sbom import formats
from sc_ci.verify.expect import Expectations, Pin

Format = Literal["kyverno", "policy-controller"]
FORMATS: tuple[Format, ...] = ("kyverno", "policy-controller")
PROVENANCE = "https://slsa.dev/provenance/v1"
VULN = "https://cosign.sigstore.dev/attestation/vuln/v1"
PUBLIC_FULCIO = "https://fulcio.sigstore.dev"


@dataclass(frozen=True)
class Trust:
    """How the deploy-time verifier trusts signatures: a public key (PEM) or KMS URI, a transparency log or not,
    the Fulcio URL (keyless), a private Fulcio's root (PEM), whether certificates carry SCTs."""

    public_key_pem: str = ""
    kms: str = ""
    tlog: bool = True
    fulcio_url: str = PUBLIC_FULCIO
    fulcio_roots_pem: str = ""
    sct: bool = True


def name_for(release: dict[str, str]) -> str:
    """A Kubernetes object name (RFC 1123 label, ≤ 63) from the release's stack/environment/version."""
    parts = [release.get(k, "") for k in ("stack", "environment", "version")]
    text = re.sub(r"[^a-z0-9-]+", "-", "-".join(["sc-ci-release", *[p for p in parts if p]]).lower()).strip("-")
    return text[:63].rstrip("-") or "sc-ci-release"


def _patterns(images: Sequence[ImageRef]) -> list[str]:
    """Every tag and digest of each released repository (`repo:*`, `repo@*`): what pods may run from them."""
    return [p for name in dict.fromkeys(i.name for i in images) for p in (f"{name}:*", f"{name}@*")]


def _predicates(exp: Expectations) -> list[str]:
    found = [formats.by_name(f).predicate_type for f in exp.sbom_formats]  # an unknown name: exit 2
    return [*dict.fromkeys(found), PROVENANCE, VULN]


def _exact(pin: Pin | None) -> str | None:
    return pin.value if pin is not None and pin.match == "exact" else None


def _regexp(pin: Pin | None) -> str | None:
    if pin is None:
        return None
    if pin.match == "regexp":
        return pin.value
    return None


# ---------------------------------------------------------------------------------------------------- Kyverno


def _kyverno_attestor(exp: Expectations, trust: Trust) -> dict[str, Any]:
    signer = exp.signer
    if signer.kind == "key":
        keys: dict[str, Any] = {"kms": trust.kms} if trust.kms else {"publicKeys": trust.public_key_pem}
        keys["rekor"] = {"ignoreTlog": True} if not trust.tlog else {"url": "https://rekor.sigstore.dev"}
        return {"keys": keys}
    keyless: dict[str, Any] = {}
    for field, value in (("subject", _exact(signer.identity)), ("subjectRegExp", _regexp(signer.identity)),
                         ("issuer", _exact(signer.issuer)), ("issuerRegExp", _regexp(signer.issuer))):
        if value:
            keyless[field] = value
    keyless["rekor"] = {"ignoreTlog": True} if not trust.tlog else {"url": "https://rekor.sigstore.dev"}
    if not trust.sct:
        keyless["ctlog"] = {"ignoreSCT": True}
    if trust.fulcio_roots_pem:
        keyless["roots"] = trust.fulcio_roots_pem
    return {"keyless": keyless}


def _kyverno_conditions(predicate_type: str, exp: Expectations) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    if predicate_type == PROVENANCE:
        if exp.builder_id is not None:
            checks.append({"key": "{{ runDetails.builder.id }}", "operator": "Equals", "value": exp.builder_id.value,
                           "message": "the provenance names another builder"})
    elif predicate_type == VULN:
        checks.append({"key": "{{ scanner.result.gate.tripped }}", "operator": "Equals", "value": False,
                       "message": "the signed scan found what the release's failOn forbids"})
    return [{"all": checks}] if checks else []


def kyverno(images: Sequence[ImageRef], exp: Expectations, trust: Trust, name: str) -> dict[str, Any]:
    attestor = {"count": 1, "entries": [_kyverno_attestor(exp, trust)]}
    attestations = []
    for predicate_type in _predicates(exp):
        entry: dict[str, Any] = {"type": predicate_type, "attestors": [attestor]}
        conditions = _kyverno_conditions(predicate_type, exp)
        if conditions:
            entry["conditions"] = conditions
        attestations.append(entry)
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": name, "annotations": {
            "policies.kyverno.io/title": "sc-ci release: signatures and attestations",
            "policies.kyverno.io/description": "Images of this release run only when signed by the release's "
                                               "signer, with its SBOMs, SLSA provenance and a passing signed scan "
                                               "(generated by sc-ci release policy)."}},
        "spec": {
            "background": False,
            "webhookTimeoutSeconds": 30,
            "rules": [{
                "name": "verify-release",
                "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                "verifyImages": [{
                    "imageReferences": _patterns(images),
                    "failureAction": "Enforce",
                    "mutateDigest": True,
                    "verifyDigest": True,
                    "required": True,
                    "attestors": [attestor],
                    "attestations": attestations,
                }],
            }],
        },
    }


# ------------------------------------------------------------------------------------------ policy-controller


def _cue(predicate_type: str, exp: Expectations) -> str:
    lines = [f"predicateType: {json.dumps(predicate_type)}"]
    if predicate_type == PROVENANCE and exp.builder_id is not None:
        lines.append(f"predicate: runDetails: builder: id: {json.dumps(exp.builder_id.value)}")
    if predicate_type == VULN:
        lines.append("predicate: scanner: result: gate: tripped: false")
    return "\n".join(lines) + "\n"


def _attestation_name(predicate_type: str) -> str:
    fmt = formats.by_predicate_type(predicate_type)
    if fmt is not None:
        return f"sbom-{fmt.name.removesuffix('-json')}"
    return {PROVENANCE: "slsa-provenance", VULN: "signed-scan"}.get(predicate_type, "attestation")


def policy_controller(images: Sequence[ImageRef], exp: Expectations, trust: Trust, name: str) -> dict[str, Any]:
    signer = exp.signer
    authority: dict[str, Any] = {"name": "release-signer"}
    if signer.kind == "key":
        authority["key"] = {"kms": trust.kms} if trust.kms else {"data": trust.public_key_pem}
    else:
        identity: dict[str, str] = {}
        for field, value in (("subject", _exact(signer.identity)), ("subjectRegExp", _regexp(signer.identity)),
                             ("issuer", _exact(signer.issuer)), ("issuerRegExp", _regexp(signer.issuer))):
            if value:
                identity[field] = value
        keyless: dict[str, Any] = {"url": trust.fulcio_url, "identities": [identity]}
        if not trust.sct:
            keyless["insecureIgnoreSCT"] = True
        authority["keyless"] = keyless
    if trust.tlog:
        authority["ctlog"] = {"url": "https://rekor.sigstore.dev"}
    authority["attestations"] = [{"name": _attestation_name(t), "predicateType": t,
                                  "policy": {"type": "cue", "data": _cue(t, exp)}} for t in _predicates(exp)]
    return {
        "apiVersion": "policy.sigstore.dev/v1beta1",
        "kind": "ClusterImagePolicy",
        "metadata": {"name": name},
        "spec": {"images": [{"glob": p} for p in _patterns(images)], "mode": "enforce", "authorities": [authority]},
    }


def build(kind: Format, images: Sequence[ImageRef], exp: Expectations, trust: Trust, name: str) -> dict[str, Any]:
    return kyverno(images, exp, trust, name) if kind == "kyverno" else policy_controller(images, exp, trust, name)
