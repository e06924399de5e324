"""cosign signers and verifiers: key references (file, env://, KMS URIs) and keyless identities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from sc_ci import secrets
from sc_ci.errors import ConfigError
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


def masked_key_uri(uri: str) -> str:
    """A key URI as the summary may show it: credentials in it (`user:password@`, query values such as a
    Vault token or a PKCS#11 `pin-value`, a fragment) replaced by ***, and registered as secrets so no log
    line shows them either. The URI itself goes to cosign unchanged."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, sep, rest = uri.partition(":")
        if scheme != "pkcs11":
            return uri
    rest, hash_sep, fragment = rest.partition("#")
    rest, query_sep, query = rest.partition("?")
    authority, slash, path = rest.partition("/") if sep == "://" else ("", "", rest)
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        _register_secret(userinfo, *userinfo.split(":", 1)[1:])
        authority = f"{secrets.MASK}@{host}"
    shown = f"{scheme}{sep}{authority}{slash}{path}"
    if query_sep:
        items = []
        for item in query.split("&"):
            name, eq, value = item.partition("=")
            _register_secret(value, unquote(value))
            items.append(f"{name}={secrets.MASK}" if eq else name)
        shown += "?" + "&".join(items)
    if hash_sep:
        _register_secret(fragment)
        shown += "#" + secrets.MASK
    return shown


def _register_secret(*values: str) -> None:
    for value in values:
        if value:
            secrets.register(value)


def key_from_reference(ref: str, env: Mapping[str, str], *, public: bool) -> Key:
    """A key given as a file path, env://VAR or KMS URI. File keys must exist and be readable."""
    if ref.startswith("env://"):
        var = ref.removeprefix("env://")
        if not env.get(var):
            raise ConfigError(f"key {ref} names environment variable {var}, which is not set",
                              fix=f"Export {var} with the PEM-encoded key, or pass a key file path.")
        return Key(ref, {var: Secret(env[var], var)}, ref)
    if ref.startswith(KMS_PREFIXES):
        return Key(ref, {}, masked_key_uri(ref))  # passed to cosign unchanged; shown without credentials
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
