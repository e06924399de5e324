"""The SBOM check (`sbom-verify`): for every format the release made, an attestation of that format's type on
each manifest (each platform of an index, plus the index's reference attestation listing them), signed by the
expected signer, whose predicate is that format, schema-valid, and describes this digest. Never writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from sc_ci.results.step import StepResult, skipped
from sc_ci.results.verify import CheckEvidence
from sc_ci.sbom import formats, reference
from sc_ci.sbom.formats import SbomFormat
from sc_ci.signing.plan import SigningPlan
from sc_ci.steps import evidence
from sc_ci.steps import sbom as sbom_step
from sc_ci.steps.interface import Resource
from sc_ci.steps.sbom import Sbom, Target

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage


class SbomVerifyStep:
    """`sbom-verify`: the SBOM attestations of each manifest, per format (release verify, sbom verify)."""

    name: ClassVar[str] = "sbom-verify"
    feature: ClassVar[Feature] = "sbom"
    tools: tuple[str, ...] = ("cosign",)
    resource: ClassVar[Resource] = Resource.NETWORK
    requires: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    signs: ClassVar[bool] = True  # asked only of images this project builds (upstream ones carry none of ours)

    def __init__(self) -> None:
        self.formats: tuple[SbomFormat, ...] = ()
        self.plan: SigningPlan | None = None

    def enabled(self, ctx: RunContext) -> bool:
        return ctx.options.expectations is not None and bool(ctx.options.expectations.sbom_formats)

    def check(self, ctx: RunContext) -> None:
        """The formats are known names (checked where they were given)."""

    def prepare(self, ctx: RunContext) -> None:
        expect = ctx.options.expectations
        if expect is not None:
            self.formats = tuple(formats.by_name(f) for f in expect.sbom_formats)
            self.plan = evidence.verification_plan(ctx)
            return
        from sc_ci.signing import setup

        self.plan = setup.verification_plan(ctx.session)
        chosen = ctx.options.sbom_format or ctx.security.sbom.format
        self.formats = (formats.by_name(chosen),)

    def warm(self, ctx: RunContext, images: Sequence[PlannedImage]) -> None:
        if ctx.options.expectations is None or len([i for i in images if i.built]) < 2:
            return

        def manifests() -> list[str]:
            return [t.ref for i in images if i.built for t in sbom_step.targets(ctx, i.ref)]

        for fmt in self.formats:
            evidence.warm_attestations(ctx, fmt.cosign_type, manifests)

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        assert self.plan is not None
        return [ctx.cosign().verify_attestation_argv(t.ref, self.plan.verifier(), fmt.cosign_type, self.plan.options)
                for t in sbom_step.targets(ctx, image.ref) for fmt in self.formats]

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        assert self.plan is not None
        if not self.formats:
            return [skipped(self.name, image.name, "no SBOM format to verify")]
        cosign, plan = ctx.cosign(), self.plan.with_docker_config(ctx.docker_config)
        targets = sbom_step.targets(ctx, image.ref)
        seen: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        fetch = evidence.fetcher(ctx, seen)
        local = ctx.options.sbom_local if isinstance(ctx.options.sbom_local, Sbom) else None
        results: list[StepResult] = []
        for target in targets:
            for fmt in self.formats:
                result, found = sbom_step.verify(cosign, plan, target, fmt, local, fetch)
                results.append(self._evidence(ctx, result, target, fmt, seen, found))
        if targets[0].platform:
            for fmt in self.formats:
                result = sbom_step.verify_index(cosign, plan, image.ref, targets, fmt, fetch)
                results.append(self._evidence(ctx, result, Target(image.ref), fmt, seen, None, index=True))
        return results

    def _evidence(self, ctx: RunContext, result: StepResult, target: Target, fmt: SbomFormat,
                  seen: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]], found: object,
                  index: bool = False) -> StepResult:
        """The check's evidence: the attestation(s) it rests on and who signed them (release verify only)."""
        expected = {"format": fmt.name, "predicateType": reference.PREDICATE_TYPE if index else fmt.predicate_type,
                    "describes": target.image.digest or ""}
        if target.platform:
            expected["platform"] = target.platform
        kinds = (reference.PREDICATE_TYPE,) if index else (fmt.cosign_type, reference.PREDICATE_TYPE)
        statements = [s for kind in kinds for s in seen.get((target.ref, kind), ())]
        artifacts: tuple[Any, ...] = ()
        ignored: tuple[str, ...] = ()
        expect = ctx.options.expectations
        if expect is not None and statements and not result.failed:
            bound, why = evidence.attestation_evidence(ctx, target.image, statements, expect.signer)
            artifacts, ignored = tuple(evidence.artifact_found(b) for b in bound), tuple(why)
        document = getattr(found, "document", None)
        facts: dict[str, object] = {}
        if isinstance(document, dict):
            facts = {"packages": len(formats.packages(document, fmt)), "specVersion": _spec(document, fmt)}
        payload = CheckEvidence("sbom", target.ref, expected, {"summary": result.summary}, artifacts, ignored, facts,
                                document=found)
        return replace(result, payload=payload)


def _spec(document: Mapping[str, Any], fmt: SbomFormat) -> str:
    value = document.get("specVersion") if fmt is formats.CYCLONEDX else document.get("spdxVersion")
    return value if isinstance(value, str) else ""
