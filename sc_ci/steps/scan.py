"""The scan step: every configured scanner on the image digest, in parallel, straight from the registry; each
DB loaded once per run; results merged into one finding set, gated (failOn, onlyFixed, ignore, VEX), and
optionally uploaded to DefectDojo. A tripped gate stops the signing of that image."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sc_ci.engine.policy import GateTripped, RequiredFailed
from sc_ci.errors import ConfigError, ScError, StepFailed
from sc_ci.log import get_logger
from sc_ci.results.scan import ImageScan
from sc_ci.results.step import Artifact, Outcome, StepResult
from sc_ci.scan import gate, grype_json, trivy_json, vex
from sc_ci.scan.gate import GatePolicy, Verdict
from sc_ci.scan.interface import ScannerReport
from sc_ci.scan.merge import MergeResult, merge
from sc_ci.services.registry import is_plain_http
from sc_ci.steps.interface import Resource
from sc_ci.steps.sbom import Target, targets
from sc_ci.tools import grype as grype_tool
from sc_ci.tools import trivy as trivy_tool
from sc_ci.tools import vulndb
from sc_ci.tools.vulndb import DbInfo, DbSettings

if TYPE_CHECKING:
    from sc_ci.config.model import Feature, ScanConfig
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage

log = get_logger("scan")
PARSERS: Mapping[str, Callable[[object], ScannerReport]] = {"grype": grype_json.parse_document,
                                                            "trivy": trivy_json.parse_document}
FINDERS: Mapping[str, Callable[[Mapping[str, str]], Any]] = {"grype": grype_tool.find, "trivy": trivy_tool.find}
SEVERITY_ORDER = ("critical", "high", "medium", "low", "negligible", "unknown")


def gate_policy(ctx: RunContext) -> GatePolicy:
    """The configured gate: failOn (merged and per scanner), onlyFixed, the ignore list and ignore file, VEX
    (project files read and validated now)."""
    scan: ScanConfig = ctx.security.scan
    root = ctx.session.loaded.project_root
    rules: tuple[gate.IgnoreRule, ...] = ()
    if scan.ignore_file:
        rules = gate.load_ignore_file(_read(root, scan.ignore_file, "security.scan.ignoreFile"),
                                      where="security.scan.ignoreFile")
    document = vex.parse(_read(root, scan.vex, "security.scan.vex")) if scan.vex else None
    return GatePolicy.from_config(scan, ignore_file=rules, vex=document)


class ScanStep:
    """`scan`: grype and/or trivy on each manifest of the image (an index: each platform)."""

    name: ClassVar[str] = "scan"
    feature: ClassVar[Feature] = "scan"
    resource: ClassVar[Resource] = Resource.CPU
    requires: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    signs: ClassVar[bool] = False
    tolerates_missing_tools: ClassVar[bool] = True  # a missing scanner fails only where it is required

    def __init__(self) -> None:
        self.tools: tuple[str, ...] = ("grype",)
        self.settings = DbSettings(Path("."))
        self.explicit_cache = False  # a configured cache dir must work; the default may fall back
        self.policy = GatePolicy()
        self.dbs: dict[str, DbInfo] = {}
        self.unavailable: dict[str, ScError] = {}
        self.required: frozenset[str] = frozenset()
        self.uploader: Any = None

    def configure(self, ctx: RunContext) -> None:
        scan: ScanConfig = ctx.security.scan
        self.tools = tuple(t.name for t in scan.tools)
        self.required = frozenset(t.name for t in scan.tools if t.required)

    def enabled(self, ctx: RunContext) -> bool:
        return bool(ctx.security.scan.enabled)

    def check(self, ctx: RunContext) -> None:
        """Gate inputs read and validated now: the ignore file and the VEX document (project files)."""
        scan: ScanConfig = ctx.security.scan
        root = ctx.session.loaded.project_root
        self.policy = gate_policy(ctx)
        db = scan.db
        cache = Path(db.cache_dir).expanduser() if db.cache_dir else None
        if cache is not None and not cache.is_absolute():
            cache = root / cache
        self.explicit_cache = cache is not None or bool(ctx.env.get(vulndb.CACHE_DIR_ENV, "").strip())
        if cache is None:
            runtime_cache = ctx.session.loaded.runtime.cache_dir
            self.explicit_cache = self.explicit_cache or runtime_cache is not None
            cache = runtime_cache / "vulndb" if runtime_cache else vulndb.default_cache_dir(ctx.env)
        self.settings = DbSettings(cache, db.offline, timedelta(seconds=db.max_age_seconds),
                                   db.grype_update_url, db.trivy_repository)

    def prepare(self, ctx: RunContext) -> None:
        """Each scanner found and its DB loaded once for the whole run (every image shares it)."""
        if not ctx.dry_run:
            usable = vulndb.usable_cache_dir(self.settings.cache_dir, explicit=self.explicit_cache)
            self.settings = replace(self.settings, cache_dir=usable)
        for name in self.tools:
            try:
                scanner = FINDERS[name](ctx.env)
                ctx.register_tool(name, scanner)
                if not ctx.dry_run:
                    self.dbs[name] = scanner.prepare_db(self.settings)
            except ScError as exc:
                if exc.exit_code != 1:
                    raise
                self.unavailable[name] = exc
                log.warning("%s is not available for this run: %s", name, exc.what)
        ctx.facts["scan-dbs"] = {name: info.built.isoformat() for name, info in sorted(self.dbs.items())}
        if ctx.security.scan.upload.defectdojo.enabled and not ctx.dry_run:
            from sc_ci.steps import scan_upload

            self.uploader = scan_upload.uploader(ctx)

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        found: list[list[str]] = []
        plain = is_plain_http(image.ref.registry, ctx.session.registry.insecure)
        for target in targets(ctx, image.ref):
            for name in self.tools:
                if name in self.unavailable:
                    continue
                scanner = _scanner(ctx, name)
                if name == "grype":
                    found.append(scanner.scan_argv(image=target.ref))
                else:
                    found.append(scanner.scan_argv(settings=self.settings, image=target.ref, plain_http=plain))
        return found

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        return [self._scan(ctx, image, target) for target in targets(ctx, image.ref)]

    # ---- one manifest -------------------------------------------------------------
    def _scan(self, ctx: RunContext, image: PlannedImage, target: Target) -> StepResult:
        started = datetime.now(UTC)
        plain = is_plain_http(image.ref.registry, ctx.session.registry.insecure)
        names = [n for n in self.tools if n not in self.unavailable]
        errors: dict[str, ScError] = dict(self.unavailable)
        raw: dict[str, bytes] = {}
        with ThreadPoolExecutor(max(1, len(names)), thread_name_prefix="sc-ci-scanner") as pool:
            futures = {n: pool.submit(self._one, ctx, n, target, plain) for n in names}
            for name, future in futures.items():
                try:
                    raw[name] = future.result()
                except ScError as exc:
                    errors[name] = exc
        reports = []
        for name, data in raw.items():
            try:
                report = PARSERS[name](json.loads(data))
            except (ScError, ValueError) as problem:
                errors[name] = problem if isinstance(problem, ScError) else StepFailed(
                    f"{name} printed no JSON report", fix="Rerun with -v to see the scanner's output.")
                continue
            info = self.dbs.get(name)
            scanner = _scanner(ctx, name)
            reports.append(replace(report, scanner_version=report.scanner_version or str(scanner.version),
                                   db_built=report.db_built or (info.built.isoformat() if info else None)))
        finished = datetime.now(UTC)
        seconds = (finished - started).total_seconds()
        failed_required = sorted(n for n in errors if n in self.required)
        if failed_required or not reports:
            first = errors[failed_required[0] if failed_required else next(iter(errors))]
            error_type = RequiredFailed if failed_required else StepFailed
            what = f"{target.ref}: {', '.join(sorted(errors))} failed: {first.what}"
            error = error_type(what, why=first.why, fix=first.fix)
            return StepResult(self.name, target.ref, Outcome.FAILED, what.removeprefix(f"{target.ref}: "),
                              seconds, error)
        merged = merge(reports)
        verdict = gate.evaluate(merged, self.policy, today=date.today(), image=image.ref.name,
                                digest=target.image.digest or "")
        payload = ImageScan(target.ref, merged, verdict, raw, started, finished)
        details = {"scanners": ", ".join(f"{r.scanner} {r.scanner_version or ''}".strip() for r in reports),
                   "verdict": _cell(verdict), "findings": str(len(merged.findings)),
                   "deduplicated": str(merged.deduplicated), "suppressed": str(len(verdict.suppressed))}
        for severity in SEVERITY_ORDER:
            details[f"merged-{severity}"] = str(verdict.counts.get("merged", {}).get(severity, 0))  # type: ignore[call-overload]
        for name, failure in errors.items():
            details[f"{name}-error"] = failure.what
            log.warning("%s failed on %s (not required, continuing with %s): %s", name, target.ref,
                        ", ".join(r.scanner for r in reports), failure.what)
        for warning in verdict.warnings:
            log.warning("%s: %s", target.ref, warning)
        upload = self._upload(ctx, image, target, raw)
        if upload is not None:
            details["defectdojo"] = upload
        summary = _summary(merged, verdict, errors)
        artifacts = (Artifact("report", target.ref, "scan"),)
        if verdict.tripped:
            error = GateTripped(f"{target.ref}: the scan gate tripped: {summary}",
                                why="; ".join(verdict.tripped_by),
                                fix="Update the packages named (the fix versions are listed), or accept a finding "
                                    "with a reason and an expiry date:\nsecurity:\n  scan:\n    ignore:\n"
                                    "      - id: CVE-…\n        reason: not reachable in this image\n"
                                    "        expires: 2027-01-31")
            return StepResult(self.name, target.ref, Outcome.FAILED, summary, seconds, error, details,
                              artifacts, payload=payload)
        return StepResult(self.name, target.ref, Outcome.OK, summary, seconds, None, details, artifacts,
                          payload=payload)

    def _one(self, ctx: RunContext, name: str, target: Target, plain: bool) -> bytes:
        """One scanner's JSON for `target`, from the digest-keyed cache when this scanner version and DB
        build scanned it before."""
        scanner = _scanner(ctx, name)
        info = self.dbs.get(name)
        key = {"digest": target.image.digest or "", "scanner": name, "version": str(scanner.version),
               "db": info.built.isoformat() if info else ""}
        if ctx.cache is not None:
            cached = ctx.cache.get("scan", key)
            if cached is not None:
                try:
                    PARSERS[name](json.loads(cached))
                    return cached
                except (ScError, ValueError):
                    log.warning("cached %s report for %s ignored: not a valid report", name, target.ref)
        document = scanner.scan(settings=self.settings, image=target.ref, plain_http=plain,
                                docker_config=ctx.docker_config)
        data = json.dumps(document).encode()
        if ctx.cache is not None:
            ctx.cache.put("scan", key, data)
        return data

    def _upload(self, ctx: RunContext, image: PlannedImage, target: Target, raw: Mapping[str, bytes]) -> str | None:
        if self.uploader is None:
            return None
        from sc_ci.steps import scan_upload

        return scan_upload.upload(ctx, self.uploader, target.ref, raw)


def _scanner(ctx: RunContext, name: str) -> Any:
    """The run's grype or trivy (found once, in prepare)."""
    return ctx.tool(name)


