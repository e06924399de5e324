"""cosign: sign/verify/attest argv per major version (key or keyless), secrets never in argv."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sc_ci import retry, runner
from sc_ci.errors import ConfigError, ScError, VerificationFailed
from sc_ci.runner import Completed
from sc_ci.secrets import Secret
from sc_ci.tools.cosign_failures import classify
from sc_ci.tools.sigstore_files import LegacyTrust, legacy_trust

KEY_ENV = "SC_CI_COSIGN_KEY"  # inline key material is handed to cosign as env://SC_CI_COSIGN_KEY
PUB_ENV = "SC_CI_COSIGN_PUB"
KMS_PREFIXES = ("awskms://", "gcpkms://", "azurekms://", "hashivault://", "k8s://", "pkcs11:")
# Ambient credentials KMS providers read (passed through unchanged when a KMS key is used).
KMS_ENV_PREFIXES = ("AWS_", "GOOGLE_", "CLOUDSDK_", "AZURE_", "VAULT_", "KUBECONFIG")
# Sigstore trust settings cosign reads from the environment (paths and URLs, never credentials): passed
# through from the caller; the config's tufMirror / tufRoot override the TUF ones.
SIGSTORE_ENV = ("TUF_ROOT", "TUF_MIRROR", "TUF_ROOT_JSON", "SIGSTORE_ROOT_FILE", "SIGSTORE_CT_LOG_PUBLIC_KEY_FILE",
                "SIGSTORE_REKOR_PUBLIC_KEY", "SIGSTORE_TSA_CERTIFICATE_FILE")
TOKEN_PLACEHOLDER = "<0600 token file>"  # noqa: S105 (dry runs show this instead of the file path)


@dataclass(frozen=True)
class Key:
    """How cosign finds a key: `ref` goes in argv (a path, env://VAR or KMS URI, never key bytes);
    `env` holds the secret values cosign reads through env://."""

    ref: str
    env: Mapping[str, Secret] = field(default_factory=dict)
    label: str = ""  # what the summary shows (path, URI, or "inline secret NAME")

    @property
    def is_kms(self) -> bool:
        return self.ref.startswith(KMS_PREFIXES)


def key_from_reference(ref: str, env: Mapping[str, str], *, public: bool) -> Key:
    """A key given as a file path, env://VAR or KMS URI. File keys must exist and be readable."""
    if ref.startswith("env://"):
        var = ref.removeprefix("env://")
        if not env.get(var):
            raise ConfigError(f"key {ref} names environment variable {var}, which is not set",
                              fix=f"Export {var} with the PEM-encoded key, or pass a key file path.")
        return Key(ref, {var: Secret(env[var], var)}, ref)
    if ref.startswith(KMS_PREFIXES):
        return Key(ref, {}, ref)
    path = Path(ref).expanduser()
    if not path.is_file():
        kind = "public key" if public else "private key"
        raise ConfigError(f"{kind} file {ref} does not exist",
                          fix="Give the path to the cosign key file (cosign generate-key-pair writes "
                              "cosign.key / cosign.pub), env://VAR, or a KMS URI.")
    return Key(str(path), {}, str(path))


def key_from_secret(secret: Secret, *, public: bool) -> Key:
    """Inline key material (from ${secret:…}): handed over as env://, so no key file is ever written."""
    var = PUB_ENV if public else KEY_ENV
    return Key(f"env://{var}", {var: secret}, f"inline secret ({secret.name})")


@dataclass(frozen=True)
class Keyless:
    """Sign with a short-lived Fulcio certificate for an OIDC identity token (audience `sigstore`).

    The token is a Secret; cosign reads it from a 0600 file that exists only while cosign runs
    (`--identity-token FILE`): never argv, never the environment. `token` is None only in dry runs.
    """

    token: Secret | None
    source: str  # where the token came from, e.g. "GitHub Actions OIDC token exchange" (no secret)

    @property
    def label(self) -> str:
        return f"keyless ({self.source})"


@dataclass(frozen=True)
class CertificateIdentity:
    """What a keyless signature's certificate must name: identity (SAN) and OIDC issuer, exact or regexp."""

    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None

    @property
    def label(self) -> str:
        who = self.identity if self.identity is not None else f"matching {self.identity_regexp}"
        by = self.issuer if self.issuer is not None else f"matching {self.issuer_regexp}"
        return f"identity {who}, issuer {by}"

    def flags(self) -> list[str]:
        pairs = (("--certificate-identity", self.identity), ("--certificate-identity-regexp", self.identity_regexp),
                 ("--certificate-oidc-issuer", self.issuer),
                 ("--certificate-oidc-issuer-regexp", self.issuer_regexp))
        return [arg for flag, value in pairs if value is not None for arg in (flag, value)]


Signer = Key | Keyless
Verifier = Key | CertificateIdentity


@dataclass(frozen=True)
class SignOptions:
    """Sigstore settings that change cosign's argv or environment (public-good Sigstore when all unset)."""

    tlog: bool = True  # upload to / require the transparency log (Rekor)
    ct_log: bool = True  # require an SCT: Fulcio certificates logged in certificate transparency
    fulcio_url: str | None = None
    rekor_url: str | None = None
    trusted_root: str | None = None  # trusted_root.json (file)
    signing_config: str | None = None  # signing_config.json (file): cosign v3 reads it as is
    tuf_mirror: str | None = None  # TUF repository serving trusted_root.json (and the v3 signing config)
    tuf_root: str | None = None  # that mirror's root.json (file)
    # The services named in signing_config, for cosign v2 (which takes URLs, not the file, here).
    config_fulcio_url: str | None = None
    config_rekor_url: str | None = None

    @property
    def v2_fulcio_url(self) -> str | None:
        return self.fulcio_url or self.config_fulcio_url

    @property
    def v2_rekor_url(self) -> str | None:
        return self.rekor_url or self.config_rekor_url

    def env(self) -> dict[str, str]:
        """TUF settings both majors read from the environment (TUF_MIRROR, TUF_ROOT_JSON)."""
        out = {}
        if self.tuf_mirror:
            out["TUF_MIRROR"] = self.tuf_mirror
        if self.tuf_root:
            out["TUF_ROOT_JSON"] = self.tuf_root
        return out


@contextlib.contextmanager
def token_file(token: Secret) -> Iterator[Path]:
    """The token in a fresh 0600 file inside a private 0700 directory; both removed on every exit path."""
    directory = Path(tempfile.mkdtemp(prefix="sc-ci-oidc-"))
    try:
        path = directory / "token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token.reveal())
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True)
class Verified:
    """What a successful verification established."""

    image: str
    signatures: int
    payloads: tuple[Mapping[str, object], ...]


