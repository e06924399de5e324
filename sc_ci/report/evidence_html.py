"""`evidence.html`: the evidence as one self-contained page an auditor can open or print — no external asset,
no script (the Content-Security-Policy forbids both: `default-src 'none'`), every value from the registry or
the manifest HTML-escaped (quotes too), so nothing in them can add markup or script."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from sc_ci.report.evidence_text import COLUMNS

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'"
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#111}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.6em 0}
th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eee}code{font:12px ui-monospace,monospace;word-break:break-all}
.pass{color:#075e00;font-weight:600}.fail{color:#a00000;font-weight:700}.skipped,.not-applicable{color:#666}
.verdict{font-size:1.1em;padding:.4em .6em;border:2px solid #888;display:inline-block}
.verdict.failed{border-color:#a00000}.verdict.verified{border-color:#075e00}
dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em}dt{font-weight:600}
details{margin:.3em 0}
@media print{body{margin:0;font-size:11px}details{display:block}details>*{display:block}
tr,li{page-break-inside:avoid}h2{page-break-after:avoid}}
"""
WORD = {"pass": "pass", "fail": "FAIL", "skipped": "skipped", "not-applicable": "n/a", "": "–"}


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _status(status: str) -> str:
    return f'<span class="{e(status or "skipped")}">{e(WORD.get(status, status))}</span>'


def _cell(image: Mapping[str, Any], check: str) -> str:
    found = [c["status"] for c in image["checks"] if c["check"] == check]
    if not found:
        return ""
    return "fail" if "fail" in found else "pass" if "pass" in found else "skipped"


def _check_details(check: Mapping[str, Any]) -> str:
    parts = [f"<li>{_status(check['status'])} <b>{e(check['check'])}</b>: {e(check['summary'])}"]
    error = check.get("error")
    if error:
        parts.append("<dl>" + "".join(f"<dt>{name}</dt><dd>{e(error.get(name) or '')}</dd>"
                                      for name in ("what", "why", "fix") if error.get(name)) + "</dl>")
    rows = [(f"expected {k}", v) for k, v in (check.get("expected") or {}).items()]
    rows += [(f"found {k}", v) for k, v in (check.get("found") or {}).items()]
    if rows:
        parts.append("<dl>" + "".join(f"<dt>{e(k)}</dt><dd><code>{e(v)}</code></dd>" for k, v in rows) + "</dl>")
    artifacts = check.get("artifacts") or []
    if artifacts:
        parts.append("<ul>" + "".join(
            f"<li>{e(a.get('kind', ''))} ({e(a.get('format', ''))}) <code>{e(a.get('digest', ''))}</code>"
            + (f" rekor log index {e(a['rekor_log_index'])}" if a.get("rekor_log_index") is not None else "")
            + "</li>" for a in artifacts) + "</ul>")
    return "".join(parts) + "</li>"


def render(data: Mapping[str, Any]) -> str:
    release = data["release"]
    verdict = data["verdict"]
    name = " ".join(str(release.get(k)) for k in ("stack", "environment", "version") if release.get(k))
    head = "".join(f"<th>{e(c.capitalize())}</th>" for c in COLUMNS)
    body: list[str] = []
    for image in data["images"]:
        level = image["slsa"]
        slsa = ("upstream (scanned only)" if not image["built"]
                else f"L{e(level['level'])}: {e(level.get('reason', ''))}")
        cells = "".join(f"<td>{_status(_cell(image, c))}</td>" for c in COLUMNS)
        body.append(f'<tr class="image"><td><code>{e(image["digest"])}</code><br>{e(image["image"])}</td>'
                    f"{cells}<td>{slsa}</td></tr>")
    ssdf_rows = "".join(
        f"<tr><td>{e(t['id'])}</td><td>{e(t['practice'])} ({e(t['practiceId'])})<br><small>{e(t['task'])}"
        f"</small></td><td>{_status(t['status'])}</td><td>{'<br>'.join(e(h) for h in t['how'])}</td></tr>"
        for t in data["ssdf"]["tasks"])
    details = "".join(
        f"<details open><summary><code>{e(image['digest'])}</code> — {e(image['status'])}</summary><ul>"
        + "".join(_check_details(c) for c in image["checks"]) + "</ul></details>" for image in data["images"])
    tools = ", ".join(f"{e(k)} {e(v)}" for k, v in sorted(data["verifier"]["tools"].items()))
    signer = data["expected"]["signer"]
    who = (f"key {e(signer.get('key', ''))}" if signer["kind"] == "key" else
           f"identity {e((signer.get('identity') or {}).get('value', ''))}, issuer "
           f"{e((signer.get('issuer') or {}).get('value', ''))}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Release verification evidence {e(name)}</title>
<style>{STYLE}</style></head>
<body>
<h1>Release verification evidence {e(name)}</h1>
<p class="verdict {e(verdict['status'])}" id="verdict">{e(verdict['status'].upper())}: {e(verdict['images'])} image(s),
{e(verdict['failedChecks'])} failed check(s); lowest SLSA Build level L{e(data['slsa']['minimumLevel'])}</p>
<dl><dt>Verified at</dt><dd>{e(data['verifiedAt'])}</dd>
<dt>Verifier</dt><dd>sc-ci {e(data['verifier']['version'])} ({tools})</dd>
<dt>Signer expected</dt><dd>{who} <small>({e(signer.get('source', ''))})</small></dd>
<dt>Release manifest</dt><dd><code>{e((release.get('manifest') or {}).get('sha256', 'none'))}</code></dd></dl>
<h2>Images and checks</h2>
<table id="checks"><thead><tr><th>Image</th>{head}<th>SLSA Build level</th></tr></thead>
<tbody>{''.join(body)}</tbody></table>
<h2>NIST SP 800-218 (SSDF) v1.1</h2>
<table id="ssdf"><thead><tr><th>Task</th><th>Practice</th><th>Status</th><th>Evidence</th></tr></thead>
<tbody>{ssdf_rows}</tbody></table>
<h2>Details</h2>
{details}
</body></html>
"""
