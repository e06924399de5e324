"""signing.storage with both cosign majors against the real registry (Docker's distribution: no referrers API):
where signatures and attestations land (tags inspected directly), and that every mode verifies with v3 and v2.6.
Also multi-arch (each platform manifest signed and verifiable) and attestation bundles that are not signatures."""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sc_ci.errors import VerificationFailed
from sc_ci.runner import base_env
from sc_ci.session import open_session
from sc_ci.signing import setup as signing
from sc_ci.signing.signers import Key
from sc_ci.tools import versions
from sc_ci.tools.cosign import Cosign, SignOptions
from testbed.images import PushedImage
from testbed.keys import KeyPair as Keys
from testbed.registry import LocalRegistry

FreshImage = Callable[..., PushedImage]
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PREDICATE = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": []}


@pytest.fixture(scope="module", params=["v3", "v2"])
def signer(request: pytest.FixtureRequest) -> Path:
    """The cosign that signs (every storage test runs with both majors)."""
    return Path(request.getfixturevalue(f"cosign_{request.param}"))


def sc_ci(*args: str, cosign: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_", "COSIGN_"))}
    full.update({"SC_CI_COSIGN_PATH": str(cosign), **(env or {})})
    return subprocess.run([sys.executable, "-m", "sc_ci", *args], env=full, text=True, capture_output=True,
                          timeout=300, check=False)


@functools.cache
def cosign_of(path: Path) -> Cosign:
    found = versions.detect("cosign", path, env=base_env())
    assert found.version is not None
    return Cosign(path, found.version, base_env())


def _hex(image: PushedImage) -> str:
    return image.digest.removeprefix("sha256:")


def _referrers(registry: LocalRegistry, image: PushedImage) -> list[dict[str, object]]:
    """The index cosign keeps under the tag sha256-<hex> when the registry has no referrers API."""
    with registry.client() as client:
        if f"sha256-{_hex(image)}" not in client.tags(image.repository):
            return []
        index = json.loads(client.get_manifest(image.repository, f"sha256-{_hex(image)}").body)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    return list(index["manifests"])


def _layers(registry: LocalRegistry, image: PushedImage, suffix: str) -> list[dict[str, object]]:
    with registry.client() as client:
        if f"sha256-{_hex(image)}.{suffix}" not in client.tags(image.repository):
            return []
        return list(json.loads(client.get_manifest(image.repository, f"sha256-{_hex(image)}.{suffix}").body)["layers"])


def _plan_env(keys: Keys, cosign: Path, storage: str) -> dict[str, str]:
    return {**base_env(), "COSIGN_PASSWORD": keys.password, "SC_CI_COSIGN_PATH": str(cosign),
            "SC_CI_SECURITY__SIGNING__STORAGE": storage, "SC_CI_SECURITY__SIGNING__PRIVATEKEY": str(keys.private),
            "SC_CI_SECURITY__SIGNING__PUBLICKEY": str(keys.public),
            "SC_CI_SECURITY__SIGNING__SIGSTORE__TRANSPARENCYLOG": "false"}


@pytest.mark.parametrize("storage", ["legacy", "referrers", "both"])
def test_storage_mode_lands_where_asked_and_verifies_with_both_majors(
        storage: str, signer: Path, cosign_v3: Path, cosign_v2: Path, keys: Keys, registry: LocalRegistry,
        fresh_image: FreshImage, tmp_path: Path) -> None:
    image = fresh_image()
    signed = sc_ci("image", "sign", "-i", image.ref, "-k", str(keys.private), "--no-tlog", "--storage", storage,
                   cosign=signer, env={"COSIGN_PASSWORD": keys.password})
    assert signed.returncode == 0, signed.stderr
    assert "ok   sign" in signed.stdout
    assert "ok   verify" in signed.stdout

    # the attestation (as the SBOM and provenance steps attach it) follows the same setting
    env = _plan_env(keys, signer, storage)
    session = open_session(argparse.Namespace(images=[image.ref]), env, {"signing.enabled": True})
    cosign = session.cosign()
    plan = signing.plan(session, cosign)
    assert plan.options.storage == storage
    predicate = tmp_path / "bom.json"
    predicate.write_text(json.dumps(PREDICATE))
    plan.attest(cosign, image.by_digest, predicate, "cyclonedx")

    # where it landed: .sig/.att tags for legacy, a sha256-<hex> index of bundles for referrers
    legacy, bundles = storage in ("legacy", "both"), storage in ("referrers", "both")
    assert len(_layers(registry, image, "sig")) == (1 if legacy else 0)
    att = _layers(registry, image, "att")
    assert len(att) == (1 if legacy else 0)
    if legacy:
        assert att[0]["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    referrers = _referrers(registry, image)
    assert len(referrers) == (2 if bundles else 0)  # the image signature and the attestation
    predicate_types = set()
    with registry.client() as client:
        for entry in referrers:  # (v3 sets the index entry's artifactType to the bundle type; v2.6 does not)
            manifest = json.loads(client.get_manifest(image.repository, str(entry["digest"])).body)
            assert manifest["subject"]["digest"] == image.digest
            assert [layer["mediaType"] for layer in manifest["layers"]] == [BUNDLE_TYPE]
            predicate_types.add(manifest["annotations"]["dev.sigstore.bundle.predicateType"])
    assert predicate_types == ({"https://sigstore.dev/cosign/sign/v1", "https://cyclonedx.org/bom"} if bundles
                               else set())

    # every mode verifies with either major: the signature (sc-ci image verify) and the attestation
    for verifier in (cosign_v3, cosign_v2):
        verified = sc_ci("image", "verify", "-i", image.by_digest, "-k", str(keys.public), "--no-tlog",
                         cosign=verifier)
        assert verified.returncode == 0, (verifier, verified.stdout, verified.stderr)
        assert "verified 1 signature(s)" in verified.stdout
        statements = plan.verify_attestation(cosign_of(verifier), image.by_digest, "cyclonedx")
        assert [s["predicateType"] for s in statements] == ["https://cyclonedx.org/bom"]


def test_signed_by_v3_in_legacy_mode_verified_by_plain_v2(cosign_v3: Path, cosign_v2: Path, keys: Keys,
                                                          registry: LocalRegistry, fresh_image: FreshImage) -> None:
    """The default mode writes what an older verifier reads: cosign v2 as a consumer runs it (the printed
    command, no trusted root, no extra flag) verifies what cosign v3 signed."""
    image = fresh_image()
    signed = sc_ci("image", "sign", "-i", image.ref, "-k", str(keys.private), "--no-tlog", "-v", cosign=cosign_v3,
                   env={"COSIGN_PASSWORD": keys.password})
    assert signed.returncode == 0, signed.stderr
    sign_line = next(line for line in signed.stderr.splitlines() if " sign --yes " in line)
    assert "--new-bundle-format=false --use-signing-config=false --tlog-upload=false" in sign_line
    with registry.client() as client:
        assert set(client.tags(image.repository)) == {image.tag, f"sha256-{_hex(image)}.sig"}  # no bundle index
    printed = f"cosign verify --key cosign.pub --insecure-ignore-tlog=true {image.by_digest}"
    assert printed in signed.stdout
    consumer = subprocess.run([str(cosign_v2), "verify", "--key", str(keys.public), "--insecure-ignore-tlog=true",
                               image.by_digest], env=base_env(), capture_output=True, text=True, timeout=120,
                              check=False)
    assert consumer.returncode == 0, consumer.stderr
    payload = json.loads(consumer.stdout)[0]
    assert payload["critical"]["type"] == "cosign container image signature"
    assert payload["critical"]["image"]["docker-manifest-digest"] == image.digest


def test_both_mode_legacy_copy_reads_without_bundles(cosign_v3: Path, cosign_v2: Path, keys: Keys,
                                                     fresh_image: FreshImage) -> None:
    """`both`: cosign v3 forced to the legacy tag (--new-bundle-format=false: what v2.0-2.5 read) and v2.6
    reading the bundle (it prefers bundles) both verify."""
    image = fresh_image()
    signed = sc_ci("image", "sign", "-i", image.ref, "-k", str(keys.private), "--no-tlog", "--storage", "both",
                   cosign=cosign_v3, env={"COSIGN_PASSWORD": keys.password})
    assert signed.returncode == 0, signed.stderr
    v3 = cosign_of(cosign_v3)
    legacy = subprocess.run(v3.verify_argv(image.by_digest, Key(str(keys.public)), SignOptions(tlog=False),
                                           legacy_only=True), env=base_env(), capture_output=True, text=True,
                            timeout=120, check=False)
    assert legacy.returncode == 0, legacy.stderr
    assert json.loads(legacy.stdout)[0]["critical"]["type"] == "cosign container image signature"
    bundle = cosign_of(cosign_v2).verify(image.by_digest, Key(str(keys.public)), SignOptions(tlog=False))
    assert bundle.formats == frozenset({"bundle"})


def test_attestation_bundle_alone_is_not_an_image_signature(signer: Path, keys: Keys,
                                                            fresh_image: FreshImage, tmp_path: Path) -> None:
    """cosign verify accepts any bundle (an SBOM attestation too) as "a signature"; sc-ci counts image
    signatures only, and finds a .sig hidden behind attestation bundles with cosign v3."""
    image = fresh_image()
    predicate = tmp_path / "bom.json"
    predicate.write_text(json.dumps(PREDICATE))
    cosign = cosign_of(signer)
    key, public = Key(str(keys.private)), Key(str(keys.public))
    cosign_with_password = Cosign(signer, cosign.version, {**base_env(), "COSIGN_PASSWORD": keys.password})
    cosign_with_password.attest(image.by_digest, key, predicate, "cyclonedx",
                                SignOptions(tlog=False, storage="referrers"))
    with pytest.raises(VerificationFailed, match=r"found attestations \(https://cyclonedx.org/bom\) but no image"):
        cosign.verify(image.by_digest, public, SignOptions(tlog=False))

    cosign_with_password.sign(image.by_digest, key, SignOptions(tlog=False, storage="legacy"))
    if cosign.major >= 3:
        verified = cosign.verify(image.by_digest, public, SignOptions(tlog=False))
        assert verified.formats == frozenset({"legacy"})
    else:  # v2.6 reads the bundles and cannot look behind them
        with pytest.raises(VerificationFailed, match="no image signature") as caught:
            cosign.verify(image.by_digest, public, SignOptions(tlog=False))
        assert "storage: both" in caught.value.fix


@pytest.fixture
def multiarch(fresh_image: FreshImage) -> PushedImage:
    image = fresh_image("multiarch")
    assert image.is_index
    assert len(image.platforms) == 2
    return image


@pytest.mark.parametrize("storage", ["legacy", "referrers"])
def test_index_is_signed_with_each_platform_manifest(storage: str, signer: Path, cosign_v3: Path, cosign_v2: Path,
                                                     keys: Keys, multiarch: PushedImage,
                                                     fresh_image: FreshImage) -> None:
    signed = sc_ci("image", "sign", "-i", multiarch.ref, "-k", str(keys.private), "--no-tlog", "--storage", storage,
                   "-v", cosign=signer, env={"COSIGN_PASSWORD": keys.password})
    assert signed.returncode == 0, signed.stderr
    assert "with its 2 platform manifest(s)" in signed.stdout
    assert "verified 1 signature(s) with public key of" in signed.stdout
    assert ", and its 2 platform manifest(s)" in signed.stdout
    assert any(" sign --yes " in line and "--recursive" in line for line in signed.stderr.splitlines())
    # a consumer pulling one platform by digest verifies it, with either major, as cosign itself runs
    for platform in multiarch.platforms:
        for verifier in (cosign_v3, cosign_v2):
            argv = [str(verifier), "verify", "--key", str(keys.public), "--insecure-ignore-tlog=true",
                    multiarch.platform_by_digest(platform)]
            if verifier == cosign_v2 and storage == "referrers":
                argv[2:2] = ["--trusted-root", str(_empty_root(keys.public.parent))]
            consumer = subprocess.run(argv, env=base_env(), capture_output=True, text=True, timeout=120, check=False)
            assert consumer.returncode == 0, (platform, verifier, consumer.stderr)

    # signing.recursive: false signs the index alone; the platform manifests stay unsigned
    other = fresh_image("multiarch")
    alone = sc_ci("image", "sign", "-i", other.ref, "-k", str(keys.private), "--no-tlog", "--storage", storage,
                  cosign=signer, env={"COSIGN_PASSWORD": keys.password, "SC_CI_SECURITY__SIGNING__RECURSIVE": "false"})
    assert alone.returncode == 0, alone.stderr
    assert "platform manifest" not in alone.stdout
    unsigned = sc_ci("image", "verify", "-i", other.platform_by_digest("linux/arm64"), "-k", str(keys.public),
                     "--no-tlog", cosign=signer)
    assert unsigned.returncode == 1
    assert "no signature found" in unsigned.stdout


def _empty_root(directory: Path) -> Path:
    path = directory / "empty_trusted_root.json"
    path.write_text(json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}))
    return path
