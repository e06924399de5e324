"""The evidence of a `release verify` run as one document (`sc-ci/evidence/v1`, schema in
sc_ci/schemas/evidence-v1.schema.json): the release, the verifier and its tools, what was expected and where
each expectation came from, each image with each check (inputs, artifacts by digest, signer, certificate
extensions, Rekor log index, result), the SLSA Build level per image and the NIST SSDF table. Built from
result values only; every string masked (secrets) — renderers escape it for their medium."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from sc_ci import __version__, safefile, secrets
from sc_ci.results.run import PlannedImage, Release
from sc_ci.results.step import Outcome, StepResult
from sc_ci.results.verify import CheckEvidence, Level
from sc_ci.verify import ssdf
from sc_ci.verify.expect import Expectations

SCHEMA = "sc-ci/evidence/v1"
#: the verify steps' result names → the check they stand for (a `--rescan` is the vuln check's input)
CHECKS: Mapping[str, str] = {"verify-tag": "tag", "verify": "signature", "sbom-verify": "sbom",
                             "verify-provenance": "provenance", "verify-vuln": "vuln", "scan": "rescan",
                             "attest-vsa": "vsa"}
ORDER = ("tag", "signature", "sbom", "provenance", "vuln", "rescan", "vsa")
STATUS = {Outcome.OK: "pass", Outcome.FAILED: "fail", Outcome.SKIPPED: "skipped"}


def _check(result: StepResult) -> dict[str, Any]:
    payload = result.payload if isinstance(result.payload, CheckEvidence) else None
    entry: dict[str, Any] = {"check": payload.check if payload else CHECKS.get(result.step, result.step),
                             "step": result.step, "status": STATUS[result.outcome], "summary": result.summary,
                             "seconds": round(result.seconds, 3)}
    if result.error is not None:
        entry["error"] = {"what": result.error.what, "why": result.error.why or "", "fix": result.error.fix or ""}
    if payload is not None:
        entry.update({"expected": dict(payload.expected), "found": dict(payload.found),
                      "artifacts": [_artifact(a) for a in payload.artifacts], "ignored": list(payload.ignored),
                      "facts": {k: v if isinstance(v, int | float | bool) else str(v)
                                for k, v in payload.facts.items()}})
    return entry


def _artifact(found: Any) -> dict[str, Any]:
    data = {k: v for k, v in asdict(found).items() if v not in (None, "")}
    signer = data.get("signer")
    if isinstance(signer, dict):
        data["signer"] = {k: v for k, v in signer.items() if v not in (None, "", {})}
    return data


def _level(results: Sequence[StepResult], image: PlannedImage) -> dict[str, Any]:
    if not image.built:
        return {"level": 0, "reason": "upstream image: not built by this project (scanned only)"}
    for result in results:
        payload = result.payload
        if isinstance(payload, CheckEvidence) and isinstance(payload.level, Level):
            level = payload.level
            return {k: v for k, v in (("level", level.level), ("reason", level.reason), ("builder", level.builder),
                                      ("violation", level.violation)) if v or k == "level"}
    return {"level": 0, "reason": "no provenance was checked"}


def _image(image: PlannedImage, release: Release) -> dict[str, Any]:
    mine = sorted((r for r in release.results if release.owner(r.image) == image.name),
                  key=lambda r: ORDER.index(CHECKS.get(r.step, "vsa")) if CHECKS.get(r.step) in ORDER else 99)
    checks = [{**_check(r), **({"subject": r.image} if r.image != image.name else {})} for r in mine]
    failed = [c for c in checks if c["status"] == "fail"]
    status = "failed" if failed else ("scanned-only" if not image.built else "verified")
    return {"image": image.given, "digest": image.name, "built": image.built, "service": image.service,
            "status": status, "checks": checks, "slsa": _level(mine, image)}


def _ssdf(images: Sequence[Mapping[str, Any]], verified: bool) -> list[dict[str, Any]]:
    rows = ssdf.mapping()
    for row in rows:
        statuses: list[str] = []
        for check in row["checks"]:
            if check == "archive":
                statuses.append("pass" if verified else "fail")
                continue
            upstream = check == "upstream"  # third-party images: their scan
            for image in images:
                if image["built"] == upstream:
                    continue
                statuses += [c["status"] for c in image["checks"]
                             if c["check"] == ("vuln" if upstream else check)]
        row["status"] = ("fail" if "fail" in statuses else "pass" if "pass" in statuses else "not-applicable")
    return rows


def build(release: Release, exp: Expectations, manifest: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The evidence document of one verify run. `manifest`: {"path", "sha256"} of the release manifest read."""
    images = [_image(image, release) for image in release.images]
    failed = sum(1 for i in images if i["status"] == "failed")
    verified = not failed and release.verdict.exit_code == 0
    levels = [i["slsa"]["level"] for i in images if i["built"]]
    data = {
        "schema": SCHEMA,
        "release": {**dict(exp.release), **({"manifest": dict(manifest)} if manifest else {})},
        "verifiedAt": release.finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(release.seconds, 3),
        "verifier": {"name": "sc-ci", "version": __version__, "tools": dict(release.tools)},
        "expected": exp.describe(),
        "verdict": {"status": "verified" if verified else "failed", "exitCode": release.verdict.exit_code,
                    "images": len(images), "failedImages": failed,
                    "failedChecks": sum(1 for i in images for c in i["checks"] if c["status"] == "fail")},
        "slsa": {"minimumLevel": min(levels) if levels else 0, "version": "v1.0", "track": "Build"},
        "images": images,
        "ssdf": {"publication": "NIST SP 800-218 v1.1", "url": "https://doi.org/10.6028/NIST.SP.800-218",
                 "tasks": _ssdf(images, verified)},
    }
    cleaned: dict[str, Any] = secrets.mask_all(data)
    return cleaned


@cache
def schema() -> dict[str, Any]:
    text = resources.files("sc_ci").joinpath("schemas/evidence-v1.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def write(directory: Path, data: Mapping[str, Any]) -> dict[str, str]:
    """evidence.json, evidence.md and evidence.html in `directory` (never through a symlink)."""
    from sc_ci.report import evidence_html, evidence_text

    directory.mkdir(parents=True, exist_ok=True)
    files = {"evidence-json": ("evidence.json", json.dumps(data, indent=2, sort_keys=False) + "\n"),
             "evidence-md": ("evidence.md", evidence_text.markdown(data)),
             "evidence-html": ("evidence.html", evidence_html.render(data))}
    paths: dict[str, str] = {}
    for output, (name, text) in files.items():
        safefile.write_text(directory / name, text)
        paths[output] = str(directory / name)
    return paths
