"""Jenkins context (freestyle, Pipeline and multibranch jobs) from the build's environment."""

from __future__ import annotations

import shutil
from collections.abc import Mapping

from sc_ci.ci import oidc
from sc_ci.ci._common import (
    Which,
    branch_ref,
    get,
    join_url,
    pick,
    repo_slug,
    strip_credentials,
    tag_ref,
    web_url,
)
from sc_ci.ci.interface import CIContext, Platform

_EXTRA = (
    ("build_number", "BUILD_NUMBER"),
    ("build_tag", "BUILD_TAG"),
    ("job_base_name", "JOB_BASE_NAME"),
    ("node_name", "NODE_NAME"),
    ("branch_name", "BRANCH_NAME"),
    ("tag_name", "TAG_NAME"),
    ("change_id", "CHANGE_ID"),
    ("change_branch", "CHANGE_BRANCH"),
    ("change_target", "CHANGE_TARGET"),
)


def matches(env: Mapping[str, str]) -> bool:
    return get(env, "JENKINS_URL") is not None or (
        get(env, "JENKINS_HOME") is not None and get(env, "BUILD_URL") is not None
    )


def build_ref(env: Mapping[str, str]) -> str | None:
    """Tag builds: refs/tags/TAG_NAME. Multibranch change (PR/MR) builds: refs/heads/CHANGE_BRANCH.

    Otherwise BRANCH_NAME (multibranch), else GIT_BRANCH with the Git plugin's `origin/` dropped.
    """
    tag = get(env, "TAG_NAME")
    if tag:
        return tag_ref(tag)
    if get(env, "CHANGE_ID"):
        return branch_ref(get(env, "CHANGE_BRANCH"))
    branch = get(env, "BRANCH_NAME")
    if branch:
        return branch_ref(branch)
    git_branch = get(env, "GIT_BRANCH")
    if git_branch and not git_branch.startswith("refs/"):
        git_branch = git_branch.removeprefix("origin/")
    return branch_ref(git_branch)


def job_url(env: Mapping[str, str], server: str | None) -> str | None:
    """JOB_URL, else JENKINS_URL + /job/a/job/b for JOB_NAME a/b (folders and multibranch)."""
    explicit = strip_credentials(get(env, "JOB_URL"))
    if explicit:
        return explicit
    name = get(env, "JOB_NAME")
    if not (server and name):
        return server
    return join_url(server, *(f"job/{part}" for part in name.split("/")))


def detect(env: Mapping[str, str], which: Which = shutil.which) -> CIContext:
    server = (strip_credentials(get(env, "JENKINS_URL")) or "").rstrip("/") or None
    repo_url = web_url(get(env, "GIT_URL"))

    return CIContext(
        platform=Platform.JENKINS,
        oidc=oidc.resolve(
            env, None, missing="Jenkins has no OIDC issuer that public Fulcio trusts", fix=oidc.JENKINS_FIX
        ),
        builder_id=job_url(env, server),
        server_url=server,
        repository=repo_slug(repo_url),
        repo_url=repo_url,
        commit=get(env, "GIT_COMMIT"),
        ref=build_ref(env),
        workflow=get(env, "JOB_NAME"),
        run_id=get(env, "BUILD_NUMBER") or get(env, "BUILD_TAG"),
        run_url=strip_credentials(get(env, "BUILD_URL")),
        workspace=get(env, "WORKSPACE"),
        extra=pick(env, _EXTRA),
    )
