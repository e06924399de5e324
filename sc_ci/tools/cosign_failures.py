"""cosign failures as ScErrors: what failed, the likely cause (cosign's own lines), and the fix."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sc_ci import retry
from sc_ci.errors import ScError, StepFailed, ToolError, VerificationFailed
from sc_ci.runner import Completed

PUBLIC_FULCIO = "https://fulcio.sigstore.dev"
PUBLIC_REKOR = "https://rekor.sigstore.dev"


def _why(stderr: str, lines: int = 4) -> str:
    """cosign's own error lines, without its warnings and repeated wrappers."""
    seen: list[str] = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line or line.startswith("WARNING") or line.startswith("error during command execution"):
            continue
        if line not in seen:
            seen.append(line)
    return "\n".join(seen[-lines:])


def classify(result: Completed, image: str, action: str, *, identity: str | None = None,
             fulcio_url: str | None = None, kms: str | None = None, rekor_url: str | None = None) -> ScError:
    """The failure of `cosign <action>` on `image` as an ScError. `identity`: the label of the keyless
    identity verification expected (None: a key); `fulcio_url` / `rekor_url`: the configured Fulcio and
    Rekor, for messages and to recognise them; `kms`: the (masked) KMS key URI when the key lives in a KMS."""
    err = result.stderr
    tail = _why(err)
    if "decryption failed" in err or "incorrect passphrase" in err:
        return StepFailed(f"{action} {image}: could not decrypt the private key",
                          why="COSIGN_PASSWORD is missing or wrong for this key",
                          fix="Set COSIGN_PASSWORD (as a CI secret) to the key's password.")
    if kms is not None:
        failed = _kms_failure(err, tail, image, action, kms)
        if failed is not None:
            return failed
    storage = _storage_failure(err, tail, image)
    if storage is not None:
        return storage
    tlog = _tlog_failure(err, tail, image, action, rekor_url)
    if tlog is not None:
        return tlog
    fulcio = _keyless_failure(err, tail, image, action, fulcio_url)
    if fulcio is not None:
        return fulcio
    if ("no matching" in err or "no signatures found" in err) and retry.is_transient_text(err):
        # "no matching signatures: Get …/blobs/…: connection refused": the network failed mid-verification
        return StepFailed(f"{action} {image}: the registry could not be reached while verifying", why=tail,
                          fix="cosign could not fetch the signatures or attestations (connection refused or reset, "
                              "timeouts, 429, 5xx) and the retries with backoff kept failing: this says nothing "
                              "about the signatures. Check the registry is reachable from the runner, then rerun. "
                              f"See {TROUBLESHOOTING}#transient-failures-retried")
    if "none of the attestations matched the predicate type" in err:
        return VerificationFailed(f"{image}: no attestation of the requested type", why=tail,
                                  fix="Attach it first (sc-ci sbom attach / sc-ci provenance attach), and verify "
                                      "with the type that matches the document (cyclonedx, spdxjson, "
                                      "slsaprovenance1, …).")
    if result.returncode == 10 or "no signatures found" in err:
        return VerificationFailed(f"{image}: no signature found", why=tail,
                                  fix="Sign it first: sc-ci image sign --image IMAGE (--key cosign.key, or keyless "
                                      "in CI), and check you verify the same registry/repository.")
    if result.returncode == 11 or "MANIFEST_UNKNOWN" in err or "NAME_UNKNOWN" in err:
        return VerificationFailed(f"{image}: image not found in the registry", why=tail,
                                  fix="Check the image reference and that it was pushed.")
    certificate = _certificate_failure(err, tail, image, identity)
    if certificate is not None:
        return certificate
    if "invalid or missing digest in claim" in err or "artifact digest does not match any digest" in err:
        return VerificationFailed(
            f"{image}: the signature found was made for another image digest", why=tail,
            fix="A signature is bound to the digest it was made for: one copied from another image's tags never "
                "verifies here. Sign this digest (sc-ci image sign), and pull images by the digest that was signed.")
    if result.returncode == 12 or "no matching" in err or "threshold" in err or "invalid signature" in err:
        if identity is not None:
            return _identity_mismatch(image, tail, identity)
        return VerificationFailed(f"{image}: no signature matches the given key or identity", why=tail,
                                  fix="Verify with the public key that belongs to the signing key, or "
                                      "re-sign the image with the expected key.")
    if "UNAUTHORIZED" in err or "DENIED" in err or re.search(r"\b40[13] (Unauthorized|Forbidden)", err):
        return StepFailed(f"{action} {image}: the registry denied access", why=tail,
                          fix="Log in to the registry (DOCKER_CONFIG) or set SC_CI_REGISTRY_USERNAME / "
                              "SC_CI_REGISTRY_PASSWORD; signing needs push access.")
    if retry.is_transient_text(err):
        return StepFailed(f"{action} {image}: the registry (or a Sigstore service) could not be reached",
                          why=tail,
                          fix="Transient failures (connection refused or reset, timeouts, 429, 5xx) were retried "
                              "with backoff and kept failing: check that the registry host and port are right and "
                              "reachable from the runner (proxy: HTTPS_PROXY / NO_PROXY), then rerun. "
                              f"See {TROUBLESHOOTING}#transient-failures-retried")
    return ToolError(f"cosign {action} failed for {image} (exit {result.returncode})", why=tail,
                     fix="Rerun with -v to see cosign's full output.")