class Cosign:
    """One cosign binary of a known major version."""

    def __init__(self, path: Path, version: str, env: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.version = version.lstrip("v")
        self.major = int(self.version.split(".")[0] or 0)
        self._env = dict(runner.base_env(env))
        self._password: Secret | None = None
        if env is not None and "COSIGN_PASSWORD" in env:
            self._password = Secret(env["COSIGN_PASSWORD"], "COSIGN_PASSWORD")
        self._caller_env = dict(env or {})

    # ---- argv builders (pure) -------------------------------------------------
    def sign_argv(self, image: str, key: Signer, opts: SignOptions, token_path: str = TOKEN_PLACEHOLDER) -> list[str]:
        argv = [str(self.path), "sign", "--yes", *_signer_flags(key, token_path)]
        argv += self._sign_flags(key, opts)
        return [*argv, image]

    def verify_argv(self, image: str, key: Verifier, opts: SignOptions) -> list[str]:
        argv = [str(self.path), "verify", *_verifier_flags(key), "--output", "json"]
        return [*argv, *self._verify_flags(key, opts), image]

    def attest_argv(self, image: str, key: Signer, predicate: Path, predicate_type: str, opts: SignOptions,
                    token_path: str = TOKEN_PLACEHOLDER) -> list[str]:
        argv = [str(self.path), "attest", "--yes", *_signer_flags(key, token_path), "--predicate", str(predicate),
                "--type", predicate_type]
        return [*argv, *self._sign_flags(key, opts), image]

    def verify_attestation_argv(self, image: str, key: Verifier, predicate_type: str, opts: SignOptions,
                                legacy: LegacyTrust | None = None) -> list[str]:
        argv = [str(self.path), "verify-attestation", *_verifier_flags(key), "--type", predicate_type]
        flags = self._verify_flags(key, opts)
        if self._needs_legacy_trust(key, opts):
            # v2 checks old-format attestations against --ca-roots only ("trusted root path currently only
            # supported with --new-bundle-format"): the trusted root's CAs go there, its log keys in env
            at = flags.index("--trusted-root")
            roots = ["--ca-roots", legacy.ca_roots if legacy else "<Fulcio roots of the trusted root>"]
            if legacy and legacy.ca_intermediates:
                roots += ["--ca-intermediates", legacy.ca_intermediates]
            flags[at:at + 2] = roots
        return [*argv, *flags, image]

    def _needs_legacy_trust(self, key: Verifier, opts: SignOptions) -> bool:
        return self.major < 3 and opts.trusted_root is not None and isinstance(key, CertificateIdentity)

    def public_key_argv(self, key: Key) -> list[str]:
        return [str(self.path), "public-key", "--key", key.ref]

    def _sign_flags(self, key: Signer, opts: SignOptions) -> list[str]:
        """Where signing goes: v3 prefers a signing config (else the deprecated URL flags with
        --use-signing-config=false); v2 takes URLs (read from a signing config when that is what was given)."""
        keyless = isinstance(key, Keyless)
        flags: list[str] = []
        if self.major >= 3:
            if opts.signing_config:
                flags += ["--signing-config", opts.signing_config]
            elif (keyless and opts.fulcio_url) or opts.rekor_url or not opts.tlog:
                flags.append("--use-signing-config=false")
                if keyless and opts.fulcio_url:
                    flags.append(f"--fulcio-url={opts.fulcio_url}")
                if opts.rekor_url:
                    flags.append(f"--rekor-url={opts.rekor_url}")
                if not opts.tlog:
                    flags.append("--tlog-upload=false")
        else:
            if keyless and opts.v2_fulcio_url:
                flags.append(f"--fulcio-url={opts.v2_fulcio_url}")
            if opts.tlog and opts.v2_rekor_url:
                flags.append(f"--rekor-url={opts.v2_rekor_url}")
            if not opts.tlog:
                flags.append("--tlog-upload=false")
            if keyless and not opts.ct_log:
                flags.append("--insecure-skip-verify=true")  # v2 checks the SCT while signing; v3 does not
        if opts.trusted_root and (keyless or opts.signing_config):
            flags += ["--trusted-root", opts.trusted_root]
        return flags

    def _verify_flags(self, key: Verifier, opts: SignOptions) -> list[str]:
        flags: list[str] = []
        if opts.trusted_root:
            flags += ["--trusted-root", opts.trusted_root]
        if not opts.tlog:
            flags.append("--insecure-ignore-tlog=true")
        elif self.major < 3 and opts.v2_rekor_url:
            flags.append(f"--rekor-url={opts.v2_rekor_url}")  # v3 verifies log entries from the bundle
        if isinstance(key, CertificateIdentity) and not opts.ct_log:
            flags.append("--insecure-ignore-sct=true")
        return flags

    # ---- execution --------------------------------------------------------------
    def env_for(self, key: Signer | Verifier | None, docker_config: str | None = None,
                opts: SignOptions | None = None) -> dict[str, str]:
        env = dict(self._env)
        env["COSIGN_PASSWORD"] = self._password.reveal() if self._password else ""
        if isinstance(key, Key):
            for name, secret in key.env.items():
                env[name] = secret.reveal()
            if key.is_kms:
                env.update({k: v for k, v in self._caller_env.items() if k.startswith(KMS_ENV_PREFIXES)})
        env.update({k: v for k, v in self._caller_env.items() if k in SIGSTORE_ENV and v})
        if opts is not None:
            env.update(opts.env())
        if docker_config:
            env["DOCKER_CONFIG"] = docker_config
        elif "DOCKER_CONFIG" in self._caller_env:
            env["DOCKER_CONFIG"] = self._caller_env["DOCKER_CONFIG"]
        return env

    def _signing(self, key: Signer, argv_for: Callable[[str], list[str]], env: Mapping[str, str]) -> Completed:
        """Run a signing command; a keyless one gets its token file for exactly as long as cosign runs."""
        if not isinstance(key, Keyless):
            argv = argv_for(TOKEN_PLACEHOLDER)
            return _run(argv, env)
        if key.token is None:
            raise ScError("keyless signing without an identity token", why="the plan was made for a dry run",
                          fix="Run without --dry-run.")
        with token_file(key.token) as path:
            argv = argv_for(str(path))
            return _run(argv, env)

    def sign(self, image: str, key: Signer, opts: SignOptions, docker_config: str | None = None) -> Completed:
        env = self.env_for(key, docker_config, opts)
        result = self._signing(key, lambda token: self.sign_argv(image, key, opts, token), env)
        if not result.ok:
            raise _failure(result, image, "signing", None, opts)
        return result

    def verify(self, image: str, key: Verifier, opts: SignOptions, docker_config: str | None = None) -> Verified:
        argv, env = self.verify_argv(image, key, opts), self.env_for(key, docker_config, opts)
        result = _run(argv, env)
        if not result.ok:
            raise _failure(result, image, "verification", key, opts)
        payloads = _parse_payloads(result.stdout)
        digest = image.rpartition("@")[2]
        matching = [p for p in payloads if _payload_digest(p) == digest]
        if not matching:
            raise VerificationFailed(f"{image}: cosign verified signatures, but none covers this digest",
                                     why="the signed payloads name other digests",
                                     fix="Sign the image by digest with `sc-ci image sign`.")
        return Verified(image, len(matching), tuple(matching))

    def attest(self, image: str, key: Signer, predicate: Path, predicate_type: str, opts: SignOptions,
               docker_config: str | None = None) -> Completed:
        """Attach `predicate` as a signed in-toto attestation of `predicate_type` (cosign --type value)."""
        env = self.env_for(key, docker_config, opts)
        result = self._signing(key, lambda token: self.attest_argv(image, key, predicate, predicate_type, opts, token),
                               env)
        if not result.ok:
            raise _failure(result, image, "attesting", None, opts)
        return result

    def verify_attestation(self, image: str, key: Verifier, predicate_type: str, opts: SignOptions,
                           docker_config: str | None = None) -> list[dict[str, object]]:
        """Verify attestations of `predicate_type`; return the decoded in-toto statements."""
        env = self.env_for(key, docker_config, opts)
        if self._needs_legacy_trust(key, opts) and opts.trusted_root:
            try:
                with legacy_trust(Path(opts.trusted_root), tlog=opts.tlog, ct_log=opts.ct_log) as legacy:
                    argv = self.verify_attestation_argv(image, key, predicate_type, opts, legacy)
                    env.update(legacy.env)
                    result = _run(argv, env)
            except (OSError, ValueError, KeyError) as exc:
                raise ConfigError(f"cannot read the trusted root {opts.trusted_root}", why=str(exc),
                                  path="security.signing.sigstore.trustedRoot",
                                  fix="Give a trusted_root.json made with `cosign trusted-root create`.") from exc
        else:
            argv = self.verify_attestation_argv(image, key, predicate_type, opts)
            result = _run(argv, env)
        if not result.ok:
            raise _failure(result, image, "attestation verification", key, opts)
        return decode_statements(result.stdout)

    def public_key(self, key: Key) -> Secret:
        """Derive the public key of a private key (for verify-after-sign when no publicKey is given)."""
        result = runner.run(self.public_key_argv(key), env=self.env_for(key), timeout=60)
        if not result.ok:
            raise classify(result, key.label, "reading the public key of")
        return Secret(result.stdout, "public key")


def _signer_flags(key: Signer, token_path: str) -> list[str]:
    if isinstance(key, Keyless):
        return ["--identity-token", token_path]
    return ["--key", key.ref]


def _verifier_flags(key: Verifier) -> list[str]:
    if isinstance(key, CertificateIdentity):
        return key.flags()
    return ["--key", key.ref]


def consumer_command(image: str, key: Verifier, opts: SignOptions, predicate_type: str | None = None) -> str:
    """The `cosign verify …` line a consumer runs (a key: with the public key file they hold); with
    `predicate_type`, the `cosign verify-attestation --type …` line instead."""
    argv = ["cosign", "verify"] if predicate_type is None else ["cosign", "verify-attestation", "--type",
                                                                 predicate_type]
    if isinstance(key, CertificateIdentity):
        argv += key.flags()
        if opts.trusted_root:
            argv += ["--trusted-root", opts.trusted_root]
    else:
        argv += ["--key", key.label if not key.ref.startswith("env://") else "cosign.pub"]
    if not opts.tlog:
        argv.append("--insecure-ignore-tlog=true")
    if isinstance(key, CertificateIdentity) and not opts.ct_log:
        argv.append("--insecure-ignore-sct=true")
    return shlex.join([*argv, image])


def _run(argv: list[str], env: Mapping[str, str]) -> Completed:
    """Run cosign, retrying transient failures (network, 5xx) with backoff; when every attempt failed,
    the last failed result is returned for classification (never the retry's own exception)."""
    attempts: list[Completed] = []

    def attempt() -> Completed:
        attempts.append(runner.run(argv, env=env))
        return _transient_or(attempts[-1])

    try:
        return retry.call(attempt)
    except retry.TransientError:
        return attempts[-1]


def _transient_or(result: Completed) -> Completed:
    if not result.ok and retry.is_transient_text(result.stderr) and not _is_verification(result):
        raise retry.TransientError(result.tail(3))
    return result


def _failure(result: Completed, image: str, action: str, key: Verifier | None, opts: SignOptions) -> ScError:
    identity = key.label if isinstance(key, CertificateIdentity) else None
    return classify(result, image, action, identity=identity, fulcio_url=opts.fulcio_url or opts.config_fulcio_url)


def _is_verification(result: Completed) -> bool:
    return result.returncode in (10, 11, 12) or "no matching" in result.stderr or "threshold" in result.stderr


def _parse_payloads(stdout: str) -> list[Mapping[str, object]]:
    text = stdout.strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        # Older cosign prints one JSON document per line.
        data = [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
    return [d for d in (data if isinstance(data, list) else [data]) if isinstance(d, dict)]


def decode_statements(stdout: str) -> list[dict[str, object]]:
    """cosign verify-attestation prints one DSSE envelope per line; return their in-toto statements."""
    statements: list[dict[str, object]] = []
    for envelope in _parse_payloads(stdout):
        payload = envelope.get("payload")
        if isinstance(payload, str):
            decoded = json.loads(base64.b64decode(payload))
            if isinstance(decoded, dict):
                statements.append(decoded)
    return statements


def _payload_digest(payload: Mapping[str, object]) -> str | None:
    critical = payload.get("critical")
    if isinstance(critical, dict):
        image = critical.get("image")
        if isinstance(image, dict):
            digest = image.get("docker-manifest-digest")
            return digest if isinstance(digest, str) else None
    return None
