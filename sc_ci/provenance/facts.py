"""The build facts provenance records: the CI context with explicitly given facts applied (all-or-nothing
outside CI), the builder id, and the base images of a Dockerfile resolved to digests."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from sc_ci import secrets
from sc_ci.ci._common import git_sha, repo_slug, web_url
from sc_ci.ci.interface import CIContext
from sc_ci.errors import ConfigError, UsageError
from sc_ci.log import get_logger
from sc_ci.provenance import dockerfile, materials
from sc_ci.provenance.interface import Explicit, Json
from sc_ci.session import Session

log = get_logger("provenance")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


def context(session: Session, explicit: Explicit) -> tuple[CIContext, bool]:
    """The session's CI context with the explicitly given facts applied (see `apply`)."""
    return apply(session.ci, explicit, builder_id(session))


def apply(ctx: CIContext, explicit: Explicit, builder_id: str | None) -> tuple[CIContext, bool]:
    """`ctx` with explicitly given facts applied, and whether provenance rests on the user's facts.

    In CI a flag replaces what the CI reported. Outside CI the flags are all-or-nothing: --source-repo,
    --git-sha and --workflow-name, plus a builder id (--builder-id or provenance.builder.id); with none
    of the three, provenance is skipped.
    """
    repo = _repo_url(explicit.source_repo) if explicit.source_repo else None
    sha = full_sha(explicit.git_sha) if explicit.git_sha else None
    if not ctx.is_ci:
        if not explicit.given:
            return ctx, False
        missing = [flag for flag, value in (("--source-repo", repo), ("--git-sha", sha),
                                            ("--workflow-name", explicit.workflow_name),
                                            ("--builder-id", builder_id)) if not value]
        if missing:
            raise UsageError(f"provenance outside CI needs {', '.join(missing)} as well",
                             why="outside a CI every build fact must be given explicitly, or none (then "
                                 "provenance is skipped)",
                             fix="sc-ci provenance attach --image REF --key cosign.key --source-repo URL "
                                 "--git-sha SHA --workflow-name NAME --builder-id URI")
    if repo:
        ctx = replace(ctx, repo_url=repo, repository=repo_slug(repo) or repo)
    if sha:
        ctx = replace(ctx, commit=sha)
    if explicit.workflow_name:
        ctx = replace(ctx, workflow=explicit.workflow_name)
    if builder_id and not ctx.is_ci:
        ctx = replace(ctx, builder_id=builder_id)
    return ctx, not ctx.is_ci


def builder_id(session: Session) -> str | None:
    value = session.loaded.security.provenance.builder.id
    if value is None or _URI.fullmatch(value):
        return value
    if session.loaded.origin("provenance.builder.id") == "flag":
        raise UsageError(f"--builder-id {value!r} is not a URI",
                         fix="Give a URI that names the build platform, e.g. https://ci.example.com/release")
    raise ConfigError(f"{value!r} is not a URI", path="security.provenance.builder.id",
                      why=session.loaded.describe_origin("provenance.builder.id"),
                      fix="provenance:\n  builder:\n    id: https://ci.example.com/release")


def _repo_url(value: str) -> str:
    url = web_url(value.strip())
    if url is None or "://" not in url or not repo_slug(url):
        raise UsageError(f"--source-repo {secrets.mask(value)!r} is not a repository URL",
                         fix="Give the repository's URL, e.g. https://github.com/acme/app")
    return url


def full_sha(value: str) -> str:
    sha = git_sha(value.strip())
    if sha is None:
        raise UsageError(f"--git-sha {value!r} is not a full commit id",
                         why="provenance records the full 40-character SHA-1 (or 64-character SHA-256) id",
                         fix="Pass the full id: git rev-parse HEAD")
    return sha


def base_images(session: Session, path: str | None, build_args: Mapping[str, str],
                 include: bool) -> tuple[Json, ...]:
    if path is None:
        return ()
    if not include:
        log.warning("--dockerfile ignored: provenance.metadata.includeMaterials is false")
        return ()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read Dockerfile {path}: {exc.strerror or exc}",
                         fix="Pass the Dockerfile the images were built from: --dockerfile path/to/Dockerfile") from exc
    parsed = dockerfile.parse(text, build_args)
    for problem in parsed.problems:
        log.warning("%s: %s", path, problem)
    return tuple(materials.base_image_descriptors(parsed.images, session.registry.resolve, path))
