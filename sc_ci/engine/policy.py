"""The one place policy is decided: which failures fail the job (fail-open per feature, gates, required
scanners), when the run stops early (fail-fast), and the verdict and exit code of a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

from sc_ci.config.model import Feature, SecurityConfig
from sc_ci.errors import EXIT_FAILED, EXIT_OK, StepFailed
from sc_ci.results.run import PolicyFacts, Verdict
from sc_ci.results.step import StepResult


class GateTripped(StepFailed):
    """A scan found what `failOn` forbids. Never tolerated by fail-open: a gate is an explicit decision."""

    always_blocks = True


class RunTimedOut(StepFailed):
    """The whole run exceeded --timeout: what had not finished fails, whatever failOpen says."""

    always_blocks = True


class RequiredFailed(StepFailed):
    """A step configured as required (`scan.tools[].required: true`) failed: fatal whatever failOpen says."""

    always_blocks = True


@dataclass(frozen=True)
class Policy:
    """Fail-open per feature, fail-fast, and where the rule comes from (release: the config; direct
    commands: closed, since the user asked for exactly that work)."""

    fail_open: Mapping[Feature, bool]
    fail_fast: bool = False
    source: str = "config"

    @classmethod
    def from_config(cls, security: SecurityConfig) -> Policy:
        return cls({f: security.fail_open(f) for f in get_args(Feature)}, security.policy.fail_fast)

    @classmethod
    def closed(cls) -> Policy:
        """Direct commands (`image sign`, `sbom attach`, …): any failed step is exit 1."""
        return cls({f: False for f in get_args(Feature)}, False, "direct command")

    def facts(self) -> PolicyFacts:
        return PolicyFacts({str(k): v for k, v in self.fail_open.items()}, self.fail_fast, self.source)

    def blocking(self, result: StepResult, feature: Feature) -> bool:
        """Whether `result` fails the job: a failure under a closed policy, a tripped gate, or a required
        step's failure. OK and skipped results never block."""
        if not result.failed:
            return False
        if getattr(result.error, "always_blocks", False):
            return True
        return not self.fail_open[feature]


def verdict(results: Sequence[StepResult], policy: Policy, feature_of: Mapping[str, Feature]) -> Verdict:
    """Apply `policy` to every result; `feature_of` maps step names to features (an unknown step name is
    a programming error, never silently given another feature's policy)."""
    failed = [r for r in results if r.failed]
    blocking = tuple(r for r in failed if policy.blocking(r, feature_of[r.step]))
    tolerated = tuple(r for r in failed if r not in blocking)
    return Verdict(EXIT_FAILED if blocking else EXIT_OK, blocking, tolerated)
