"""Every step the engine knows, in the spec's order (scan → sign → SBOM → provenance → verify; AC-5.2), then
the verify side `release verify` runs (tag, signature, SBOMs, provenance, scan result: none of them writes).
A new step is one module and one line here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sc_ci.config.model import Feature
from sc_ci.errors import UsageError
from sc_ci.steps.attest_vsa import VsaStep
from sc_ci.steps.interface import Step
from sc_ci.steps.provenance import ProvenanceStep
from sc_ci.steps.sbom import SbomAttachStep, SbomStep
from sc_ci.steps.scan import ScanStep
from sc_ci.steps.scan_attest import ScanAttestStep
from sc_ci.steps.sign import SignStep
from sc_ci.steps.verify_provenance import ProvenanceVerifyStep
from sc_ci.steps.verify_sbom import SbomVerifyStep
from sc_ci.steps.verify_signature import VerifyStep
from sc_ci.steps.verify_tag import TagVerifyStep
from sc_ci.steps.verify_vuln import VulnVerifyStep

if TYPE_CHECKING:
    from sc_ci.engine.context import RunContext

STEPS: tuple[type[Step], ...] = (
    ScanStep,
    SignStep,
    SbomStep,
    SbomAttachStep,
    ProvenanceStep,
    ScanAttestStep,
    VerifyStep,
    TagVerifyStep,
    SbomVerifyStep,
    ProvenanceVerifyStep,
    VulnVerifyStep,
    VsaStep,
)

#: What `release verify` runs (`--rescan` adds "scan" before them, `--attest-vsa` the VSA after them).
VERIFY_SIDE: tuple[str, ...] = (TagVerifyStep.name, VerifyStep.name, SbomVerifyStep.name, ProvenanceVerifyStep.name,
                                VulnVerifyStep.name)
VSA = VsaStep.name

#: The policy feature of every result name.
FEATURES: Mapping[str, Feature] = {cls.name: cls.feature for cls in STEPS}


def names() -> tuple[str, ...]:
    return tuple(cls.name for cls in STEPS)


def select(ctx: RunContext, wanted: Sequence[str] | None = None) -> list[Step]:
    """Fresh step instances for one run, in registry order: those the config enables, or exactly `wanted`."""
    steps = [cls() for cls in STEPS]
    for step in steps:
        configure = getattr(step, "configure", None)
        if configure is not None:
            configure(ctx)  # steps whose tools depend on the configuration (the scanners) set them here
    if wanted is not None:
        unknown = sorted(set(wanted) - set(names()))
        if unknown:
            raise UsageError(f"unknown step {', '.join(unknown)}", fix=f"Steps: {', '.join(names())}")
        return [step for step in steps if step.name in wanted]
    return [step for step in steps if step.enabled(ctx)]


def signs(step: Step) -> bool:
    """Whether the step writes to the image's repository (signatures, attestations): never done for
    upstream images the project does not build."""
    return bool(getattr(step, "signs", False))


def tools_for(security: object) -> set[str]:
    """The tools the steps this configuration enables run (what `sc-ci doctor` checks): read from the steps
    themselves, so doctor and the engine can never disagree."""
    from types import SimpleNamespace

    from sc_ci.engine.context import RunOptions

    view: Any = SimpleNamespace(security=security, options=RunOptions())
    return {tool for step in select(view) for tool in step.tools}
