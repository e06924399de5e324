"""Key-based signing and verification with the real cosign against the real registry, through the CLI."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from testbed.images import PushedImage, push_image
from testbed.keys import KeyPair, generate_keypair
from testbed.registry import LocalRegistry

FreshImage = Callable[..., PushedImage]


def sc_ci(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a child process, exactly as a user or CI would."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_"))}
    full_env.pop("COSIGN_PASSWORD", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "sc_ci", *args], env=full_env, cwd=cwd, text=True,
                          capture_output=True, timeout=300, check=False)


def test_signed_digest_verifies(fresh_image: FreshImage, keys: KeyPair) -> None:
    image = fresh_image()
    env = {"COSIGN_PASSWORD": keys.password}
    signed = sc_ci("image", "sign", "--image", image.ref, "--key", str(keys.private), "--no-tlog", env=env)
    assert signed.returncode == 0, signed.stderr
    assert f"@{image.digest[:19]}" in signed.stdout
    assert "ok   sign" in signed.stdout
    assert "ok   verify" in signed.stdout
    assert f"cosign verify --key cosign.pub --insecure-ignore-tlog=true {image.by_digest}" in signed.stdout

    verified = sc_ci("image", "verify", "--image", image.by_digest, "--key", str(keys.public), "--no-tlog")
    assert verified.returncode == 0, verified.stderr
    assert "verified 1 signature(s)" in verified.stdout


def test_unsigned_image_fails_with_clear_message(fresh_image: FreshImage, keys: KeyPair) -> None:
    image = fresh_image()
    result = sc_ci("image", "verify", "--image", image.ref, "--key", str(keys.public), "--no-tlog")
    assert result.returncode == 1
    assert "no signature found" in result.stdout
    assert "fix: Sign it first" in result.stderr


def test_wrong_public_key_fails(fresh_image: FreshImage, keys: KeyPair, other_keys: KeyPair) -> None:
    image = fresh_image()
    env = {"COSIGN_PASSWORD": keys.password}
    assert sc_ci("image", "sign", "-i", image.ref, "-k", str(keys.private), "--no-tlog", env=env).returncode == 0
    result = sc_ci("image", "verify", "-i", image.by_digest, "-k", str(other_keys.public), "--no-tlog")
    assert result.returncode == 1
    assert "no signature matches the given key" in result.stdout
    assert "public key that belongs to the signing key" in result.stderr


def test_repointed_tag_fails_verification(registry: LocalRegistry, keys: KeyPair) -> None:
    repo = f"repoint/app-{secrets.token_hex(4)}"
    first = push_image(registry.host, "service-1", repository=repo, tag="release")
    env = {"COSIGN_PASSWORD": keys.password}
    assert sc_ci("image", "sign", "-i", first.ref, "-k", str(keys.private), "--no-tlog", env=env).returncode == 0
    assert sc_ci("image", "verify", "-i", first.ref, "-k", str(keys.public), "--no-tlog").returncode == 0

    second = push_image(registry.host, "service-2", repository=repo, tag="release")
    assert second.digest != first.digest
    assert second.ref == first.ref
    moved = sc_ci("image", "verify", "-i", second.ref, "-k", str(keys.public), "--no-tlog")
    assert moved.returncode == 1
    assert second.digest[:19] in moved.stdout
    assert "no signature found" in moved.stdout
    # the signed digest itself still verifies: signatures follow digests, never tags
    assert sc_ci("image", "verify", "-i", first.by_digest, "-k", str(keys.public), "--no-tlog").returncode == 0


def test_key_from_env_uri_and_secret_reference(fresh_image: FreshImage, keys: KeyPair, tmp_path: Path) -> None:
    by_env, by_secret = fresh_image(), fresh_image()
    env = {"COSIGN_PASSWORD": keys.password, "RELEASE_KEY": keys.pem}
    result = sc_ci("image", "sign", "-i", by_env.ref, "-k", "env://RELEASE_KEY", "--no-tlog", env=env)
    assert result.returncode == 0, result.stderr

    config = tmp_path / "security.yaml"
    config.write_text("security:\n  signing:\n    enabled: true\n    privateKey: ${secret:cosign-private-key}\n"
                      "    sigstore:\n      transparencyLog: false\n")
    env = {"COSIGN_PASSWORD": keys.password, "COSIGN_PRIVATE_KEY": keys.pem}
    result = sc_ci("image", "sign", "-i", by_secret.ref, "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert "inline secret" in result.stdout
    for image in (by_env, by_secret):
        assert sc_ci("image", "verify", "-i", image.by_digest, "-k", str(keys.public), "--no-tlog").returncode == 0


def test_wrong_password_is_explained(fresh_image: FreshImage, keys: KeyPair) -> None:
    image = fresh_image()
    result = sc_ci("image", "sign", "-i", image.ref, "-k", str(keys.private), "--no-tlog",
                   env={"COSIGN_PASSWORD": "not-the-password"})
    assert result.returncode == 1
    assert "could not decrypt the private key" in result.stderr
    assert "COSIGN_PASSWORD" in result.stderr


def test_dry_run_runs_nothing(fresh_image: FreshImage, keys: KeyPair) -> None:
    image = fresh_image()
    result = sc_ci("image", "sign", "-i", image.ref, "-k", str(keys.private), "--no-tlog", "--dry-run",
                   env={"COSIGN_PASSWORD": keys.password})
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout
    assert f"sign --yes --key {keys.private}" in result.stdout
    assert image.by_digest in result.stdout  # the tag was resolved, nothing else happened
    after = sc_ci("image", "verify", "-i", image.by_digest, "-k", str(keys.public), "--no-tlog")
    assert after.returncode == 1
    assert "no signature found" in after.stdout


def test_several_images_signed_in_one_run(fresh_image: FreshImage, keys: KeyPair) -> None:
    images = [fresh_image(base) for base in ("service-1", "service-2", "service-3")]
    args = [a for image in images for a in ("-i", image.ref)]
    result = sc_ci("image", "sign", *args, "-k", str(keys.private), "--no-tlog", "--workers", "3",
                   env={"COSIGN_PASSWORD": keys.password})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok   sign") == 3
    assert result.stdout.count("ok   verify") == 3


def test_keyless_without_oidc_fails_before_cosign(fresh_image: FreshImage, tmp_path: Path) -> None:
    shim_log = tmp_path / "argv.log"
    shim = _recording_shim(tmp_path, shim_log, real=None)
    image = fresh_image()
    result = sc_ci("image", "sign", "-i", image.ref, env={"SC_CI_COSIGN_PATH": str(shim)})
    assert result.returncode == 1
    assert "needs an OIDC identity token" in result.stderr
    assert "SIGSTORE_ID_TOKEN" in result.stderr  # the fix names a way out
    assert not shim_log.exists() or "sign" not in shim_log.read_text()


def _recording_shim(directory: Path, log: Path, real: Path | None) -> Path:
    """A stand-in `cosign` that appends its argv to `log`, then runs the real one (if given)."""
    shim = directory / "cosign-shim"
    run = f'exec "{real}" "$@"' if real else 'echo "{\\"gitVersion\\": \\"v3.1.2\\"}"'
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\n{run}\n')
    shim.chmod(0o755)
    return shim


def test_secrets_never_leak(auth_registry: LocalRegistry, cosign: Path, tmp_path: Path) -> None:
    """Key PEM, key password and registry password: not in argv, output, logs, or files left behind."""
    password = "leakcheck-" + secrets.token_hex(10)
    keypair = generate_keypair(cosign, tmp_path / "k", password)
    user, registry_password = auth_registry.auth or ("", "")
    image = push_image(auth_registry.host, "service-4", repository=f"private/app-{secrets.token_hex(4)}",
                       tag="1.0", auth=(user, registry_password))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    argv_log = tmp_path / "argv.log"
    shim = _recording_shim(tmp_path, argv_log, real=cosign)
    env = {"COSIGN_PASSWORD": password, "COSIGN_PRIVATE_KEY": keypair.pem, "TMPDIR": str(scratch),
           "SC_CI_REGISTRY_USERNAME": user, "SC_CI_REGISTRY_PASSWORD": registry_password,
           "SC_CI_REGISTRY_HOST": auth_registry.host,
           "SC_CI_COSIGN_PATH": str(shim), "DOCKER_CONFIG": str(tmp_path / "no-docker-config")}
    config = tmp_path / "security.yaml"
    config.write_text("security:\n  signing:\n    enabled: true\n    privateKey: ${secret:cosign-private-key}\n"
                      "    sigstore:\n      transparencyLog: false\n")
    result = sc_ci("image", "sign", "-i", image.ref, "--config", str(config), "-v", env=env)
    assert result.returncode == 0, result.stderr
    assert "ok   verify" in result.stdout

    pem_body = "".join(keypair.pem.splitlines()[1:-1])[:40]
    argv_text = argv_log.read_text()
    assert "sign --yes --key env://SC_CI_COSIGN_KEY" in argv_text
    leftovers = [p for p in scratch.rglob("*") if p.is_file()]
    for secret in (password, registry_password, pem_body):
        assert secret not in result.stdout
        assert secret not in result.stderr
        assert secret not in argv_text
        for path in leftovers:
            assert secret not in path.read_text(errors="replace"), path
    assert not list(scratch.glob("sc-ci-docker-*")), "private DOCKER_CONFIG left behind"

    # and with a bad registry password the failure message still names no secret
    bad = sc_ci("image", "sign", "-i", image.ref, "--config", str(config),
                env={**env, "SC_CI_REGISTRY_PASSWORD": "wrong-" + registry_password})
    assert bad.returncode == 1
    assert "access denied" in bad.stderr
    assert registry_password not in bad.stderr + bad.stdout
