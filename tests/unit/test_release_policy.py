"""`sc-ci release policy` writes admission policies the real projects' CRD schemas accept (unknown fields
refused, not pruned) and their webhooks would admit, enforcing the release's signer and attestation types."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sc_ci import cli
from testbed import crds

IDENTITY = "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.4.0"
ISSUER = "https://token.actions.githubusercontent.com"
PUB = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmzmA0yMFZAixqGM6zkMjtSPOEbP/
rVSaFmN/2V/TkmLqFM7Sm1JdpXIuwLaIzyNd6WTPvJgNDbKg2oQOG6PeCA==
-----END PUBLIC KEY-----
"""


def _policy(fmt: str, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, object]:
    code = cli.main(["release", "policy", "--format", fmt, "-i", "reg.example.com/shop/api:1.4.0",
                     "-i", "reg.example.com/shop/web:1.4.0", "--sbom-format", "cyclonedx-json",
                     "--sbom-format", "spdx-json", "--builder-id", "https://ci.example.com/b", *extra], {})
    out = capsys.readouterr()
    assert code == 0, out.err
    document: dict[str, object] = yaml.safe_load(out.out)
    return document


@pytest.mark.parametrize("fmt", ["kyverno", "policy-controller"])
def test_keyless_policies_match_the_crd_schemas(fmt: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    document = _policy(fmt, capsys, "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER)
    assert crds.schema_errors(fmt, document) == []
    semantic = crds.kyverno_errors if fmt == "kyverno" else crds.policy_controller_errors
    assert semantic(document) == []
    text = yaml.safe_dump(document)
    for wanted in (IDENTITY, ISSUER, "https://cyclonedx.org/bom", "https://spdx.dev/Document",
                   "https://slsa.dev/provenance/v1", "https://cosign.sigstore.dev/attestation/vuln/v1",
                   "https://ci.example.com/b", "reg.example.com/shop/api@*", "reg.example.com/shop/web:*"):
        assert wanted in text, wanted


@pytest.mark.parametrize("fmt", ["kyverno", "policy-controller"])
def test_key_policies_carry_the_public_key(fmt: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cosign.pub").write_text(PUB)
    document = _policy(fmt, capsys, "--key", str(tmp_path / "cosign.pub"), "--no-tlog")
    assert crds.schema_errors(fmt, document) == []
    semantic = crds.kyverno_errors if fmt == "kyverno" else crds.policy_controller_errors
    assert semantic(document) == []
    assert "BEGIN PUBLIC KEY" in yaml.safe_dump(document)


def test_the_strict_schemas_do_fail() -> None:
    """The checks can fail: a misspelt field (which the API server would silently prune) is an error."""
    bad = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "x"},
           "spec": {"rules": [{"name": "r", "verifyImages": [{"imageReferences": ["a*"], "atestors": []}]}]}}
    assert any("atestors" in e for e in crds.schema_errors("kyverno", bad))
    bad_pc = {"apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy", "metadata": {"name": "x"},
              "spec": {"images": [{"glob": "a*"}], "authorities": [{"keyless": {"identities": []}}]}}
    assert crds.schema_errors("policy-controller", bad_pc) == []
    assert crds.policy_controller_errors(bad_pc)  # no url / ca-cert, no identity: the webhook refuses it


def test_a_public_key_that_is_not_pem_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cosign.pub").write_text("not a key\n::warning::x\n")
    code = cli.main(["release", "policy", "--format", "kyverno", "-i", "reg.example.com/a:1", "--key",
                     str(tmp_path / "cosign.pub")], {})
    out = capsys.readouterr()
    assert code == 2
    assert "::warning::x" not in out.out + out.err
