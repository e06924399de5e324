"""The scan reports of a run, from the scan results' payloads: the normalized JSON, SARIF 2.1.0 (one run per
image), GitLab's container-scanning report (all images in one), the PR-comment body, and the job-summary
section. Files are written without following symlinks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sc_ci import __version__, safefile
from sc_ci.report import gitlab_scanning, sarif, scan_markdown
from sc_ci.results.run import Release
from sc_ci.results.scan import ImageScan
from sc_ci.scan import document as scan_json

JSON_NAME = "scan-report.json"
SARIF_NAME = "scan.sarif"
GITLAB_NAME = "gl-container-scanning-report.json"
COMMENT_NAME = "scan-comment.md"


def scans(release: Release) -> list[ImageScan]:
    return [r.payload for r in release.results if r.step == "scan" and isinstance(r.payload, ImageScan)]


def write(release: Release, directory: Path, *, release_id: str,
          dockerfile: str | None = None) -> dict[str, str]:
    """Every report of the run's scans into `directory`; the output names and paths (nothing without scans)."""
    found = scans(release)
    if not found:
        return {}
    directory.mkdir(parents=True, exist_ok=True)
    documents = {"images": [scan_json.render(s.merged, s.verdict, image=s.target) for s in found]}
    runs = [run for s in found for run in sarif.render(s.merged, s.verdict, image=s.target, dockerfile=dockerfile,
                                                       tool_version=__version__)["runs"]]
    log = {"$schema": sarif.SARIF_SCHEMA, "version": sarif.SARIF_VERSION, "runs": runs}
    gitlab = _gitlab(found)
    paths = {
        "scan-report": _dump(directory / JSON_NAME, {"schema": "sc-ci/scan-reports/v1", **documents}),
        "sarif": _dump(directory / SARIF_NAME, log),
        "gitlab-report": _dump(directory / GITLAB_NAME, gitlab),
    }
    comment = scan_markdown.pr_comment(release_id, [scan_markdown.ImageScan(s.target, s.merged, s.verdict)
                                                    for s in found])
    safefile.write_text(directory / COMMENT_NAME, comment)
    paths["scan-comment"] = str(directory / COMMENT_NAME)
    return paths


def _gitlab(found: Sequence[ImageScan]) -> dict[str, object]:
    """One container-scanning report for the job: every image's vulnerabilities (each names its image)."""
    parts = [gitlab_scanning.render(s.merged, s.verdict, image=s.target, started=s.started, finished=s.finished,
                                    analyzer_version=__version__) for s in found]
    first = parts[0]
    scan = dict(first["scan"])
    scan["start_time"] = min(p["scan"]["start_time"] for p in parts)
    scan["end_time"] = max(p["scan"]["end_time"] for p in parts)
    messages = [m for p in parts for m in p["scan"].get("messages", [])]
    if messages:
        scan["messages"] = messages
    vulnerabilities = [v for p in parts for v in p["vulnerabilities"]]
    return {**first, "scan": scan, "vulnerabilities": vulnerabilities}


def markdown(release: Release) -> str:
    """The scan section of the job summary: one block per scanned manifest."""
    return "\n".join(scan_markdown.job_summary(s.merged, s.verdict, image=s.target) for s in scans(release))


def _dump(path: Path, document: object) -> str:
    safefile.write_text(path, json.dumps(document, indent=2) + "\n")
    return str(path)


def console(release: Release, limit: int = 20) -> str:
    """The findings table for the console (AC-4.2): per manifest the counted findings, worst first."""
    from sc_ci.report.release import clean, short

    blocks: list[str] = []
    for scan in scans(release):
        rows = [("severity", "id", "package", "version", "fix", "found by")]
        for finding in scan.verdict.counted[:limit]:
            rows.append((finding.top_severity, finding.id, finding.package, finding.version,
                         ", ".join(finding.fix_versions) or "-", ", ".join(sorted(finding.found_by))))
        cells = [[clean(c, 60) for c in row] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(rows[0]))]
        lines = [f"findings in {clean(short(scan.target), 120)}:"]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
        more = len(scan.verdict.counted) - limit
        if more > 0:
            lines.append(f"  … and {more} more (scan-report.json)")
        if scan.verdict.suppressed:
            lines.append(f"  suppressed: {len(scan.verdict.suppressed)} "
                         + "; ".join(clean(f"{s.finding.id} ({s.kind}: {s.reason})", 120)
                                     for s in scan.verdict.suppressed[:5]))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
