"""Keyless signing end to end on loopback: a real Fulcio (ephemeral CA, no CT log, no Rekor) trusting local OIDC
issuers, the real cosign (v3 and v2.6.4 for every test), the real registry. Only the CI token endpoints are fakes."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sc_ci import secrets
from sc_ci.engine.context import RunContext, RunOptions
from sc_ci.errors import StepFailed, VerificationFailed
from sc_ci.runner import base_env
from sc_ci.secrets import Secret
from sc_ci.session import open_session
from sc_ci.signing import setup as signing
from sc_ci.signing.signers import CertificateIdentity, Keyless
from sc_ci.tools import versions
from sc_ci.tools.cosign import Cosign, SignOptions
from testbed.github import parse_output
from testbed.images import PushedImage
from testbed.keyless import KeylessBed
from testbed.registry import free_port

FreshImage = Callable[..., PushedImage]
RunScCi = Callable[..., subprocess.CompletedProcess[str]]
Shim = Callable[[Path], tuple[Path, Path]]


def _major(cosign: Path) -> int:
    found = versions.detect("cosign", cosign, env=base_env())
    assert found.version is not None
    return int(found.version.lstrip("v").split(".")[0])


def _expected_command(bed: KeylessBed, image: str, identity: str, issuer: str) -> str:
    return shlex.join(["cosign", "verify", "--certificate-identity", identity, "--certificate-oidc-issuer", issuer,
                       "--trusted-root", str(bed.trust.trusted_root), "--insecure-ignore-tlog=true",
                       "--insecure-ignore-sct=true", image])



def _without_masks(text: str, *values: str) -> str:
    """The output minus the ::add-mask:: commands GitHub consumes (they are how a token gets masked)."""
    for value in values:
        text = text.replace(f"::add-mask::{value}\n", "")
    return text


def test_github_keyless_sign_and_verify_with_derived_identity(
        keyless_bed: KeylessBed, request_token: str, cosign_any: Path, fresh_image: FreshImage, run_sc_ci: RunScCi,
        cosign_shim: Shim, tmp_path: Path) -> None:
    images = [fresh_image(), fresh_image("service-1")]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    shim, argv_log = cosign_shim(cosign_any)
    env = {**keyless_bed.github_env(request_token), "SC_CI_COSIGN_PATH": str(shim), "TMPDIR": str(scratch),
           "GITHUB_OUTPUT": str(tmp_path / "github_output"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    args = [a for image in images for a in ("-i", image.ref)]

    result = run_sc_ci("image", "sign", *args, "-v", env=env)

    assert result.returncode == 0, result.stderr
    exchange = keyless_bed.github.exchange
    assert exchange is not None
    # one token for the run, requested the way GitHub's toolkit does, shared by both images
    assert len(exchange.requests) == 1
    assert exchange.requests[0] == {"method": "GET", "audience": "sigstore", "api-version": "2.0",
                                    "authorized": "True"}
    token = exchange.minted[0]
    assert result.stdout.count("ok   sign") == 2
    assert result.stdout.count("ok   verify") == 2
    assert "signed keyless (GitHub Actions OIDC token)" in result.stdout
    identity, issuer = keyless_bed.github_identity, keyless_bed.github.url
    assert issuer.endswith("/_services/token")
    outputs = parse_output((tmp_path / "github_output").read_text())
    for image in images:
        command = _expected_command(keyless_bed, image.by_digest, identity, issuer)
        assert command in result.stdout  # the console's "Verify it yourself"
        assert command in outputs["verify-commands"].splitlines()
        assert f"ok   verify  {image.by_digest.split('@')[0]}" in result.stdout

    # the token: masked before use, never in argv, never printed, no file left behind
    assert f"::add-mask::{token}" in result.stdout.splitlines()
    assert token not in _without_masks(result.stdout, token, request_token)
    assert request_token not in _without_masks(result.stdout, token, request_token)
    for secret in (token, request_token):
        assert secret not in result.stderr
        assert secret not in argv_log.read_text()
    assert not [p for p in scratch.rglob("*")], "token files left behind"
    sign_lines = [line for line in argv_log.read_text().splitlines() if line.startswith("sign ")]
    assert len(sign_lines) == 2
    for line in sign_lines:
        token_file = Path(line.split("--identity-token ", 1)[1].split(" ", 1)[0])
        assert token_file.parent.parent == scratch
        assert not token_file.exists()
        if _major(cosign_any) >= 3:  # the legacy format (default storage) excludes a signing config in v3
            assert "--new-bundle-format=false --use-signing-config=false" in line
            assert f"--fulcio-url={keyless_bed.fulcio.url} --tlog-upload=false" in line
            assert "--signing-config" not in line
        else:  # v2 gets the URL from the signing config, skips the SCT check while signing
            assert f"--fulcio-url={keyless_bed.fulcio.url}" in line
            assert "--tlog-upload=false" in line
            assert "--insecure-skip-verify=true" in line
        assert f"--trusted-root {keyless_bed.trust.trusted_root}" in line

    # `image verify` with no identity given: derived from the CI context alone (no token fetched)
    verified = run_sc_ci("image", "verify", "-i", images[0].by_digest, env=env)
    assert verified.returncode == 0, verified.stderr
    assert f"verified 1 signature(s) with identity {identity}, issuer {issuer}" in verified.stdout
    assert len(exchange.requests) == 1

    # the printed command is what a consumer runs, and it works with the real cosign as printed
    printed = shlex.split(_expected_command(keyless_bed, images[1].by_digest, identity, issuer))
    consumer = subprocess.run([str(cosign_any), *printed[1:]], env=base_env(), capture_output=True, text=True,
                              timeout=120, check=False)
    assert consumer.returncode == 0, consumer.stderr


def test_wrong_identity_or_issuer_fails(keyless_bed: KeylessBed, request_token: str, cosign_any: Path,
                                        fresh_image: FreshImage, run_sc_ci: RunScCi) -> None:
    image = fresh_image()
    env = {**keyless_bed.github_env(request_token), "SC_CI_COSIGN_PATH": str(cosign_any)}
    assert run_sc_ci("image", "sign", "-i", image.ref, env=env).returncode == 0
    outside = {**keyless_bed.sigstore_env(), "SC_CI_COSIGN_PATH": str(cosign_any)}  # a consumer, not in CI
    identity, issuer = keyless_bed.github_identity, keyless_bed.github.url
    evil = identity.replace("release.yml", "evil.yml")

    wrong_identity = run_sc_ci("image", "verify", "-i", image.by_digest, "--certificate-identity", evil,
                               "--certificate-oidc-issuer", issuer, env=outside)
    assert wrong_identity.returncode == 1
    assert f"no signature was made by the expected identity {evil}, issuer {issuer}" in wrong_identity.stdout
    assert identity in wrong_identity.stderr  # cosign's why: what the certificate does hold
    assert "identity-or-issuer-mismatch" in wrong_identity.stderr

    wrong_issuer = run_sc_ci("image", "verify", "-i", image.by_digest, "--certificate-identity", identity,
                             "--certificate-oidc-issuer", "https://token.actions.githubusercontent.com", env=outside)
    assert wrong_issuer.returncode == 1
    assert "issuer https://token.actions.githubusercontent.com" in wrong_issuer.stdout
    assert issuer in wrong_issuer.stderr

    by_regexp = run_sc_ci("image", "verify", "-i", image.by_digest, "--certificate-identity-regexp",
                          r"^http://127\.0\.0\.1:\d+/acme/app/", "--certificate-oidc-issuer-regexp",
                          "/_services/token$", env=outside)
    assert by_regexp.returncode == 0, by_regexp.stderr
    assert "--certificate-identity-regexp" in by_regexp.stdout

    nothing_given = run_sc_ci("image", "verify", "-i", image.by_digest, env=outside)
    assert nothing_given.returncode == 2
    assert "no certificate identity or OIDC issuer to verify keyless signatures against" in nothing_given.stderr
    both = run_sc_ci("image", "verify", "-i", image.by_digest, "--key", "cosign.pub", "--certificate-identity",
                     identity, env=outside)
    assert both.returncode == 2
    assert "--key and --certificate-* exclude each other" in both.stderr


def test_gitlab_keyless_verifies_with_config_ref_identity(keyless_bed: KeylessBed, cosign_any: Path,
                                                          fresh_image: FreshImage, run_sc_ci: RunScCi) -> None:
    image = fresh_image()
    token = keyless_bed.gitlab.mint(keyless_bed.gitlab_claims())
    env = {**keyless_bed.gitlab_env(token), "SC_CI_COSIGN_PATH": str(cosign_any)}

    result = run_sc_ci("image", "sign", "-i", image.ref, env=env)

    assert result.returncode == 0, result.stderr
    identity = f"https://{keyless_bed.gitlab_config_ref}"
    assert "//.gitlab-ci.yml@refs/heads/main" in identity
    command = _expected_command(keyless_bed, image.by_digest, identity, keyless_bed.gitlab.origin)
    assert command in result.stdout
    assert "signed keyless (GitLab ID token)" in result.stdout
    assert token not in result.stdout + result.stderr
    verified = run_sc_ci("image", "verify", "-i", image.by_digest, env={**env, "SIGSTORE_ID_TOKEN": ""})
    assert verified.returncode == 0, verified.stderr


def test_token_with_wrong_audience_is_refused(keyless_bed: KeylessBed, cosign_any: Path, fresh_image: FreshImage,
                                              run_sc_ci: RunScCi, cosign_shim: Shim) -> None:
    image = fresh_image()
    claims = {"email": "dev@example.com", "email_verified": True}
    wrong = keyless_bed.email.mint(claims, audience="https://github.com/acme")
    shim, argv_log = cosign_shim(cosign_any)
    env = {**keyless_bed.sigstore_env(), "SC_CI_COSIGN_PATH": str(shim), "SIGSTORE_ID_TOKEN": wrong}

    # sc-ci refuses it before cosign runs, naming the audience
    result = run_sc_ci("image", "sign", "-i", image.ref, env=env)
    assert result.returncode == 1
    assert "has audience 'https://github.com/acme', not `sigstore`" in result.stderr
    assert "sign" not in argv_log.read_text().split()
    assert wrong not in result.stdout + result.stderr

    # and Fulcio itself refuses it (the check above is not the only guard); the failure is explained
    cosign = Cosign(cosign_any, versions.detect("cosign", cosign_any, env=base_env()).version or "", base_env())
    trust = keyless_bed.trust
    options = SignOptions(tlog=False, ct_log=False, trusted_root=str(trust.trusted_root),
                          signing_config=str(trust.signing_config), config_fulcio_url=keyless_bed.fulcio.url)
    with pytest.raises(StepFailed) as refused:
        cosign.sign(image.by_digest, Keyless(Secret(wrong, "test token"), "test"), options)
    assert "Fulcio rejected the OIDC identity token" in refused.value.what
    assert "audience is not `sigstore`" in refused.value.why
    assert wrong not in refused.value.diagnostics()


def test_fulcio_url_instead_of_signing_config(keyless_bed: KeylessBed, cosign_any: Path, fresh_image: FreshImage,
                                              run_sc_ci: RunScCi, cosign_shim: Shim) -> None:
    """signing.sigstore.fulcioUrl (v3: --use-signing-config=false --fulcio-url; v2: --fulcio-url) with a token
    a user brings in SIGSTORE_ID_TOKEN outside any CI: identity and issuer come from the token (email)."""
    image = fresh_image()
    token = keyless_bed.email.mint({"email": "dev@example.com", "email_verified": True})
    shim, argv_log = cosign_shim(cosign_any)
    env = {"SC_CI_COSIGN_PATH": str(shim), "SIGSTORE_ID_TOKEN": token,
           "SC_CI_SECURITY__SIGNING__SIGSTORE__FULCIOURL": keyless_bed.fulcio.url,
           "SC_CI_SECURITY__SIGNING__SIGSTORE__TRUSTEDROOT": str(keyless_bed.trust.trusted_root),
           "SC_CI_SECURITY__SIGNING__SIGSTORE__CERTIFICATETRANSPARENCY": "false"}

    result = run_sc_ci("image", "sign", "-i", image.ref, "--no-tlog", env=env)

    assert result.returncode == 0, result.stderr
    assert "signed keyless (OIDC token from SIGSTORE_ID_TOKEN)" in result.stdout
    assert f"verified 1 signature(s) with identity dev@example.com, issuer {keyless_bed.email.url}" in result.stdout
    sign_line = next(line for line in argv_log.read_text().splitlines() if line.startswith("sign "))
    assert f"--fulcio-url={keyless_bed.fulcio.url}" in sign_line
    assert ("--use-signing-config=false" in sign_line) == (_major(cosign_any) >= 3)
    assert token not in argv_log.read_text() + result.stdout + result.stderr


@pytest.fixture
def _own_masker() -> Iterator[None]:
    """In-process GitHub runs install ::add-mask:: printing on this test's stdout: drop it afterwards."""
    yield
    secrets.reset_for_tests()


