"""Release records: what the signing steps did to a digest (signatures, attestations, verification), kept in
the digest-keyed cache, so an unchanged digest released again costs a few registry requests instead of
cosign runs.

A record is used only when (1) it names exactly this digest and this plan's fingerprint (signer, verifier,
storage, SBOM formats and generator, provenance build, scan DBs) and (2) the registry still holds exactly
what the record saw: the manifest digests of the `.sig`/`.att` (and bundle) tags of the image and its
platform manifests. Those tags are content-addressed, so an unchanged digest means the very signatures and
attestations this engine attached and verified; anything else (a tag moved, a signature removed or added, a
new key) runs the steps again. `signing.force` and dry runs never use records."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sc_ci.engine.context import RunContext
from sc_ci.engine.plan import Plan
from sc_ci.errors import ScError
from sc_ci.log import get_logger
from sc_ci.results.run import PlannedImage
from sc_ci.results.step import Artifact, Outcome, StepResult
from sc_ci.signing.plan import signer_label
from sc_ci.steps import attachments, registry
from sc_ci.steps.sign import platform_refs

log = get_logger("records")
KIND = "release-record"


def fingerprint(plan: Plan, ctx: RunContext) -> str | None:
    """Everything that decides what the signing steps write; None when records cannot apply."""
    signing = plan.signing
    if signing is None or ctx.security.signing.force or plan.dry_run or plan.broken:
        return None
    steps = [s for s in plan.steps if registry.signs(s)]
    parts: dict[str, Any] = {
        "steps": [s.name for s in steps],
        "signer": signer_label(signing),
        "verifier": signing.verify_key.label if signing.verify_key is not None else "",
        "options": repr(signing.options),
        "cosign": ctx.cosign().version,
    }
    for step in steps:
        extra = getattr(step, "fingerprint", None)
        if extra is not None:
            try:
                parts[step.name] = extra(ctx)
            except ScError:
                return None  # e.g. a tool that cannot be used: no record applies, the steps say why
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _state(ctx: RunContext, plan: Plan, image: PlannedImage) -> dict[str, str | None]:
    """The manifest digest of every tag holding signatures or attestations of the image (and of its
    platform manifests)."""
    assert plan.signing is not None
    formats = ctx.cosign().formats(plan.signing.options)
    kinds: list[attachments.Kind] = []
    if "legacy" in formats:
        kinds += ["sig", "att"]
    if "bundle" in formats:
        kinds.append("bundle")
    refs = [image.ref] + [image.ref.with_digest(p.rpartition("@")[2]) for p in platform_refs(ctx, image.ref)]
    return {f"{kind}:{ref.digest}": attachments.tag_digest(ctx, ref, kind) for ref in refs for kind in kinds}


def _key(image: PlannedImage, print_: str) -> dict[str, str]:
    return {"image": image.name, "fingerprint": print_}


def reusable(ctx: RunContext, plan: Plan, image: PlannedImage, print_: str | None) -> list[StepResult] | None:
    """The recorded results of the signing steps, when the registry holds exactly what they left."""
    if ctx.cache is None or print_ is None or not image.built:
        return None
    data = ctx.cache.get(KIND, _key(image, print_))
    if data is None:
        return None
    try:
        record = json.loads(data)
        if record.get("state") != _state(ctx, plan, image):
            log.info("%s changed in the registry since its release record: signing again", image.name)
            return None
        when = str(record["when"])[:19].replace("T", " ")
        return [StepResult(r["step"], r["image"], Outcome.SKIPPED,
                           f"unchanged since {when} UTC: {r['summary']}", 0.0, None, dict(r["details"]),
                           tuple(Artifact(**{**a, "reused": True}) for a in r["artifacts"]), reused=True)
                for r in record["results"]]
    except (ScError, KeyError, TypeError, ValueError) as exc:
        log.warning("release record of %s ignored (%s)", image.name, type(exc).__name__)
        return None


def save(ctx: RunContext, plan: Plan, results: Sequence[StepResult], print_: str | None) -> None:
    """A record for every built image whose signing steps all got done in this run."""
    if ctx.cache is None or print_ is None:
        return
    signing_steps = {s.name for s in plan.steps if registry.signs(s)}
    for image in plan.images:
        if not image.built:
            continue
        owned = {image.name, *platform_refs(ctx, image.ref)}
        mine = [r for r in results if r.step in signing_steps and r.image in owned]
        if not mine or any(r.failed or not r.done for r in mine) or {r.step for r in mine} != signing_steps:
            continue
        try:
            state = _state(ctx, plan, image)
        except ScError:
            continue
        record = {"when": datetime.now(UTC).isoformat(), "state": state,
                  "results": [{"step": r.step, "image": r.image, "summary": r.summary.split(" UTC: ", 1)[-1],
                               "details": dict(r.details),
                               "artifacts": [{k: v for k, v in vars(a).items() if k != "reused"} for a in r.artifacts]}
                              for r in mine]}
        ctx.cache.put(KIND, _key(image, print_), json.dumps(record).encode())
