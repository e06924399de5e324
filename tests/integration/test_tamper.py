"""Tamper cases that verification must catch, with the real cosign against the real registry."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sc_ci.runner import base_env
from testbed.images import PushedImage, push_image
from testbed.keys import generate_keypair
from testbed.oci import Blob
from testbed.registry import LocalRegistry


@pytest.fixture(scope="module")
def keypair(tool: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    keys = generate_keypair(tool("cosign"), tmp_path_factory.mktemp("tamper-keys"))
    return keys.private, keys.public, keys.password


def sc_ci(*args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    env = {**base_env(), "COSIGN_PASSWORD": password}
    return subprocess.run([sys.executable, "-m", "sc_ci", *args], env=env, text=True, capture_output=True,
                          timeout=300, check=False)


def _signature_tags(registry: LocalRegistry, image: PushedImage) -> list[str]:
    hexdigest = image.digest.removeprefix("sha256:")
    return [t for t in registry.client().tags(image.repository) if hexdigest in t]


def test_signature_copied_to_another_image_is_rejected(registry: LocalRegistry,
                                                       keypair: tuple[Path, Path, str]) -> None:
    """Move image A's signature artefacts onto image B's signature tags: B must still fail to verify."""
    key, pub, password = keypair
    repo = f"tamper/copy-{secrets.token_hex(4)}"
    signed = push_image(registry.host, "service-1", repository=repo, tag="a")
    victim = push_image(registry.host, "service-2", repository=repo, tag="b")
    assert sc_ci("image", "sign", "-i", signed.ref, "-k", str(key), "--no-tlog", password=password).returncode == 0
    tags = _signature_tags(registry, signed)
    assert tags, "signing left no signature artefact in the registry"
    client = registry.client()
    for tag in tags:
        fetched = client.get_manifest(repo, tag)
        forged_tag = tag.replace(signed.digest.removeprefix("sha256:"), victim.digest.removeprefix("sha256:"))
        client.push_manifest(repo, forged_tag, Blob(fetched.media_type, fetched.body))
    assert _signature_tags(registry, victim), "the forged signature tags were not written"

    result = sc_ci("image", "verify", "-i", victim.by_digest, "-k", str(pub), "--no-tlog")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL verify" in result.stdout
    # cosign binds the signature to A's digest (bundle: "digest does not match"; legacy .sig: "invalid or
    # missing digest in claim")
    assert "digest does not match" in result.stderr or "invalid or missing digest in claim" in result.stderr
    # the genuinely signed image is unaffected
    assert sc_ci("image", "verify", "-i", signed.by_digest, "-k", str(pub), "--no-tlog").returncode == 0


def test_signature_deleted_is_noticed(registry: LocalRegistry, keypair: tuple[Path, Path, str]) -> None:
    """Replace the signature artefact with an empty index: verification fails instead of passing silently."""
    key, pub, password = keypair
    image = push_image(registry.host, "service-3", repository=f"tamper/del-{secrets.token_hex(4)}", tag="1")
    assert sc_ci("image", "sign", "-i", image.ref, "-k", str(key), "--no-tlog", password=password).returncode == 0
    client = registry.client()
    empty = Blob("application/vnd.oci.image.index.v1+json",
                 b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}')
    for tag in _signature_tags(registry, image):
        client.push_manifest(image.repository, tag, empty)
    result = sc_ci("image", "verify", "-i", image.by_digest, "-k", str(pub), "--no-tlog")
    assert result.returncode == 1, result.stdout + result.stderr
