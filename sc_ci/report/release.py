"""The release summary from a manifest (one run, or merged shards): the console table, the Markdown job
summary, CI outputs and the annotations — every untrusted value neutralised here."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sc_ci import secrets
from sc_ci.sbom.reference import PREDICATE_TYPE as REFERENCE

COLUMNS = (("scan", ("scan",)), ("signature", ("sign",)), ("SBOM", ("sbom", "sbom-attach")),
           ("provenance", ("provenance",)), ("verify", ("verify",)))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean(text: object, limit: int = 300) -> str:
    """One line, control characters escaped, secrets masked, bounded; a line cannot start a workflow
    command (`::` or `##[` after leading whitespace)."""
    value = secrets.mask(str(text))
    value = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    stripped = value.lstrip()
    return "\u2024" + value if stripped.startswith(("::", "##[")) else value


def short(image: str) -> str:
    name, sep, digest = image.partition("@")
    return f"{name}@{digest[:19]}…" if sep and len(digest) > 19 else image


def _cell(results: Sequence[Mapping[str, Any]]) -> str:
    """One column of one image: what that step did, in a word or two."""
    if not results:
        return "-"
    outcomes = [r["outcome"] for r in results]
    if "failed" in outcomes:
        return "FAILED" if any(r.get("blocking") for r in results) else "failed (tolerated)"
    if all(o == "skipped" for o in outcomes):
        return "reused" if all(r.get("reused") for r in results) else "skipped"
    step = results[0]["step"]
    if step == "scan":
        return clean(results[0].get("details", {}).get("verdict", "scanned"), 40)
    if step in ("sbom", "sbom-attach"):
        formats = sorted({a.get("format", "") for r in results for a in r.get("artifacts", [])
                          if a.get("kind") in ("attestation", "sbom-file") and a.get("format")})
        attached = any(r["step"] == "sbom-attach" and (r["outcome"] == "ok" or r.get("reused")) for r in results)
        # Over sbom.attach.maxSize (oversize: digest) a format's attestation is a reference to a kept file.
        by_digest = any(a.get("kind") == "attestation" and a.get("format") and a.get("predicate_type") == REFERENCE
                        for r in results if r["step"] == "sbom-attach" for a in r.get("artifacts", []))
        state = " attested by digest (file kept)" if by_digest else " attached" if attached else " (local)"
        return (", ".join(formats) or "made") + state
    if all(r.get("reused") for r in results):
        return "reused"
    return {"sign": "signed", "provenance": "attached", "verify": "verified"}.get(step, "ok")


def rows(manifest: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    out = []
    for image in manifest.get("images", []):
        results = image.get("results", [])
        cells = [_cell([r for r in results if r["step"] in steps]) for _, steps in COLUMNS]
        name = clean(short(str(image.get("digest", ""))), 120)
        out.append((name + ("" if image.get("built", True) else " (upstream)"), cells))
    return out


def _used_columns(manifest: Mapping[str, Any]) -> list[int]:
    steps = set(manifest.get("steps", []))
    return [i for i, (_, names) in enumerate(COLUMNS) if steps & set(names)]


def verify_commands(manifest: Mapping[str, Any]) -> list[str]:
    found = {r["details"]["command"] for i in manifest.get("images", []) for r in i.get("results", [])
             if isinstance(r.get("details"), dict) and "command" in r["details"]}
    return sorted(clean(c, 2000) for c in found)


def console(manifest: Mapping[str, Any], title: str) -> str:
    """The table, each step's line, failures with their fix, the verify commands, the verdict."""
    lines = [clean(title, 200), ""]
    if manifest.get("commands"):
        lines.append("dry run: nothing was executed; these commands would run:")
        lines += [f"  [{clean(c['step'], 20)}] " + clean(" ".join(c["argv"]), 4000) for c in manifest["commands"]]
        lines.append("")
    for preview in manifest.get("previews", []):
        lines += [clean(line, 4000) for line in str(preview.get("text", "")).splitlines()] + [""]
    used = _used_columns(manifest)
    table = [("image", [COLUMNS[i][0] for i in used])] + [(n, [c[i] for i in used]) for n, c in rows(manifest)]
    if used and not manifest.get("dryRun"):
        widths = [max(len(r[0]) for r in table)] + [max(len(r[1][k]) for r in table) for k in range(len(used))]
        for name, cells in table:
            lines.append("  ".join([name.ljust(widths[0]), *(c.ljust(w) for c, w in zip(cells, widths[1:],
                                                                                        strict=True))]).rstrip())
        lines.append("")
    mark = {"ok": "ok  ", "failed": "FAIL", "skipped": "skip"}
    every = [r for image in manifest.get("images", []) for r in image.get("results", [])]
    width = max((len(clean(r["step"], 20)) for r in every), default=4)
    for r in every:
        timing = f" ({r['seconds']:.1f}s)" if r.get("seconds", 0) >= 0.05 else ""
        lines.append(f"{mark.get(r['outcome'], '?   ')} {clean(r['step'], 20):<{width}}  "
                     f"{clean(short(r['image']), 120)}  {clean(r['summary'], 1000)}{timing}")
    commands = verify_commands(manifest)
    if commands:
        lines += ["", "Verify it yourself:", *(f"  {c}" for c in commands)]
    lines += ["", verdict_line(manifest)]
    return "\n".join(lines)