_KMS_MARKERS = ("kms", "public key:", "determining key type", "signerverifier", "getting signer", "transit/keys",
                "vault", "kubernetes", "secrets \"", "accessdenied", "permissiondenied", "keyvault",
                "loading key")
_KMS_FIX = {
    "hashivault": "Set VAULT_ADDR (the Vault server) and VAULT_TOKEN (a token allowed to use the transit key) in "
                  "the job's environment; the key name is the part after hashivault://.",
    "awskms": "Give the job AWS credentials allowed to use the key (kms:Sign, kms:GetPublicKey): AWS_REGION plus "
              "an assumed role (GitHub: aws-actions/configure-aws-credentials with id-token: write) or "
              "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY as CI secrets.",
    "gcpkms": "Give the job Google credentials allowed to use the key version (roles/cloudkms.signerVerifier): "
              "workload identity (GitHub: google-github-actions/auth) or GOOGLE_APPLICATION_CREDENTIALS.",
    "azurekms": "Give the job Azure credentials allowed to sign with the key (AZURE_TENANT_ID, AZURE_CLIENT_ID and "
                "AZURE_CLIENT_SECRET, or azure/login); the vault must be reachable from the runner.",
    "k8s": "Point KUBECONFIG at the cluster and check the secret NAMESPACE/NAME exists and holds cosign.key, "
           "cosign.password and cosign.pub (cosign generate-key-pair k8s://NAMESPACE/NAME makes it).",
}


def _kms_failure(err: str, tail: str, image: str, action: str, kms: str) -> ScError | None:
    """The key lives in a KMS and cosign could not use it: unreachable, refused, or no such key."""
    if not any(marker in err.lower() for marker in _KMS_MARKERS):
        return None
    scheme = kms.split("://", 1)[0]
    fix = _KMS_FIX.get(scheme, "Check the KMS URI and the credentials the job gives the KMS provider.")
    if retry.is_transient_text(err):
        return StepFailed(f"{action} {image}: could not reach the KMS holding {kms}", why=tail,
                          fix=fix + f" See {TROUBLESHOOTING}#kms-key-unusable")
    return StepFailed(f"{action} {image}: the KMS refused or could not find the key {kms}", why=tail,
                      fix=fix + f" See {TROUBLESHOOTING}#kms-key-unusable")


def _storage_failure(err: str, tail: str, image: str) -> ScError | None:
    """cosign v2.6 reading Sigstore bundles (signing.storage referrers / both) without what they need."""
    if "trusted root is required when using new bundle format" in err:
        return VerificationFailed(
            f"{image}: cosign v2 found Sigstore bundles and has no trusted root to check them against", why=tail,
            fix="cosign v2.6 reads the bundles cosign v3 writes (signing.storage: referrers or both) only with a "
                "trusted root: give signing.sigstore.trustedRoot (or let cosign reach the public TUF "
                "repository), verify with cosign v3, or sign with signing.storage: legacy. "
                f"See {TROUBLESHOOTING}#v2-needs-a-trusted-root-for-bundles")
    if "must be provided using --trusted-root when using --new-bundle-format" in err:
        return VerificationFailed(
            f"{image}: cosign v2 found Sigstore bundles where legacy attestations were expected", why=tail,
            fix="The attestations are bundles (written by cosign v3 or signing.storage: referrers / both): set "
                "signing.storage to referrers or both for verification, or verify with cosign v3. "
                f"See {TROUBLESHOOTING}#v2-needs-a-trusted-root-for-bundles")
    return None


