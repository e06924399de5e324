"""The evidence document as text: the console summary of `release verify` and `evidence.md` (the job
summary). Every value from the registry or the manifest goes through `clean` (console: one inert line) or
`escape` (Markdown: entities for `| < > & [ ] * _` and backticks), never raw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sc_ci.report.release import clean, short
from sc_ci.report.scan_markdown import escape

COLUMNS = ("tag", "signature", "sbom", "provenance", "vuln")
MARK = {"pass": "ok", "fail": "FAILED", "skipped": "skipped"}
ICON = {"pass": "✅ pass", "fail": "❌ fail", "skipped": "– skipped", "": "–"}


def _cell(image: Mapping[str, Any], check: str) -> str:
    found = [c["status"] for c in image["checks"] if c["check"] == check]
    if not found:
        return ""
    return "fail" if "fail" in found else "pass" if "pass" in found else "skipped"


def _failures(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(image["digest"], check) for image in data["images"] for check in image["checks"]
            if check["status"] == "fail"]


def console(data: Mapping[str, Any]) -> str:
    """One line per image and check, the SLSA level, the failures with what/why/fix, the verdict."""
    lines = [f"sc-ci release verify {clean(data['release'].get('version', ''), 80)}".rstrip(), ""]
    for image in data["images"]:
        level = image["slsa"]
        tail = "scanned only (upstream)" if not image["built"] else f"SLSA Build L{level['level']}"
        lines.append(f"{clean(short(image['digest']), 160)}  {image['status']}  {tail}")
        for check in image["checks"]:
            lines.append(f"  {MARK[check['status']]:<7} {check['check']:<10} {clean(check['summary'], 220)}")
    failures = _failures(data)
    if failures:
        lines.append("")
        for digest, check in failures:
            error = check.get("error") or {}
            what = clean(error.get("what") or check["summary"])
            lines.append(f"FAIL {check['check']} {clean(short(digest), 160)}: {what}")
            if error.get("why"):
                lines += [f"  why: {clean(line)}" for line in str(error["why"]).splitlines()[:8]]
            if error.get("fix"):
                lines.append(f"  fix: {clean(error['fix'], 400)}")
    verdict = data["verdict"]
    lines.append("")
    lines.append(f"{verdict['images']} image(s): " + ("all verified" if verdict["status"] == "verified" else
                                                      f"{verdict['failedChecks']} check(s) failed on "
                                                      f"{verdict['failedImages']} image(s)")
                 + f"; lowest SLSA Build level L{data['slsa']['minimumLevel']}")
    return "\n".join(lines)


def markdown(data: Mapping[str, Any]) -> str:
    """evidence.md: the image × check table, the SLSA level per image, the SSDF table, the failures."""
    release = data["release"]
    title = " ".join(escape(release.get(k, ""), 80) for k in ("stack", "environment", "version") if release.get(k))
    verdict = data["verdict"]
    out = [f"## sc-ci release verify {title}".rstrip(), "",
           f"**{'Verified' if verdict['status'] == 'verified' else 'FAILED'}**: {verdict['images']} image(s), "
           f"{verdict['failedChecks']} failed check(s); verified {escape(data['verifiedAt'])} by sc-ci "
           f"{escape(data['verifier']['version'])}.", "",
           "| Image | " + " | ".join(c.capitalize() for c in COLUMNS) + " | SLSA Build |",
           "|---|" + "---|" * (len(COLUMNS) + 1)]
    for image in data["images"]:
        level = image["slsa"]
        slsa = "upstream (scanned only)" if not image["built"] else f"L{level['level']}: {escape(level['reason'], 160)}"
        cells = [ICON[_cell(image, c)] for c in COLUMNS]
        out.append(f"| `{escape(short(image['digest']), 160)}` | " + " | ".join(cells) + f" | {slsa} |")
    failures = _failures(data)
    if failures:
        out += ["", "### Failed checks", ""]
        for digest, check in failures:
            error = check.get("error") or {}
            out.append(f"- **{escape(check['check'])}** `{escape(short(digest), 160)}`: "
                       f"{escape(error.get('what') or check['summary'], 400)}")
            if error.get("why"):
                out.append(f"  - why: {escape(error['why'], 600)}")
            if error.get("fix"):
                out.append(f"  - fix: {escape(error['fix'], 400)}")
    out += ["", f"### NIST SSDF ({escape(data['ssdf']['publication'])})", "",
            "| Task | Practice | Status | Evidence |", "|---|---|---|---|"]
    for task in data["ssdf"]["tasks"]:
        how = "; ".join(escape(h, 200) for h in task["how"])
        out.append(f"| {escape(task['id'])} | {escape(task['practice'])} ({escape(task['practiceId'])}) | "
                   f"{ICON.get(task['status'], escape(task['status']))} | {how} |")
    return "\n".join(out) + "\n"
