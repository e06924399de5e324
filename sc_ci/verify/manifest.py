"""A release manifest (`release.json`) read as untrusted input, for `release verify` and `release policy`: a
regular file of bounded size (no symlink), JSON, valid against its published schema
(sc_ci/schemas/release-v1.schema.json), every image reference parsed — and what it says turned into values.
Nothing in it is trusted: what it records becomes the default expectations, each marked as coming from it."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from sc_ci import sanitize
from sc_ci.errors import UsageError
from sc_ci.imageref import ImageRef, parse

MAX_BYTES = 32 * 1024 * 1024
SCHEMA = "sc-ci/release/v1"
FIX = "Pass the release.json that `sc-ci release create --output DIR` wrote (or its CI artifact)."


@dataclass(frozen=True)
class ReleasedImage:
    """One image of the release: the digest it was signed at, the reference as given (maybe a tag)."""

    ref: ImageRef  # pinned to the digest
    given: str
    built: bool = True
    service: str = ""


@dataclass(frozen=True)
class ReleaseRecord:
    """What a manifest says: the release, its images, and what it recorded for its verifiers."""

    path: str
    sha256: str
    images: tuple[ReleasedImage, ...]
    version: str = ""
    stack: str = ""
    environment: str = ""
    tag: str = ""
    signer: Mapping[str, Any] = field(default_factory=dict)
    build: Mapping[str, Any] = field(default_factory=dict)
    sbom_formats: tuple[str, ...] = ()
    scan: Mapping[str, Any] = field(default_factory=dict)
    status: str = ""


@cache
def schema() -> dict[str, Any]:
    text = resources.files("sc_ci").joinpath("schemas/release-v1.schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _read(path: Path) -> bytes:
    shown = sanitize.one_line(str(path), 200)
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise UsageError(f"cannot read the release manifest {shown}", why=exc.strerror or str(exc), fix=FIX) from exc
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(f"the release manifest {shown} is a symbolic link", why="it is read only as a regular file",
                         fix="Pass the file itself, not a link to it.")
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
        raise UsageError(f"{shown} is not a release manifest file (a regular file of at most "
                         f"{MAX_BYTES // (1024 * 1024)} MiB)", fix=FIX)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UsageError(f"cannot read the release manifest {shown}", why=exc.strerror or str(exc), fix=FIX) from exc
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise UsageError(f"{shown} is larger than {MAX_BYTES // (1024 * 1024)} MiB", fix=FIX)
    return data


def load(path: Path) -> ReleaseRecord:
    """The manifest at `path`, checked (exit 2 with what is wrong and where, never a traceback)."""
    import hashlib

    from jsonschema import Draft202012Validator

    shown = sanitize.one_line(str(path), 200)
    data = _read(path)
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{shown} is not JSON", why=sanitize.one_line(exc, 200), fix=FIX) from exc
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise UsageError(f"{shown} is not an sc-ci release manifest ({SCHEMA})", fix=FIX)
    errors = sorted(Draft202012Validator(schema()).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise UsageError(f"{shown} does not match the release manifest schema at {sanitize.one_line(where, 120)}",
                         why=sanitize.one_line(first.message, 300) + (f" (and {len(errors) - 1} more)"
                                                                      if len(errors) > 1 else ""),
                         fix=FIX + " The schema: sc_ci/schemas/release-v1.schema.json.")
    images: list[ReleasedImage] = []
    for number, entry in enumerate(document["images"]):
        try:
            ref = parse(entry["digest"])
        except UsageError as exc:
            raise UsageError(f"{shown}: images[{number}].digest is not an image reference by digest",
                             why=exc.what, fix=FIX) from exc
        if not ref.digest:
            raise UsageError(f"{shown}: images[{number}].digest has no digest", fix=FIX)
        given = entry.get("image") if isinstance(entry.get("image"), str) else ""
        images.append(ReleasedImage(ref, _given(given, ref), entry.get("built", True) is not False,
                                    entry.get("service") or ""))
    if not images:
        raise UsageError(f"{shown} lists no image", fix=FIX)
    facts = document.get("verification") or {}
    tag = document.get("tag") if isinstance(document.get("tag"), dict) else {}
    return ReleaseRecord(
        path=str(path), sha256="sha256:" + hashlib.sha256(data).hexdigest(), images=tuple(images),
        version=document.get("version") or "", stack=document.get("stack") or "",
        environment=document.get("environment") or "", tag=str((tag or {}).get("name") or ""),
        signer=facts.get("signer") or {}, build=facts.get("build") or {},
        sbom_formats=tuple((facts.get("sbom") or {}).get("formats") or ()), scan=facts.get("scan") or {},
        status=str((document.get("verdict") or {}).get("status") or ""))


def _given(text: str, pinned: ImageRef) -> str:
    """The reference as the release was given it, when it is a valid reference to the same repository (a tag
    to re-resolve); else the digest reference itself."""
    try:
        given = parse(text)
    except UsageError:
        return pinned.by_digest
    if given.name != pinned.name:
        return pinned.by_digest
    return str(given)
