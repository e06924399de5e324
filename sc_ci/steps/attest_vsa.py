"""The VSA step (`release verify --attest-vsa`): once an image's verify checks are done, their summary is
attached to it as a signed SLSA Verification Summary Attestation (https://slsa.dev/verification_summary/v1),
signed with the run's signing plan (a key, or keyless in CI) — what a deploy-time policy can require instead
of redoing the verification. Plain `cosign verify-attestation --type https://slsa.dev/verification_summary/v1`
checks it. The one verify-side step that writes to the registry, and only when asked."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from sc_ci.results.step import Artifact, Outcome, StepResult, timed
from sc_ci.steps import evidence
from sc_ci.steps.interface import Resource
from sc_ci.verify import vsa

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage

CHECKS = ("verify-tag", "verify", "sbom-verify", "verify-provenance", "verify-vuln")


class VsaStep:
    """`attest-vsa`: the image's verification summary, signed and attached."""

    name: ClassVar[str] = "attest-vsa"
    feature: ClassVar[Feature] = "verify"
    tools: tuple[str, ...] = ("cosign",)
    resource: ClassVar[Resource] = Resource.NETWORK
    requires: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[tuple[str, ...]] = CHECKS  # runs after them whatever they found: FAILED is a summary too
    signs: ClassVar[bool] = True

    def enabled(self, ctx: RunContext) -> bool:
        return bool(ctx.options.attest_vsa and ctx.options.expectations is not None)

    def check(self, ctx: RunContext) -> None:
        """Nothing beyond the configuration model."""

    def prepare(self, ctx: RunContext) -> None:
        ctx.signing_plan()  # the key, or the keyless token: before any image work

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        plan = ctx.signing_plan()
        return ctx.cosign().attest_argvs(image.name, plan.key, Path("<vsa-predicate.json>"), vsa.PREDICATE_TYPE,
                                         plan.options)

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        results = [r for name in CHECKS for r in prior.get(name, ())]
        plan = ctx.signing_plan().with_docker_config(ctx.docker_config)
        predicate = vsa.predicate(image.ref, results, evidence.expectations(ctx), datetime.now(UTC),
                                  ctx.tool_versions())

        def action() -> tuple[str, dict[str, str]]:
            with tempfile.TemporaryDirectory(prefix="sc-ci-vsa-", dir=ctx.workdir) as tmp:
                path = Path(tmp) / "vsa.json"
                path.write_text(json.dumps(predicate), encoding="utf-8")
                plan.attest(ctx.cosign(), image.name, path, vsa.PREDICATE_TYPE)
            levels = ", ".join(predicate["verifiedLevels"]) or "no level"
            return (f"attached a signed verification summary: {predicate['verificationResult']} ({levels})",
                    {"predicateType": vsa.PREDICATE_TYPE, "verificationResult": predicate["verificationResult"]})

        result = timed(self.name, image.name, action)
        if result.outcome is Outcome.OK:
            result = StepResult(result.step, result.image, result.outcome, result.summary, result.seconds, None,
                                result.details, (Artifact("attestation", image.name, "vsa", vsa.PREDICATE_TYPE),))
        return [result]
