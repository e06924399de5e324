"""The security model: documented defaults really applied, key rules, shorthands, failure policy."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from pydantic import BaseModel

from sc_ci.config import ACTION_INPUTS, KeyFile, KeyUri, RuntimeSettings, SecretRef, SecurityConfig
from sc_ci.config.diagnose import field_kind, keys_of, section_of
from sc_ci.config.loader import load


def model(data: Mapping[str, object]) -> SecurityConfig:
    return SecurityConfig.model_validate(data)


def test_empty_block_applies_every_documented_default() -> None:
    cfg = model({})
    assert not cfg.signing.enabled
    assert cfg.signing.provider == "sigstore"
    assert cfg.signing.keyless
    assert cfg.signing.verify.enabled
    assert cfg.signing.verify.oidc_issuer is None
    assert not cfg.sbom.enabled
    assert cfg.sbom.format == "cyclonedx-json"
    assert cfg.sbom.generator == "syft"
    assert cfg.sbom.attach.enabled
    assert cfg.sbom.attach.sign
    assert cfg.sbom.output.local is None
    assert cfg.sbom.output.registry
    assert not cfg.provenance.enabled
    assert cfg.provenance.version == "1.0"
    assert cfg.provenance.builder.id is None
    assert not cfg.provenance.metadata.include_env
    assert cfg.provenance.metadata.include_materials
    assert not cfg.scan.enabled
    assert [t.name for t in cfg.scan.tools] == ["grype"]
    assert not cfg.scan.tools[0].required
    assert cfg.scan.tools[0].fail_on is None
    assert not cfg.scan.upload.defectdojo.enabled
    assert cfg.policy.fail_open


def test_bare_signing_enabled_is_keyless_with_verification_on() -> None:
    signing = model({"signing": {"enabled": True}}).signing
    assert signing.enabled
    assert signing.keyless
    assert signing.verify.enabled
    assert signing.private_key is None


def test_loaded_from_env_alone_gets_the_same_defaults() -> None:
    cfg = load(env={"INPUT_SIGN": "true"}).security
    assert cfg == model({"signing": {"enabled": True}})


def test_private_key_without_keyless_means_key_based_signing() -> None:
    signing = model({"signing": {"enabled": True, "privateKey": "${secret:cosign-private-key}"}}).signing
    assert signing.keyless is False
    assert signing.private_key == SecretRef("secret", "cosign-private-key")


def test_public_key_alone_keeps_keyless_for_verify_only() -> None:
    signing = model({"signing": {"publicKey": "cosign.pub"}}).signing
    assert signing.keyless
    assert signing.public_key == KeyFile("cosign.pub")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${secret:cosign-private-key}", SecretRef("secret", "cosign-private-key")),
        ("${env:COSIGN_KEY}", SecretRef("env", "COSIGN_KEY")),
        ("env://COSIGN_KEY", KeyUri("env://COSIGN_KEY")),
        ("awskms:///arn:aws:kms:us-east-1:1:key/abc", KeyUri("awskms:///arn:aws:kms:us-east-1:1:key/abc")),
        ("gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", None),
        ("azurekms://vault.vault.azure.net/key", None),
        ("hashivault://transit-key", None),
        ("k8s://ns/cosign", None),
        ("keys/cosign.key", KeyFile("keys/cosign.key")),
    ],
)
def test_private_key_accepts_paths_uris_and_references(text: str, expected: object) -> None:
    key = model({"signing": {"privateKey": text}}).signing.private_key
    assert key == (expected if expected is not None else KeyUri(text))
    assert str(key) == text


def test_key_fields_dump_back_to_the_text_written() -> None:
    data = {"signing": {"privateKey": "${secret:k}", "publicKey": "https://example.com/cosign.pub"}}
    dumped = model(data).model_dump(mode="json", by_alias=True)
    assert dumped["signing"]["privateKey"] == "${secret:k}"
    assert dumped["signing"]["publicKey"] == "https://example.com/cosign.pub"


def test_sbom_attach_shorthand_from_the_spec() -> None:
    assert model({"sbom": {"attach": False}}).sbom.attach.enabled is False
    assert model({"sbom": {"attach": True}}).sbom.attach.sign is True


def test_sbom_with_local_output_only_is_allowed() -> None:
    sbom = model({"sbom": {"enabled": True, "output": {"registry": False, "local": "./sbom/"}}}).sbom
    assert not sbom.to_registry
    assert sbom.output.local == "./sbom/"


def test_fail_on_is_case_insensitive_and_stored_lower() -> None:
    tools = model({"scan": {"tools": [{"name": "Trivy", "failOn": "CRITICAL"}]}}).scan.tools
    assert (tools[0].name, tools[0].fail_on) == ("trivy", "critical")


def test_scan_fail_on_is_inherited_by_tools_without_their_own() -> None:
    scan = model(
        {"scan": {"failOn": "High", "tools": [{"name": "grype", "failOn": "low"}, {"name": "trivy"}]}}
    ).scan
    assert [(t.name, t.fail_on) for t in scan.tools] == [("grype", "low"), ("trivy", "high")]
    assert model({"scan": {"failOn": "medium"}}).scan.tools[0].fail_on == "medium"


@pytest.mark.parametrize("version", ["1.0", "1", 1, 1.0])
def test_provenance_version_forms(version: object) -> None:
    assert model({"provenance": {"version": version}}).provenance.version == "1.0"


def test_fail_open_policy_and_per_feature_override() -> None:
    cfg = model({"policy": {"failOpen": False}, "scan": {"failOpen": True}})
    assert cfg.fail_open("scan") is True
    assert cfg.fail_open("signing") is False
    assert cfg.fail_open("verify") is False
    assert model({"signing": {"failOpen": False}}).fail_open("verify") is False
    assert model({}).fail_open("provenance") is True
    with pytest.raises(ValueError, match="unknown feature"):
        cfg.fail_open("upload")  # type: ignore[arg-type]


def test_enabled_features_in_run_order() -> None:
    cfg = model({"signing": {"enabled": True}, "scan": {"enabled": True}, "provenance": {"enabled": True}})
    assert cfg.enabled_features() == ("scan", "signing", "provenance", "verify")


def test_model_is_frozen() -> None:
    cfg = model({})
    with pytest.raises(ValueError, match="frozen"):
        cfg.signing.enabled = True  # type: ignore[misc]


def test_blank_optional_strings_mean_unset() -> None:
    verify = model({"signing": {"verify": {"oidcIssuer": "", "identityRegexp": " "}}}).signing.verify
    assert verify.oidc_issuer is None
    assert verify.identity_regexp is None


def test_issuer_kept_exactly_as_written() -> None:
    issuer = "https://token.actions.githubusercontent.com"
    assert model({"signing": {"verify": {"oidcIssuer": issuer}}}).signing.verify.oidc_issuer == issuer


def _key_paths(model: type[BaseModel], prefix: str) -> list[str]:
    paths = []
    for key, field in keys_of(model).items():
        sub = section_of(field.annotation)
        if sub is not None and field_kind(field) == "section":
            paths += _key_paths(sub, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
            if sub is not None:
                paths += _key_paths(sub, f"{prefix}{key}[].")
    return paths


def test_reference_doc_lists_every_key_and_input() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    for path in _key_paths(SecurityConfig, ""):
        assert f"`{path}`" in doc, path
    for spec in ACTION_INPUTS:
        assert f"| `{spec.name}` |" in doc, spec.name
    for name in RuntimeSettings.model_fields:
        assert f"`SC_CI_{name.upper()}`" in doc, name


def test_reference_doc_yaml_examples_are_valid(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in doc.split("```yaml\n")[1:]]
    examples = [b for b in blocks if b.startswith(("security:", "# .sc/stacks"))]
    assert len(examples) >= 4
    for index, text in enumerate(examples):
        path = tmp_path / f"example{index}.yaml"
        path.write_text(text, encoding="utf-8")
        load(env={}, config_path=path)
