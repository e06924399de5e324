"""`sc-ci action`: the CI step (GitHub container action, GitLab component, Jenkins) — runs what the
config enables for every image, honouring the fail-open policy."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from sc_ci import secrets
from sc_ci.commands import common, release
from sc_ci.engine.context import Explicit, RunOptions
from sc_ci.keys import PEM_PREFIX
from sc_ci.report import github
from sc_ci.session import open_session

# Credentials that arrive as action inputs: moved to the variables the tools read, masked first.
_CREDENTIAL_INPUTS = {
    "INPUT_COSIGN-PASSWORD": "COSIGN_PASSWORD",
    "INPUT_REGISTRY-USERNAME": "SC_CI_REGISTRY_USERNAME",
    "INPUT_REGISTRY-PASSWORD": "SC_CI_REGISTRY_PASSWORD",
}
# Key inputs may hold PEM text (a secret pasted by `${{ secrets.X }}`): handed over as ${env:…}.
_KEY_INPUTS = {"INPUT_PRIVATE-KEY": "SC_CI_INPUT_PRIVATE_KEY", "INPUT_PUBLIC-KEY": "SC_CI_INPUT_PUBLIC_KEY"}


def register(sub: argparse._SubParsersAction[common.Parser]) -> None:
    p = common.add_subparser(sub, "action", "run as the CI step (GitHub action, GitLab component, Jenkins)",
                             "configuration comes from INPUT_* (GitHub), SC_CI_* variables and the config file;\n"
                             "see docs/configuration.md")
    common.common(p)
    p.set_defaults(run=run)


def prepare_env(env: Mapping[str, str]) -> dict[str, str]:
    """Mask secrets from inputs before anything can print them; re-route them to where they are read."""
    out = dict(env)
    for name, target in _CREDENTIAL_INPUTS.items():
        value = out.pop(name, "")
        if value:
            if "PASSWORD" in target:
                secrets.register(value)
            out.setdefault(target, value)
    for name, var in _KEY_INPUTS.items():
        value = out.get(name, "")
        if value.strip().startswith(PEM_PREFIX):
            secrets.register(value)
            out[var] = value
            out[name] = "${env:" + var + "}"
    return out


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if env.get("GITHUB_ACTIONS") == "true":
        github.install_masking()
    env = prepare_env(env)
    session = open_session(args, env, {})
    explicit = Explicit(env.get("SC_CI_SOURCE_REPO") or None, env.get("SC_CI_GIT_SHA") or None,
                        env.get("SC_CI_WORKFLOW_NAME") or None)
    runtime = session.loaded.runtime
    what = f"{runtime.stack}/{runtime.environment}" if runtime.stack else f"{len(session.images)} image(s)"
    return release.release(session, RunOptions(explicit), title=f"sc-ci release {what}")
