"""Verification of decoded provenance statements: which ones cover the image, and do they say what the
verifier expects (source repository, builder id, commit)? Pure functions of dicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sc_ci.ci._common import web_url
from sc_ci.provenance import github, gitlab
from sc_ci.provenance.interface import PREDICATE_TYPE
from sc_ci.provenance.materials import normalize_uri


@dataclass(frozen=True)
class Expectations:
    source_repo: str | None = None
    builder_id: str | None = None
    git_sha: str | None = None
    source_ref: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.source_repo or self.builder_id or self.git_sha or self.source_ref)


@dataclass(frozen=True)
class Facts:
    """What a provenance predicate says about the build (None: it does not say)."""

    build_type: str | None
    builder_id: str | None
    source_repo: str | None
    git_sha: str | None
    invocation_id: str | None
    source_ref: str | None = None


@dataclass(frozen=True)
class Mismatch:
    field: str  # "source repository", "builder id", "git commit"
    expected: str
    actual: str | None

    def __str__(self) -> str:
        got = repr(self.actual) if self.actual is not None else "nothing (the provenance does not record it)"
        return f"{self.field}: expected {self.expected!r}, got {got}"


def _get(data: object, *path: str) -> object:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _git_dependency(predicate: Mapping[str, object]) -> tuple[str | None, str | None, str | None]:
    """(repository, commit, ref) of the first resolvedDependencies entry with a gitCommit digest."""
    deps = _get(predicate, "buildDefinition", "resolvedDependencies")
    for dep in deps if isinstance(deps, list) else []:
        commit = _text(_get(dep, "digest", "gitCommit"))
        if commit:
            scheme, sep, rest = (_text(_get(dep, "uri")) or "").removeprefix("git+").partition("://")
            path, at, ref = rest.partition("@")  # `@ref` may itself hold `@`
            repo = f"{scheme}{sep}{path}" if sep else None
            return repo, commit, (ref or None) if at else None
    return None, None, None


def facts(predicate: Mapping[str, object]) -> Facts:
    """Builder, source and commit as recorded, whichever buildType wrote them."""
    build_type = _text(_get(predicate, "buildDefinition", "buildType"))
    external = _get(predicate, "buildDefinition", "externalParameters")
    dep_repo, commit, dep_ref = _git_dependency(predicate)
    param_ref = None
    if build_type == github.BUILD_TYPE:
        param_repo = _text(_get(external, "workflow", "repository"))
        param_ref = _text(_get(external, "workflow", "ref"))
    elif build_type == gitlab.BUILD_TYPE:
        param_repo = _text(_get(external, "source"))
    else:
        param_repo = _text(_get(external, "source", "repository"))
    return Facts(
        build_type=build_type,
        builder_id=_text(_get(predicate, "runDetails", "builder", "id")),
        source_repo=dep_repo or param_repo,
        git_sha=commit,
        invocation_id=_text(_get(predicate, "runDetails", "metadata", "invocationId")),
        source_ref=dep_ref or param_ref,
    )


def same_repository(expected: str, actual: str) -> bool:
    """`https://github.com/acme/app`, `github.com/acme/app`, `git@github.com:acme/app.git` are one repo.
    Host compared without case; the path as written (trailing `/` and `.git` ignored)."""
    return _repo_key(expected) == _repo_key(actual)


def _repo_key(value: str) -> str:
    text = value.strip().removeprefix("git+")
    if "://" not in text and "@" not in text:
        text = f"https://{text}"
    url = web_url(text) or text
    parts = urlsplit(url)
    return f"{(parts.netloc or '').lower()}{parts.path.rstrip('/').removesuffix('.git')}"


def mismatches(found: Facts, expect: Expectations) -> list[Mismatch]:
    """Every expectation the facts do not meet (empty: the provenance is what the verifier expects)."""
    out: list[Mismatch] = []
    if expect.source_repo and not (found.source_repo and same_repository(expect.source_repo, found.source_repo)):
        out.append(Mismatch("source repository", expect.source_repo, found.source_repo))
    if expect.builder_id and not (
        found.builder_id and normalize_uri(expect.builder_id.strip()) == normalize_uri(found.builder_id)
    ):
        out.append(Mismatch("builder id", expect.builder_id, found.builder_id))
    if expect.git_sha and not (found.git_sha and found.git_sha.lower() == expect.git_sha.strip().lower()):
        out.append(Mismatch("git commit", expect.git_sha, found.git_sha))
    if expect.source_ref and found.source_ref != expect.source_ref.strip():
        out.append(Mismatch("source ref", expect.source_ref, found.source_ref))
    return out


def covering(statements: Sequence[Mapping[str, object]], digest: str) -> list[Mapping[str, object]]:
    """The SLSA v1 provenance statements whose subject is `digest` (`sha256:<hex>`)."""
    algorithm, _, hexdigest = digest.partition(":")
    out = []
    for stmt in statements:
        if stmt.get("predicateType") != PREDICATE_TYPE:
            continue
        subjects = stmt.get("subject")
        if isinstance(subjects, list) and any(_get(s, "digest", algorithm) == hexdigest for s in subjects):
            out.append(stmt)
    return out
