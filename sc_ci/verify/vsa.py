"""The SLSA Verification Summary Attestation of one image (predicate https://slsa.dev/verification_summary/v1,
https://slsa.dev/spec/v1.0/verification_summary): who verified, when, which resource, against which policy
(the expectations, by digest), which attestations it rested on, the result and the SLSA levels verified."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sc_ci import __version__
from sc_ci.imageref import ImageRef
from sc_ci.results.step import StepResult
from sc_ci.results.verify import CheckEvidence
from sc_ci.verify.expect import Expectations

PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1"
VERIFIER_ID = "https://github.com/simple-container-com/sc-security-action/release-verify"
POLICY_URI = "https://github.com/simple-container-com/sc-security-action/blob/main/docs/verify.md"


def resource_uri(ref: ImageRef) -> str:
    """The image as a package URL (purl `oci` type): pkg:oci/NAME@sha256%3AHEX?repository_url=HOST/REPO."""
    name = ref.repository.rsplit("/", 1)[-1]
    return f"pkg:oci/{quote(name)}@{quote(ref.digest or '', safe='')}?repository_url={quote(ref.name, safe='/:')}"


def policy_digest(exp: Expectations) -> str:
    """sha256 of the expectations as canonical JSON: the same expectations always give the same digest."""
    text = json.dumps(exp.describe(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def predicate(ref: ImageRef, results: Sequence[StepResult], exp: Expectations, verified_at: datetime,
              tools: Mapping[str, str]) -> dict[str, Any]:
    """The VSA predicate for `ref` from the results of its verify checks."""
    failed = any(r.failed for r in results)
    level = next((p.level.level for r in results if isinstance(p := r.payload, CheckEvidence) and p.level), 0)
    inputs: dict[str, dict[str, Any]] = {}
    for result in results:
        payload = result.payload
        if not isinstance(payload, CheckEvidence):
            continue
        for artifact in payload.artifacts:
            uri = f"{ref.name}@{artifact.manifest}"
            inputs.setdefault(artifact.digest, {"uri": uri, "digest": {"sha256": artifact.digest.removeprefix(
                "sha256:")}})
    return {
        "verifier": {"id": VERIFIER_ID, "version": {"sc-ci": __version__, **dict(tools)}},
        "timeVerified": verified_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resourceUri": resource_uri(ref),
        "policy": {"uri": POLICY_URI, "digest": {"sha256": policy_digest(exp)}},
        "inputAttestations": [inputs[k] for k in sorted(inputs)],
        "verificationResult": "FAILED" if failed else "PASSED",
        "verifiedLevels": ["FAILED"] if failed else ([f"SLSA_BUILD_LEVEL_{level}"] if level else []),
        "slsaVersion": "1.0",
    }
