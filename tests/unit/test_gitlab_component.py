"""The GitLab CI/CD component and its plain-include twin: input semantics GitLab checks at pipeline creation
(used ⇔ defined, types, defaults within options, known keys), GitLab's own schema, and that what the job
hands the engine loads — empty inputs leaving every SC_CI_* variable alone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sc_ci import config
from sc_ci.commands.action import prepare_env

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = ROOT / "templates" / "sc-security.yml"
PLAIN = ROOT / ".gitlab-ci-component.yml"
FILES = (COMPONENT, PLAIN)
INPUT_KEYS = frozenset({"default", "description", "options", "regex", "type", "rules"})
TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "boolean": (bool,), "number": (int, float), "array": (list,)}
USE = re.compile(r"\$\[\[\s*inputs\.([\w-]+)(?:\s*\|[^\]]*)?\s*\]\]")


def documents(path: Path) -> tuple[str, str]:
    """(spec header text, jobs text): a component is `spec:`, a line `---`, then the jobs."""
    text = path.read_text(encoding="utf-8")
    header, sep, body = text.partition("\n---\n")
    assert sep, f"{path.name}: no `---` line between the spec header and the jobs"
    return header + "\n", body


def component_problems(path: Path) -> list[str]:
    """What GitLab would reject (or silently misread) in a component's inputs."""
    header_text, body = documents(path)
    header = yaml.safe_load(header_text)
    problems: list[str] = []
    if set(header) != {"spec"} or set(header["spec"]) - {"inputs", "include", "component", "description"}:
        problems.append(f"header keys {sorted(header)}: only spec: (inputs) belongs there")
    inputs: dict[str, Any] = header["spec"]["inputs"]
    used = set(USE.findall(body))
    problems += [f"input {n!r} is used but not defined" for n in sorted(used - set(inputs))]
    problems += [f"input {n!r} is defined but never used" for n in sorted(set(inputs) - used)]
    if USE.search(header_text.split("spec:", 1)[1]):
        problems.append("inputs are interpolated only after the header: none may be used inside spec:")
    for name, spec in inputs.items():
        spec = spec or {}
        unknown = set(spec) - INPUT_KEYS
        if unknown:
            problems.append(f"input {name!r}: unknown key(s) {sorted(unknown)}")
        kind = spec.get("type", "string")
        if kind not in TYPES:
            problems.append(f"input {name!r}: type {kind!r} is not one of {sorted(TYPES)}")
            continue
        if "default" in spec and spec["default"] is not None:
            default = spec["default"]
            if not isinstance(default, TYPES[kind]) or (kind == "number" and isinstance(default, bool)):
                problems.append(f"input {name!r}: default {default!r} is not a {kind}")
            if "options" in spec and default not in spec["options"]:
                problems.append(f"input {name!r}: default {default!r} is not among options {spec['options']}")
            if "regex" in spec and isinstance(default, str) and not re.search(spec["regex"], default):
                problems.append(f"input {name!r}: default {default!r} does not match its regex")
        for option in spec.get("options", []):
            if not isinstance(option, TYPES[kind]):
                problems.append(f"input {name!r}: option {option!r} is not a {kind}")
        if not str(spec.get("description", "")).strip():
            problems.append(f"input {name!r}: no description")
    return problems


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_component_inputs_are_consistent(path: Path) -> None:
    assert component_problems(path) == []


def test_the_checker_finds_what_gitlab_rejects(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "spec:\n  inputs:\n    a:\n      type: boolean\n      default: 'yes'\n      description: x\n"
        "    b:\n      default: c\n      options: [a, b]\n      description: x\n      requried: true\n"
        "    unused:\n      description: x\n"
        "---\njob:\n  script: [echo $[[ inputs.a ]] $[[ inputs.b ]] $[[ inputs.missing ]]]\n")
    found = "\n".join(component_problems(bad))
    for expected in ("'missing' is used but not defined", "'unused' is defined but never used",
                     "'a': default 'yes' is not a boolean", "'b': default 'c' is not among options",
                     "'b': unknown key(s) ['requried']"):
        assert expected in found


def test_plain_include_twin_has_the_same_inputs_and_jobs() -> None:
    for one, other in zip(documents(COMPONENT), documents(PLAIN), strict=True):
        assert yaml.safe_load(one) == yaml.safe_load(other)


def _header_and_job(path: Path = COMPONENT) -> tuple[dict[str, Any], str, dict[str, Any]]:
    header_text, body = documents(path)
    inputs = yaml.safe_load(header_text)["spec"]["inputs"]
    jobs = yaml.safe_load(body)
    assert len(jobs) == 1
    name, job = next(iter(jobs.items()))
    return inputs, name, job


def test_job_shape() -> None:
    inputs, name, job = _header_and_job()
    assert name == "$[[ inputs.job-name ]]"
    assert inputs["stage"]["default"] == "test"  # in GitLab's default stages (.pre build test deploy .post)
    assert job["script"] == ["sc-ci action"]
    assert job["image"]["entrypoint"] == [""]
    reports = job["artifacts"]["reports"]
    assert reports["dotenv"] == "sc-ci.env"
    assert reports["container_scanning"] == "$[[ inputs.output-dir ]]/gl-container-scanning-report.json"
    assert reports["cyclonedx"] == ["$[[ inputs.sbom-output ]]*.cdx.json"]
    assert job["artifacts"]["when"] == "always"
    assert "id_tokens" not in job  # GitLab honours it only in the project's own file: documented instead
    assert "id_tokens:" in COMPONENT.read_text(encoding="utf-8")


