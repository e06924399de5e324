"""`sc-ci action`: the CI step (GitHub container action, GitLab component, Jenkins) — runs what the
config enables for every image, honouring the fail-open policy."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from sc_ci import secrets
from sc_ci.ci.interface import Platform
from sc_ci.commands import common, image, output
from sc_ci.commands.session import Session, open_session
from sc_ci.config.model import Feature
from sc_ci.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ConfigError, ScError
from sc_ci.keys import PEM_PREFIX
from sc_ci.report import github
from sc_ci.steps.interface import Outcome, StepResult

# Credentials that arrive as action inputs: moved to the variables the tools read, masked first.
_CREDENTIAL_INPUTS = {
    "INPUT_COSIGN-PASSWORD": "COSIGN_PASSWORD",
    "INPUT_REGISTRY-USERNAME": "SC_CI_REGISTRY_USERNAME",
    "INPUT_REGISTRY-PASSWORD": "SC_CI_REGISTRY_PASSWORD",
}
# Key inputs may hold PEM text (a secret pasted by `${{ secrets.X }}`): handed over as ${env:…}.
_KEY_INPUTS = {"INPUT_PRIVATE-KEY": "SC_CI_INPUT_PRIVATE_KEY", "INPUT_PUBLIC-KEY": "SC_CI_INPUT_PUBLIC_KEY"}
_NOT_YET = ("sbom", "provenance", "scan")


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
    security = session.loaded.security
    for feature in _NOT_YET:
        if getattr(security, feature).enabled:
            raise ConfigError(f"{feature} is not available in this version of sc-ci", path=f"security.{feature}",
                              fix=f"Set security.{feature}.enabled: false for now.")
    results = _signing(session) if security.signing.enabled else []
    output.report("release", session, results)
    if session.ci.platform is Platform.GITLAB and session.ci.workspace:
        _gitlab_dotenv(session.ci.workspace, output.outputs(results))
    failed = [r for r in results if r.failed]
    if failed and not all(security.fail_open(_feature(r.step)) for r in failed):
        return EXIT_FAILED
    if failed:
        print(f"warning: {len(failed)} step(s) failed; continuing because the policy is fail-open "
              "(set security.policy.failOpen: false to fail the job)")
    return EXIT_OK


def _signing(session: Session) -> list[StepResult]:
    """Sign every image; a failure before any step (bad key, no tool) fails each image's sign step, so
    the fail-open policy treats it like any other signing failure. Config errors still stop the run."""
    try:
        return image.sign_images(session)
    except ScError as exc:
        if exc.exit_code == EXIT_USAGE:
            raise
        return [StepResult("sign", str(ref), Outcome.FAILED, exc.what, error=exc) for ref in session.images]


def _feature(step: str) -> Feature:
    return "verify" if step == "verify" else "signing"


def _gitlab_dotenv(workspace: str, values: Mapping[str, str]) -> None:
    lines = [f"SC_CI_{k.upper().replace('-', '_')}={v.replace(chr(10), ',')}" for k, v in values.items()]
    Path(workspace, "sc-ci.env").write_text("\n".join(lines) + "\n")
