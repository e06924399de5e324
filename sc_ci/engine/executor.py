"""Run a Plan: one pipeline per image, images concurrently, each step waiting only for the steps it
depends on, concurrency bounded per resource class (CPU-heavy scanners and syft vs network-bound cosign);
policy (dependency gating, fail-fast) applied as results arrive."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import sc_ci.steps.registry as registry
from sc_ci import retry, runner
from sc_ci.engine.context import RunContext
from sc_ci.engine.plan import Plan
from sc_ci.engine.policy import RunTimedOut
from sc_ci.errors import ScError, ToolError
from sc_ci.log import get_logger
from sc_ci.results.run import PlannedImage
from sc_ci.results.step import Outcome, StepResult, skipped
from sc_ci.steps.interface import Resource, Step

log = get_logger("engine")


@dataclass(frozen=True)
class Slots:
    """How many steps of each resource class run at once."""

    cpu: int
    network: int

    @classmethod
    def for_machine(cls, workers: int) -> Slots:
        """CPU-bound work gets one slot per core; network-bound work `workers` (default 4, at least 2
        per core so cosign round trips overlap)."""
        cores = os.cpu_count() or 1
        return cls(max(1, cores), max(workers, 2 * cores))


@dataclass(frozen=True)
class Task:
    image: int  # index into plan.images
    step: int  # index into plan.steps


Runner = Callable[[Step, RunContext, PlannedImage, Mapping[str, Sequence[StepResult]]], Sequence[StepResult]]


def _run_step(step: Step, ctx: RunContext, image: PlannedImage,
              prior: Mapping[str, Sequence[StepResult]]) -> Sequence[StepResult]:
    """A step's own run; an unexpected ScError becomes that step's failure on that image only."""
    started = time.monotonic()
    runtime = getattr(getattr(getattr(ctx, "session", None), "loaded", None), "runtime", None)
    try:
        with retry.step_deadline(getattr(runtime, "step_timeout", None)):
            return step.run(ctx, image, prior)
    except ScError as exc:
        if exc.exit_code != 1:
            raise
        return [StepResult(step.name, image.name, Outcome.FAILED, exc.what.removeprefix(f"{image.name}: "),
                           time.monotonic() - started, exc)]


def execute(plan: Plan, ctx: RunContext, slots: Slots | None = None, run_step: Runner = _run_step,
            reused: Mapping[int, Sequence[StepResult]] | None = None) -> tuple[StepResult, ...]:
    """Every (image, step) of the plan; results ordered by image, then by the spec's step order.
    `reused`: per image index, recorded results of steps that need not run again (release records)."""
    slots = slots or Slots.for_machine(ctx.session.workers)
    steps = plan.steps
    index = {s.name: i for i, s in enumerate(steps)}
    deps = [tuple(index[d] for d in (*s.requires, *s.after, *getattr(s, "reads", ())) if d in index) for s in steps]
    done: dict[Task, Sequence[StepResult]] = {}
    pending = {Task(i, j) for i in range(len(plan.images)) for j in range(len(steps))}
    for i, recorded in (reused or {}).items():
        for j, step in enumerate(steps):
            mine = [r for r in recorded if r.step == step.name]
            if mine:
                done[Task(i, j)] = mine
                pending.discard(Task(i, j))
    running: dict[Future[Sequence[StepResult]], Task] = {}
    stopped: str | None = None  # fail-fast: why no further step starts
    runtime = getattr(getattr(getattr(ctx, "session", None), "loaded", None), "runtime", None)
    limit_s = getattr(runtime, "timeout", None)
    deadline = None if limit_s is None else time.monotonic() + float(limit_s)
    timed_out: RunTimedOut | None = None
    pools = {Resource.CPU: ThreadPoolExecutor(slots.cpu, thread_name_prefix="sc-ci-cpu"),
             Resource.NETWORK: ThreadPoolExecutor(slots.network, thread_name_prefix="sc-ci-net")}

    def prior(task: Task) -> dict[str, Sequence[StepResult]]:
        return {steps[d].name: done[Task(task.image, d)] for d in deps[task.step]}

    def gate(task: Task) -> str | None:
        """Why `task` must not run (a dependency did not get done, or failed in a way that blocks)."""
        step, image = steps[task.step], plan.images[task.image]
        if not image.built and registry.signs(step):
            return "upstream image (not built by this project): scanned only, not signed or attested"
        for d in deps[task.step]:
            name = steps[d].name
            results = done[Task(task.image, d)]
            if name in step.requires and not any(r.done for r in results):
                why = next((r.summary for r in results if r.failed), "it was skipped")
                return f"needs {name}, which did not complete ({_clip(why)})"
            blocked = [r for r in results if plan.policy.blocking(r, steps[d].feature)]
            if blocked and name not in getattr(step, "reads", ()):
                return f"not run: {name} failed ({_clip(blocked[0].summary)})"
        return None

    limit = {Resource.CPU: slots.cpu, Resource.NETWORK: slots.network}
    busy = {Resource.CPU: 0, Resource.NETWORK: 0}

    def start_ready() -> None:
        """Start what can start: its dependencies are done and its resource class has a free slot (work is
        held here, not queued in a pool, so fail-fast can still stop it)."""
        for task in sorted(pending, key=lambda t: (t.step, t.image)):
            if any(Task(task.image, d) not in done for d in deps[task.step]):
                continue
            if stopped is None and busy[steps[task.step].resource] >= limit[steps[task.step].resource]:
                continue
            pending.discard(task)
            step, image = steps[task.step], plan.images[task.image]
            if timed_out is not None:
                done[task] = [StepResult(step.name, image.name, Outcome.FAILED, timed_out.what, error=timed_out)]
                continue
            reason = stopped or gate(task)
            if reason is not None:
                done[task] = [skipped(step.name, image.name, reason)]
                continue
            broken = plan.broken.get(step.name)
            if broken is not None:  # preparing the step failed: it fails on this image, the policy decides
                done[task] = [StepResult(step.name, image.name, Outcome.FAILED, _clip(broken.what, 300),
                                         error=broken)]
                continue
            busy[step.resource] += 1
            running[pools[step.resource].submit(run_step, step, ctx, image, prior(task))] = task

    try:
        while pending or running:
            before = len(pending)
            start_ready()
            if not running:
                if len(pending) == before and pending:  # nothing can start and nothing runs: a cycle
                    raise ToolError("the step plan has a dependency cycle", fix="Report this as a bug.")
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            finished, _ = wait(list(running), timeout=left, return_when=FIRST_COMPLETED)
            if not finished and timed_out is None:  # the whole run is out of time
                timed_out = RunTimedOut(f"not finished: the run timed out after {float(limit_s or 0):g}s",
                                        fix="Raise --timeout (SC_CI_TIMEOUT), or look for the slow step (-v).")
                log.error("the run timed out after %gs: stopping every tool", float(limit_s or 0))
                runner.stop_all()  # running steps end now (their tools were stopped) and report it
                continue
            for future in finished:
                task = running.pop(future)
                step = steps[task.step]
                busy[step.resource] -= 1
                results = future.result()
                done[task] = results
                if stopped is None and plan.policy.fail_fast:
                    bad = [r for r in results if plan.policy.blocking(r, step.feature)]
                    if bad:
                        stopped = f"not started: fail-fast after {step.name} failed on {_short(bad[0].image)}"
                        log.warning("fail-fast: %s failed on %s; no further step starts", step.name,
                                    bad[0].image)
    except BaseException:
        # cancellation (SIGINT/SIGTERM → KeyboardInterrupt/SystemExit) or a bug: stop every child tool,
        # start nothing more; the callers' `finally` blocks remove private files
        for future in running:
            future.cancel()
        runner.stop_all()
        raise
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
    ordered = sorted(done.items(), key=lambda item: (item[0].image, item[0].step))
    return tuple(r for _, results in ordered for r in results)


def _clip(text: str, limit: int = 120) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _short(image: str) -> str:
    name, sep, digest = image.partition("@")
    return f"{name}@{digest[:19]}…" if sep else image
