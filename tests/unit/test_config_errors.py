"""Every bad configuration is a ConfigError (exit code 2) naming the key path and giving the fix."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from sc_ci.config import load
from sc_ci.errors import ConfigError


def load_error(**kwargs: object) -> ConfigError:
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as info:
        load(**kwargs)  # type: ignore[arg-type]
    return info.value


def yaml_error(tmp_path: Path, body: str) -> ConfigError:
    path = tmp_path / "security.yaml"
    path.write_text("security:\n" + textwrap.indent(textwrap.dedent(body), "  "), encoding="utf-8")
    return load_error(config_path=path)


def check(err: ConfigError, path: str, fix: str) -> str:
    """The contract: exit code 2, the key path on the error and in the text, and a fix."""
    text = err.diagnostics()
    assert err.exit_code == 2
    assert err.path == path, text
    assert path in text, text
    assert "fix:" in text, text
    assert fix in text, text
    return text


# (id, YAML under `security:`, expected key path, a fragment of the expected fix)
YAML_CASES = [
    ("unknown-section", "signng:\n  enabled: true\n", "security.signng", "signing:"),
    ("unknown-depth-2", "signing:\n  enabeld: true\n", "security.signing.enabeld", "enabled: true"),
    (
        "unknown-depth-3",
        "signing:\n  verify:\n    identityRegex: x\n",
        "security.signing.verify.identityRegex",
        "identityRegexp: x",
    ),
    (
        "unknown-depth-4",
        "scan:\n  upload:\n    defectdojo:\n      apikey: ${secret:dd}\n",
        "security.scan.upload.defectdojo.apikey",
        "apiKey:",
    ),
    (
        "unknown-in-list-item",
        "scan:\n  tools:\n    - name: grype\n      fail_on: high\n",
        "security.scan.tools[0].fail_on",
        "failOn: high",
    ),
    ("unknown-no-guess", "sbom:\n  zzz: 1\n", "security.sbom.zzz", "keys allowed under security.sbom"),
    ("bool-wrong-type", "signing:\n  enabled: sure\n", "security.signing.enabled", "enabled: true"),
    ("section-given-bool", "signing: true\n", "security.signing", "enabled: true"),
    ("list-given-string", "scan:\n  tools: grype\n", "security.scan.tools", "- name: grype"),
    ("string-given-number", "sbom:\n  output:\n    local: 5\n", "security.sbom.output.local", "local: '5'"),
    ("bad-sbom-format", "sbom:\n  format: cyclonedx-xml\n", "security.sbom.format", "format: cyclonedx-json"),
    ("bad-provider", "signing:\n  provider: notary\n", "security.signing.provider", "provider: sigstore"),
    ("bad-generator", "sbom:\n  generator: trivy\n", "security.sbom.generator", "generator: syft"),
    ("bad-scanner", "scan:\n  tools:\n    - name: snyk\n", "security.scan.tools[0].name", "name: grype"),
    (
        "bad-severity",
        "scan:\n  tools:\n    - name: trivy\n      failOn: severe\n",
        "security.scan.tools[0].failOn",
        "failOn: critical",
    ),
    (
        "missing-tool-name",
        "scan:\n  tools:\n    - required: true\n",
        "security.scan.tools[0].name",
        "name: grype",
    ),
    (
        "duplicate-scanner",
        "scan:\n  tools:\n    - name: grype\n    - name: Grype\n",
        "security.scan.tools",
        "list each scanner once",
    ),
    (
        "keyless-false-no-key",
        "signing:\n  keyless: false\n",
        "security.signing.privateKey",
        "privateKey: ${secret:",
    ),
    (
        "keyless-true-with-key",
        "signing:\n  keyless: true\n  privateKey: cosign.key\n",
        "security.signing.keyless",
        "keyless: false",
    ),
    (
        "defectdojo-no-url",
        "scan:\n  upload:\n    defectdojo:\n      enabled: true\n      apiKey: ${secret:dd}\n",
        "security.scan.upload.defectdojo.url",
        "url: https://defectdojo.example.com",
    ),
    (
        "defectdojo-no-api-key",
        "scan:\n  upload:\n    defectdojo:\n      enabled: true\n      url: https://dd.example.com\n",
        "security.scan.upload.defectdojo.apiKey",
        "apiKey: ${secret:defectdojo-api-key}",
    ),
    (
        "url-not-http",
        "scan:\n  upload:\n    defectdojo:\n      url: ftp://dd.example.com\n",
        "security.scan.upload.defectdojo.url",
        "https://",
    ),
    (
        "issuer-not-url",
        "signing:\n  verify:\n    oidcIssuer: github\n",
        "security.signing.verify.oidcIssuer",
        "https://",
    ),
    (
        "bad-regexp",
        "signing:\n  verify:\n    identityRegexp: '(oops'\n",
        "security.signing.verify.identityRegexp",
        "^https",
    ),
    (
        "provenance-version",
        'provenance:\n  version: "0.2"\n',
        "security.provenance.version",
        'version: "1.0"',
    ),
    (
        "embedded-reference",
        "signing:\n  privateKey: keys/${env:NAME}.key\n",
        "security.signing.privateKey",
        "make the whole value one reference",
    ),
    (
        "reference-in-plain-field",
        "sbom:\n  output:\n    local: ${env:SBOM_DIR}\n",
        "security.sbom.output.local",
        "write the value itself",
    ),
    (
        "unsupported-key-uri",
        "signing:\n  privateKey: gitlab://acme/app\n",
        "security.signing.privateKey",
        "env://",
    ),
    (
        "kms-as-api-key",
        "scan:\n  upload:\n    defectdojo:\n      apiKey: awskms:///alias/dd\n",
        "security.scan.upload.defectdojo.apiKey",
        "env://",
    ),
    (
        "sbom-goes-nowhere",
        "sbom:\n  enabled: true\n  output:\n    registry: false\n",
        "security.sbom.output",
        "local: ./sbom/",
    ),
    ("scan-without-tools", "scan:\n  enabled: true\n  tools: []\n", "security.scan.tools", "- name: grype"),
    ("bad-fail-open", "policy:\n  failOpen: maybe\n", "security.policy.failOpen", "failOpen: true"),
]


@pytest.mark.parametrize(("body", "path", "fix"), [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_bad_yaml_values(tmp_path: Path, body: str, path: str, fix: str) -> None:
    text = check(yaml_error(tmp_path, body), path, fix)
    assert "security.yaml:" in text  # the line:column where the bad value sits


def test_key_material_is_never_echoed(tmp_path: Path) -> None:
    err = yaml_error(tmp_path, "signing:\n  privateKey: |\n    -----BEGIN " + "PRIVATE KEY-----\n    c2VjcmV0\n")
    text = check(err, "security.signing.privateKey", "${secret:cosign-private-key}")
    assert "c2VjcmV0" not in text
    assert "c2VjcmV0" not in str(err.__cause__)


def test_misspelled_key_field_does_not_echo_its_value(tmp_path: Path) -> None:
    err = yaml_error(tmp_path, "signing:\n  privatekey: hunter2-secret\n")
    text = check(err, "security.signing.privatekey", "privateKey: '...'")
    assert "hunter2-secret" not in text
    assert "hunter2-secret" not in str(err.__cause__)


def test_all_errors_are_reported_not_just_the_first(tmp_path: Path) -> None:
    err = yaml_error(
        tmp_path, "signing:\n  enabeld: true\nsbom:\n  format: xml\nscan:\n  tools: [{name: snyk}]\n"
    )
    text = err.diagnostics()
    assert err.exit_code == 2
    assert "3 problems" in text
    for path in ("security.signing.enabeld", "security.sbom.format", "security.scan.tools[0].name"):
        assert path in text
    assert err.path == "security.signing.enabeld"


# ---------------------------------------------------------------------------------------------- YAML syntax


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("security:\n  signing:\n    enabled: [true\n", ":4:1"),
        ("security:\n  signing:\n  enabled: true\n   sbom: {}\n", ":4:"),
        ("security:\n  signing: {}\n  signing: {}\n", ":3:3"),
    ],
    ids=["unclosed-bracket", "bad-indent", "duplicate-key"],
)
def test_malformed_yaml_names_file_line_column(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    err = load_error(config_path=path)
    diag = err.diagnostics()
    assert err.exit_code == 2
    assert f"{path}{where}" in diag, diag
    assert "fix:" in diag, diag


@pytest.mark.parametrize(
    ("text", "path", "fix"),
    [
        ("securty:\n  signing: {}\n", "securty", "did you mean 'security'?"),
        ("signing:\n  enabled: true\n", "signing", "security:\n         signing:"),
    ],
    ids=["top-level-typo", "missing-security-wrapper"],
)
def test_bad_top_level_of_a_security_file(tmp_path: Path, text: str, path: str, fix: str) -> None:
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    check(load_error(config_path=tmp_path / "s.yaml"), path, fix)


# ---------------------------------------------------------------------------------------------- env & inputs


@pytest.mark.parametrize(
    ("env", "path", "fix"),
    [
        ({"INPUT_VERIFY": "maybe"}, "security.signing.verify.enabled", "verify: true"),
        ({"INPUT_SBOM-FORMAT": "xml"}, "security.sbom.format", "sbom-format: cyclonedx-json"),
        (
            {"SC_CI_SECURITY__SBOM__ENABLED": "on-ish"},
            "security.sbom.enabled",
            "SC_CI_SECURITY__SBOM__ENABLED=true",
        ),
        ({"SC_CI_SECURITY__SIGNING__ENABLD": "true"}, "security.signing.ENABLD", "security.signing.enabled"),
        ({"SC_CI_SECURITY__SIGNING": "true"}, "security.signing", "security.signing.enabled"),
        (
            {"SC_CI_SECURITY__SIGNING__ENABLED__X": "1"},
            "security.signing.enabled",
            "set security.signing.enabled",
        ),
        ({"SC_CI_DRY_RUN": "perhaps"}, "SC_CI_DRY_RUN", "correct or unset SC_CI_DRY_RUN"),
        ({"INPUT_FAIL-ON": "urgent"}, "security.scan.failOn", "fail-on: critical"),
    ],
    ids=[
        "input-bad-bool",
        "input-bad-enum",
        "env-bad-bool",
        "env-unknown-key",
        "env-section-as-value",
        "env-below-a-value",
        "runtime-bad-bool",
        "input-bad-severity",
    ],
)
def test_bad_env_and_inputs(env: Mapping[str, str], path: str, fix: str) -> None:
    check(load_error(env=env), path, fix)


def test_unknown_flag_suggests_the_key() -> None:
    check(
        load_error(flags={"signing.privatekey": "k", "sbom.formt": "x"}), "security.sbom.formt", "sbom.format"
    )


def test_unresolvable_secret(tmp_path: Path) -> None:
    cfg = load(env={"INPUT_SIGN": "true", "INPUT_PRIVATE-KEY": "${secret:cosign-private-key}"})
    with pytest.raises(ConfigError) as info:
        cfg.check_secrets()
    text = check(info.value, "security.signing.privateKey", "COSIGN_PRIVATE_KEY")
    assert "cosign-private-key, COSIGN_PRIVATE_KEY" in text


# ---------------------------------------------------------------------------------------------- project files


def _project(tmp_path: Path, client: str, compose: str | None = None) -> Path:
    (tmp_path / ".sc" / "stacks" / "app").mkdir(parents=True)
    (tmp_path / ".sc" / "stacks" / "app" / "client.yaml").write_text(
        textwrap.dedent(client), encoding="utf-8"
    )
    if compose is not None:
        (tmp_path / "compose.yaml").write_text(textwrap.dedent(compose), encoding="utf-8")
    return tmp_path


CLIENT = """\
stacks:
  prod:
    type: cloud-compose
    config:
      dockerComposeFile: ${git:root}/compose.yaml
      runs: [api]