@pytest.mark.usefixtures("_own_masker")
def test_keyless_attestation_and_its_verification(keyless_bed: KeylessBed, request_token: str, cosign_any: Path,
                                                  fresh_image: FreshImage, tmp_path: Path) -> None:
    """The SigningPlan the SBOM and provenance steps use: keyless attest + verify-attestation, unchanged API."""
    image = fresh_image()
    env = {**base_env(), **keyless_bed.github_env(request_token), "SC_CI_COSIGN_PATH": str(cosign_any)}
    session = open_session(argparse.Namespace(images=[image.ref]), env, {"signing.enabled": True})
    ctx = RunContext(session, RunOptions(), tmp_path)
    cosign = ctx.cosign()
    plan = ctx.signing_plan()
    assert plan.keyless
    assert isinstance(plan.verify_key, CertificateIdentity)
    assert plan.verify_key.identity == keyless_bed.github_identity
    builder = {"id": "https://example.com/builder"}
    predicate = {"buildDefinition": {"buildType": "https://example.com/test", "externalParameters": {"x": 1}},
                 "runDetails": {"builder": builder}}
    path = tmp_path / "predicate.json"
    path.write_text(json.dumps(predicate))

    plan.attest(cosign, image.by_digest, path, "slsaprovenance1")
    statements = plan.verify_attestation(cosign, image.by_digest, "slsaprovenance1")

    assert len(statements) == 1
    assert statements[0]["predicateType"] == "https://slsa.dev/provenance/v1"
    found = statements[0]["predicate"]
    assert isinstance(found, dict)  # cosign v2 re-serializes it, adding an empty runDetails.metadata
    assert found["buildDefinition"] == predicate["buildDefinition"]
    run_details = found["runDetails"]
    assert isinstance(run_details, dict)
    assert run_details["builder"] == builder
    exchange = keyless_bed.github.exchange
    assert exchange is not None
    assert ctx.signing_plan() is plan  # every step of the run (SBOM, provenance) uses the run's one plan …
    assert len(exchange.requests) == 1  # … and its one token
    assert secrets.mask(exchange.minted[0]) == secrets.MASK
    someone_else = replace(plan, verify_key=replace(plan.verify_key, identity=re.sub(
        r"release\.yml", "other.yml", plan.verify_key.identity or "")))
    with pytest.raises(VerificationFailed, match=r"other\.yml"):
        someone_else.verify_attestation(cosign, image.by_digest, "slsaprovenance1")


