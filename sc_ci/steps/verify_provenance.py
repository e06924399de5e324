"""The provenance check (`verify-provenance`): signed SLSA v1 provenance whose in-toto statement names this
digest, whose builder, source repository, commit and ref are what the verifier expects, and the SLSA Build
level the image reaches with it (from the certificate that signed it). Never writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from sc_ci.errors import VerificationFailed
from sc_ci.provenance import check
from sc_ci.provenance.interface import COSIGN_TYPE, PREDICATE_TYPE, STATEMENT_TYPE
from sc_ci.results.step import StepResult, timed
from sc_ci.results.verify import CheckEvidence, Level
from sc_ci.signing.plan import SigningPlan
from sc_ci.steps import evidence
from sc_ci.steps.interface import Resource
from sc_ci.steps.provenance import VERIFY_STEP, consumer_command
from sc_ci.verify import slsa

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage

STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


class ProvenanceVerifyStep:
    """`verify-provenance`: the provenance of each image, its expectations and its SLSA Build level."""

    name: ClassVar[str] = VERIFY_STEP
    feature: ClassVar[Feature] = "provenance"
    tools: tuple[str, ...] = ("cosign",)
    resource: ClassVar[Resource] = Resource.NETWORK
    requires: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    signs: ClassVar[bool] = True

    def __init__(self) -> None:
        self.plan: SigningPlan | None = None

    def enabled(self, ctx: RunContext) -> bool:
        return ctx.options.expectations is not None

    def check(self, ctx: RunContext) -> None:
        """Nothing beyond the expectations (checked where they were given)."""

    def prepare(self, ctx: RunContext) -> None:
        self.plan = evidence.verification_plan(ctx)

    def warm(self, ctx: RunContext, images: Sequence[PlannedImage]) -> None:
        built = [i.name for i in images if i.built]
        if len(built) > 1:
            evidence.warm_attestations(ctx, COSIGN_TYPE, lambda: built)

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        assert self.plan is not None
        return [ctx.cosign().verify_attestation_argv(image.name, self.plan.verifier(), COSIGN_TYPE,
                                                     self.plan.options)]

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        assert self.plan is not None
        expect = evidence.expectations(ctx)
        pins = expect.provenance_pins()
        wanted = check.Expectations(
            source_repo=expect.source_repo.value if expect.source_repo else None,
            builder_id=expect.builder_id.value if expect.builder_id else None,
            git_sha=expect.git_sha.value if expect.git_sha else None,
            source_ref=expect.source_ref.value if expect.source_ref else None)
        name = image.name
        payload: list[CheckEvidence] = []
        seen: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        fetch = evidence.fetcher(ctx, seen)
        plan = self.plan

        def action() -> tuple[str, dict[str, str]]:
            statements = check.covering(fetch(name, COSIGN_TYPE), image.ref.digest or "")
            if not statements:
                raise VerificationFailed(
                    f"{name}: no signed SLSA v1 provenance names this digest",
                    why="the verified attestations name other digests, or carry another predicate type",
                    fix="Attach provenance to this digest: sc-ci provenance attach --image IMAGE (or release create).")
            not_in_toto = [s for s in statements if s.get("_type") not in (STATEMENT_TYPE, STATEMENT_V01)]
            if not_in_toto:
                raise VerificationFailed(f"{name}: the provenance is not an in-toto Statement",
                                         why=f"_type is {str(not_in_toto[0].get('_type'))[:80]!r}",
                                         fix="Re-attach the provenance with sc-ci provenance attach.")
            found = [check.facts(_mapping(s.get("predicate"))) for s in statements]
            failures = [[m for m in check.mismatches(f, wanted)] for f in found]
            matching = [i for i, failed in enumerate(failures) if not failed]
            bound, ignored = evidence.attestation_evidence(ctx, image.ref, statements, expect.signer)
            signer = evidence.signer_found(bound[0]) if bound else None
            use = matching[0] if matching else 0
            facts = found[use]
            statement = statements[use]
            level = slsa.build_level(signer, facts, expect.trusted_builders) if matching else Level(
                1, "the provenance does not match the expectations", facts.builder_id or "")
            expected = {label: f"{pin.describe()} ({pin.source})" for label, pin in pins.items()}
            seen_facts = {"builder id": facts.builder_id or "", "source repository": facts.source_repo or "",
                          "git commit": facts.git_sha or "", "source ref": facts.source_ref or "",
                          "buildType": facts.build_type or "",
                          "statement": "in-toto v1" if statement.get("_type") == STATEMENT_TYPE else
                          "in-toto v0.1 (cosign attest's own: the storage could not carry a v1 statement)"}
            payload.append(CheckEvidence(
                "provenance", name, {"predicateType": PREDICATE_TYPE, **expected}, seen_facts,
                tuple(evidence.artifact_found(b) for b in bound), tuple(ignored),
                {"invocationId": facts.invocation_id or ""}, level))
            if not matching:
                described = "; ".join(str(m) for m in failures[0])
                raise VerificationFailed(f"{name}: provenance does not match: {described}",
                                         why=f"{len(found)} signed provenance attestation(s); recorded builder "
                                             f"{facts.builder_id or '-'}, source {facts.source_repo or '-'}, commit "
                                             f"{facts.git_sha or '-'}, ref {facts.source_ref or '-'}",
                                         fix="Check the expected value (" + ", ".join(
                                             f"{label}: {pin.source}" for label, pin in pins.items()) +
                                             "), or that this image was built by that repository, commit and builder.")
            if level.violation:
                raise VerificationFailed(f"{name}: {level.violation}", why=level.reason,
                                         fix="Call the reusable workflow at a release tag (uses: …/slsa3.yml@vX.Y.Z), "
                                             "or drop it from --trusted-builder.")
            details = {"builder": facts.builder_id or "", "source": facts.source_repo or "",
                       "commit": facts.git_sha or "", "slsa": f"L{level.level}"}
            command = consumer_command(name, plan)
            if command:
                details["command"] = command
            checked = "/".join(label.split()[0] for label in pins) if pins else ""
            what = f", {checked} as expected" if checked else ""
            return (f"verified SLSA v1 provenance (builder {facts.builder_id}{what}); SLSA Build L{level.level}",
                    {k: v for k, v in details.items() if v})

        result = timed(VERIFY_STEP, name, action)
        return [replace(result, payload=payload[0] if payload else
                        CheckEvidence("provenance", name, {"predicateType": PREDICATE_TYPE},
                                      level=Level(0, result.summary)))]
