"""`sc-ci action`: the CI step (GitHub container action, GitLab component, Jenkins) — runs what the
config enables for every image, honouring the fail-open policy."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from sc_ci import release, secrets
from sc_ci.ci.interface import Platform
from sc_ci.commands import common, output
from sc_ci.commands.provenance import Explicit
from sc_ci.commands.session import open_session
from sc_ci.keys import PEM_PREFIX
from sc_ci.report import github

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
    outcome = release.run(session, explicit)
    output.report("release", session, outcome.results)
    if session.ci.platform is Platform.GITLAB and session.ci.workspace:
        _gitlab_dotenv(session.ci.workspace, output.outputs(outcome.results))
    if outcome.tolerated:
        print(f"warning: {len(outcome.tolerated)} step(s) failed; continuing because the policy is fail-open "
              "(set security.policy.failOpen: false to fail the job)")
    return outcome.exit_code


DOTENV_LIMIT = 5 * 1024  # GitLab drops artifacts:reports:dotenv files over 5 KB


def _gitlab_dotenv(workspace: str, values: Mapping[str, str]) -> None:
    """KEY=VALUE lines for artifacts:reports:dotenv (no multi-line values; lists become commas)."""
    Path(workspace, "sc-ci.env").write_text(dotenv_text(values))


def dotenv_text(values: Mapping[str, str]) -> str:
    lines: list[str] = []
    size = 0
    for key, value in values.items():
        line = f"SC_CI_{key.upper().replace('-', '_')}={','.join(value.splitlines())}\n"
        if size + len(line.encode()) > DOTENV_LIMIT:
            continue  # the whole list stays in the job log and summary
        lines.append(line)
        size += len(line.encode())
    return "".join(lines)