def test_keyless_dry_run_fetches_no_token(keyless_bed: KeylessBed, request_token: str, cosign_v3: Path,
                                          fresh_image: FreshImage, run_sc_ci: RunScCi) -> None:
    image = fresh_image()
    env = {**keyless_bed.github_env(request_token), "SC_CI_COSIGN_PATH": str(cosign_v3)}
    result = run_sc_ci("image", "sign", "-i", image.ref, "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert (f"sign --yes --identity-token <0600 token file> --new-bundle-format=false --use-signing-config=false "
            f"--fulcio-url={keyless_bed.fulcio.url} --tlog-upload=false") in result.stdout
    assert f"--certificate-identity {keyless_bed.github_identity}" in result.stdout
    exchange = keyless_bed.github.exchange
    assert exchange is not None
    assert exchange.requests == []
    assert run_sc_ci("image", "verify", "-i", image.by_digest, env=env).returncode == 1  # nothing was signed


def test_sigterm_while_cosign_runs_leaves_no_token_file(keyless_bed: KeylessBed, cosign_v3: Path,
                                                       fresh_image: FreshImage, tmp_path: Path) -> None:
    """A CI cancelling the job sends SIGTERM: the token file goes with the cosign it was written for."""
    image = fresh_image()
    scratch, log = tmp_path / "tmp", tmp_path / "argv.log"
    scratch.mkdir()
    shim = tmp_path / "cosign-sleeps-when-signing"
    shim.write_text(f'#!/bin/sh\nif [ "$1" = sign ]; then printf "%s\\n" "$*" >> "{log}"; exec sleep 60; fi\n'
                    f'exec "{cosign_v3}" "$@"\n')
    shim.chmod(0o755)
    token = keyless_bed.email.mint({"email": "dev@example.com", "email_verified": True})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "GITHUB_", "SIGSTORE_"))}
    env.update({**keyless_bed.sigstore_env(), "SIGSTORE_ID_TOKEN": token, "SC_CI_COSIGN_PATH": str(shim),
                "TMPDIR": str(scratch), "NO_PROXY": "127.0.0.1"})
    child = subprocess.Popen([sys.executable, "-m", "sc_ci", "image", "sign", "-i", image.ref], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        token_path = Path(log.read_text().split("--identity-token ", 1)[1].split(" ", 1)[0])
        assert token_path.read_text() == token  # cosign is running: its token file exists, 0600
        assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 128 + signal.SIGTERM
    assert not token_path.exists()
    assert list(scratch.iterdir()) == []
    assert token not in err


def test_unreachable_fulcio_is_named(keyless_bed: KeylessBed, cosign_any: Path, fresh_image: FreshImage,
                                     run_sc_ci: RunScCi) -> None:
    image = fresh_image()
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"SC_CI_COSIGN_PATH": str(cosign_any),
           "SIGSTORE_ID_TOKEN": keyless_bed.email.mint({"email": "dev@example.com", "email_verified": True}),
           "SC_CI_SECURITY__SIGNING__SIGSTORE__FULCIOURL": dead,
           "SC_CI_SECURITY__SIGNING__SIGSTORE__TRUSTEDROOT": str(keyless_bed.trust.trusted_root)}
    result = run_sc_ci("image", "sign", "-i", image.ref, "--no-tlog", env=env)
    assert result.returncode == 1
    assert f"could not get a signing certificate from Fulcio at {dead}" in result.stdout
    assert "connection refused" in result.stderr
    assert "fulcio-unreachable" in result.stderr


