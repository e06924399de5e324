"""The CI-facing files stay in step with the engine: action.yml inputs and outputs, how inputs reach the
engine (credentials masked first), files given back to the workspace owner, the dotenv report, one version."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

import sc_ci
from sc_ci import config, secrets
from sc_ci.commands import action
from sc_ci.commands.action import _CREDENTIAL_INPUTS, _TOKEN_INPUTS, ACTION_FLAGS, chown_created, prepare_env
from sc_ci.config import ACTION_INPUTS, RuntimeSettings, SecurityConfig
from sc_ci.config.sources import runtime_inputs
from sc_ci.report.release import outputs
from sc_ci.report.scan_files import COMMENT_NAME, GITLAB_NAME, JSON_NAME, SARIF_NAME

ROOT = Path(__file__).resolve().parents[2]


def _action() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_action_yml_declares_exactly_the_inputs_the_engine_reads() -> None:
    action_yml = _action()
    declared = set(action_yml["inputs"])
    credentials = {name.removeprefix("INPUT_").lower() for name in _CREDENTIAL_INPUTS}
    assert declared == {i.name for i in ACTION_INPUTS} | credentials | set(ACTION_FLAGS)
    runs = action_yml["runs"]
    assert runs["using"] == "docker"
    # main builds the Dockerfile; a release commit runs the published image by digest
    assert runs["image"] == "Dockerfile" or re.fullmatch(
        r"docker://ghcr\.io/simple-container-com/sc-security-action@sha256:[0-9a-f]{64}", runs["image"])


def test_action_yml_descriptions_are_the_engine_s_and_no_input_has_a_default() -> None:
    """An input with a `default:` would always be set and beat the config file (inputs rank above YAML)."""
    inputs = _action()["inputs"]
    for name, spec in inputs.items():
        assert "default" not in spec, name
        assert spec.get("required") is False, name
        assert "Default:" in spec["description"], name
    for spec in ACTION_INPUTS:
        assert inputs[spec.name]["description"] == spec.description, spec.name
    for name, text in ACTION_FLAGS.items():
        assert inputs[name]["description"] == text


def _model_default(target: str) -> object:
    area, _, rest = target.partition(".")
    if area == "runtime":
        return RuntimeSettings.model_fields[rest].default
    node: Any = SecurityConfig()
    for key in rest.split("."):
        node = getattr(node, re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower())
    return node


def _render(value: object) -> str | None:
    """How a default is written in a description: `true`, `legacy`, `grype`; None for "no value"."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        names = [getattr(v, "name", v) for v in value]
        return ",".join(str(n) for n in names) if names else None
    return None if value is None else str(value)


@pytest.mark.parametrize("spec", ACTION_INPUTS, ids=lambda s: s.name)
def test_the_default_an_input_description_states_is_the_engine_s(spec: config.ActionInput) -> None:
    stated = spec.description.split("Default: ", 1)[1]
    expected = _render(_model_default(spec.target))
    if expected is None:
        assert not stated.startswith("`"), f"{spec.name}: the engine has no default value, the text says {stated}"
    else:
        assert stated.startswith(f"`{expected}`"), f"{spec.name}: engine default {expected!r}, text {stated!r}"


def test_action_yml_declares_every_output_the_engine_writes() -> None:
    result = {"step": "scan", "image": "r/a@sha256:1", "outcome": "ok", "details": {"merged-high": 2}}
    sign = {"step": "sign", "image": "r/a@sha256:1", "outcome": "ok"}
    manifest = {"images": [{"digest": "r/a@sha256:1", "results": [result, sign]}],
                "verdict": {"status": "passed", "blocking": 0, "tolerated": 0}, "tag": {"name": "v1"}}
    paths = {"release-json": "o/release.json", "scan-report": f"o/{JSON_NAME}", "sarif": f"o/{SARIF_NAME}",
             "gitlab-report": f"o/{GITLAB_NAME}", "scan-comment": f"o/{COMMENT_NAME}"}
    written = outputs(manifest, paths)
    assert written["high-count"] == "2"
    assert set(_action()["outputs"]) == set(written)


# ------------------------------------------------------------------------------------------ inputs → engine


