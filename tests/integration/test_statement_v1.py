"""in-toto Statement v1 attestations with the real cosign (v3.1.2 and v2.6.4) against the real registry (Docker's
distribution: referrers land in the `sha256-<hex>` index tag), key-based and keyless (local Fulcio).

For every storage format, each attached copy is read straight from the registry (the `.att` layer's DSSE
envelope, the referrer's Sigstore bundle) and its `_type` checked against the route the cosign sources allow:
v1 for v3 bundles (key and keyless) and for key-based `.att` without a log (both majors); v0.1 where cosign
cannot attach a signed v1 statement (v2.6 bundles, keyless `.att`). Then plain `cosign verify-attestation
--type T` of both majors must accept it, and the statement it returns must pass the in-toto Statement JSON
Schema (v1 where v1 was signed) and, when the `in-toto-attestation` package is installed, its validator."""

from __future__ import annotations

import base64
import functools
import importlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sc_ci.runner import base_env
from sc_ci.secrets import Secret
from sc_ci.signing.signers import CertificateIdentity, Key, Keyless
from sc_ci.tools import versions
from sc_ci.tools.cosign import Cosign, SignOptions, Storage
from testbed.images import PushedImage
from testbed.keyless import KeylessBed
from testbed.keys import KeyPair
from testbed.registry import LocalRegistry

FreshImage = Callable[..., PushedImage]
V1, V01 = "https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"
DSSE_LAYER = "application/vnd.dsse.envelope.v1+json"
BUNDLE_LAYER = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGNATURE_TYPE = "https://sigstore.dev/cosign/sign/v1"
BOM = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
       "metadata": {"component": {"type": "container", "name": "app", "version": "1.0.0"}},
       "components": [{"type": "library", "name": "requests", "version": "2.31.0",
                       "purl": "pkg:pypi/requests@2.31.0", "description": "HTTP f\u00fcr Menschen"}]}
PROVENANCE = {"buildDefinition": {"buildType": "https://example.com/buildtypes/test/v1",
                                  "externalParameters": {"workflow": {"ref": "refs/heads/main", "path": "x.yml"}},
                                  "internalParameters": {"n": 1}, "resolvedDependencies": []},
              "runDetails": {"builder": {"id": "https://example.com/builder"},
                             "metadata": {"invocationId": "https://example.com/runs/1"}}}
EMAIL = "dev@example.com"


def expected_type(major: int, fmt: str, *, keyless: bool) -> str:
    """The statement type each copy must have: the route table of sc_ci.tools.cosign_statement, restated."""
    if fmt == "bundle":
        return V1 if major >= 3 else V01
    return V01 if keyless else V1


def formats(storage: Storage) -> list[str]:
    return {"legacy": ["legacy"], "referrers": ["bundle"], "both": ["legacy", "bundle"]}[storage]


@functools.cache
def cosign_of(path: Path) -> Cosign:
    found = versions.detect("cosign", path, env=base_env())
    assert found.version is not None
    return Cosign(path, found.version, base_env())


@pytest.fixture(scope="module", params=["v3", "v2"])
def signer(request: pytest.FixtureRequest) -> Path:
    return Path(request.getfixturevalue(f"cosign_{request.param}"))


@pytest.fixture(scope="module")
def empty_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cosign v2.6 reads bundles only with a trusted root; with a public key and no log it needs one that
    trusts nothing (what sc_ci's verify passes too)."""
    path = tmp_path_factory.mktemp("empty-root") / "trusted_root.json"
    path.write_text(json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}))
    return path


def _decode(envelope: dict[str, Any]) -> dict[str, Any]:
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert isinstance(statement, dict)
    return statement