@pytest.mark.parametrize("storage", ["referrers", "both"])
@pytest.mark.usefixtures("_own_masker")
def test_keyless_storage_modes_verify_with_both_majors(
        storage: str, keyless_bed: KeylessBed, request_token: str, cosign_any: Path, cosign_v3: Path,
        cosign_v2: Path, fresh_image: FreshImage, run_sc_ci: RunScCi, cosign_shim: Shim, tmp_path: Path) -> None:
    """Keyless signatures and attestations in bundle form (and both forms) from either major: the flags each
    major needs, and verification by v3 and by v2.6 (which reads bundles with the trusted root)."""
    image = fresh_image()
    shim, argv_log = cosign_shim(cosign_any)
    env = {**keyless_bed.github_env(request_token), "SC_CI_COSIGN_PATH": str(shim),
           "SC_CI_SECURITY__SIGNING__STORAGE": storage}
    result = run_sc_ci("image", "sign", "-i", image.ref, env=env)
    assert result.returncode == 0, result.stderr
    sign_lines = [line for line in argv_log.read_text().splitlines() if line.startswith("sign ")]
    assert len(sign_lines) == (2 if storage == "both" else 1)
    bundle_line = sign_lines[-1]
    if _major(cosign_any) >= 3:
        assert f"--signing-config {keyless_bed.trust.signing_config}" in bundle_line
        assert "--new-bundle-format" not in bundle_line
    else:
        assert "--new-bundle-format=true" in bundle_line
        assert f"--fulcio-url={keyless_bed.fulcio.url}" in bundle_line
    if storage == "both":  # the legacy copy first: v3 needs the flag, v2 writes it by default
        legacy_line = sign_lines[0]
        if _major(cosign_any) >= 3:
            assert "--new-bundle-format=false --use-signing-config=false" in legacy_line
        else:
            assert "--new-bundle-format" not in legacy_line

    # the attestation follows the setting; both majors verify the signature and the attestation
    session = open_session(argparse.Namespace(images=[image.ref]),
                           {**base_env(), **env, "SC_CI_COSIGN_PATH": str(cosign_any)}, {"signing.enabled": True})
    plan = signing.plan(session, session.cosign())
    path = tmp_path / "predicate.json"
    path.write_text(json.dumps({"buildDefinition": {"buildType": "https://example.com/t", "externalParameters": {}},
                                "runDetails": {"builder": {"id": "https://example.com/b"}}}))
    plan.attest(session.cosign(), image.by_digest, path, "slsaprovenance1")
    identity, issuer = keyless_bed.github_identity, keyless_bed.github.url
    for verifier in (cosign_v3, cosign_v2):
        outside = {**keyless_bed.sigstore_env(), "SC_CI_COSIGN_PATH": str(verifier),
                   "SC_CI_SECURITY__SIGNING__STORAGE": storage}
        verified = run_sc_ci("image", "verify", "-i", image.by_digest, "--certificate-identity", identity,
                             "--certificate-oidc-issuer", issuer, env=outside)
        assert verified.returncode == 0, (verifier, verified.stderr)
        version = versions.detect("cosign", verifier, env=base_env()).version or ""
        statements = plan.verify_attestation(Cosign(verifier, version, base_env()), image.by_digest,
                                             "slsaprovenance1")
        assert [s["predicateType"] for s in statements] == ["https://slsa.dev/provenance/v1"]


