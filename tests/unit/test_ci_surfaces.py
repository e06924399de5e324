"""The CI-facing files stay in step with the engine: action.yml inputs, the GitLab component, the dotenv report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sc_ci import config
from sc_ci.commands.action import _CREDENTIAL_INPUTS
from sc_ci.config import ACTION_INPUTS

ROOT = Path(__file__).resolve().parents[2]


def test_action_yml_declares_exactly_the_inputs_the_engine_reads() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    declared = set(action["inputs"])
    credentials = {name.removeprefix("INPUT_").lower() for name in _CREDENTIAL_INPUTS}
    assert declared == {i.name for i in ACTION_INPUTS} | credentials
    assert action["runs"] == {"using": "docker", "image": "Dockerfile"}
    assert set(action["outputs"]) == {"digests", "signed", "verify-commands"}


def _component() -> tuple[dict[str, object], dict[str, object]]:
    docs = list(yaml.safe_load_all((ROOT / "templates" / "sc-security.yml").read_text()))
    assert len(docs) == 2, "a component is a spec header, ---, then the jobs"
    return docs[0], docs[1]


def test_gitlab_component_inputs_are_all_used_and_defined() -> None:
    header, jobs = _component()
    inputs = set(header["spec"]["inputs"])  # type: ignore[index]
    body = (ROOT / "templates" / "sc-security.yml").read_text().split("\n---\n", 1)[1]
    used = set(re.findall(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]", body))
    assert used == inputs
    job = next(iter(jobs.values()))
    assert job["script"] == ["sc-ci action"]  # type: ignore[index]
    assert job["artifacts"]["reports"]["dotenv"] == "sc-ci.env"  # type: ignore[index]


@pytest.mark.parametrize("value", ["", "true", "false"])
def test_gitlab_component_variables_load(value: str, tmp_path: Path) -> None:
    """What the component sets (inputs left empty or filled) is valid configuration for the engine."""
    _, jobs = _component()
    variables = dict(next(iter(jobs.values()))["variables"])  # type: ignore[index]
    env = {k: (value if "SECURITY" in k else "") for k in variables}
    env["SC_CI_SECURITY__SIGNING__PRIVATEKEY"] = "" if value != "false" else "env://COSIGN_PRIVATE_KEY"
    env["COSIGN_PRIVATE_KEY"] = "not used at load time"
    loaded = config.load(env=env, project_root=tmp_path)
    if value == "true":
        assert loaded.security.signing.enabled
        assert loaded.security.signing.keyless
        assert loaded.security.policy.fail_open
    if value == "false":
        assert not loaded.security.signing.enabled
        assert not loaded.security.policy.fail_open


def test_plain_include_variant_is_a_valid_job() -> None:
    jobs = yaml.safe_load((ROOT / ".gitlab-ci-component.yml").read_text())
    job = jobs["sc-security"]
    assert job["script"] == ["sc-ci action"]
    assert set(job["variables"]) <= {"SC_CI_IMAGES", "SC_CI_CONFIG", "SC_CI_STACK", "SC_CI_ENVIRONMENT"}


def test_gitlab_dotenv_is_single_line_and_capped() -> None:
    from sc_ci.report.publish import DOTENV_LIMIT, dotenv_text

    text = dotenv_text({"digests": "r/a@sha256:1\nr/b@sha256:2", "verify-commands": "x" * 6000})
    assert text == "SC_CI_DIGESTS=r/a@sha256:1,r/b@sha256:2\n"
    assert len(text.encode()) <= DOTENV_LIMIT
