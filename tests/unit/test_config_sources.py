"""Sources and precedence (flags > SC_CI_* > INPUT_* > YAML > defaults), origins, runtime knobs, secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sc_ci.config import ACTION_INPUTS, RuntimeSettings, SecretRef, load
from sc_ci.config.diagnose import canonical
from sc_ci.config.model import SecurityConfig
from sc_ci.errors import ConfigError
from sc_ci.secrets import mask, reset_for_tests


@pytest.fixture(autouse=True)
def _clean_masker() -> Iterator[None]:
    yield
    reset_for_tests()


def write(tmp_path: Path, text: str, name: str = "security.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


YAML = """\
security:
  signing:
    enabled: false
    verify:
      oidcIssuer: https://token.actions.githubusercontent.com
  sbom:
    format: spdx-json
  scan:
    enabled: true
    tools:
      - name: grype
        failOn: critical
      - name: trivy
  provenance:
    enabled: true
"""


def test_precedence_across_all_five_sources(tmp_path: Path) -> None:
    env = {
        "INPUT_SIGN": "true",
        "INPUT_SBOM-FORMAT": "syft-json",
        "INPUT_SCAN": "false",
        "SC_CI_SECURITY__SIGNING__ENABLED": "false",
        "SC_CI_SECURITY__SBOM__FORMAT": "cyclonedx-json",
    }
    cfg = load(env=env, flags={"signing.enabled": True}, config_path=write(tmp_path, YAML))
    sec = cfg.security
    assert (sec.signing.enabled, cfg.origin("signing.enabled")) == (True, "flag")
    assert (sec.sbom.format, cfg.origin("sbom.format")) == ("cyclonedx-json", "env")
    assert (sec.scan.enabled, cfg.origin("scan.enabled")) == (False, "input")
    assert (sec.provenance.enabled, cfg.origin("security.provenance.enabled")) == (True, "yaml")
    assert (sec.policy.fail_open, cfg.origin("policy.failOpen")) == (True, "default")


def test_deep_merge_keeps_sibling_keys_from_lower_sources(tmp_path: Path) -> None:
    cfg = load(env={"SC_CI_SECURITY__SIGNING__VERIFY__ENABLED": "no"}, config_path=write(tmp_path, YAML))
    verify = cfg.security.signing.verify
    assert verify.enabled is False
    assert verify.oidc_issuer == "https://token.actions.githubusercontent.com"
    assert cfg.origin("signing.verify.enabled") == "env"
    assert cfg.origin("signing.verify.oidcIssuer") == "yaml"
    assert cfg.origin("signing.verify") == "env"  # a section reports its highest source


def test_lists_are_replaced_whole_not_merged(tmp_path: Path) -> None:
    cfg = load(env={"INPUT_SCAN-TOOLS": "trivy"}, config_path=write(tmp_path, YAML))
    assert [t.name for t in cfg.security.scan.tools] == ["trivy"]
    assert cfg.origin("scan.tools") == "input"
    assert cfg.origin("scan.tools[0].name") == "input"


def test_fail_on_input_applies_to_every_tool_over_yaml_thresholds(tmp_path: Path) -> None:
    cfg = load(env={"INPUT_FAIL-ON": "HIGH"}, config_path=write(tmp_path, YAML))
    assert [(t.name, t.fail_on) for t in cfg.security.scan.tools] == [("grype", "high"), ("trivy", "high")]


def test_tool_threshold_origin_follows_where_it_came_from(tmp_path: Path) -> None:
    cfg = load(env={"INPUT_FAIL-ON": "high"}, config_path=write(tmp_path, YAML))
    assert cfg.origin("scan.tools[0].failOn") == "input"
    assert cfg.origin("scan.tools[1].name") == "yaml"
    assert load(env={"INPUT_FAIL-ON": "low"}).origin("scan.tools[0].failOn") == "input"
    assert load(env={}, config_path=write(tmp_path, YAML)).origin("scan.tools[0].failOn") == "yaml"


def test_yaml_tools_may_be_plain_names(tmp_path: Path) -> None:
    path = write(tmp_path, "security:\n  scan:\n    failOn: high\n    tools: [grype, Trivy]\n")
    tools = load(env={"INPUT_FAIL-ON": "low"}, config_path=path).security.scan.tools
    assert [(t.name, t.fail_on) for t in tools] == [("grype", "low"), ("trivy", "low")]
    tools = load(env={}, config_path=path).security.scan.tools
    assert [(t.name, t.fail_on) for t in tools] == [("grype", "high"), ("trivy", "high")]


def test_fail_on_from_a_lower_source_only_fills_gaps(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        YAML.replace("    enabled: true\n    tools:", "    enabled: true\n    failOn: low\n    tools:"),
    )
    cfg = load(env={"INPUT_SCAN-TOOLS": "grype"}, flags={"scan.tools": ["trivy"]}, config_path=path)
    assert [(t.name, t.fail_on) for t in cfg.security.scan.tools] == [("trivy", "low")]
    cfg = load(env={}, config_path=path)
    assert [(t.name, t.fail_on) for t in cfg.security.scan.tools] == [("grype", "critical"), ("trivy", "low")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("1", True),
        ("false", False),
        ("NO", False),
        ("0", False),
    ],
)
def test_booleans_accept_true_false_yes_no_1_0(raw: str, expected: bool) -> None:
    assert load(env={"INPUT_SBOM": raw}).security.sbom.enabled is expected
    assert load(env={"SC_CI_SECURITY__SBOM__ENABLED": raw}).security.sbom.enabled is expected


def test_empty_inputs_mean_not_set() -> None:
    cfg = load(env={"INPUT_SIGN": "", "INPUT_SBOM-FORMAT": "  ", "INPUT_FAIL-ON": ""})
    assert cfg.origin("signing.enabled") == "default"
    assert cfg.security.sbom.format == "cyclonedx-json"


def test_env_keys_match_case_and_underscore_insensitively() -> None:
    env = {
        "SC_CI_SECURITY__SIGNING__PRIVATE_KEY": "cosign.key",
        "sc_ci_security__provenance__metadata__includeenv": "yes",
        "SC_CI_SECURITY__SCAN__UPLOAD__DEFECTDOJO__API_KEY": "${secret:dd}",
    }
    sec = load(env=env).security
    assert str(sec.signing.private_key) == "cosign.key"
    assert sec.signing.keyless is False
    assert sec.provenance.metadata.include_env is True
    assert sec.scan.upload.defectdojo.api_key == SecretRef("secret", "dd")


def test_sbom_attach_shorthand_in_env_and_yaml(tmp_path: Path) -> None:
    assert load(env={"SC_CI_SECURITY__SBOM__ATTACH": "false"}).security.sbom.attach.enabled is False
    cfg = load(env={}, config_path=write(tmp_path, "security:\n  sbom:\n    attach: false\n"))
    assert cfg.security.sbom.attach.enabled is False
    assert cfg.origin("sbom.attach.enabled") == "yaml"


def test_every_action_input_maps_to_a_config_key_or_runtime_field() -> None:
    names = [spec.name for spec in ACTION_INPUTS]
    assert len(names) == len(set(names))
    for spec in ACTION_INPUTS:
        area, _, rest = spec.target.partition(".")
        if area == "security":
            canonical(SecurityConfig, rest.split("."), where=spec.name)
        else:
            assert area == "runtime"
            assert rest in RuntimeSettings.model_fields


def test_all_security_inputs_reach_the_model() -> None:
    env = {
        "INPUT_SIGN": "true",
        "INPUT_KEYLESS": "false",
        "INPUT_PRIVATE-KEY": "env://COSIGN_KEY",
        "INPUT_PUBLIC-KEY": "cosign.pub",
        "INPUT_VERIFY": "true",
        "INPUT_OIDC-ISSUER": "https://gitlab.example.com",
        "INPUT_IDENTITY-REGEXP": "^https://gitlab.example.com/g/p//.*$",
        "INPUT_SBOM": "yes",
        "INPUT_SBOM-FORMAT": "spdx-json",
        "INPUT_PROVENANCE": "1",
        "INPUT_SCAN": "true",
        "INPUT_SCAN-TOOLS": "grype, trivy",
        "INPUT_FAIL-ON": "medium",
        "INPUT_FAIL-OPEN": "false",
    }
    cfg = load(env=env)
    sec = cfg.security
    assert sec.signing.enabled
    assert not sec.signing.keyless
    assert str(sec.signing.private_key) == "env://COSIGN_KEY"
    assert sec.signing.verify.oidc_issuer == "https://gitlab.example.com"
    assert sec.sbom.enabled
    assert sec.sbom.format == "spdx-json"
    assert sec.provenance.enabled
    assert [(t.name, t.fail_on) for t in sec.scan.tools] == [("grype", "medium"), ("trivy", "medium")]
    assert sec.fail_open("scan") is False
    assert {cfg.origin(p) for p in ("signing.keyless", "scan.failOn", "policy.failOpen")} == {"input"}


def test_input_names_with_underscores_are_tolerated() -> None:
    assert load(env={"INPUT_SBOM_FORMAT": "syft-json"}).security.sbom.format == "syft-json"


def test_flags_accept_security_prefix_and_runtime_keys() -> None:
    cfg = load(env={}, flags={"security.sbom.enabled": True, "dryRun": True, "workers": 8, "images": ["a:1"]})
    assert cfg.security.sbom.enabled
    assert cfg.origin("sbom.enabled") == "flag"
    assert cfg.runtime.dry_run
    assert cfg.runtime.workers == 8
    assert cfg.images == ("a:1",)


def test_flags_given_as_none_are_ignored() -> None:
    cfg = load(env={"INPUT_SIGN": "true"}, flags={"signing.enabled": None})
    assert cfg.security.signing.enabled
    assert cfg.origin("signing.enabled") == "input"


def test_runtime_settings_layering() -> None:
    env = {
        "INPUT_STACK": "from-input",
        "SC_CI_STACK": "from-env",
        "INPUT_ENVIRONMENT": "prod",
        "INPUT_IMAGES": "a:1\nb:2,c:3",
    }
    runtime = RuntimeSettings.from_env(env)
    assert (runtime.stack, runtime.environment, runtime.images) == ("from-env", "prod", ("a:1", "b:2", "c:3"))
    assert RuntimeSettings.from_env(env, {"stack": "from-flag"}).stack == "from-flag"
    assert RuntimeSettings.from_env({"INPUT_WORKERS": "9"}).workers == 4  # not an action input


def test_runtime_knobs_from_sc_ci_env() -> None:
    runtime = load(env={"SC_CI_WORKERS": "2", "SC_CI_LOG_LEVEL": "DEBUG", "SC_CI_DRY_RUN": "yes"}).runtime
    assert (runtime.workers, runtime.log_level, runtime.dry_run) == (2, "debug", True)


def test_os_environ_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SC_CI_SECURITY__SIGNING__ENABLED", "true")
    monkeypatch.setenv("SC_CI_WORKERS", "7")
    monkeypatch.setenv("INPUT_SIGN", "true")
    cfg = load(env={})
    assert not cfg.security.signing.enabled
    assert cfg.runtime.workers == 4
    assert RuntimeSettings().workers == 4


def test_load_arguments_beat_env_for_config_stack_environment(tmp_path: Path) -> None:
    write(tmp_path, "security:\n  sbom:\n    enabled: true\n", "a.yaml")
    cfg = load(env={"SC_CI_CONFIG": "missing.yaml"}, config_path="a.yaml", project_root=tmp_path)
    assert cfg.security.sbom.enabled
    assert cfg.runtime.config == tmp_path / "a.yaml"


def test_describe_origin_points_at_file_line_column(tmp_path: Path) -> None:
    cfg = load(env={"INPUT_SIGN": "true"}, config_path=write(tmp_path, YAML))
    assert cfg.describe_origin("sbom.format").endswith("security.yaml:7:5")
    assert cfg.describe_origin("scan.tools[1].name").endswith("security.yaml:13:9")
    assert cfg.describe_origin("signing.enabled") == "set by action input 'sign' (INPUT_SIGN)"
    assert cfg.describe_origin("policy") == "default"
    with pytest.raises(KeyError):
        cfg.origin("signing.nope")


# ---------------------------------------------------------------------------------------------- secrets


def test_secret_ref_env_exact_name_first() -> None:
    ref = SecretRef("secret", "cosign-private-key")
    env = {"cosign-private-key": "exact-value", "COSIGN_PRIVATE_KEY": "normalized-value"}
    assert ref.resolve(env).reveal() == "exact-value"


def test_secret_ref_normalized_env_name() -> None:
    secret = SecretRef("secret", "cosign-private-key").resolve({"COSIGN_PRIVATE_KEY": "pem-data"})
    assert secret.reveal() == "pem-data"
    assert str(secret) == "***"
    assert "pem-data" not in repr(secret)
    assert mask("key is pem-data") == "key is ***"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("s.yaml", "COSIGN_PRIVATE_KEY: |\n  line1\n  line2\n"),
        ("s.json", json.dumps({"cosign-private-key": "line1\nline2"})),
        ("s.env", 'export COSIGN_PRIVATE_KEY="line1\\nline2"\n# comment\nOTHER=x\n'),
    ],
)
def test_secret_ref_from_secrets_file(tmp_path: Path, name: str, text: str) -> None:
    path = write(tmp_path, text, name)
    secret = SecretRef("secret", "cosign-private-key").resolve({}, path)
    assert secret.reveal().strip() == "line1\nline2"


def test_env_ref_ignores_the_secrets_file(tmp_path: Path) -> None:
    path = write(tmp_path, "TOKEN: from-file\n", "s.yaml")
    with pytest.raises(ConfigError):
        SecretRef("env", "TOKEN").resolve({}, path)


def test_missing_secret_names_every_variable_tried(tmp_path: Path) -> None:
    path = write(tmp_path, "OTHER: x\n", "s.yaml")
    with pytest.raises(ConfigError) as info:
        SecretRef("secret", "cosign-private-key").resolve({"COSIGN_PRIVATE_KEY": ""}, path, path="security.x")
    err = info.value
    assert err.exit_code == 2
    assert err.path == "security.x"
    text = err.diagnostics()
    assert "cosign-private-key" in text
    assert "COSIGN_PRIVATE_KEY (set but empty)" in text
    assert str(path) in text
    assert "secrets.COSIGN_PRIVATE_KEY" in text


def test_loaded_config_resolves_and_checks_secrets(tmp_path: Path) -> None:
    write(tmp_path, "DD_TOKEN=abc123\n", "secrets.env")
    env = {
        "SC_CI_SECRETS_FILE": "secrets.env",
        "INPUT_SCAN": "true",
        "SC_CI_SECURITY__SCAN__UPLOAD__DEFECTDOJO__ENABLED": "true",
        "SC_CI_SECURITY__SCAN__UPLOAD__DEFECTDOJO__URL": "https://dd.example.com",
        "SC_CI_SECURITY__SCAN__UPLOAD__DEFECTDOJO__APIKEY": "${secret:dd-token}",
    }
    cfg = load(env=env, project_root=tmp_path)
    cfg.check_secrets()
    assert cfg.secret("scan.upload.defectdojo.apiKey").reveal() == "abc123"
    bad = load(env={**env, "SC_CI_SECRETS_FILE": ""}, project_root=tmp_path)
    with pytest.raises(ConfigError, match="dd-token"):
        bad.check_secrets()


def test_secret_from_env_uri_and_key_file(tmp_path: Path) -> None:
    write(tmp_path, "file-token\n", "token.txt")
    env = {
        "INPUT_PRIVATE-KEY": "env://MY_KEY",
        "MY_KEY": "k-value",
        "SC_CI_SECURITY__SCAN__UPLOAD__DEFECTDOJO__APIKEY": "token.txt",
    }
    cfg = load(env=env, project_root=tmp_path)
    assert cfg.secret("signing.privateKey").reveal() == "k-value"
    assert cfg.secret("scan.upload.defectdojo.apiKey").reveal() == "file-token"
    with pytest.raises(ConfigError, match="not a value"):
        cfg.secret("signing.publicKey")
