"""The release orchestrator: resolve digests once, then sign → SBOM → provenance for every image
(images in parallel inside each step), and decide the outcome with the fail-open policy in one place."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sc_ci.commands import image, provenance, sbom
from sc_ci.commands.provenance import Explicit
from sc_ci.commands.session import Session
from sc_ci.config.model import Feature, SecurityConfig
from sc_ci.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ConfigError, ScError
from sc_ci.log import get_logger
from sc_ci.steps.interface import Outcome, StepResult

log = get_logger("release")

# Which policy feature a step's failure counts against.
STEP_FEATURE: Mapping[str, Feature] = {
    "sign": "signing", "verify": "verify",
    "sbom": "sbom", "sbom-attach": "sbom", "sbom-verify": "sbom",
    "provenance": "provenance", "verify-provenance": "provenance",
}
NOT_YET: tuple[str, ...] = ("scan",)


@dataclass(frozen=True)
class ReleaseOutcome:
    """All step results of a release and the exit code the policy gives them."""

    results: tuple[StepResult, ...]
    exit_code: int
    tolerated: tuple[StepResult, ...]  # failures let through by fail-open


def check_available(security: SecurityConfig) -> None:
    for feature in NOT_YET:
        if getattr(security, feature).enabled:
            raise ConfigError(f"{feature} is not available in this version of sc-ci", path=f"security.{feature}",
                              fix=f"Set security.{feature}.enabled: false for now.")


def run(session: Session, explicit: Explicit | None = None) -> ReleaseOutcome:
    """Every enabled feature on every image, in the spec's order: sign → SBOM → provenance."""
    security = session.loaded.security
    check_available(security)
    session.resolve_digests()  # once, up front: every step works on these digests
    stages: list[tuple[str, Callable[[], list[StepResult]]]] = []
    if security.signing.enabled:
        stages.append(("sign", lambda: image.sign_images(session)))
    if security.sbom.enabled:
        attach = security.sbom.attach.enabled and security.sbom.output.registry
        stages.append(("sbom", lambda: sbom.sbom_results(session, attach=attach)[1]))
    if security.provenance.enabled:
        stages.append(("provenance", lambda: provenance.attach_images(session, explicit or Explicit())))
    results: list[StepResult] = []
    for name, stage in stages:
        results += _guarded(session, name, stage)
    return decide(security, results)


def _guarded(session: Session, name: str, stage: Callable[[], list[StepResult]]) -> list[StepResult]:
    """A failure before any step of a stage (no tool, a key cosign cannot read, …) fails that stage on
    every image, so the policy treats it like any other failure. Usage/config errors stop the run."""
    try:
        return stage()
    except ScError as exc:
        if exc.exit_code == EXIT_USAGE:
            raise
        images = session.resolve_digests()
        return [StepResult(name, i.by_digest, Outcome.FAILED, exc.what, error=exc) for i in images]


def decide(security: SecurityConfig, results: Sequence[StepResult]) -> ReleaseOutcome:
    failed = [r for r in results if r.failed]
    blocking = [r for r in failed if not security.fail_open(STEP_FEATURE.get(r.step, "signing"))]
    tolerated = tuple(r for r in failed if r not in blocking)
    if tolerated:
        log.warning("%d step(s) failed; continuing because the policy is fail-open for them "
                    "(set security.policy.failOpen: false, or <feature>.failOpen: false, to fail the job)",
                    len(tolerated))
    return ReleaseOutcome(tuple(results), EXIT_FAILED if blocking else EXIT_OK, tolerated)