def test_every_action_input_is_a_component_input_and_only_input_variables_are_set() -> None:
    inputs, _, job = _header_and_job()
    declared = set(yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))["inputs"])
    assert set(inputs) == declared | {"job-name", "stage", "engine-image"}
    variables: dict[str, str] = job["variables"]
    assert not [k for k in variables if k.startswith("SC_CI_")], "a job variable would hide the user's SC_CI_*"
    for name in declared:
        assert variables[f"INPUT_{name.upper().replace('-', '_')}"] == f"$[[ inputs.{name} ]]"
    assert len(variables) == len(declared)
    for name in declared:  # "" means unset; a non-empty default only where the artifacts need a path
        assert inputs[name]["default"] in ("", "sc-ci-output", "sc-ci-output/sbom/"), name


def _job_env(values: dict[str, str]) -> dict[str, str]:
    """The job's environment as GitLab builds it: inputs interpolated (given values, else defaults)."""
    inputs, _, job = _header_and_job()
    chosen = {name: values.get(name, spec.get("default", "")) for name, spec in inputs.items()}
    env = {k: USE.sub(lambda m: str(chosen[m.group(1)]), v) for k, v in job["variables"].items()}
    return {**env, "GITLAB_CI": "true", "CI": "true"}


def test_defaults_leave_the_user_s_variables_and_config_in_charge(tmp_path: Path) -> None:
    env = _job_env({})
    env["SC_CI_SECURITY__SIGNING__ENABLED"] = "true"  # a project / group variable
    loaded = config.load(env=prepare_env(env), project_root=tmp_path)
    assert loaded.security.signing.enabled
    assert loaded.origin("signing.enabled") == "env"
    assert loaded.origin("policy.failOpen") == "default"
    assert loaded.runtime.output_dir == Path("sc-ci-output")


def test_given_inputs_reach_the_engine(tmp_path: Path) -> None:
    env = prepare_env(_job_env({"sign": "true", "fail-open": "false", "scan": "true", "scan-tools": "grype,trivy",
                                "fail-on": "high", "private-key": "env://COSIGN_PRIVATE_KEY", "dry-run": "true",
                                "images": "registry.example.com/a:1"}))
    loaded = config.load(env=env, project_root=tmp_path)
    sec = loaded.security
    assert sec.signing.enabled
    assert not sec.signing.keyless
    assert not sec.policy.fail_open
    assert [(t.name, t.fail_on) for t in sec.scan.tools] == [("grype", "high"), ("trivy", "high")]
    assert loaded.runtime.dry_run
    assert loaded.images == ("registry.example.com/a:1",)


def test_gitlab_registry_login_goes_to_ci_registry_only() -> None:
    base = {"GITLAB_CI": "true", "CI_REGISTRY": "registry.gitlab.example.com", "CI_REGISTRY_USER": "gitlab-ci-token",
            "CI_REGISTRY_PASSWORD": "job-token-value-1234567890", "INPUT_REGISTRY": "other.example.com/team"}
    env = prepare_env(base)
    assert (env["SC_CI_REGISTRY_HOST"], env["SC_CI_REGISTRY_USERNAME"]) == ("registry.gitlab.example.com",
                                                                           "gitlab-ci-token")
    assert env["SC_CI_REGISTRY_PASSWORD"] == "job-token-value-1234567890"
    job_token = prepare_env({**base, "CI_REGISTRY_PASSWORD": "", "CI_JOB_TOKEN": "ci-job-token-abcdefgh"})
    assert job_token["SC_CI_REGISTRY_PASSWORD"] == "ci-job-token-abcdefgh"
    own = prepare_env({**base, "INPUT_REGISTRY_USERNAME": "me", "INPUT_REGISTRY_PASSWORD": "mine-1234567890"})
    assert (own["SC_CI_REGISTRY_USERNAME"], own["SC_CI_REGISTRY_PASSWORD"]) == ("me", "mine-1234567890")
    assert "SC_CI_REGISTRY_HOST" not in own  # the user's credentials follow registry-host / registry
    assert "SC_CI_REGISTRY_USERNAME" not in prepare_env({**base, "GITLAB_CI": ""})


# ------------------------------------------------------------------------------------------ GitLab's schema


def _check_jsonschema() -> list[str] | None:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    if exe:
        return [exe]
    if os.environ.get("CI") == "true":
        pytest.fail("check-jsonschema is missing (pip install check-jsonschema; `make lint-ci` installs it)")
    return None


def test_each_document_validates_against_gitlab_s_schema(tmp_path: Path) -> None:
    cmd = _check_jsonschema()
    if cmd is None:
        pytest.skip("check-jsonschema not installed")
    files = []
    for path in FILES:
        for index, text in enumerate(documents(path)):
            part = tmp_path / f"{path.name.lstrip('.')}.{index}.yml"
            part.write_text(text, encoding="utf-8")
            files.append(str(part))
    files += [str(p) for p in sorted((ROOT / "examples" / "gitlab").glob("*.yml"))]
    done = subprocess.run([*cmd, "--builtin-schema", "vendor.gitlab-ci", *files], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
