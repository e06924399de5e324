"""One engine run from a session: plan, execute (or list the commands of a dry run), verdict — with the
private work directory and Docker config removed on every exit path."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sc_ci.engine import executor, records
from sc_ci.engine import plan as planning
from sc_ci.engine.cache import Cache
from sc_ci.engine.context import RunContext, RunOptions
from sc_ci.engine.plan import Plan, Request
from sc_ci.engine.policy import verdict
from sc_ci.results.run import Command, Release
from sc_ci.results.step import StepResult
from sc_ci.session import Session
from sc_ci.steps import registry


def dry_run_commands(plan: Plan, ctx: RunContext) -> tuple[Command, ...]:
    """Each step's exact argv for each image, from the step's own builders (what the run would execute)."""
    found: list[Command] = []
    for image in plan.images:
        for step in plan.steps:
            if not image.built and registry.signs(step):
                continue
            found += [Command(image.name, step.name, tuple(argv)) for argv in step.commands(ctx, image)]
    return tuple(found)


def execute(session: Session, request: Request, options: RunOptions | None = None,
            cache_dir: Path | None = None) -> Release:
    """Plan and run; the temporary directory (predicates, token files) and the private DOCKER_CONFIG
    (registry credentials) are removed whatever happens, cancellation included."""
    started, clock = datetime.now(UTC), time.monotonic()
    cache = Cache(cache_dir) if cache_dir is not None else None
    with tempfile.TemporaryDirectory(prefix="sc-ci-run-") as work, session.docker_config() as docker_config:
        os.chmod(work, 0o700)
        ctx = RunContext(session, options or RunOptions(), Path(work), cache, docker_config, started)
        try:
            plan = planning.build(ctx, request)
            commands: tuple[Command, ...] = ()
            previews: tuple[tuple[str, str], ...] = ()
            results: Sequence[StepResult] = ()
            if plan.dry_run and plan.broken:
                raise next(iter(plan.broken.values()))
            if plan.dry_run:
                commands = dry_run_commands(plan, ctx)
                previews = tuple((s.name, text) for s in plan.steps
                                 if (text := getattr(s, "preview", lambda _ctx: None)(ctx)))
            else:
                print_ = records.fingerprint(plan, ctx)
                reused = {i: found for i, image in enumerate(plan.images)
                          if (found := records.reusable(ctx, plan, image, print_)) is not None}
                warm(plan, ctx)
                results = executor.execute(plan, ctx, reused=reused)
                records.save(ctx, plan, results, print_)
        finally:
            ctx.close()  # background work (warmed batches) stops with the run, cancellation included
        facts = recorded(plan, ctx)
        judged = verdict(results, plan.policy, registry.FEATURES)
        return Release(plan.images, plan.step_names, plan.policy.facts(), tuple(results), judged, started,
                       datetime.now(UTC), time.monotonic() - clock, plan.dry_run, plan.shard, ctx.tool_versions(),
                       cache.stats() if cache else {}, commands, previews, facts)


def warm(plan: Plan, ctx: RunContext) -> None:
    """Let steps start what every image of the run will share (e.g. one cosign run over all images), before
    the per-image pipelines start asking for it."""
    for step in plan.steps:
        start = getattr(step, "warm", None)
        if start is not None and plan.broken.get(step.name) is None:
            start(ctx, plan.images)


def recorded(plan: Plan, ctx: RunContext) -> dict[str, object]:
    """What the steps record for the verifiers of this release (release.json `verification`): the signer, the
    build, the SBOM formats, the scan gate. Steps without a `record` add nothing."""
    facts: dict[str, object] = {}
    for step in plan.steps:
        record = getattr(step, "record", None)
        if record is not None and plan.broken.get(step.name) is None:
            facts.update(record(ctx))
    return facts