def stored_copies(registry: LocalRegistry, image: PushedImage) -> dict[str, list[dict[str, Any]]]:
    """Every attestation on `image` as the registry holds it: {"legacy": [envelope…], "bundle": [envelope…]}
    (payloadType checked, image-signature bundles left out)."""
    hexdigest = image.digest.removeprefix("sha256:")
    found: dict[str, list[dict[str, Any]]] = {"legacy": [], "bundle": []}
    with registry.client() as client:
        tags = client.tags(image.repository)
        if f"sha256-{hexdigest}.att" in tags:
            manifest = json.loads(client.get_manifest(image.repository, f"sha256-{hexdigest}.att").body)
            for layer in manifest["layers"]:
                assert layer["mediaType"] == DSSE_LAYER
                found["legacy"].append(json.loads(client.get_blob(image.repository, layer["digest"])))
        if f"sha256-{hexdigest}" in tags:
            index = json.loads(client.get_manifest(image.repository, f"sha256-{hexdigest}").body)
            for entry in index["manifests"]:
                manifest = json.loads(client.get_manifest(image.repository, entry["digest"]).body)
                assert manifest["subject"]["digest"] == image.digest
                if manifest["annotations"]["dev.sigstore.bundle.predicateType"] == SIGNATURE_TYPE:
                    continue
                (layer,) = manifest["layers"]
                assert layer["mediaType"] == BUNDLE_LAYER
                bundle = json.loads(client.get_blob(image.repository, layer["digest"]))
                found["bundle"].append(bundle["dsseEnvelope"])
    for envelope in found["legacy"] + found["bundle"]:
        assert envelope["payloadType"] == "application/vnd.in-toto+json"
        assert envelope["signatures"]
    return found


def check_statement(statement: dict[str, Any], image: PushedImage, predicate_type: str,
                    predicate: dict[str, Any], schemas: Any) -> None:
    """The statement names the image digest, carries the predicate unchanged (v1) and passes the schemas."""
    schemas.check(statement)
    assert statement["predicateType"] == predicate_type
    assert [s["digest"] for s in statement["subject"]] == [{"sha256": image.digest.removeprefix("sha256:")}]
    assert statement["subject"][0]["name"] == f"{image.host}/{image.repository}"
    if statement["_type"] == V1:
        assert statement["predicate"] == predicate
        in_toto_validate(statement)


def in_toto_validate(statement: dict[str, Any]) -> None:
    """The in-toto-attestation package's own Statement v1 parser and validator (nothing when it is not
    installed; test_in_toto_package_tells_v1_from_v01 shows as skipped then)."""
    try:
        json_format = importlib.import_module("google.protobuf.json_format")
        statement_pb2 = importlib.import_module("in_toto_attestation.v1.statement_pb2")
        wrapper = importlib.import_module("in_toto_attestation.v1.statement")
    except ImportError:
        return
    message = json_format.ParseDict(statement, statement_pb2.Statement())
    wrapper.Statement.copy_from_pb(message).validate()


def plain_verify(cosign: Path, image: PushedImage, cosign_type: str, *flags: str) -> list[dict[str, Any]]:
    """`cosign verify-attestation --type T` run directly (none of sc_ci's code); statements decoded here."""
    done = subprocess.run([str(cosign), "verify-attestation", "--type", cosign_type, *flags, image.by_digest],
                          env={**base_env(), "NO_PROXY": "127.0.0.1,localhost"}, text=True, capture_output=True,
                          timeout=120, check=False)
    assert done.returncode == 0, (cosign, flags, done.stderr)
    return [_decode(json.loads(line)) for line in done.stdout.splitlines() if line.startswith("{")]


# ------------------------------------------------------------------------------------------------- key-based


