"""Turn configured key settings (file, env://, KMS URI, ${secret:…}) into cosign keys, secrets kept out of argv."""

from __future__ import annotations

from pathlib import Path

from sc_ci.config.loader import LoadedConfig
from sc_ci.config.refs import KeyFile, KeyUri, SecretRef
from sc_ci.errors import ConfigError
from sc_ci.signing.signers import Key, key_from_reference, key_from_secret

PEM_PREFIX = "-----BEGIN"


def configured(loaded: LoadedConfig, path: str, *, public: bool) -> Key | None:
    """The key at config `path` (signing.privateKey / signing.publicKey), or None when unset."""
    field = path.rsplit(".", 1)[-1]
    value = getattr(loaded.security.signing, "private_key" if field == "privateKey" else "public_key")
    if value is None:
        return None
    if isinstance(value, SecretRef):
        return key_from_secret(loaded.secret(path), public=public)
    if isinstance(value, KeyUri):
        return key_from_reference(value.uri, loaded.env, public=public)
    if isinstance(value, KeyFile):
        file = Path(value.path).expanduser()
        if not file.is_absolute():
            file = loaded.project_root / file
        return key_from_reference(str(file), loaded.env, public=public)
    raise ConfigError(f"unsupported key setting {type(value).__name__}", path=f"security.{path}")


def must_have(key: Key | None, what: str, fix: str) -> Key:
    if key is None:
        raise ConfigError(f"no {what} configured", fix=fix)
    return key


def public_pem(key: Key) -> bytes | None:
    """The PEM of a public key held here (a file, or env:// / inline material); None for a KMS key, whose
    public half only the KMS (through cosign) knows, and for anything that is not a PEM public key."""
    if key.is_kms:
        return None
    if key.ref.startswith("env://"):
        secret = key.env.get(key.ref.removeprefix("env://"))
        data = secret.reveal().encode() if secret is not None else b""
    else:
        try:
            data = Path(key.ref).read_bytes()[:64 * 1024]
        except OSError:
            return None
    return data if b"-----BEGIN PUBLIC KEY-----" in data else None