def test_runtime_inputs_take_either_spelling_and_lose_to_sc_ci_variables() -> None:
    env = {"INPUT_CACHE-DIR": "/cache", "INPUT_OUTPUT_DIR": "out", "INPUT_DRY-RUN": "true", "INPUT_SHARD": "",
           "INPUT_TAG-PATTERN": "{stack}-v{version}", "SC_CI_OUTPUT_DIR": "env-out"}
    assert runtime_inputs(env)["INPUT_CACHE_DIR"] == "/cache"
    runtime = RuntimeSettings.from_env(env)
    assert (runtime.cache_dir, runtime.output_dir, runtime.dry_run) == (Path("/cache"), Path("env-out"), True)
    assert (runtime.shard, runtime.tag_pattern) == (None, "{stack}-v{version}")


def test_every_new_policy_input_reaches_the_model(tmp_path: Path) -> None:
    env = prepare_env({
        "INPUT_ONLY-FIXED": "true", "INPUT_IGNORE-FILE": "ignore.yaml", "INPUT_VEX": "vex.json",
        "INPUT_SBOM-EXTRA-FORMATS": "spdx-json", "INPUT_SBOM-OUTPUT": "sbom/", "INPUT_TRANSPARENCY-LOG": "false",
        "INPUT_DEFECTDOJO": "true", "INPUT_DEFECTDOJO-URL": "https://dd.example.com",
        "INPUT_DEFECTDOJO-API-KEY": "0123456789abcdef0123456789abcdef01234567",
        "INPUT_DEFECTDOJO-PRODUCT": "shop", "INPUT_DEFECTDOJO-ENGAGEMENT": "release 1", "INPUT_FAIL-FAST": "yes",
    })
    sec = config.load(env=env, project_root=tmp_path).security
    assert (sec.scan.only_fixed, sec.scan.ignore_file, sec.scan.vex) == (True, "ignore.yaml", "vex.json")
    assert (sec.sbom.extra_formats, sec.sbom.output.local) == (("spdx-json",), "sbom/")
    assert sec.signing.sigstore.transparency_log is False
    dojo = sec.scan.upload.defectdojo
    assert (dojo.enabled, dojo.url, dojo.product_name, dojo.engagement_name) == (
        True, "https://dd.example.com", "shop", "release 1")
    assert str(dojo.api_key) == "${env:SC_CI_INPUT_DEFECTDOJO_API_KEY}"
    assert sec.policy.fail_fast


def test_token_and_credential_inputs_are_masked_and_rerouted() -> None:
    token = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed"
    password = "s3cr3t-registry-password-value"
    env = prepare_env({"INPUT_DEFECTDOJO_API_KEY": token, "INPUT_REGISTRY_PASSWORD": password,
                       "INPUT_REGISTRY-USERNAME": "bot", "INPUT_REGISTRY-HOST": " registry.example.com ",
                       "INPUT_COSIGN-PASSWORD": ""})
    assert env["SC_CI_INPUT_DEFECTDOJO_API_KEY"] == token
    assert env["INPUT_DEFECTDOJO_API_KEY"] == "${env:SC_CI_INPUT_DEFECTDOJO_API_KEY}"
    assert (env["SC_CI_REGISTRY_USERNAME"], env["SC_CI_REGISTRY_PASSWORD"]) == ("bot", password)
    assert env["SC_CI_REGISTRY_HOST"] == "registry.example.com"
    assert not any(k.startswith("INPUT_REGISTRY") or k == "INPUT_COSIGN-PASSWORD" for k in env)
    assert "COSIGN_PASSWORD" not in env
    assert token not in secrets.mask(f"key {token}")
    assert password not in secrets.mask(password)
    assert set(_TOKEN_INPUTS) <= {f"INPUT_{i.name.upper()}" for i in ACTION_INPUTS}


def test_a_reference_stays_a_reference_and_variables_beat_inputs() -> None:
    env = prepare_env({"INPUT_DEFECTDOJO-API-KEY": "${secret:dd-key}", "INPUT_REGISTRY-USERNAME": "from-input",
                       "SC_CI_REGISTRY_USERNAME": "from-variable"})
    assert env["INPUT_DEFECTDOJO-API-KEY"] == "${secret:dd-key}"
    assert "SC_CI_INPUT_DEFECTDOJO_API_KEY" not in env
    assert env["SC_CI_REGISTRY_USERNAME"] == "from-variable"


