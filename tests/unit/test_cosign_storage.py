"""Pure parts of storage modes, KMS keys and idempotent signing: cosign argv per storage mode and major, key URIs
passed unchanged and shown masked, failure classification, the skip-if-signed decision, the config keys."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast, get_args

import pytest

from sc_ci import secrets
from sc_ci.config import ACTION_INPUTS, load
from sc_ci.config.model import SigningStorage
from sc_ci.errors import ConfigError, StepFailed, ToolError, VerificationFailed
from sc_ci.results.step import Outcome
from sc_ci.runner import Completed
from sc_ci.secrets import Secret
from sc_ci.signing.plan import SigningPlan
from sc_ci.signing.setup import sigstore_options
from sc_ci.signing.signers import CertificateIdentity, Key, Keyless, Verifier, key_from_reference, masked_key_uri
from sc_ci.steps import sign as sign_step
from sc_ci.steps import verify_signature
from sc_ci.tools.cosign import (
    EMPTY_ROOT_PLACEHOLDER,
    FORMATS,
    Cosign,
    Format,
    SignOptions,
    Storage,
    Verified,
    consumer_command,
    payload_format,
)
from sc_ci.tools.cosign_failures import classify

IMG = "registry.example.com/app@sha256:" + "b" * 64
V3, V2 = Cosign(Path("/bin/cosign"), "v3.1.2", {}), Cosign(Path("/bin/cosign"), "v2.6.4", {})
KEY, PUB = Key("cosign.key", label="cosign.key"), Key("cosign.pub", label="cosign.pub")
TOKEN = Keyless(Secret("eyJ.storage.token", "t"), "test")
WHO = CertificateIdentity(identity="dev@example.com", issuer="https://issuer.example")
PRIVATE = SignOptions(tlog=False, ct_log=False, trusted_root="/trust/tr.json", signing_config="/trust/sc.json",
                      config_fulcio_url="https://fulcio.example.com")


def _flags(argv: list[str], before: int) -> list[str]:
    """The flags after the signer flags (`before` leading items: binary, subcommand, --yes, signer)."""
    return argv[before:-1]


# ---- signing argv per storage mode and major -----------------------------------------------------------------


@pytest.mark.parametrize(("cosign", "storage", "expected"), [
    (V3, "legacy", [["--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false"]]),
    (V3, "referrers", [["--use-signing-config=false", "--tlog-upload=false"]]),
    (V3, "both", [["--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false"],
                  ["--use-signing-config=false", "--tlog-upload=false"]]),
    (V2, "legacy", [["--tlog-upload=false"]]),
    (V2, "referrers", [["--new-bundle-format=true", "--tlog-upload=false"]]),
    (V2, "both", [["--tlog-upload=false"], ["--new-bundle-format=true", "--tlog-upload=false"]]),
])
def test_key_signing_flags_per_storage_without_rekor(cosign: Cosign, storage: Storage,
                                                     expected: list[list[str]]) -> None:
    argvs = cosign.sign_argvs(IMG, KEY, SignOptions(tlog=False, storage=storage))
    assert [_flags(a, 5) for a in argvs] == expected
    assert all(a[:5] == ["/bin/cosign", "sign", "--yes", "--key", "cosign.key"] and a[-1] == IMG for a in argvs)


@pytest.mark.parametrize(("cosign", "storage", "expected"), [
    (V3, "legacy", ["--new-bundle-format=false", "--use-signing-config=false"]),  # public-good URLs built in
    (V3, "referrers", []),  # v3's defaults: bundle, TUF-provided signing config
    (V2, "legacy", []),
    (V2, "referrers", ["--new-bundle-format=true"]),
])
def test_key_signing_flags_public_sigstore(cosign: Cosign, storage: Storage, expected: list[str]) -> None:
    assert _flags(cosign.sign_argv(IMG, KEY, SignOptions(storage=storage)), 5) == expected


def test_keyless_private_sigstore_per_storage() -> None:
    """v3 bundles use the signing config; v3 legacy cannot (cosign refuses it) and takes its URLs like v2."""
    legacy, referrers = (SignOptions(**{**PRIVATE.__dict__, "storage": s}) for s in ("legacy", "referrers"))
    assert _flags(V3.sign_argv(IMG, TOKEN, legacy, "T"), 5) == [
        "--new-bundle-format=false", "--use-signing-config=false", "--fulcio-url=https://fulcio.example.com",
        "--tlog-upload=false", "--trusted-root", "/trust/tr.json"]
    assert _flags(V3.sign_argv(IMG, TOKEN, referrers, "T"), 5) == [
        "--signing-config", "/trust/sc.json", "--trusted-root", "/trust/tr.json"]
    assert _flags(V2.sign_argv(IMG, TOKEN, referrers, "T"), 5) == [
        "--new-bundle-format=true", "--fulcio-url=https://fulcio.example.com", "--tlog-upload=false",
        "--insecure-skip-verify=true", "--trusted-root", "/trust/tr.json"]
    assert _flags(V2.sign_argv(IMG, TOKEN, legacy, "T"), 5) == [
        "--fulcio-url=https://fulcio.example.com", "--tlog-upload=false", "--insecure-skip-verify=true",
        "--trusted-root", "/trust/tr.json"]
    with_rekor = SignOptions(rekor_url="https://rekor.example", storage="legacy")
    assert "--rekor-url=https://rekor.example" in V3.sign_argv(IMG, KEY, with_rekor)


def test_storage_unset_adds_no_format_flag_and_attestations_follow_the_setting() -> None:
    assert V3.formats(SignOptions()) == ("bundle",)
    assert V2.formats(SignOptions()) == ("legacy",)
    assert FORMATS["both"] == ("legacy", "bundle")
    assert not any("bundle-format" in a for a in V3.sign_argv(IMG, KEY, SignOptions()) + V2.sign_argv(
        IMG, KEY, SignOptions()))
    predicate = Path("p.json")
    legacy = SignOptions(tlog=False, storage="legacy")
    assert "--new-bundle-format=false" in V3.attest_argv(IMG, KEY, predicate, "cyclonedx", legacy)
    assert "--new-bundle-format=true" in V2.attest_argv(IMG, KEY, predicate, "cyclonedx",
                                                        SignOptions(storage="referrers"))
    assert "--new-bundle-format=true" not in V2.attest_argv(IMG, KEY, predicate, "cyclonedx", legacy)


def test_recursive_only_when_asked() -> None:
    assert V3.sign_argv(IMG, KEY, SignOptions(), recursive=True)[-2] == "--recursive"
    assert "--recursive" not in V3.sign_argv(IMG, KEY, SignOptions())
    assert all("--recursive" in a for a in V2.sign_argvs(IMG, KEY, SignOptions(storage="both"), recursive=True))


def test_storage_values_match_the_config_schema() -> None:
    assert get_args(Storage) == get_args(SigningStorage)


# ---- verification argv ----------------------------------------------------------------------------------------


def test_verify_reads_either_format_and_v3_can_insist_on_the_legacy_tag() -> None:
    opts = SignOptions(tlog=False, storage="legacy")
    assert "--new-bundle-format=false" in V3.verify_argv(IMG, PUB, opts, legacy_only=True)
    assert not any("bundle-format" in a for a in V3.verify_argv(IMG, PUB, opts))
    assert not any("bundle-format" in a for a in V2.verify_argv(IMG, PUB, opts, legacy_only=True))


def test_v2_key_verification_gets_an_empty_trusted_root_only_when_offline() -> None:
    offline = SignOptions(tlog=False)
    v2 = V2.verify_argv(IMG, PUB, offline, empty_root="/tmp/x/tr.json")
    assert v2[v2.index("--trusted-root") + 1] == "/tmp/x/tr.json"
    assert EMPTY_ROOT_PLACEHOLDER in V2.verify_argv(IMG, PUB, offline)  # dry runs show a placeholder
    assert "--trusted-root" not in V3.verify_argv(IMG, PUB, offline)  # v3 reads bundles with a key alone
    assert "--trusted-root" not in V2.verify_argv(IMG, PUB, SignOptions())  # online: TUF's trusted root
    configured = SignOptions(tlog=False, trusted_root="/trust/tr.json")
    assert V2.verify_argv(IMG, PUB, configured).count("--trusted-root") == 1
    assert EMPTY_ROOT_PLACEHOLDER not in V2.verify_argv(IMG, WHO, SignOptions(tlog=False))
    assert EMPTY_ROOT_PLACEHOLDER in V2.verify_attestation_argv(IMG, PUB, "cyclonedx", offline)


def test_v2_keyless_attestations_use_ca_roots_only_for_the_legacy_format() -> None:
    for storage, ca_roots in ((None, True), ("legacy", True), ("referrers", False), ("both", False)):
        opts = SignOptions(**{**PRIVATE.__dict__, "storage": storage})
        argv = V2.verify_attestation_argv(IMG, WHO, "cyclonedx", opts)
        assert ("--ca-roots" in argv) == ca_roots, storage
        assert ("--trusted-root" in argv) == (not ca_roots), storage


def test_payload_formats() -> None:
    def payload(kind: str | None) -> dict[str, object]:
        return {"critical": {"image": {"docker-manifest-digest": "sha256:x"}, **({"type": kind} if kind else {})}}

    assert payload_format(payload("cosign container image signature")) == "legacy"
    assert payload_format(payload("https://sigstore.dev/cosign/sign/v1")) == "bundle"
    assert payload_format(payload("https://cyclonedx.org/bom")) is None  # an attestation, not a signature
    assert payload_format(payload(None)) == "legacy"


# ---- KMS and other key URIs -------------------------------------------------------------------------------------

KMS_URIS = ["awskms:///alias/release", "awskms://localhost:4566/arn:aws:kms:us-east-1:000000000000:key/1234",
            "gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
            "azurekms://release-vault.vault.azure.net/release", "hashivault://release", "k8s://ci/cosign"]


@pytest.mark.parametrize("uri", KMS_URIS)
@pytest.mark.parametrize("cosign", [V3, V2], ids=["v3", "v2"])
def test_kms_uri_is_passed_to_cosign_unchanged(uri: str, cosign: Cosign) -> None:
    key = key_from_reference(uri, {}, public=False)
    assert key.is_kms
    assert key.label == uri  # nothing to hide in it
    for argv in cosign.sign_argvs(IMG, key, SignOptions(storage="both")):
        assert argv[3:5] == ["--key", uri]
    assert cosign.verify_argv(IMG, key, SignOptions())[2:4] == ["--key", uri]
    assert cosign.attest_argv(IMG, key, Path("p.json"), "cyclonedx", SignOptions())[3:5] == ["--key", uri]
    assert consumer_command(IMG, key, SignOptions()) == f"cosign verify --key {uri} {IMG}"


def test_kms_provider_settings_reach_cosign_only_for_kms_keys() -> None:
    caller = {"PATH": "/bin", "VAULT_ADDR": "http://vault:8200", "VAULT_TOKEN": "hvs.x", "AWS_REGION": "eu-west-1",
              "GOOGLE_APPLICATION_CREDENTIALS": "/g.json", "AZURE_CLIENT_ID": "c", "KUBECONFIG": "/k"}
    cosign = Cosign(Path("/bin/cosign"), "3.1.2", caller)
    env = cosign.env_for(key_from_reference("hashivault://release", caller, public=False))
    assert {k: env[k] for k in caller if k != "PATH"} == {k: v for k, v in caller.items() if k != "PATH"}
    plain = cosign.env_for(KEY)
    assert not any(k in plain for k in ("VAULT_TOKEN", "AWS_REGION", "AZURE_CLIENT_ID", "KUBECONFIG"))


@pytest.mark.parametrize(("uri", "shown", "hidden"), [
    ("hashivault://release?token=hvs.QUERYSECRET1", "hashivault://release?token=***", ["hvs.QUERYSECRET1"]),
    ("awskms://AKIAUSER:SECRETKEY99@localhost:4566/alias/release", "awskms://***@localhost:4566/alias/release",
     ["AKIAUSER:SECRETKEY99", "SECRETKEY99"]),
    ("gcpkms://projects/p/cryptoKeys/k?access_token=ya29.TOKEN&flag", "gcpkms://projects/p/cryptoKeys/k"
     "?access_token=***&flag", ["ya29.TOKEN"]),
    ("azurekms://vault.example/key#fragmentsecret", "azurekms://vault.example/key#***", ["fragmentsecret"]),
    ("k8s://ns/name", "k8s://ns/name", []),
    ("pkcs11:token=hsm;object=release?module-path=/lib/p11.so&pin-value=123456",
     "pkcs11:token=hsm;object=release?module-path=***&pin-value=***", ["123456"]),
])
def test_credentials_in_key_uris_are_masked(uri: str, shown: str, hidden: list[str]) -> None:
    try:
        assert masked_key_uri(uri) == shown
        key = key_from_reference(uri, {}, public=False)
        assert key.ref == uri  # cosign still gets the URI as written
        assert key.label == shown
        for value in hidden:  # registered: any log line (dry-run argv, cosign's errors) masks them
            assert value not in secrets.mask(f"cosign sign --key {uri}: GET {uri} failed")
    finally:
        secrets.reset_for_tests()


# ---- failure classification -----------------------------------------------------------------------------------


def _failed(stderr: str, code: int = 1) -> Completed:
    return Completed(("cosign",), code, "", stderr, 0.1)


def test_kms_failures_name_the_key_and_the_providers_fix() -> None:
    refused = _failed("Error: signing [img]: signing digest: determining key type: public key: Error making API "
                      "request.\n\nURL: GET http://127.0.0.1:8200/v1/transit/keys/release\nCode: 403. Errors:\n\n"
                      "* permission denied\n")
    error = classify(refused, IMG, "signing", kms="hashivault://release")
    assert isinstance(error, StepFailed)
    assert error.what == f"signing {IMG}: the KMS refused or could not find the key hashivault://release"
    assert "transit/keys/release" in error.why
    assert "VAULT_TOKEN" in error.fix
    down = _failed('Error: getting public key: Get "http://127.0.0.1:9/v1/transit/keys/release": dial tcp '
                   "127.0.0.1:9: connect: connection refused\n")
    assert "could not reach the KMS holding hashivault://release" in classify(down, IMG, "signing",
                                                                              kms="hashivault://release").what
    gcp = _failed("Error: reading key: kms get: new gcp kms client: credentials: could not find default credentials")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in classify(gcp, IMG, "signing", kms=KMS_URIS[2]).fix
    k8s = _failed("Error: reading key: unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST must be "
                  "defined")
    assert "KUBECONFIG" in classify(k8s, IMG, "signing", kms="k8s://ci/cosign").fix
    # a registry failure with a KMS key is still a registry failure
    denied = _failed("Error: PUT https://reg/v2/app/manifests/sha256-x.sig: DENIED: requested access denied")
    assert "registry denied access" in classify(denied, IMG, "signing", kms="hashivault://release").what


def test_storage_failures_of_cosign_v2() -> None:
    no_root = _failed("Error: trusted root is required when using new bundle format\n")
    error = classify(no_root, IMG, "verification")
    assert isinstance(error, VerificationFailed)
    assert "cosign v2 found Sigstore bundles" in error.what
    assert "signing.sigstore.trustedRoot" in error.fix
    ca = _failed("Error: unsupported: CA roots/intermediates must be provided using --trusted-root when using "
                 "--new-bundle-format\n")
    assert "where legacy attestations were expected" in classify(ca, IMG, "attestation verification").what


def test_signature_of_another_digest_is_named_in_either_format() -> None:
    for line in ("Error: no matching signatures: invalid or missing digest in claim: sha256:" + "c" * 64,
                 "Error: no matching attestations: failed to verify signature: provided artifact digest does not "
                 "match any digest in statement"):
        error = classify(_failed(line, 1), IMG, "verification")
        assert isinstance(error, VerificationFailed)
        assert error.what == f"{IMG}: the signature found was made for another image digest"
        assert line.removeprefix("Error: ") in error.why


def test_transient_failure_that_outlasted_the_retries_is_named() -> None:
    result = _failed('Error: GET http://127.0.0.1:5000/v2/: dial tcp 127.0.0.1:5000: connect: connection refused\n'
                     "sc-ci: cosign failed 4 times in a row with a transient error (network, registry, Fulcio or "
                     "Rekor); it was retried with backoff\n")
    error = classify(result, IMG, "signing")
    assert isinstance(error, StepFailed)
    assert not isinstance(error, ToolError)
    assert "could not be reached" in error.what
    assert "failed 4 times" in error.why


# ---- the skip-if-already-signed decision --------------------------------------------------------------------------


class FakeCosign:
    """Answers `signed_formats` from a table and records what it was asked to sign."""

    def __init__(self, have: dict[str, frozenset[Format]], major: int = 3) -> None:
        self.have = have
        self.real = V3 if major >= 3 else V2
        self.version = self.real.version
        self.signed: list[tuple[str, tuple[Format, ...], bool]] = []

    def formats(self, opts: SignOptions) -> tuple[Format, ...]:
        return self.real.formats(opts)

    def signed_formats(self, image: str, key: Verifier, opts: SignOptions, docker_config: str | None = None
                       ) -> Verified:
        found = self.have.get(image, frozenset())
        return Verified(image, len(found), (), found)

    def sign(self, image: str, key: object, opts: SignOptions, docker_config: str | None = None, *,
             recursive: bool = False, formats: Sequence[Format] | None = None) -> Completed:
        self.signed.append((image, tuple(formats or ()), recursive))
        return Completed(("cosign", "sign"), 0, "", "", 0.2)


def _plan(storage: Storage, *, force: bool = False) -> SigningPlan:
    return SigningPlan(KEY, PUB, SignOptions(storage=storage), check_existing=None if force else PUB)


PLATFORMS = (IMG.replace("b" * 64, "c" * 64), IMG.replace("b" * 64, "d" * 64))


def test_signed_image_is_skipped_and_its_check_reused_as_verification() -> None:
    fake = FakeCosign({IMG: frozenset({"legacy"})})
    plan = _plan("legacy")
    result = sign_step.sign(cast(Cosign, fake), IMG, plan)
    assert result.outcome is Outcome.SKIPPED
    assert result.summary == "already signed by cosign.key"
    assert fake.signed == []
    reused = verify_signature.verified_before(IMG, result, plan)
    assert reused is not None
    assert reused.outcome is Outcome.OK
    assert reused.details["command"] == f"cosign verify --key cosign.pub {IMG}"


def test_only_missing_formats_are_signed_and_force_signs_all() -> None:
    fake = FakeCosign({IMG: frozenset({"bundle"})})
    result = sign_step.sign(cast(Cosign, fake), IMG, _plan("both"))
    assert result.outcome is Outcome.OK
    assert fake.signed == [(IMG, ("legacy",), False)]
    assert "legacy only" in result.summary
    forced = FakeCosign({IMG: frozenset({"legacy", "bundle"})})
    sign_step.sign(cast(Cosign, forced), IMG, _plan("both", force=True))
    assert forced.signed == [(IMG, ("legacy", "bundle"), False)]


def test_an_index_is_skipped_only_when_every_platform_is_signed_too() -> None:
    half = FakeCosign({IMG: frozenset({"legacy"}), PLATFORMS[0]: frozenset({"legacy"})})
    result = sign_step.sign(cast(Cosign, half), IMG, _plan("legacy"), PLATFORMS)
    assert result.outcome is Outcome.OK
    assert half.signed == [(IMG, ("legacy",), True)]
    assert "with its 2 platform manifest(s)" in result.summary
    full = FakeCosign({image: frozenset({"legacy"}) for image in (IMG, *PLATFORMS)})
    skipped = sign_step.sign(cast(Cosign, full), IMG, _plan("legacy"), PLATFORMS)
    assert skipped.outcome is Outcome.SKIPPED
    assert skipped.details["platforms"] == "2"
    no_recursion = SigningPlan(KEY, PUB, SignOptions(storage="legacy", recursive=False), check_existing=PUB)
    single = FakeCosign({})
    sign_step.sign(cast(Cosign, single), IMG, no_recursion, PLATFORMS)
    assert single.signed == [(IMG, ("legacy",), False)]


def test_keyless_skip_names_the_identity() -> None:
    fake = FakeCosign({IMG: frozenset({"bundle"})})
    plan = SigningPlan(TOKEN, WHO, SignOptions(storage="referrers"), identity=WHO, check_existing=WHO)
    result = sign_step.sign(cast(Cosign, fake), IMG, plan)
    assert result.summary == "already signed by identity dev@example.com, issuer https://issuer.example"


# ---- configuration --------------------------------------------------------------------------------------------


def test_signing_storage_force_recursive_config(tmp_path: Path) -> None:
    signing = load(env={}).security.signing
    assert (signing.storage, signing.force, signing.recursive) == ("legacy", False, True)
    assert load(env={"SC_CI_SECURITY__SIGNING__STORAGE": "Referrers"}).security.signing.storage == "referrers"
    assert load(env={"INPUT_STORAGE": "both"}).security.signing.storage == "both"
    assert "storage" in {spec.name for spec in ACTION_INPUTS}
    with pytest.raises(ConfigError) as bad:
        load(env={"SC_CI_SECURITY__SIGNING__STORAGE": "oci"})
    assert "signing.storage" in bad.value.what
    config = tmp_path / "security.yaml"
    config.write_text("security:\n  signing:\n    storage: both\n    recursive: false\n    force: true\n")
    loaded = load(env={}, config_path=config)
    options = sigstore_options(loaded)
    assert (options.storage, options.recursive) == ("both", False)
    assert loaded.security.signing.force is True


def test_action_yml_declares_the_storage_input() -> None:
    import yaml

    declared = yaml.safe_load((Path(__file__).parents[2] / "action.yml").read_text())["inputs"]
    assert "storage" in declared
    assert "legacy" in declared["storage"]["description"]