# A request to Rekor's API (v1 or v2 log entries) that never got an answer, as cosign's Rekor client words it
# ("Post \"https://rekor.sigstore.dev/api/v1/log/entries\": … giving up after 4 attempt(s): … no such host").
_REKOR_POST = re.compile(r"(https?://[^\s\"'/]+)[^\s\"']*/api/v[12]/log/entries")
_UNREACHABLE = re.compile(r"no such host|dial tcp|connection refused|i/o timeout|network is unreachable|"
                          r"giving up after|server misbehaving|temporary failure in name resolution|"
                          r"tls handshake timeout|context deadline exceeded", re.IGNORECASE)
_TLOG_FIX = ("Key-based signing also uploads to a transparency log (Rekor; the public one is "
             f"{PUBLIC_REKOR}) unless told not to. On an offline machine or with a private Sigstore that has no "
             "Rekor, sign without it: --no-tlog, or in the YAML\n"
             "  security:\n    signing:\n      sigstore:\n        transparencyLog: false\n"
             "(verifiers then use cosign --insecure-ignore-tlog=true). With a private Rekor, set "
             "signing.sigstore.rekorUrl (or the signing config) to a Rekor the runner reaches. "
             "See docs/reliability.md#never-retried")


def _rekor_host(err: str, rekor_url: str | None) -> str | None:
    """The Rekor `err` failed to reach (its URL), if the failure is about the transparency log."""
    match = _REKOR_POST.search(err)
    if match and _UNREACHABLE.search(err):
        return match.group(1)
    known = {"rekor.sigstore.dev": PUBLIC_REKOR}
    if rekor_url:
        known[urlsplit(rekor_url).netloc or rekor_url] = rekor_url
    for host, url in known.items():
        if host and host in err and _UNREACHABLE.search(err):
            return url
    return None


def _tlog_failure(err: str, tail: str, image: str, action: str, rekor_url: str | None) -> ScError | None:
    """The transparency log could not be reached: not retried (cosign's Rekor client already retried, and
    offline it never gets through), named with the fix instead of 'check the registry'."""
    host = _rekor_host(err, rekor_url)
    if host is None:
        return None
    return StepFailed(f"{action} {image}: could not reach the transparency log service (Rekor at {host})",
                      why=tail, fix=_TLOG_FIX)


_FULCIO_URL = re.compile(r"(https?://[^\s\"']+?)/api/v[12]/signingCert")
TROUBLESHOOTING = "docs/troubleshooting.md"


def _keyless_failure(err: str, tail: str, image: str, action: str, fulcio_url: str | None) -> ScError | None:
    """Failures of getting a certificate (Fulcio) or the trust root (TUF), before any signature exists."""
    if "error processing the identity token" in err or re.search(r"signingCert\S* returned 40[013]", err):
        return StepFailed(
            f"{action} {image}: Fulcio rejected the OIDC identity token", why=tail + "\n" + _REJECTION_CAUSES,
            fix="Request the token with audience `sigstore`; sign within its lifetime (and within the run that "
                "fetched it); keep the runner's clock in sync (NTP). For your own Fulcio, list the token's issuer "
                f"in its OIDC issuers. See {TROUBLESHOOTING}#fulcio-rejected-the-identity-token")
    match = _FULCIO_URL.search(err)
    if match or ("fulcio" in err.lower() and "certificate" in err.lower() and retry.is_transient_text(err)):
        where = match.group(1) if match else (fulcio_url or "")
        return StepFailed(
            f"{action} {image}: could not get a signing certificate from Fulcio{' at ' + where if where else ''}",
            why=tail,
            fix="Check that the runner reaches Fulcio (proxy: HTTPS_PROXY / NO_PROXY) and that "
                "signing.sigstore.fulcioUrl (or the caUrls of signing.sigstore.signingConfig) is right; the "
                f"public instance is {PUBLIC_FULCIO}. See {TROUBLESHOOTING}#fulcio-unreachable")
    if "tuf" in err.lower() and ("no such host" in err or "dial tcp" in err or "failed to download" in err
                                 or "refresh failed" in err):
        config = "signing config" in err.lower()
        return StepFailed(
            f"{action} {image}: could not fetch the Sigstore "
            f"{'signing config (where the transparency log and Fulcio are)' if config else 'trust root'} over TUF",
            why=tail,
            fix=("cosign v3 reads the transparency log service (Rekor) to upload to from the public Sigstore "
                 "signing config. Signing with a key on an offline machine or a private Sigstore without Rekor: "
                 "--no-tlog (signing.sigstore.transparencyLog: false). Otherwise: " if config else
                 "Offline or private Sigstore: ")
                + "give the trust material as files (signing.sigstore.trustedRoot, and signingConfig for "
                "cosign v3 signing), or point signing.sigstore.tufMirror (+ tufRoot) at a TUF mirror the runner "
                f"can reach. See {TROUBLESHOOTING}#tuf-unreachable")
    return None


