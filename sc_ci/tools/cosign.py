"""cosign: argv for sign/verify per major version, secrets via env only, failures classified."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sc_ci import retry, runner
from sc_ci.errors import ConfigError, ScError, StepFailed, ToolError, VerificationFailed
from sc_ci.runner import Completed
from sc_ci.secrets import Secret

KEY_ENV = "SC_CI_COSIGN_KEY"  # inline key material is handed to cosign as env://SC_CI_COSIGN_KEY
PUB_ENV = "SC_CI_COSIGN_PUB"
KMS_PREFIXES = ("awskms://", "gcpkms://", "azurekms://", "hashivault://", "k8s://", "pkcs11:")
# Ambient credentials KMS providers read (passed through unchanged when a KMS key is used).
KMS_ENV_PREFIXES = ("AWS_", "GOOGLE_", "CLOUDSDK_", "AZURE_", "VAULT_", "KUBECONFIG")


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
class SignOptions:
    """Sigstore settings that change cosign's argv."""

    tlog: bool = True  # upload to / require the transparency log


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
    def sign_argv(self, image: str, key: Key, opts: SignOptions) -> list[str]:
        argv = [str(self.path), "sign", "--yes", "--key", key.ref]
        argv += self._tlog_sign_flags(opts)
        return [*argv, image]

    def verify_argv(self, image: str, key: Key, opts: SignOptions) -> list[str]:
        argv = [str(self.path), "verify", "--key", key.ref, "--output", "json"]
        if not opts.tlog:
            argv.append("--insecure-ignore-tlog=true")
        return [*argv, image]

    def attest_argv(self, image: str, key: Key, predicate: Path, predicate_type: str, opts: SignOptions) -> list[str]:
        argv = [str(self.path), "attest", "--yes", "--key", key.ref, "--predicate", str(predicate),
                "--type", predicate_type]
        return [*argv, *self._tlog_sign_flags(opts), image]

    def verify_attestation_argv(self, image: str, key: Key, predicate_type: str, opts: SignOptions) -> list[str]:
        argv = [str(self.path), "verify-attestation", "--key", key.ref, "--type", predicate_type]
        if not opts.tlog:
            argv.append("--insecure-ignore-tlog=true")
        return [*argv, image]

    def public_key_argv(self, key: Key) -> list[str]:
        return [str(self.path), "public-key", "--key", key.ref]

    def _tlog_sign_flags(self, opts: SignOptions) -> list[str]:
        if opts.tlog:
            return []
        flags = ["--tlog-upload=false"]
        if self.major >= 3:
            flags.append("--use-signing-config=false")
        return flags

    # ---- execution --------------------------------------------------------------
    def env_for(self, key: Key, docker_config: str | None = None) -> dict[str, str]:
        env = dict(self._env)
        env["COSIGN_PASSWORD"] = self._password.reveal() if self._password else ""
        for name, secret in key.env.items():
            env[name] = secret.reveal()
        if key.is_kms:
            env.update({k: v for k, v in self._caller_env.items() if k.startswith(KMS_ENV_PREFIXES)})
        if docker_config:
            env["DOCKER_CONFIG"] = docker_config
        elif "DOCKER_CONFIG" in self._caller_env:
            env["DOCKER_CONFIG"] = self._caller_env["DOCKER_CONFIG"]
        return env

    def sign(self, image: str, key: Key, opts: SignOptions, docker_config: str | None = None) -> Completed:
        argv, env = self.sign_argv(image, key, opts), self.env_for(key, docker_config)
        result = retry.call(lambda: _transient_or(runner.run(argv, env=env)))
        if not result.ok:
            raise _classify(result, image, "signing")
        return result

    def verify(self, image: str, key: Key, opts: SignOptions, docker_config: str | None = None) -> Verified:
        argv, env = self.verify_argv(image, key, opts), self.env_for(key, docker_config)
        result = retry.call(lambda: _transient_or(runner.run(argv, env=env)))
        if not result.ok:
            raise _classify(result, image, "verification")
        payloads = _parse_payloads(result.stdout)
        digest = image.rpartition("@")[2]
        matching = [p for p in payloads if _payload_digest(p) == digest]
        if not matching:
            raise VerificationFailed(f"{image}: cosign verified signatures, but none covers this digest",
                                     why="the signed payloads name other digests",
                                     fix="Sign the image by digest with `sc-ci image sign`.")
        return Verified(image, len(matching), tuple(matching))

    def attest(self, image: str, key: Key, predicate: Path, predicate_type: str, opts: SignOptions,
               docker_config: str | None = None) -> Completed:
        """Attach `predicate` as a signed in-toto attestation of `predicate_type` (cosign --type value)."""
        argv = self.attest_argv(image, key, predicate, predicate_type, opts)
        env = self.env_for(key, docker_config)
        result = retry.call(lambda: _transient_or(runner.run(argv, env=env)))
        if not result.ok:
            raise _classify(result, image, "attesting")
        return result

    def verify_attestation(self, image: str, key: Key, predicate_type: str, opts: SignOptions,
                           docker_config: str | None = None) -> list[dict[str, object]]:
        """Verify attestations of `predicate_type`; return the decoded in-toto statements."""
        argv = self.verify_attestation_argv(image, key, predicate_type, opts)
        env = self.env_for(key, docker_config)
        result = retry.call(lambda: _transient_or(runner.run(argv, env=env)))
        if not result.ok:
            raise _classify(result, image, "attestation verification")
        return decode_statements(result.stdout)

    def public_key(self, key: Key) -> Secret:
        """Derive the public key of a private key (for verify-after-sign when no publicKey is given)."""
        result = runner.run(self.public_key_argv(key), env=self.env_for(key), timeout=60)
        if not result.ok:
            raise _classify(result, key.label, "reading the public key of")
        return Secret(result.stdout, "public key")


