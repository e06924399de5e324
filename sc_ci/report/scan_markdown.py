"""Markdown for scan results: the job-summary section and the PR/MR comment body, every untrusted value escaped."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sc_ci import secrets
from sc_ci.scan.gate import MERGED, Verdict
from sc_ci.scan.interface import SEVERITIES, Finding
from sc_ci.scan.merge import MergeResult

MARKER_PREFIX = "<!-- sc-ci:release:"
MARKER_SUFFIX = " -->"
COMMENT_LIMIT = 60_000  # GitHub rejects comment bodies over 65 536 characters
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;", "`": "&#96;", "@": "&#64;", "[": "&#91;",
             "]": "&#93;", "*": "&#42;", "_": "&#95;", "~": "&#126;", "\\": "&#92;", "#": "&#35;", "!": "&#33;",
             "$": "&#36;", ":": "&#58;"}
_ESCAPE = re.compile("[" + re.escape("".join(_ENTITIES)) + "]")
_BREAKS = re.compile(r"[\r\n\t\x0b\x0c\x85\u2028\u2029]+")
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_RELEASE_ID = re.compile(r"[^A-Za-z0-9._:+/=-]")
_HEADER = ("Critical", "High", "Medium", "Low", "Negligible", "Unknown")


def escape(value: object, limit: int = 120) -> str:
    """One inert line for a table cell: line breaks → space, controls gone, Markdown/HTML specials as entities."""
    text = _INVISIBLE.sub("", _BREAKS.sub(" ", str(value))).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _ESCAPE.sub(lambda m: _ENTITIES[m.group(0)], text)


def marker(release_id: str) -> str:
    """The hidden first line that lets the engine find and update its own comment on the next run."""
    safe = re.sub(r"-{2,}", "-", _RELEASE_ID.sub("-", release_id))[:128].strip("-") or "unknown"
    return f"{MARKER_PREFIX}{safe}{MARKER_SUFFIX}"


def has_marker(body: str, release_id: str) -> bool:
    return body.lstrip().startswith(marker(release_id))


@dataclass(frozen=True)
class ImageScan:
    image: str
    merged: MergeResult
    verdict: Verdict


def gate_line(verdict: Verdict) -> str:
    gates = [f"{escape(s)} ≥ {t}" for s, t in verdict.thresholds.items() if t is not None]
    if verdict.threshold is not None:
        gates.append(f"merged ≥ {verdict.threshold}")
    if verdict.tripped:
        return (f"**Gate: failed** — {len(verdict.blocking)} finding(s) at or above the threshold "
                f"(tripped: {', '.join(escape(g) for g in verdict.tripped_by)}; thresholds: {'; '.join(gates)})")
    if gates:
        return f"**Gate: passed** (thresholds: {'; '.join(gates)})"
    return "**Gate: none** (no failOn set; findings are reported only)"


def counts_table(merged: MergeResult, verdict: Verdict) -> list[str]:
    lines = ["| Scanner | Version | DB built | " + " | ".join(_HEADER) + " |",
             "|---|---|---|" + "---:|" * len(_HEADER)]
    for report in merged.reports:
        by = verdict.counts.get(report.scanner, {})
        lines.append(f"| {escape(report.scanner, 40)} | {escape(report.scanner_version or 'unknown', 40)} | "
                     f"{escape(report.db_built or 'unknown', 40)} | "
                     + " | ".join(str(by.get(s, 0)) for s in SEVERITIES) + " |")
    by = verdict.counts.get(MERGED, {})
    lines.append("| **merged** | | | " + " | ".join(f"**{by.get(s, 0)}**" for s in SEVERITIES) + " |")
    return lines


def _finding_row(finding: Finding, gates: Sequence[str]) -> str:
    fixes = ", ".join(finding.fix_versions) or "no fix"
    return (f"| {finding.top_severity} | {escape(finding.id, 64)} | {escape(finding.package, 80)} | "
            f"{escape(finding.version, 60)} | {escape(fixes, 80)} | "
            f"{escape(', '.join(sorted(finding.found_by)), 40)} | {escape(', '.join(gates), 40) or ''} |")


def top_findings(verdict: Verdict, limit: int) -> tuple[list[str], int]:
    """Blocking findings first, then the rest that count; (table lines, how many were left out)."""
    gates = {b.finding: b.gates for b in verdict.blocking}
    ordered = [b.finding for b in verdict.blocking] + [f for f in verdict.counted if f not in gates]
    if not ordered:
        return [], 0
    lines = ["| Severity | Vulnerability | Package | Installed | Fixed in | Found by | Blocks |",
             "|---|---|---|---|---|---|---|"]
    lines += [_finding_row(f, gates.get(f, ())) for f in ordered[:limit]]
    return lines, max(0, len(ordered) - limit)


def suppressed_block(verdict: Verdict, limit: int = 200) -> list[str]:
    if not verdict.suppressed:
        return []
    lines = [f"<details><summary>Not counted: {len(verdict.suppressed)} suppressed finding(s) and why</summary>",
             "", "| Vulnerability | Package | Installed | Kind | Why | Rule |", "|---|---|---|---|---|---|"]
    for s in verdict.suppressed[:limit]:
        lines.append(f"| {escape(s.finding.id, 64)} | {escape(s.finding.package, 80)} | "
                     f"{escape(s.finding.version, 60)} | {s.kind} | {escape(s.reason, 300)} | {escape(s.rule, 80)} |")
    if len(verdict.suppressed) > limit:
        lines.append(f"\n_…and {len(verdict.suppressed) - limit} more in the JSON report._")
    return [*lines, "", "</details>"]


def disagreements_block(merged: MergeResult, limit: int = 100) -> list[str]:
    if not merged.disagreements:
        return []
    lines = [f"<details><summary>Scanner disagreements ({len(merged.disagreements)})</summary>", "",
             "| Kind | Vulnerability | Package | Installed | What each said |", "|---|---|---|---|---|"]
    for d in merged.disagreements[:limit]:
        said = "; ".join(f"{k}: {v}" for k, v in d.said.items())
        lines.append(f"| {d.kind} | {escape(d.finding_id, 64)} | {escape(d.package, 80)} | {escape(d.version, 60)} | "
                     f"{escape(said, 200)} |")
    if len(merged.disagreements) > limit:
        lines.append(f"\n_…and {len(merged.disagreements) - limit} more in the JSON report._")
    return [*lines, "", "</details>"]


def job_summary(merged: MergeResult, verdict: Verdict, *, image: str, top: int = 15) -> str:
    """The job-summary section for one image: gate, counts per scanner and merged, top findings, suppressed."""
    lines = [f"### Vulnerability scan: {escape(image, 200)}", "", gate_line(verdict), ""]
    lines += counts_table(merged, verdict)
    if merged.deduplicated:
        lines += ["", f"{merged.deduplicated} finding(s) that the scanners reported under different ids "
                      "(a GHSA and its CVE) were counted once."]
    rows, more = top_findings(verdict, top)
    if rows:
        lines += ["", "#### Top findings", "", *rows]
        if more:
            lines.append(f"\n_…and {more} more in the JSON and SARIF reports._")
    for block in (suppressed_block(verdict), disagreements_block(merged)):
        if block:
            lines += ["", *block]
    if verdict.warnings:
        lines += ["", *[f"> **warning:** {escape(w, 400)}" for w in verdict.warnings]]
    return secrets.mask("\n".join(lines) + "\n")


def pr_comment(release_id: str, scans: Sequence[ImageScan], *, top: int = 5) -> str:
    """The PR/MR comment body: the hidden marker first, then one short section per image."""
    head = [marker(release_id), f"## Supply-chain scan for release {escape(release_id, 128)}", ""]
    tripped = [s for s in scans if s.verdict.tripped]
    head.append(f"**{len(tripped)} of {len(scans)} image(s) failed the vulnerability gate.**" if tripped
                else f"All {len(scans)} image(s) passed the vulnerability gate.")
    sections = []
    for scan in scans:
        by = scan.verdict.counts.get(MERGED, {})
        counts = ", ".join(f"{by.get(s, 0)} {s}" for s in SEVERITIES if by.get(s, 0))
        lines = ["", f"### {escape(scan.image, 200)}", "", gate_line(scan.verdict), "",
                 f"Findings that count: {counts or 'none'}."
                 + (f" Suppressed: {len(scan.verdict.suppressed)} (reasons in the job summary)."
                    if scan.verdict.suppressed else "")]
        rows, more = top_findings(scan.verdict, top)
        if rows:
            lines += ["", *rows] + ([f"\n_…and {more} more._"] if more else [])
        sections.append("\n".join(lines))
    body = "\n".join(head)
    for section in sections:
        if len(body) + len(section) > COMMENT_LIMIT:
            body += "\n\n_…more images in the job summary (comment size limit)._"
            break
        body += section
    return secrets.mask(body + "\n")