def test_keyless_signed_digest_is_skipped_next_time(keyless_bed: KeylessBed, request_token: str, cosign_any: Path,
                                                     fresh_image: FreshImage, run_sc_ci: RunScCi,
                                                     cosign_shim: Shim) -> None:
    """The same identity already signed this digest: the second run verifies (one cosign verify), skips
    signing, and reuses that verification; --force signs again."""
    image = fresh_image()
    shim, argv_log = cosign_shim(cosign_any)
    env = {**keyless_bed.github_env(request_token), "SC_CI_COSIGN_PATH": str(shim)}
    assert run_sc_ci("image", "sign", "-i", image.ref, env=env).returncode == 0
    again = run_sc_ci("image", "sign", "-i", image.ref, env=env)
    assert again.returncode == 0, again.stderr
    identity, issuer = keyless_bed.github_identity, keyless_bed.github.url
    assert f"already signed by identity {identity}, issuer {issuer}" in again.stdout
    assert "(before signing)" in again.stdout
    calls = argv_log.read_text().splitlines()
    assert sum(line.startswith("sign ") for line in calls) == 1
    # first run: no .sig tag yet, so no check before signing, then the verify after it; second run: the
    # check before signing, whose verification is reused
    assert sum(line.startswith("verify ") for line in calls) == 2
    forced = run_sc_ci("image", "sign", "-i", image.ref, "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert "ok   sign" in forced.stdout
    assert sum(line.startswith("sign ") for line in argv_log.read_text().splitlines()) == 2
