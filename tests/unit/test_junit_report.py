"""JUnit XML from a release manifest: one test case per image × step, failures with the error, hostile text safe."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from sc_ci.report.junit import render

IMAGE = "registry.example.com/shop/api@sha256:" + "a" * 64
PLATFORM = "registry.example.com/shop/api@sha256:" + "b" * 64


def _manifest(*results: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "sc-ci/release/v1", "command": "release shop/prod", "startedAt": "2026-01-07T10:00:00+00:00",
            "images": [{"image": "registry.example.com/shop/api:1.4.0", "digest": IMAGE, "results": list(results)}]}


def _result(step: str, outcome: str, **extra: Any) -> dict[str, Any]:
    return {"step": step, "image": IMAGE, "outcome": outcome, "summary": f"{step} {outcome}", "seconds": 1.25,
            "blocking": False, "error": None, **extra}


def test_one_case_per_image_and_step_with_counts() -> None:
    xml = render(_manifest(_result("scan", "ok"), _result("sign", "failed", blocking=True, error="error: no key"),
                           _result("verify", "skipped", summary="needs sign"),
                           _result("sign", "ok", image=PLATFORM)))
    root = ET.fromstring(xml)  # noqa: S314 (our own output)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors")) == ("4", "1", "1",
                                                                                                        "0")
    assert root.get("tests") == "4"
    assert suite.get("time") == "5.000"
    assert suite.get("timestamp") == "2026-01-07T10:00:00+00:00"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["scan", "sign", "verify", f"sign {PLATFORM}"]
    assert {c.get("classname") for c in cases} == {"registry.example.com/shop/api:1.4.0"}
    failure = cases[1].find("failure")
    assert failure is not None
    assert (failure.get("type"), failure.get("message"), failure.text) == ("blocking", "sign failed", "error: no key")
    skipped = cases[2].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "needs sign"


def test_a_tolerated_failure_is_still_a_failure() -> None:
    xml = render(_manifest(_result("sbom", "failed", error="syft broke")))
    suite = ET.fromstring(xml).find("testsuite")  # noqa: S314 (our own output)
    assert suite is not None
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.get("type") == "tolerated"


def test_hostile_values_are_escaped_and_stay_well_formed() -> None:
    hostile = '</failure><x a="1">&amp;]]>\x00\x1b[31m\ud800' + "\n::error::boom"
    manifest = _manifest(_result("sign", "failed", error=hostile, summary=hostile))
    manifest["images"][0]["image"] = hostile
    manifest["command"] = hostile
    xml = render(manifest)
    root = ET.fromstring(xml.encode("utf-8"))  # noqa: S314 (our own output; nothing broke out of its element)
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.text is not None
    assert "</failure><x" in failure.text
    assert "\x00" not in xml
    assert "\x1b" not in xml
    assert len(root.findall(".//x")) == 0


def test_duplicate_names_and_odd_input_never_raise() -> None:
    xml = render({"images": [{"digest": IMAGE, "results": [_result("sign", "ok"), _result("sign", "ok"),
                                                           "not a result", {"seconds": "soon"}]},
                             "not a row"]})
    root = ET.fromstring(xml)  # noqa: S314 (our own output)
    names = [c.get("name") for c in root.iter("testcase")]
    assert names == ["sign", "sign #2", "step"]
    assert render({})  # no images: an empty suite
    long = render(_manifest(_result("scan", "failed", error="x" * 200_000)))
    assert len(long) < 100_000