def _read(root: Path, value: str, where: str) -> bytes:
    from sc_ci import safefile

    path = Path(value).expanduser()
    if not path.is_absolute():
        path = root / path
    try:
        return safefile.read_bytes(path, limit=8 * 1024 * 1024)
    except OSError as exc:
        raise ConfigError(f"cannot read {value[:200]!r}", path=where, why=exc.strerror or type(exc).__name__,
                          fix="Give the path of the file, relative to the project root.") from exc


def _cell(verdict: Verdict) -> str:
    merged = verdict.counts.get("merged", {})
    parts = [f"{merged.get(s, 0)} {s[:4]}" for s in ("critical", "high") if merged.get(s, 0)]  # type: ignore[call-overload]
    total = sum(merged.values())
    text = f"{total} found" + (f" ({', '.join(parts)})" if parts else "")
    return text + (" GATE" if verdict.tripped else "")


def _summary(merged: MergeResult, verdict: Verdict, errors: Mapping[str, ScError]) -> str:
    counts = verdict.counts.get("merged", {})
    by = ", ".join(f"{counts.get(s, 0)} {s}" for s in SEVERITY_ORDER if counts.get(s, 0))  # type: ignore[call-overload]
    text = f"{len(merged.findings)} finding(s)" + (f" ({by})" if by else "")
    scanners = ", ".join(merged.scanners)
    text += f" by {scanners}" if scanners else ""
    if merged.deduplicated:
        text += f", {merged.deduplicated} GHSA/CVE pair(s) merged"
    if verdict.suppressed:
        text += f", {len(verdict.suppressed)} suppressed"
    if errors:
        text += f"; {', '.join(sorted(errors))} failed (not required)"
    if verdict.tripped:
        text += f"; gate tripped ({', '.join(verdict.tripped_by)})"
    elif verdict.threshold or any(verdict.thresholds.values()):
        text += "; gate passed"
    return text