_REJECTION_CAUSES = ("Fulcio gives this answer when the token's audience is not `sigstore`, when it has expired "
                     "or is not valid yet (clock skew), or when its issuer is not one this Fulcio trusts.")


def _certificate_failure(err: str, tail: str, image: str, identity: str | None) -> ScError | None:
    """Verification failures of a keyless signature's certificate: identity, SCT, chain, validity, log."""
    if identity is not None and ("expected SAN value" in err or "expected issuer value" in err
                                 or "none of the expected identities matched" in err):
        return _identity_mismatch(image, tail, identity)
    if "signed certificate timestamp" in err or "embedded SCT" in err:
        return VerificationFailed(
            f"{image}: the signing certificate has no SCT this verifier trusts", why=tail,
            fix="A private Fulcio without a certificate transparency log: set "
                "signing.sigstore.certificateTransparency: false (cosign --insecure-ignore-sct). Otherwise give "
                "the trusted root that holds the CT log's key (signing.sigstore.trustedRoot). "
                f"See {TROUBLESHOOTING}#no-sct")
    if "leaf certificate verification failed" in err or "certificate signed by unknown authority" in err:
        return VerificationFailed(
            f"{image}: the signing certificate does not chain to a trusted Fulcio root", why=tail,
            fix="Verify against the trust root of the Fulcio that issued it: signing.sigstore.trustedRoot (made "
                "with `cosign trusted-root create`) or a TUF mirror serving it (signing.sigstore.tufMirror). "
                f"See {TROUBLESHOOTING}#certificate-not-trusted")
    if ("expired" in err and "certificate" in err) or "not yet valid" in err or "issued after signatures" in err:
        return VerificationFailed(
            f"{image}: the signing certificate is not valid at verification time", why=tail + "\nFulcio "
            "certificates last 10 minutes; with no transparency-log entry or signed timestamp to prove when the "
            "signature was made, cosign checks them against the current time.",
            fix="Keep the transparency log on (or add a timestamp authority) so signatures verify later; without "
                "them, verify within 10 minutes of signing. Check this machine's clock (NTP). "
                f"See {TROUBLESHOOTING}#certificate-expired-or-clock-skew")
    if "not enough verified log entries" in err or "searching log query" in err \
            or "signature not found in transparency log" in err:
        return VerificationFailed(
            f"{image}: the signature has no transparency-log entry the verifier accepts", why=tail,
            fix="Signed without Rekor (signing.sigstore.transparencyLog: false)? Verify the same way "
                "(--no-tlog, i.e. cosign --insecure-ignore-tlog=true); with a private Rekor, give its key in the "
                f"trusted root. See {TROUBLESHOOTING}#no-transparency-log-entry")
    return None


def _identity_mismatch(image: str, tail: str, identity: str) -> VerificationFailed:
    return VerificationFailed(
        f"{image}: no signature was made by the expected {identity}", why=tail,
        fix="The line above says which identity and issuer the certificate holds. If that signer is legitimate, "
            "verify with it (--certificate-identity / --certificate-oidc-issuer, or signing.verify.identityRegexp "
            "/ oidcIssuer); otherwise the image was not signed by the workflow you trust. "
            f"See {TROUBLESHOOTING}#identity-or-issuer-mismatch")
