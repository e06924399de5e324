"""`sc-ci action`: the CI step (GitHub container action, GitLab component, Jenkins) — runs what the
config enables for every image, honouring the fail-open policy."""

from __future__ import annotations

import argparse
import os
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sc_ci import secrets
from sc_ci.commands import common, release, router
from sc_ci.engine import gittag
from sc_ci.engine.context import RunOptions
from sc_ci.errors import UsageError
from sc_ci.log import get_logger
from sc_ci.provenance.interface import Explicit
from sc_ci.report import github
from sc_ci.session import open_session
from sc_ci.signing.keys import PEM_PREFIX

log = get_logger("action")

# Inputs that are not policy keys: credentials (masked first) and the registry they are for, moved to the
# variables the engine and the tools read. A variable already set in the environment wins over the input.
_CREDENTIAL_INPUTS = {
    "INPUT_COSIGN-PASSWORD": "COSIGN_PASSWORD",
    "INPUT_REGISTRY-USERNAME": "SC_CI_REGISTRY_USERNAME",
    "INPUT_REGISTRY-PASSWORD": "SC_CI_REGISTRY_PASSWORD",
    "INPUT_REGISTRY-HOST": "SC_CI_REGISTRY_HOST",
}
_SECRET_TARGETS = frozenset({"COSIGN_PASSWORD", "SC_CI_REGISTRY_PASSWORD"})
# Key inputs may hold PEM text (a secret pasted by `${{ secrets.X }}`): handed over as ${env:…}.
_KEY_INPUTS = {"INPUT_PRIVATE-KEY": "SC_CI_INPUT_PRIVATE_KEY", "INPUT_PUBLIC-KEY": "SC_CI_INPUT_PUBLIC_KEY"}
# Token inputs hold the token itself unless they are a reference (${secret:…}, ${env:…}, env://VAR).
_TOKEN_INPUTS = {"INPUT_DEFECTDOJO-API-KEY": "SC_CI_INPUT_DEFECTDOJO_API_KEY"}
# Inputs only `sc-ci action` reads (what `release create` takes as flags): the release's git tag.
ACTION_FLAGS = {"tag": "Create the annotated git tag (tag-pattern) on the released commit after a successful "
                       "release; needs git in the image and the full checkout (true/false). Default: `false`.",
                "push-tag": "Push that tag to origin (needs `permissions: contents: write` and credentials "
                            "for git; true/false). Default: `false`."}
_TRUE, _FALSE = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0", ""})


def register(sub: argparse._SubParsersAction[common.Parser]) -> None:
    p = common.add_subparser(sub, "action", router.summary("action"),
                             "configuration comes from INPUT_* (GitHub, and the GitLab component), SC_CI_* "
                             "variables and the config file;\nsee docs/configuration.md and docs/ci.md")
    common.common(p)
    p.set_defaults(run=run)


def _spellings(name: str) -> tuple[str, str]:
    """GitHub keeps hyphens (INPUT_PRIVATE-KEY); shells and GitLab variables need `_` (INPUT_PRIVATE_KEY)."""
    return name, name.replace("-", "_")


def prepare_env(env: Mapping[str, str]) -> dict[str, str]:
    """Mask secrets from inputs before anything can print them; re-route them to where they are read."""
    out = dict(env)
    for name, target in _CREDENTIAL_INPUTS.items():
        values = [out.pop(spelling, "") for spelling in _spellings(name)]
        value = next((v for v in values if v.strip()), "")
        if value:
            if target in _SECRET_TARGETS:
                secrets.register(value, f"input {name.removeprefix('INPUT_').lower()}")
            if not out.get(target, "").strip():
                out[target] = value.strip() if target not in _SECRET_TARGETS else value
    _gitlab_registry_login(out)
    for name, var in _KEY_INPUTS.items():
        for spelling in _spellings(name):
            value = out.get(spelling, "")
            if value.strip().startswith(PEM_PREFIX):
                secrets.register(value)
                out[var] = value
                out[spelling] = "${env:" + var + "}"
    for name, var in _TOKEN_INPUTS.items():
        for spelling in _spellings(name):
            value = out.get(spelling, "").strip()
            if value and not value.startswith(("${", "env://")):
                secrets.register(value, f"input {name.removeprefix('INPUT_').lower()}")
                out[var] = value
                out[spelling] = "${env:" + var + "}"
    return out


