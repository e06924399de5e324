"""The tag check (`verify-tag`): a tag the release recorded (`shop--api:1.0.0`) is resolved again and must still
point at the digest the release signed — a re-pointed tag is a finding, since whoever pulls by tag would get
another image. An upstream image's tag moving is only noted (it is deployed by digest). Never writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from sc_ci.errors import ScError, UsageError, VerificationFailed
from sc_ci.imageref import parse
from sc_ci.results.step import Outcome, StepResult, skipped, timed
from sc_ci.results.verify import CheckEvidence
from sc_ci.steps.interface import Resource

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage


class TagVerifyStep:
    """`verify-tag`: the recorded tag still resolves to the recorded digest."""

    name: ClassVar[str] = "verify-tag"
    feature: ClassVar[Feature] = "verify"
    tools: tuple[str, ...] = ()
    resource: ClassVar[Resource] = Resource.NETWORK
    requires: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    signs: ClassVar[bool] = False  # upstream images' tags are looked at too (and only noted)

    def enabled(self, ctx: RunContext) -> bool:
        return ctx.options.expectations is not None

    def check(self, ctx: RunContext) -> None:
        """Nothing: the references were validated when the manifest was read."""

    def prepare(self, ctx: RunContext) -> None:
        """Nothing shared."""

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        return []  # a registry request, no tool

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        try:
            given = parse(image.given)
        except UsageError:
            given = None
        if given is None or not given.tag or given.digest:
            return [skipped(self.name, image.name, "no tag recorded: pinned by digest")]
        expected = {"tag": str(given), "digest": image.ref.digest or ""}

        def action() -> tuple[str, dict[str, str]]:
            now = ctx.session.registry.resolve(given).digest or ""
            if now != image.ref.digest:
                raise VerificationFailed(f"{given} now points at {now}, not at the released {image.ref.digest}",
                                         why="the tag was moved after the release (or the release manifest names "
                                             "another digest): pulling by tag gets an image this release did not sign",
                                         fix="Deploy by digest; re-point the tag to the released digest, or release "
                                             "the new image.")
            return f"{given.tag} still points at the released digest", {"tag": given.tag or ""}

        result = timed(self.name, image.name, action)
        if result.failed and not image.built:
            assert isinstance(result.error, ScError)
            result = StepResult(self.name, image.name, Outcome.SKIPPED,
                                f"upstream: {result.error.what} (deploy it by digest)")
        found = {"digest": "" if result.failed else image.ref.digest or ""}
        return [StepResult(result.step, result.image, result.outcome, result.summary, result.seconds, result.error,
                           result.details, payload=CheckEvidence("tag", image.name, expected, found))]
