"""The `release.json` manifest (schema `sc-ci/release/v1`, docs/release-manifest.md): built from a run,
read back (shards from other CI jobs are input like any other: checked before use), and merged."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sc_ci import __version__, secrets
from sc_ci.errors import EXIT_FAILED, EXIT_OK, UsageError
from sc_ci.results.run import Release, Verdict
from sc_ci.results.step import StepResult

SCHEMA = "sc-ci/release/v1"
MAX_MANIFEST = 32 * 1024 * 1024
Manifest = dict[str, Any]


def _result(r: StepResult, blocking: bool) -> dict[str, Any]:
    return {"step": r.step, "image": r.image, "outcome": r.outcome.value, "summary": secrets.mask(r.summary),
            "seconds": round(r.seconds, 3), "reused": r.reused, "blocking": blocking,
            "error": secrets.mask(r.error.diagnostics()) if r.error else None,
            "details": {k: secrets.mask(v) for k, v in sorted(r.details.items())},
            "artifacts": [{k: v for k, v in vars(a).items() if v not in ("", None)} for a in r.artifacts]}


def build(release: Release, meta: Mapping[str, object] | None = None) -> Manifest:
    """The manifest of one run; `meta`: release version, stack, environment, tag (what the command knows)."""
    blocking = {id(r) for r in release.verdict.blocking}
    by_image: dict[str, list[dict[str, Any]]] = {}
    for r in release.results:
        by_image.setdefault(release.owner(r.image), []).append(_result(r, id(r) in blocking))
    images = [{"image": secrets.mask(i.given), "digest": i.name, "built": i.built, "service": i.service,
               "results": by_image.get(i.name, [])} for i in release.images]
    return {
        "schema": SCHEMA, "generator": {"name": "sc-ci", "version": __version__},
        **{k: v for k, v in (meta or {}).items() if v is not None},
        "shard": str(release.shard) if release.shard else None,
        "dryRun": release.dry_run,
        "startedAt": release.started.isoformat(), "finishedAt": release.finished.isoformat(),
        "seconds": round(release.seconds, 3),
        "steps": list(release.steps), "tools": release.tools, "cache": release.cache,
        "policy": {"failOpen": dict(release.policy.fail_open), "failFast": release.policy.fail_fast,
                   "source": release.policy.source},
        "verdict": _verdict(release.verdict),
        **({"verification": secrets.mask_all(dict(release.facts))} if release.facts else {}),
        "images": images,
        "commands": [{"image": c.image, "step": c.step, "argv": [secrets.mask(a) for a in c.argv]}
                     for c in release.commands],
        "previews": [{"step": step, "text": secrets.mask(text)} for step, text in release.previews],
    }


def _verdict(v: Verdict) -> dict[str, Any]:
    return {"status": v.status, "exitCode": v.exit_code, "blocking": len(v.blocking), "tolerated": len(v.tolerated)}


def verdict_of(images: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    results = [r for i in images for r in i.get("results", [])]
    blocking = sum(1 for r in results if r.get("blocking"))
    tolerated = sum(1 for r in results if r.get("outcome") == "failed" and not r.get("blocking"))
    status = "failed" if blocking else ("degraded" if tolerated else "passed")
    return {"status": status, "exitCode": EXIT_FAILED if blocking else EXIT_OK, "blocking": blocking,
            "tolerated": tolerated}


def write(path: Path, manifest: Manifest) -> Path:
    from sc_ci import safefile

    path.parent.mkdir(parents=True, exist_ok=True)
    safefile.write_text(path, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path


def load(path: Path) -> Manifest:
    """A shard's manifest, checked: a regular file of bounded size, JSON, our schema, the fields merge reads."""
    shown = secrets.mask(str(path))[:200]
    try:
        if not path.is_file() or path.stat().st_size > MAX_MANIFEST:
            raise UsageError(f"{shown} is not a release manifest file",
                             fix="Pass the release.json files the shards wrote (release create --output DIR).")
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {shown} as JSON", why=type(exc).__name__,
                         fix="Pass the release.json files the shards wrote.") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("images"), list):
        raise UsageError(f"{shown} is not an sc-ci release manifest ({SCHEMA})",
                         fix="Pass the release.json files written by `sc-ci release create`.")
    for image in data["images"]:
        if not isinstance(image, dict) or not isinstance(image.get("results", []), list):
            raise UsageError(f"{shown}: malformed images entry", fix="Regenerate it with sc-ci release create.")
        for r in image.get("results", []):
            if not isinstance(r, dict) or not all(isinstance(r.get(k), str) for k in ("step", "image", "outcome")):
                raise UsageError(f"{shown}: malformed result entry", fix="Regenerate it with sc-ci release create.")
    return data


def merge(manifests: Sequence[Manifest]) -> Manifest:
    """One manifest from shards: images concatenated (a digest seen twice is kept once), one verdict."""
    if not manifests:
        raise UsageError("release merge needs at least one release.json", fix="sc-ci release merge a.json b.json")
    seen: set[str] = set()
    images: list[dict[str, Any]] = []
    for m in manifests:
        for image in m["images"]:
            key = str(image.get("digest"))
            if key not in seen:
                seen.add(key)
                images.append(image)
    first = manifests[0]
    return {"schema": SCHEMA, "generator": {"name": "sc-ci", "version": __version__},
            **{k: first[k] for k in ("version", "stack", "environment", "verification") if k in first},
            "shards": [m.get("shard") for m in manifests], "dryRun": any(m.get("dryRun") for m in manifests),
            "startedAt": min(str(m.get("startedAt", "")) for m in manifests),
            "finishedAt": max(str(m.get("finishedAt", "")) for m in manifests),
            "seconds": max(float(m.get("seconds", 0) or 0) for m in manifests),
            "steps": list(dict.fromkeys(s for m in manifests for s in m.get("steps", []))),
            "tools": {k: v for m in manifests for k, v in (m.get("tools") or {}).items()},
            "verdict": verdict_of(images), "images": images, "commands": []}