def _gitlab_registry_login(env: dict[str, str]) -> None:
    """GitLab: without other credentials, the job's own registry login (CI_REGISTRY_USER /
    CI_REGISTRY_PASSWORD, else gitlab-ci-token / CI_JOB_TOKEN), pinned to CI_REGISTRY so that token never
    goes to another registry (a `registry` input naming another host does not redirect it)."""
    registry = env.get("CI_REGISTRY", "").strip()
    if env.get("GITLAB_CI") != "true" or not registry:
        return
    if env.get("SC_CI_REGISTRY_USERNAME", "").strip() or env.get("SC_CI_REGISTRY_PASSWORD", "").strip():
        return
    user, password = env.get("CI_REGISTRY_USER", "").strip(), env.get("CI_REGISTRY_PASSWORD", "")
    if not (user and password.strip()):
        user, password = "gitlab-ci-token", env.get("CI_JOB_TOKEN", "")
    if not password.strip():
        return
    secrets.register(password, "CI_REGISTRY_PASSWORD")
    env["SC_CI_REGISTRY_USERNAME"], env["SC_CI_REGISTRY_PASSWORD"] = user, password
    env["SC_CI_REGISTRY_HOST"] = registry


def flag_input(env: Mapping[str, str], name: str) -> bool:
    """An action-only boolean input (ACTION_FLAGS), either spelling; empty means false."""
    key = f"INPUT_{name.upper()}"
    value = next((env[s] for s in _spellings(key) if env.get(s, "").strip()), "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise UsageError(f"input {name!r}: {value[:40]!r} is not a boolean", fix=f"with:\n  {name}: true")
    return value in _TRUE


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if env.get("GITHUB_ACTIONS") == "true":
        github.install_masking()
    env = prepare_env(env)
    started = time.time()
    with _git_trusts_workspace(env) as env:
        try:
            return _release(args, env)
        finally:
            chown_created(env, started)


def _release(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    session = open_session(args, env, {})
    explicit = Explicit(env.get("SC_CI_SOURCE_REPO") or None, env.get("SC_CI_GIT_SHA") or None,
                        env.get("SC_CI_WORKFLOW_NAME") or None)
    tag = None
    if flag_input(env, "tag"):
        tag = release._tag_plan(session, explicit, push=flag_input(env, "push-tag"))
        if tag is None:
            raise UsageError("input tag: true, but the working directory is not a git checkout git can read",
                             fix="Check out the repository first (actions/checkout), or drop `tag: true`.")
        gittag.check(tag, env)
    runtime = session.loaded.runtime
    what = f"{runtime.stack}/{runtime.environment}" if runtime.stack else f"{len(session.images)} image(s)"
    return release.release(session, RunOptions(explicit), title=f"sc-ci release {what}", tag=tag)


def _workspace(env: Mapping[str, str]) -> Path | None:
    """The GitHub workspace when this runs as a container action (root, workspace owned by the runner user)."""
    if env.get("GITHUB_ACTIONS") != "true" or not env.get("GITHUB_WORKSPACE") or not hasattr(os, "geteuid"):
        return None
    workspace = Path(env["GITHUB_WORKSPACE"])
    try:
        info = workspace.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or os.geteuid() != 0 or info.st_uid == 0:
        return None
    return workspace


@contextmanager
def _git_trusts_workspace(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """As root in the action's container, git refuses the runner user's checkout ("dubious ownership"): a
    private global git config naming the workspace a safe.directory, for this run only."""
    workspace = _workspace(env)
    if workspace is None or env.get("GIT_CONFIG_GLOBAL"):
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="sc-ci-git-") as tmp:
        config = Path(tmp, "gitconfig")
        config.write_text(f"[safe]\n\tdirectory = {workspace}\n", encoding="utf-8")
        yield {**env, "GIT_CONFIG_GLOBAL": str(config)}


def chown_created(env: Mapping[str, str], since: float) -> int:
    """Give what this run wrote under GITHUB_WORKSPACE (release.json, SBOMs, reports, git tag refs) to the
    workspace's owner, so later steps running as the runner user can change and delete it. Only as root in
    a GitHub container action; only entries owned by root and changed since `since`; symlinks are never
    followed (lchown of the link itself). Returns how many entries were changed."""
    workspace = _workspace(env)
    if workspace is None:
        return 0
    owner = workspace.lstat()
    changed = 0
    for top, dirs, files in os.walk(workspace, followlinks=False):
        for name in (*dirs, *files):
            path = os.path.join(top, name)
            try:
                info = os.lstat(path)
                if info.st_uid == 0 and max(info.st_ctime, info.st_mtime) >= since - 1:
                    os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)
                    changed += 1
            except OSError as exc:  # vanished or not ours to change: the run's result stands
                log.debug("chown %s: %s", path, exc)
    if changed:
        log.debug("gave %d file(s) under %s to uid %d", changed, workspace, owner.st_uid)
    return changed