def _transient_or(result: Completed) -> Completed:
    if not result.ok and retry.is_transient_text(result.stderr) and not _is_verification(result):
        raise retry.TransientError(result.tail(3))
    return result


def _is_verification(result: Completed) -> bool:
    return result.returncode in (10, 11, 12) or "no matching" in result.stderr or "threshold" in result.stderr


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


def _classify(result: Completed, image: str, action: str) -> ScError:
    err = result.stderr
    tail = _why(err)
    if "decryption failed" in err or "incorrect passphrase" in err:
        return StepFailed(f"{action} {image}: could not decrypt the private key",
                          why="COSIGN_PASSWORD is missing or wrong for this key",
                          fix="Set COSIGN_PASSWORD (as a CI secret) to the key's password.")
    if "none of the attestations matched the predicate type" in err:
        return VerificationFailed(f"{image}: no attestation of the requested type", why=tail,
                                  fix="Attach it first (sc-ci sbom attach / sc-ci provenance attach), and verify "
                                      "with the type that matches the document (cyclonedx, spdxjson, "
                                      "slsaprovenance1, …).")
    if result.returncode == 10 or "no signatures found" in err:
        return VerificationFailed(f"{image}: no signature found", why=tail,
                                  fix="Sign it first: sc-ci image sign --image IMAGE --key cosign.key "
                                      "(and check you verify the same registry/repository).")
    if result.returncode == 11 or "MANIFEST_UNKNOWN" in err or "NAME_UNKNOWN" in err:
        return VerificationFailed(f"{image}: image not found in the registry", why=tail,
                                  fix="Check the image reference and that it was pushed.")
    if result.returncode == 12 or "no matching" in err or "threshold" in err or "invalid signature" in err:
        return VerificationFailed(f"{image}: no signature matches the given key or identity", why=tail,
                                  fix="Verify with the public key that belongs to the signing key, or "
                                      "re-sign the image with the expected key.")
    if "UNAUTHORIZED" in err or "DENIED" in err or "401" in err or "403" in err:
        return StepFailed(f"{action} {image}: the registry denied access", why=tail,
                          fix="Log in to the registry (DOCKER_CONFIG) or set SC_CI_REGISTRY_USERNAME / "
                              "SC_CI_REGISTRY_PASSWORD; signing needs push access.")
    return ToolError(f"cosign {action} failed for {image} (exit {result.returncode})", why=tail,
                     fix="Rerun with -v to see cosign's full output.")


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
