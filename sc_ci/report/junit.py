"""JUnit XML from a release manifest (`release.json`): one test case per image × step, for Jenkins' `junit`
step and any CI that reads JUnit; every value from the manifest is untrusted text and is escaped here."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

SUITE = "sc-ci release"
MAX_TEXT = 64 * 1024  # an error's diagnostics are short; a hostile one must not bloat the report
# XML 1.0 cannot carry these at all (not even escaped): C0 controls except tab/LF/CR, surrogates, U+FFFE/FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: object, limit: int = MAX_TEXT) -> str:
    text = _NOT_XML.sub("\ufffd", "" if value is None else str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seconds(value: object) -> str:
    try:
        return f"{max(float(value), 0.0):.3f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "0.000"


def render(manifest: Mapping[str, Any]) -> str:
    """The JUnit XML document (UTF-8 text with its declaration) for `manifest`.

    Each image row of the manifest is a class (`classname` = the image as given, else its digest); each
    step result a test case named `<step>` (`<step> <image@digest>` for the platform manifests of an index).
    A failed step is a `<failure>` (type `blocking`, or `tolerated` when the fail-open policy let the release
    go on) whose text is the error's diagnostics; a skipped step is `<skipped>` with why."""
    suites = ET.Element("testsuites", name=SUITE)
    suite = ET.SubElement(suites, "testsuite", name=_text(manifest.get("command") or SUITE, 200))
    if manifest.get("startedAt"):
        suite.set("timestamp", _text(manifest["startedAt"], 64))
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    total = 0.0
    for row in manifest.get("images") or []:
        if not isinstance(row, Mapping):
            continue
        owner = str(row.get("digest") or row.get("image") or "unknown image")
        classname = _text(row.get("image") or owner, 1000)
        seen: dict[str, int] = {}
        for result in row.get("results") or []:
            if not isinstance(result, Mapping):
                continue
            step = str(result.get("step") or "step")
            subject = str(result.get("image") or owner)
            name = step if subject == owner else f"{step} {subject}"
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} #{seen[name]}"
            seconds = _seconds(result.get("seconds"))
            total += float(seconds)
            case = ET.SubElement(suite, "testcase", classname=classname, name=_text(name, 1000), time=seconds)
            counts["tests"] += 1
            outcome = result.get("outcome")
            summary = _text(result.get("summary"), 1000)
            if outcome == "failed":
                counts["failures"] += 1
                kind = "blocking" if result.get("blocking") else "tolerated"
                failure = ET.SubElement(case, "failure", message=summary, type=kind)
                failure.text = _text(result.get("error") or result.get("summary"))
            elif outcome == "skipped":
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=summary)
            elif summary:
                ET.SubElement(case, "system-out").text = summary
    for element in (suites, suite):
        for key, value in counts.items():
            element.set(key, str(value))
        element.set("errors", "0")
        element.set("time", f"{total:.3f}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
