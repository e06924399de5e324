"""The admission controllers' CRD schemas (tests/data/crds), made strict: the API server prunes unknown fields
silently, so a misspelt field would be dropped and its rule never enforced — here an unknown field is an error.
Plus the semantic checks policy-controller's webhook makes (pkg/apis/policy/v1beta1/
clusterimagepolicy_validation.go) and Kyverno's basic verifyImages requirements."""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jsonschema import Draft7Validator

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "crds"


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@cache
def schema(kind: str) -> dict[str, Any]:
    if kind == "kyverno":
        raw = json.loads(gzip.decompress((DATA / "kyverno-clusterpolicy-v1.openapi.json.gz").read_bytes()))
    else:
        raw = json.loads((DATA / "policy-controller-clusterimagepolicy-v1beta1.openapi.json").read_text())
    # every object the API server takes has these at the top (some CRDs leave them out of their schema)
    top = raw.setdefault("properties", {})
    top.setdefault("apiVersion", {"type": "string"})
    top.setdefault("kind", {"type": "string"})
    top.setdefault("metadata", {"type": "object"})
    strict: dict[str, Any] = _strict(raw)
    return strict


def schema_errors(kind: str, document: dict[str, Any]) -> list[str]:
    validator = Draft7Validator(schema(kind))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def policy_controller_errors(document: dict[str, Any]) -> list[str]:
    """What the policy-controller webhook refuses (its Validate methods, error level only)."""
    errors: list[str] = []
    spec = document.get("spec", {})
    if not spec.get("images"):
        errors.append("spec.images missing")
    if not spec.get("authorities"):
        errors.append("spec.authorities missing")
    for a in spec.get("authorities", []):
        kinds = [k for k in ("key", "keyless", "static") if k in a]
        if len(kinds) != 1:
            errors.append(f"authority needs exactly one of key, keyless, static: {kinds}")
        if "key" in a:
            key = a["key"]
            if not (key.get("data") or key.get("kms") or key.get("secretRef")):
                errors.append("key: one of data, kms, secretref")
            if key.get("data") and "BEGIN PUBLIC KEY" not in key["data"]:
                errors.append("key.data is not a PEM public key")
        if "keyless" in a:
            keyless = a["keyless"]
            if ("url" in keyless) == ("ca-cert" in keyless):
                errors.append("keyless: exactly one of url, ca-cert")
            if not keyless.get("identities"):
                errors.append("keyless.identities missing")
            for identity in keyless.get("identities", []):
                for field in ("subject", "issuer"):
                    both = identity.get(field) and identity.get(f"{field}RegExp")
                    neither = not identity.get(field) and not identity.get(f"{field}RegExp")
                    if both or neither:
                        errors.append(f"identity: exactly one of {field}, {field}RegExp")
                    if identity.get(f"{field}RegExp"):
                        re.compile(identity[f"{field}RegExp"])
        for att in a.get("attestations", []):
            if not att.get("name"):
                errors.append("attestation.name missing")
            parsed = urlparse(att.get("predicateType", ""))
            if not parsed.scheme or not parsed.netloc:
                errors.append(f"attestation.predicateType {att.get('predicateType')!r} is not a URI")
            policy = att.get("policy")
            if policy is not None and (policy.get("type") not in ("cue", "rego") or not policy.get("data")):
                errors.append("attestation.policy: type cue|rego with data")
    for image in spec.get("images", []):
        if not image.get("glob"):
            errors.append("image.glob missing")
    return errors


def kyverno_errors(document: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    for rule in document.get("spec", {}).get("rules", []):
        for vi in rule.get("verifyImages", []):
            if not vi.get("imageReferences"):
                errors.append("verifyImages.imageReferences missing")
            for group in [*vi.get("attestors", []), *(a for t in vi.get("attestations", [])
                                                       for a in t.get("attestors", []))]:
                for entry in group.get("entries", []):
                    if len([k for k in ("keys", "keyless", "certificates", "attestor") if k in entry]) != 1:
                        errors.append("attestor entry needs exactly one of keys, keyless, certificates, attestor")
            for att in vi.get("attestations", []):
                if not att.get("type"):
                    errors.append("attestation.type missing")
    return errors
