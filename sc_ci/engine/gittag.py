"""The git tag a successful release creates (AC-5.6): annotated, named from a pattern, on the commit the
provenance names, its message listing the image digests; pushed on request; never moved."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sc_ci import runner
from sc_ci.errors import ScError, StepFailed, UsageError

DEFAULT_PATTERN = "v{version}"
_TAG = re.compile(r"^(?!-)(?!.*\.\.)(?!.*@\{)(?!.*//)[A-Za-z0-9._/+-]{1,200}(?<![./])$")
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclass(frozen=True)
class TagPlan:
    """The tag to create: its name, the commit, the repository, and whether to push it."""

    name: str
    commit: str
    repo: Path
    push: bool = False
    remote: str = "origin"


@dataclass(frozen=True)
class TagResult:
    name: str
    commit: str
    created: bool  # False: it already pointed at this commit
    pushed: bool
    summary: str


def tag_name(pattern: str, version: str | None, *, stack: str | None = None,
             environment: str | None = None) -> str:
    """`v{version}` → v2026.1.7; also {stack} and {environment}. Refused unless a valid git tag name."""
    if not version:
        raise UsageError("a release tag needs the release version", fix="sc-ci release create … --version 1.4.0")
    try:
        name = pattern.format(version=version, stack=stack or "", environment=environment or "")
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(f"tag pattern {pattern[:80]!r} is not valid",
                         why=f"placeholders are {{version}}, {{stack}}, {{environment}} ({type(exc).__name__})",
                         fix="--tag-pattern 'v{version}'") from exc
    if not _TAG.fullmatch(name):
        raise UsageError(f"{name[:80]!r} is not a valid git tag name",
                         fix="Use letters, digits and . _ - / + (git check-ref-format), e.g. "
                             "--tag-pattern 'v{version}'")
    return name


def _git(repo: Path, *args: str, env: Mapping[str, str]) -> runner.Completed:
    return runner.run(["git", "-C", str(repo), *args], env=env, timeout=120)


def _env(env: Mapping[str, str]) -> dict[str, str]:
    """Only what git needs; a tagger identity when the repository has none configured."""
    out = runner.base_env(env)
    for name in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
                 "GIT_SSH_COMMAND", "GIT_ASKPASS", "SSH_AUTH_SOCK", "GIT_CONFIG_GLOBAL"):
        if env.get(name):
            out[name] = env[name]
    out.setdefault("GIT_COMMITTER_NAME", "sc-ci")
    out.setdefault("GIT_COMMITTER_EMAIL", "sc-ci@localhost")
    out["GIT_TERMINAL_PROMPT"] = "0"  # never wait on a prompt
    return out


def head(repo: Path, env: Mapping[str, str]) -> str | None:
    done = _git(repo, "rev-parse", "--verify", "HEAD^{commit}", env=_env(env))
    sha = done.stdout.strip()
    return sha if done.ok and _SHA.fullmatch(sha) else None


def check(plan: TagPlan, env: Mapping[str, str]) -> None:
    """Before the release: the repository and commit exist, and the tag is free or already on this commit."""
    genv = _env(env)
    if not _SHA.fullmatch(plan.commit):
        raise UsageError(f"cannot tag {plan.commit[:60]!r}: not a full commit id",
                         fix="--git-sha $(git rev-parse HEAD)")
    found = _git(plan.repo, "cat-file", "-t", plan.commit, env=genv)
    if not found.ok or found.stdout.strip() != "commit":
        raise UsageError(f"cannot tag {plan.commit[:12]}: no such commit in {plan.repo}",
                         why="the release tag goes on the commit the provenance names",
                         fix="Run from the repository's checkout with that commit (fetch-depth: 0 on GitHub), or "
                             "pass --no-tag.")
    existing = _existing(plan, genv)
    if existing is not None and existing != plan.commit:
        raise UsageError(f"tag {plan.name} already exists at {existing[:12]}, not at {plan.commit[:12]}",
                         why="a release tag is never moved",
                         fix="Release a new version (--version), delete the old tag deliberately, or pass --no-tag.")


def _existing(plan: TagPlan, genv: Mapping[str, str]) -> str | None:
    done = _git(plan.repo, "rev-parse", "--verify", "--quiet", f"refs/tags/{plan.name}^{{commit}}", env=genv)
    return done.stdout.strip() if done.ok and done.stdout.strip() else None


def create(plan: TagPlan, images: Sequence[str], env: Mapping[str, str], *, title: str) -> TagResult:
    """Create the annotated tag (or find it already on this commit), then push it when asked."""
    check(plan, env)
    genv = _env(env)
    created = False
    if _existing(plan, genv) is None:
        message = "\n".join([title, "", "Images (by digest):", *(f"- {i}" for i in images), ""])
        done = runner.run(["git", "-C", str(plan.repo), "tag", "--annotate", "--file=-", plan.name, plan.commit],
                          env=genv, stdin=message, timeout=120)
        if not done.ok:
            raise StepFailed(f"git tag {plan.name} failed", why=done.tail(5),
                             fix="Check that the checkout is writable and a git repository.")
        created = True
    pushed = False
    if plan.push:
        done = _git(plan.repo, "push", plan.remote, f"refs/tags/{plan.name}", env=genv)
        if not done.ok:
            raise StepFailed(f"git push of tag {plan.name} to {plan.remote} failed", why=done.tail(5),
                             fix="Give the job push rights (GitHub: permissions: contents: write; GitLab: a "
                                 "project access token with write_repository), or drop --push-tag.")
        pushed = True
    what = "created" if created else "already there"
    return TagResult(plan.name, plan.commit, created, pushed,
                     f"{plan.name} {what} at {plan.commit[:12]}" + (f", pushed to {plan.remote}" if pushed else ""))


def tag_error(exc: ScError) -> str:
    return exc.what