@pytest.mark.parametrize(("value", "expected"), [("", False), ("true", True), ("No", False)])
def test_action_flags(value: str, expected: bool) -> None:
    assert action.flag_input({"INPUT_PUSH-TAG": value}, "push-tag") is expected


def test_action_flag_rejects_other_text() -> None:
    from sc_ci.errors import UsageError

    with pytest.raises(UsageError, match="not a boolean"):
        action.flag_input({"INPUT_TAG": "sure"}, "tag")


# ------------------------------------------------------------------------------------------ workspace owner


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root, as in the action")
def test_files_the_run_wrote_go_to_the_workspace_owner(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    before = workspace / "checked-in.txt"  # root's before the run: left alone
    before.write_text("old")
    outside = tmp_path / "outside.txt"  # root's, must stay root's: links are never followed
    outside.write_text("x")
    os.chown(workspace, 4321, 4321)
    env = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace)}
    import time

    time.sleep(1.2)  # the run's start is taken with a second of slack for coarse file-system clocks
    since = time.time()
    (workspace / "out" / "sbom").mkdir(parents=True)
    (workspace / "out" / "release.json").write_text("{}")
    (workspace / "out" / "sbom" / "a.cdx.json").write_text("{}")
    (workspace / "link").symlink_to(outside)
    assert chown_created(env, since) == 5
    for path in ("out", "out/release.json", "out/sbom", "out/sbom/a.cdx.json"):
        assert (workspace / path).stat().st_uid == 4321, path
    assert os.lstat(workspace / "link").st_uid == 4321
    assert outside.stat().st_uid == 0
    assert before.stat().st_uid == 0
    assert chown_created({**env, "GITHUB_ACTIONS": ""}, since) == 0


def test_no_chown_outside_a_github_container_action(tmp_path: Path) -> None:
    assert chown_created({"GITHUB_WORKSPACE": str(tmp_path)}, 0) == 0
    assert chown_created({"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path / "missing")}, 0) == 0


# ------------------------------------------------------------------------------------------ GitLab dotenv


def test_gitlab_dotenv_is_single_line_and_capped() -> None:
    from sc_ci.report.publish import DOTENV_LIMIT, dotenv_text

    text = dotenv_text({"digests": "r/a@sha256:1\nr/b@sha256:2", "verify-commands": "x" * 6000})
    assert text == "SC_CI_DIGESTS=r/a@sha256:1,r/b@sha256:2\n"
    assert len(text.encode()) <= DOTENV_LIMIT


def test_gitlab_dotenv_goes_to_the_project_dir_else_the_working_dir(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from sc_ci.report.publish import dotenv_path

    assert dotenv_path(str(tmp_path)) == tmp_path / "sc-ci.env"
    monkeypatch.chdir(tmp_path)
    assert dotenv_path("/builds/acme/app-that-does-not-exist") == tmp_path / "sc-ci.env"
    assert dotenv_path(None) is None  # no CI_PROJECT_DIR: not GitLab's runner, nothing written


# ------------------------------------------------------------------------------------------ one version


def test_one_version_everywhere() -> None:
    """sc_ci.__version__ is the source; pyproject reads it; the CI files name that release."""
    version = sc_ci.__version__
    major = version.split(".")[0]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sc_ci.__version__"}
    image = f"ghcr.io/simple-container-com/sc-security-action:{version}"
    for path in ("templates/sc-security.yml", ".gitlab-ci-component.yml"):
        text = (ROOT / path).read_text(encoding="utf-8")
        assert image in text, path
        assert set(re.findall(r"sc-security-action:(\d[\w.-]*)", text)) == {version}, path
    texts = {p: p.read_text(encoding="utf-8") for p in [ROOT / "docs" / "ci.md", *(ROOT / "examples").rglob("*")]
             if p.is_file()}
    for path, text in texts.items():
        for ref in re.findall(r"simple-container-com/sc-security-action@(v?[\w.]+)", text):
            assert ref == f"v{major}", f"{path}: @{ref}, want @v{major}"
        for ref in re.findall(r"sc-security-action/sc-security@([\w.]+)", text):
            assert ref == version, f"{path}: component @{ref}, want @{version}"
        for ref in re.findall(r"sc-security-action:(\d[\w.-]*)", text):
            assert ref == version, f"{path}: image :{ref}, want :{version}"
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{version}]" in changelog
