"""The scan-attest step (`scan.attest: true`): the merged scan result of each manifest attached as a signed
attestation of cosign's `vuln` type (predicate https://cosign.sigstore.dev/attestation/vuln/v1), which plain
`cosign verify-attestation --type vuln` checks."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sc_ci.results.scan import ImageScan
from sc_ci.results.step import Artifact, Outcome, StepResult, skipped, timed
from sc_ci.scan import document as scan_json
from sc_ci.steps.interface import Resource

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage

COSIGN_TYPE = "vuln"
PREDICATE_TYPE = "https://cosign.sigstore.dev/attestation/vuln/v1"
SCANNER_URI = {"grype": "pkg:github/anchore/grype", "trivy": "pkg:github/aquasecurity/trivy"}


def predicate(scan: ImageScan) -> dict[str, Any]:
    """cosign's vuln predicate (pkg/cosign/attestation: CosignVulnPredicate): invocation, scanner (uri,
    version, db, result) and metadata (scanStartedOn, scanFinishedOn). The result is our merged report
    (schema sc-ci/scan-report/v1), so one attestation covers every scanner that ran."""
    reports = scan.merged.reports
    names = "+".join(r.scanner for r in reports) or "sc-ci"
    first = reports[0] if reports else None
    return {
        "invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {
            "uri": SCANNER_URI.get(names, f"pkg:generic/sc-ci-merged/{names}"),
            "version": ", ".join(f"{r.scanner} {r.scanner_version or ''}".strip() for r in reports),
            "db": {"uri": "", "version": (first.db_built or "") if first else ""},
            "result": scan_json.render(scan.merged, scan.verdict, image=scan.target),
        },
        "metadata": {"scanStartedOn": scan.started.isoformat().replace("+00:00", "Z"),
                     "scanFinishedOn": scan.finished.isoformat().replace("+00:00", "Z")},
    }


class ScanAttestStep:
    """`scan-attest`: one signed vuln attestation per scanned manifest, signed like the image."""

    name: ClassVar[str] = "scan-attest"
    feature: ClassVar[Feature] = "scan"
    tools: tuple[str, ...] = ("cosign",)
    resource: ClassVar[Resource] = Resource.NETWORK
    requires: ClassVar[tuple[str, ...]] = ("scan",)
    after: ClassVar[tuple[str, ...]] = ()
    signs: ClassVar[bool] = True

    def enabled(self, ctx: RunContext) -> bool:
        return bool(ctx.security.scan.enabled and ctx.security.scan.attest)

    def check(self, ctx: RunContext) -> None:
        """Nothing beyond the configuration model."""

    def prepare(self, ctx: RunContext) -> None:
        ctx.signing_plan()

    def record(self, ctx: RunContext) -> dict[str, object]:
        """The scan result is attested, and with which gate (release.json `verification.scan`)."""
        scan = ctx.security.scan
        return {"scan": {"attested": True, "failOn": scan.fail_on, "onlyFixed": scan.only_fixed,
                         "tools": [t.name for t in scan.tools]}}

    def fingerprint(self, ctx: RunContext) -> str:
        """The scan result attested depends on the scanners' DB builds (release records)."""
        return json.dumps(ctx.facts.get("scan-dbs", {}), sort_keys=True)

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        plan = ctx.signing_plan()
        return ctx.cosign().attest_argvs(image.name, plan.key, Path("<scan-predicate.json>"), COSIGN_TYPE,
                                         plan.options)

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        scans = [r.payload for r in prior.get("scan", ()) if isinstance(r.payload, ImageScan)]
        if not scans:
            return [skipped(self.name, image.name, "no scan result to attest")]
        plan = ctx.signing_plan().with_docker_config(ctx.docker_config)
        results = []
        for scan in scans:
            def action(scan: ImageScan = scan) -> tuple[str, dict[str, str]]:
                with tempfile.TemporaryDirectory(prefix="sc-ci-vuln-", dir=ctx.workdir) as tmp:
                    path = Path(tmp) / "vuln.json"
                    path.write_text(json.dumps(predicate(scan)), encoding="utf-8")
                    plan.attest(ctx.cosign(), scan.target, path, COSIGN_TYPE)
                from sc_ci.steps.sbom import consumer_command

                return (f"attached the scan result ({len(scan.merged.findings)} finding(s)) as a signed vuln "
                        "attestation", {"predicateType": PREDICATE_TYPE,
                                        "command": consumer_command(plan, scan.target, COSIGN_TYPE,
                                                                    tlog=plan.options.tlog)})

            result = timed(self.name, scan.target, action)
            if result.outcome is Outcome.OK:
                result = StepResult(result.step, result.image, result.outcome, result.summary, result.seconds,
                                    None, result.details, (Artifact("attestation", scan.target, COSIGN_TYPE,
                                                                    PREDICATE_TYPE),))
            results.append(result)
        return results