"""


def test_missing_stack_names_the_path_looked_at(tmp_path: Path) -> None:
    root = _project(tmp_path, CLIENT)
    text = check(
        load_error(stack="ap", environment="prod", project_root=root), "stack", "did you mean 'app'?"
    )
    assert ".sc/stacks/ap/client.yaml" in text


def test_missing_environment_lists_the_defined_ones(tmp_path: Path) -> None:
    root = _project(tmp_path, CLIENT)
    text = check(
        load_error(stack="app", environment="prd", project_root=root), "stacks.prd", "did you mean 'prod'?"
    )
    assert "client.yaml" in text
    assert "environments defined: prod" in text


def test_missing_compose_file_names_the_path(tmp_path: Path) -> None:
    root = _project(tmp_path, CLIENT)
    err = load_error(stack="app", environment="prod", project_root=root)
    assert err.exit_code == 2
    assert f"{root}/compose.yaml" in err.diagnostics()
    assert "fix:" in err.diagnostics()


def test_run_service_missing_from_compose(tmp_path: Path) -> None:
    root = _project(tmp_path, CLIENT, "services:\n  app:\n    build: .\n")
    check(load_error(stack="app", environment="prod", project_root=root), "runs", "did you mean 'app'?")


def test_built_image_without_registry_or_version(tmp_path: Path) -> None:
    root = _project(tmp_path, CLIENT, "services:\n  api:\n    build: .\n")
    check(
        load_error(env={"INPUT_VERSION": "1"}, stack="app", environment="prod", project_root=root),
        "registry",
        "registry",
    )


def test_environment_security_block_errors_point_into_client_yaml(tmp_path: Path) -> None:
    client = CLIENT + "      security:\n        signing:\n          keyles: false\n"
    root = _project(tmp_path, client, "services:\n  api:\n    image: a/b:1\n")
    text = check(
        load_error(stack="app", environment="prod", project_root=root), "security.signing.keyles", "keyless"
    )
    assert "client.yaml:9:11" in text


def test_missing_config_file(tmp_path: Path) -> None:
    err = load_error(env={"SC_CI_CONFIG": "nope.yaml"}, project_root=tmp_path)
    assert err.exit_code == 2
    assert f"{tmp_path}/nope.yaml" in err.diagnostics()
    assert "fix:" in err.diagnostics()