@pytest.mark.parametrize("storage", ["legacy", "referrers", "both"])
@pytest.mark.parametrize(("cosign_type", "predicate_type", "predicate"), [
    ("cyclonedx", "https://cyclonedx.org/bom", BOM),
    ("slsaprovenance1", "https://slsa.dev/provenance/v1", PROVENANCE),
])
def test_key_attestation_statement_type_per_route_and_plain_verify(
        storage: Storage, cosign_type: str, predicate_type: str, predicate: dict[str, Any], signer: Path,
        cosign_v3: Path, cosign_v2: Path, keys: KeyPair, registry: LocalRegistry, fresh_image: FreshImage,
        empty_root: Path, attestation_schemas: Any, tmp_path: Path) -> None:
    image = fresh_image()
    cosign = Cosign(signer, cosign_of(signer).version, {**base_env(), "COSIGN_PASSWORD": keys.password})
    path = tmp_path / "predicate.json"
    path.write_text(json.dumps(predicate, indent=2))
    opts = SignOptions(tlog=False, storage=storage)

    cosign.attest(image.by_digest, Key(str(keys.private), label="cosign.key"), path, cosign_type, opts)

    copies = stored_copies(registry, image)
    for fmt in ("legacy", "bundle"):
        assert len(copies[fmt]) == (1 if fmt in formats(storage) else 0), (fmt, copies)
        for envelope in copies[fmt]:
            statement = _decode(envelope)
            assert statement["_type"] == expected_type(cosign.major, fmt, keyless=False), fmt
            check_statement(statement, image, predicate_type, predicate, attestation_schemas)

    # plain verify-attestation of both majors, reading each copy it can reach
    key_flags = ("--key", str(keys.public), "--insecure-ignore-tlog=true")
    reads: list[tuple[Path, tuple[str, ...], str]] = []
    if "bundle" in formats(storage):
        reads += [(cosign_v3, key_flags, "bundle"), (cosign_v2, (*key_flags, "--trusted-root", str(empty_root)),
                                                      "bundle")]
    if "legacy" in formats(storage):
        reads.append((cosign_v3, (*key_flags, "--new-bundle-format=false"), "legacy"))
        if "bundle" not in formats(storage):  # v2.6 reads bundles whenever there are any
            reads.append((cosign_v2, key_flags, "legacy"))
    for verifier, flags, fmt in reads:
        statements = plain_verify(verifier, image, cosign_type, *flags)
        assert len(statements) == 1, (verifier, fmt)
        assert statements[0]["_type"] == expected_type(cosign.major, fmt, keyless=False), (verifier, fmt)
        check_statement(statements[0], image, predicate_type, predicate, attestation_schemas)
    for verifier in (cosign_v3, cosign_v2):  # and sc_ci's own verify decodes the same statement
        ours = cosign_of(verifier).verify_attestation(image.by_digest, Key(str(keys.public), label="cosign.pub"),
                                                      cosign_type, opts)
        assert [s["predicateType"] for s in ours] == [predicate_type]


def test_v1_statement_is_signed_by_cosign_not_assembled(
        cosign_v3: Path, keys: KeyPair, other_keys: KeyPair, fresh_image: FreshImage, tmp_path: Path) -> None:
    """The v1 envelope verifies with the signing key only (cosign signed it), and names this digest alone."""
    image = fresh_image()
    cosign = Cosign(cosign_v3, cosign_of(cosign_v3).version, {**base_env(), "COSIGN_PASSWORD": keys.password})
    path = tmp_path / "bom.json"
    path.write_text(json.dumps(BOM))
    cosign.attest(image.by_digest, Key(str(keys.private)), path, "cyclonedx", SignOptions(tlog=False))
    wrong = subprocess.run([str(cosign_v3), "verify-attestation", "--type", "cyclonedx", "--key",
                            str(other_keys.public), "--insecure-ignore-tlog=true", image.by_digest], env=base_env(),
                           text=True, capture_output=True, timeout=120, check=False)
    assert wrong.returncode != 0
    other = fresh_image()
    nothing = subprocess.run([str(cosign_v3), "verify-attestation", "--type", "cyclonedx", "--key",
                              str(keys.public), "--insecure-ignore-tlog=true", other.by_digest], env=base_env(),
                             text=True, capture_output=True, timeout=120, check=False)
    assert nothing.returncode != 0


def test_non_json_predicate_keeps_cosign_attest(cosign_v3: Path, keys: KeyPair, registry: LocalRegistry,
                                                fresh_image: FreshImage, tmp_path: Path) -> None:
    """An SPDX tag-value predicate cannot be a Statement v1 predicate (an object): cosign attest signs it."""
    image = fresh_image()
    cosign = Cosign(cosign_v3, cosign_of(cosign_v3).version, {**base_env(), "COSIGN_PASSWORD": keys.password})
    path = tmp_path / "sbom.spdx"
    path.write_text("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n")
    cosign.attest(image.by_digest, Key(str(keys.private)), path, "spdx", SignOptions(tlog=False))
    (envelope,) = stored_copies(registry, image)["bundle"]
    statement = _decode(envelope)
    assert statement["_type"] == V01
    assert statement["predicate"] == path.read_text()


# --------------------------------------------------------------------------------------------------- keyless


@pytest.fixture
def email_token(keyless_bed: KeylessBed) -> Keyless:
    return Keyless(Secret(keyless_bed.email.mint({"email": EMAIL, "email_verified": True}), "token"), "test")