def errors(manifest: Mapping[str, Any]) -> str:
    """Each failure's diagnostics (what, why, fix): what goes to stderr."""
    found = [r["error"] for i in manifest.get("images", []) for r in i.get("results", []) if r.get("error")]
    tag = manifest.get("tag")
    if isinstance(tag, dict) and tag.get("error"):
        found.append(tag["error"])
    return "\n".join(clean(line, 500) for error in found for line in str(error).splitlines())


def verdict_line(manifest: Mapping[str, Any]) -> str:
    v = manifest.get("verdict", {})
    status = v.get("status", "passed")
    what = clean(manifest.get("command", "release"), 60)
    text = {"passed": f"{what} passed", "degraded": f"{what} passed, degraded",
            "failed": f"{what} failed"}.get(status, clean(status, 20))
    if v.get("tolerated"):
        text += (f": {v['tolerated']} step(s) failed and were tolerated by the fail-open policy "
                 "(security.policy.failOpen: false makes them fail the job)")
    if v.get("blocking"):
        text += f": {v['blocking']} step(s) failed the job"
    tag = manifest.get("tag")
    if isinstance(tag, dict):
        text += f"; git tag: {clean(tag.get('summary', ''), 200)}"
    return text


def _md(text: object, limit: int = 300) -> str:
    """A Markdown table cell: one clean line, `|`, backticks and angle brackets escaped."""
    value = clean(text, limit)
    for char, escaped in (("\\", "\\\\"), ("|", "\\|"), ("`", "\\`"), ("<", "&lt;"), (">", "&gt;")):
        value = value.replace(char, escaped)
    return value


def markdown(manifest: Mapping[str, Any], title: str) -> str:
    used = _used_columns(manifest)
    icon = {"passed": "✅", "degraded": "⚠️", "failed": "❌"}
    status = str(manifest.get("verdict", {}).get("status", "passed"))
    out = [f"## {_md(title, 200)} {icon.get(status, '')}".rstrip(), ""]
    if used:
        out += ["| image | " + " | ".join(COLUMNS[i][0] for i in used) + " |",
                "|---|" + "---|" * len(used)]
        for name, cells in rows(manifest):
            out.append(f"| {_md(name, 160)} | " + " | ".join(_md(cells[i], 80) for i in used) + " |")
    out += ["", f"**{_md(verdict_line(manifest), 600)}**", ""]
    details = []
    for image in manifest.get("images", []):
        for r in image.get("results", []):
            details.append(f"| {_md(r['outcome'], 10)} | {_md(r['step'], 20)} | {_md(short(r['image']), 120)} | "
                           f"{_md(r['summary'])} |")
    if details:
        out += ["<details><summary>Every step</summary>", "", "| | step | image | result |", "|---|---|---|---|",
                *details, "", "</details>", ""]
    commands = verify_commands(manifest)
    if commands:
        fence = "````"  # commands never hold four backticks (clean() keeps them on one line; see tests)
        out += ["<details><summary>Verify it yourself</summary>", "", f"{fence}sh",
                *(c.replace("````", "'```'") for c in commands), fence, "</details>", ""]
    return "\n".join(out)


def outputs(manifest: Mapping[str, Any], paths: Mapping[str, str] | None = None) -> dict[str, str]:
    """CI outputs a later step uses: digests, signed, verify commands, status, counts, file paths."""
    images = manifest.get("images", [])
    digests = sorted(str(i.get("digest", "")) for i in images)
    signed = sorted({r["image"] for i in images for r in i.get("results", [])
                     if r["step"] == "sign" and (r["outcome"] == "ok" or r.get("reused"))})
    verdict = manifest.get("verdict", {})
    out = {"digests": "\n".join(digests), "signed": "\n".join(signed),
           "verify-commands": "\n".join(verify_commands(manifest)),
           "status": str(verdict.get("status", "")), "failed-steps": str(verdict.get("blocking", 0)),
           "tolerated-steps": str(verdict.get("tolerated", 0))}
    scans = [r for i in images for r in i.get("results", []) if r["step"] == "scan"]
    if scans:
        for severity in ("critical", "high", "medium", "low"):
            out[f"{severity}-count"] = str(sum(int(r.get("details", {}).get(f"merged-{severity}", 0) or 0)
                                               for r in scans))
        out["scan-verdict"] = "failed" if any(r["outcome"] == "failed" for r in scans) else "passed"
    tag = manifest.get("tag")
    if isinstance(tag, dict) and tag.get("name"):
        out["tag"] = str(tag["name"])
    out.update(paths or {})
    return {k: secrets.mask(v) for k, v in out.items()}


def failures(manifest: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(title, message, blocking) for every failed step: what annotations are made of."""
    found = []
    for image in manifest.get("images", []):
        for r in image.get("results", []):
            if r["outcome"] == "failed":
                found.append((f"sc-ci {r['step']} failed" + ("" if r.get("blocking") else " (tolerated)"),
                              str(r.get("error") or r["summary"]), bool(r.get("blocking"))))
    return found
