"""Build the one frozen Plan of a run: the images pinned to digests (resolved once), the enabled steps
in the spec's order, the tools they need, the signing plan and the policy — before any image work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sc_ci.steps.registry as registry
from sc_ci import parallel, retry
from sc_ci.engine.context import RunContext
from sc_ci.engine.policy import Policy
from sc_ci.errors import EXIT_FAILED, ScError
from sc_ci.imageref import ImageRef
from sc_ci.results.run import PlannedImage, Shard
from sc_ci.signing.plan import SigningPlan
from sc_ci.steps.interface import Step

DRY_RUN_BUDGET = 5.0  # seconds a dry run gives each registry lookup, retries included


@dataclass(frozen=True)
class Plan:
    """Everything the executor needs; nothing in it changes while images are worked on."""

    images: tuple[PlannedImage, ...]
    steps: tuple[Step, ...]
    tools: tuple[str, ...]
    signing: SigningPlan | None
    policy: Policy
    dry_run: bool
    shard: Shard | None = None
    broken: Mapping[str, ScError] = field(default_factory=dict)  # steps whose preparation failed

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)


@dataclass(frozen=True)
class Request:
    """What a command asks of the engine: which steps (None: every step the config enables)."""

    steps: Sequence[str] | None = None
    policy: Policy | None = None  # None: from the config
    shard: Shard | None = None
    upstream: frozenset[str] = frozenset()  # references (as given) the project does not build
    given: Mapping[str, str] = field(default_factory=dict)  # reference → as the release recorded it (a tag)
    services: Mapping[str, str] = field(default_factory=dict)  # reference → its compose service


def build(ctx: RunContext, request: Request) -> Plan:
    """The plan, in this order: steps chosen and checked (settings, CI facts: no tool, no network), every
    tool located, steps prepared (the signing plan and its one token, shared loads such as vulnerability
    DBs), then the images sharded and resolved to digests (once)."""
    steps = registry.select(ctx, request.steps)
    tools = tuple(dict.fromkeys(t for s in steps for t in s.tools))
    for step in steps:
        step.check(ctx)  # settings and build facts: no tool, no network
    broken: dict[str, ScError] = {}  # a step that cannot work fails on every image; the policy decides
    for name in tools:
        try:
            ctx.tool(name)  # every tool located and version-checked before any network call
        except ScError as exc:
            if exc.exit_code != EXIT_FAILED:
                raise
            broken.update({s.name: exc for s in steps if name in s.tools and s.name not in broken
                           and not getattr(s, "tolerates_missing_tools", False)})
    for step in steps:
        if step.name in broken:
            continue
        try:
            step.prepare(ctx)  # the signing plan and its one token, shared loads (vulnerability DBs)
        except ScError as exc:
            if exc.exit_code != EXIT_FAILED:
                raise  # usage and configuration errors stop the run before anything happens
            broken[step.name] = exc  # e.g. a key cosign cannot read
    policy = request.policy or Policy.from_config(ctx.session.loaded.security)
    if steps and len(broken) == len(steps) and policy.source == "direct command":
        raise next(iter(broken.values()))  # a direct command that cannot do anything: say so before any network
    given = list(ctx.session.images)
    if request.shard is not None:
        given = [ref for ref in given if request.shard.owns(str(ref))]
    if ctx.dry_run:  # a dry run looks the digests up, but never waits out a registry that does not answer
        with retry.at_most(DRY_RUN_BUDGET):
            resolved = resolve(ctx, given)
    else:
        resolved = resolve(ctx, given)
    images = tuple(PlannedImage(r, request.given.get(str(g), str(g)), str(g) not in request.upstream,
                                request.services.get(str(g), "")) for g, r in zip(given, resolved, strict=True))
    ctx.planned = images
    policy = request.policy or Policy.from_config(ctx.session.loaded.security)
    return Plan(images, tuple(steps), tools, ctx.signing, policy, ctx.dry_run, request.shard, broken)


def resolve(ctx: RunContext, refs: Sequence[ImageRef]) -> list[ImageRef]:
    """Each reference pinned to a digest, in parallel; every later step works on these digests even if a
    tag moves meanwhile. The session keeps them, so a run resolves each tag once."""
    if list(refs) == list(ctx.session.images):
        return list(ctx.session.resolve_digests())
    return parallel.map_bounded(ctx.session.registry.resolve, list(refs), ctx.session.workers)
