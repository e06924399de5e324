"""The vulnerability check (`verify-vuln`): each scanned manifest's signed `vuln` attestation — its scan no
older than the bound, and no finding at or above the release's failOn once the release's ignore list and VEX
apply (an ignore entry that has expired since counts again) — or, with `--rescan`, a fresh scan with today's
database judged by the same gate: vulnerabilities found since the release are the point (SSDF RV.1.1).
Never writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sc_ci.errors import VerificationFailed
from sc_ci.results.scan import ImageScan
from sc_ci.results.step import StepResult, timed
from sc_ci.results.verify import CheckEvidence
from sc_ci.scan import document, gate
from sc_ci.scan.gate import GatePolicy
from sc_ci.scan.interface import SEVERITIES, Severity
from sc_ci.signing.plan import SigningPlan
from sc_ci.steps import evidence
from sc_ci.steps import sbom as sbom_step
from sc_ci.steps.interface import Resource
from sc_ci.steps.scan_attest import COSIGN_TYPE, PREDICATE_TYPE
from sc_ci.verify.expect import human_age

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage


def scan_time(predicate: Mapping[str, Any]) -> datetime | None:
    """When the attested scan finished (cosign's vuln predicate: metadata.scanFinishedOn, RFC 3339)."""
    metadata = predicate.get("metadata")
    text = metadata.get("scanFinishedOn") if isinstance(metadata, dict) else None
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def report_of(predicate: Mapping[str, Any]) -> Mapping[str, Any] | None:
    scanner = predicate.get("scanner")
    result = scanner.get("result") if isinstance(scanner, dict) else None
    return result if isinstance(result, dict) and result.get("schema") == document.SCHEMA else None


class VulnVerifyStep:
    """`verify-vuln`: the signed scan result of each manifest, its age and the release's gate (or a rescan)."""

    name: ClassVar[str] = "verify-vuln"
    feature: ClassVar[Feature] = "scan"
    tools: tuple[str, ...] = ("cosign",)
    resource: ClassVar[Resource] = Resource.NETWORK
    requires: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[tuple[str, ...]] = ("scan",)  # --rescan: today's findings, whatever the fresh gate said
    signs: ClassVar[bool] = True

    def __init__(self) -> None:
        self.plan: SigningPlan | None = None
        self.configured: GatePolicy | None = None

    def enabled(self, ctx: RunContext) -> bool:
        return ctx.options.expectations is not None

    def check(self, ctx: RunContext) -> None:
        """The gate of the project's config (its ignore list and VEX read now), when a config was given."""
        from sc_ci.steps.scan import gate_policy

        if ctx.session.loaded.origin("scan.failOn") != "default" or ctx.security.scan.ignore or \
                ctx.security.scan.vex or ctx.security.scan.ignore_file:
            self.configured = gate_policy(ctx)

    def prepare(self, ctx: RunContext) -> None:
        self.plan = evidence.verification_plan(ctx)

    def warm(self, ctx: RunContext, images: Sequence[PlannedImage]) -> None:
        built = [i for i in images if i.built]
        if len(built) > 1:
            evidence.warm_attestations(ctx, COSIGN_TYPE,
                                       lambda: [t.ref for i in built for t in sbom_step.targets(ctx, i.ref)])

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        assert self.plan is not None
        return [ctx.cosign().verify_attestation_argv(t.ref, self.plan.verifier(), COSIGN_TYPE, self.plan.options)
                for t in sbom_step.targets(ctx, image.ref)]

    def _policy(self, ctx: RunContext, report: Mapping[str, Any]) -> tuple[GatePolicy, str]:
        """The gate to judge with, and where it came from: --fail-on over the config over what the release's
        own signed report recorded (its threshold and each suppression, ignore entries with their expiry)."""
        expect = evidence.expectations(ctx)
        base, source = (self.configured, "the project's security.scan") if self.configured is not None else (
            document.recorded_policy(report), "the release's signed scan report")
        if expect.fail_on is not None:
            base = replace(base, merged_fail_on=Severity(expect.fail_on.value), fail_on={})
            source = f"failOn {expect.fail_on.value} ({expect.fail_on.source}); suppressions: {source}"
        return base, source

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        fresh = {r.image: r.payload for r in prior.get("scan", ()) if isinstance(r.payload, ImageScan)}
        return [self._one(ctx, target, fresh.get(target.ref)) for target in sbom_step.targets(ctx, image.ref)]

    def _one(self, ctx: RunContext, target: sbom_step.Target, fresh: ImageScan | None) -> StepResult:
        expect = evidence.expectations(ctx)
        seen: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        fetch = evidence.fetcher(ctx, seen)
        payload: list[CheckEvidence] = []
        ref = target.ref

        def action() -> tuple[str, dict[str, str]]:
            mine = [s for s in fetch(ref, COSIGN_TYPE) if s.get("predicateType") == PREDICATE_TYPE]
            reports = [(s, report_of(s.get("predicate") or {})) for s in mine]
            usable = [(s, r) for s, r in reports if r is not None]
            if not usable:
                raise VerificationFailed(f"{ref}: no signed scan result (vuln attestation with an sc-ci scan "
                                         "report) names this digest",
                                         fix="Attest the scan in the release: security.scan.attest: true")
            when = [scan_time(s.get("predicate") or {}) for s, _ in usable]
            newest = max(range(len(usable)), key=lambda i: when[i] or datetime.min.replace(tzinfo=UTC))
            statement, report = usable[newest]
            finished = when[newest]
            age = datetime.now(UTC) - finished if finished else None
            bound, ignored = evidence.attestation_evidence(ctx, target.image, [statement], expect.signer)
            policy, policy_source = self._policy(ctx, report)
            today = date.today()
            if fresh is not None:
                merged, judged_by = fresh.merged, "a fresh scan with today's database (--rescan)"
            else:
                merged, judged_by = document.merged_of(report), "the attested scan"
            verdict = gate.evaluate(merged, policy, today=today, image=target.image.name,
                                    digest=target.image.digest or "")
            counts = {str(sev): n for sev, n in verdict.counts.get(gate.MERGED, {}).items() if n}
            found = {"scanned": finished.isoformat() if finished else "(no time recorded)",
                     "age": human_age(age) if age is not None else "unknown", "judged": judged_by,
                     "findings": str(len(merged.findings)), "counted": str(len(verdict.counted)),
                     "blocking": str(len(verdict.blocking)), "suppressed": str(len(verdict.suppressed))}
            threshold = str(policy.merged_fail_on) if policy.merged_fail_on else "none"
            expected = {"predicateType": PREDICATE_TYPE,
                        "maxAge": f"{human_age(expect.max_scan_age)}" + (" (not applied: --rescan)" if fresh else ""),
                        "failOn": threshold, "gate": policy_source}
            facts: dict[str, object] = {"counts": counts, "warnings": list(verdict.warnings)[:20],
                                        "blockingIds": [b.finding.id for b in verdict.blocking][:50]}
            payload.append(CheckEvidence("vuln", ref, expected, found,
                                         tuple(evidence.artifact_found(b) for b in bound), tuple(ignored), facts))
            if fresh is None and (age is None or age > expect.max_scan_age):
                raise VerificationFailed(
                    f"{ref}: the signed scan is {found['age']} old, older than {human_age(expect.max_scan_age)}",
                    why=f"scanned {found['scanned']}; new vulnerabilities may have been published since",
                    fix="Rescan now: sc-ci release verify --rescan (or re-release), or raise --max-scan-age.")
            if verdict.tripped:
                worst = ", ".join(f"{b.finding.id} ({b.finding.top_severity}, {b.finding.package} "
                                  f"{b.finding.version})" for b in verdict.blocking[:5])
                raise VerificationFailed(
                    f"{ref}: {len(verdict.blocking)} finding(s) at or above {threshold}: {worst}",
                    why=f"judged on {judged_by} with {policy_source}" + (
                        "; " + "; ".join(verdict.warnings[:3]) if verdict.warnings else ""),
                    fix="Update the packages named (fix versions are in the evidence), or accept a finding with a "
                        "reason and an expiry date (security.scan.ignore) and release again.")
            shown = ", ".join(f"{counts[str(s)]} {s}" for s in SEVERITIES if str(s) in counts) or "no findings"
            return (f"signed scan {found['age']} old: {shown}; none at or above {threshold}"
                    + (" (rescanned today)" if fresh else ""), {"predicateType": PREDICATE_TYPE})

        result = timed(self.name, ref, action)
        return replace(result, payload=payload[0] if payload else CheckEvidence("vuln", ref))