def keyless_options(bed: KeylessBed, storage: Storage) -> SignOptions:
    return SignOptions(tlog=False, ct_log=False, trusted_root=str(bed.trust.trusted_root),
                       signing_config=str(bed.trust.signing_config), config_fulcio_url=bed.trust.fulcio_url,
                       storage=storage)


@pytest.mark.parametrize("storage", ["legacy", "referrers", "both"])
def test_keyless_attestation_statement_type_per_route_and_verify(
        storage: Storage, keyless_bed: KeylessBed, email_token: Keyless, cosign_any: Path, cosign_v3: Path,
        cosign_v2: Path, registry: LocalRegistry, fresh_image: FreshImage, attestation_schemas: Any,
        tmp_path: Path) -> None:
    image = fresh_image()
    cosign = Cosign(cosign_any, cosign_of(cosign_any).version, {**base_env(), "NO_PROXY": "127.0.0.1,localhost"})
    path = tmp_path / "provenance.json"
    path.write_text(json.dumps(PROVENANCE))
    opts = keyless_options(keyless_bed, storage)

    cosign.attest(image.by_digest, email_token, path, "slsaprovenance1", opts)

    copies = stored_copies(registry, image)
    for fmt in ("legacy", "bundle"):
        assert len(copies[fmt]) == (1 if fmt in formats(storage) else 0), (fmt, copies)
        for envelope in copies[fmt]:
            statement = _decode(envelope)
            assert statement["_type"] == expected_type(cosign.major, fmt, keyless=True), fmt
            check_statement(statement, image, "https://slsa.dev/provenance/v1", PROVENANCE, attestation_schemas)

    # verify-attestation of both majors with the certificate identity (the flags sc_ci's verify adds for
    # this private Sigstore: trusted root, or for v2.6 and `.att` the CA roots taken from it)
    who = CertificateIdentity(identity=EMAIL, issuer=keyless_bed.email.url)
    for verifier in (cosign_v3, cosign_v2):
        statements = cosign_of(verifier).verify_attestation(image.by_digest, who, "slsaprovenance1", opts)
        assert len(statements) == 1, verifier
        fmt = "bundle" if "bundle" in formats(storage) else "legacy"
        assert statements[0]["_type"] == expected_type(cosign.major, fmt, keyless=True), (verifier, fmt)
        check_statement(statements[0], image, "https://slsa.dev/provenance/v1", PROVENANCE, attestation_schemas)


def test_in_toto_package_tells_v1_from_v01(cosign_v3: Path, keys: KeyPair, fresh_image: FreshImage,
                                           attestation_schemas: Any, tmp_path: Path) -> None:
    """The in-toto-attestation validator accepts what sc_ci signs and rejects cosign attest's own v0.1."""
    pytest.importorskip("in_toto_attestation.v1.statement")
    image = fresh_image()
    cosign = Cosign(cosign_v3, cosign_of(cosign_v3).version, {**base_env(), "COSIGN_PASSWORD": keys.password})
    path = tmp_path / "bom.json"
    path.write_text(json.dumps(BOM))
    cosign.attest(image.by_digest, Key(str(keys.private)), path, "cyclonedx", SignOptions(tlog=False))
    done = subprocess.run([*cosign.attest_argv(image.by_digest, Key(str(keys.private)), path, "cyclonedx",
                                               SignOptions(tlog=False, storage="legacy"))],
                          env={**base_env(), "COSIGN_PASSWORD": keys.password}, text=True, capture_output=True,
                          timeout=120, check=False)  # plain `cosign attest`, into the .att tag
    assert done.returncode == 0, done.stderr
    (ours,) = plain_verify(cosign_v3, image, "cyclonedx", "--key", str(keys.public), "--insecure-ignore-tlog=true")
    (theirs,) = plain_verify(cosign_v3, image, "cyclonedx", "--key", str(keys.public), "--insecure-ignore-tlog=true",
                             "--new-bundle-format=false")
    assert (ours["_type"], theirs["_type"]) == (V1, V01)
    in_toto_validate(ours)
    attestation_schemas.check(ours)
    with pytest.raises(ValueError, match="Wrong statement type"):
        in_toto_validate(theirs)
