"""Sigstore trust files (signing_config.json, trusted_root.json) read for what cosign v2 takes as flags and env."""

from __future__ import annotations

import base64
import contextlib
import json
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data


def signing_config_services(path: Path) -> tuple[str | None, str | None]:
    """(Fulcio URL, Rekor v1 URL) a signing_config.json names: the first of each, as cosign picks them."""
    data = _load(path)

    def first(key: str, api: int) -> str | None:
        for entry in data.get(key) or []:
            if isinstance(entry, dict) and isinstance(entry.get("url"), str) and entry.get("majorApiVersion", 1) == api:
                return str(entry["url"])
        return None

    return first("caUrls", 1), first("rekorTlogUrls", 1)


def signing_config_has_tlog(path: Path) -> bool:
    """Whether the signing config lists any Rekor (cosign v3 uploads to it)."""
    return bool(_load(path).get("rekorTlogUrls"))


@dataclass(frozen=True)
class LegacyTrust:
    """A trusted root as cosign v2's verify-attestation needs it for old-format attestations (which it
    refuses to check against --trusted-root): PEM files for --ca-roots / --ca-intermediates, and the
    Rekor / CT log keys as SIGSTORE_REKOR_PUBLIC_KEY / SIGSTORE_CT_LOG_PUBLIC_KEY_FILE."""

    ca_roots: str
    ca_intermediates: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def _pem(kind: str, raw_b64: str) -> str:
    body = base64.b64encode(base64.b64decode(raw_b64, validate=True)).decode()
    return f"-----BEGIN {kind}-----\n" + "\n".join(textwrap.wrap(body, 64)) + f"\n-----END {kind}-----\n"


def _log_keys(data: dict[str, Any], key: str) -> list[str]:
    out = []
    for log in data.get(key) or []:
        raw = (log.get("publicKey") or {}).get("rawBytes") if isinstance(log, dict) else None
        if isinstance(raw, str):
            out.append(_pem("PUBLIC KEY", raw))
    return out


@contextlib.contextmanager
def legacy_trust(path: Path, *, tlog: bool, ct_log: bool) -> Iterator[LegacyTrust]:
    """Write the trusted root's Fulcio roots, intermediates and (when checked) first Rekor / CT log key
    to a temporary directory, removed afterwards (public material, but nothing is left behind)."""
    data = _load(path)
    roots: list[str] = []
    intermediates: list[str] = []
    for ca in data.get("certificateAuthorities") or []:
        certs = [c.get("rawBytes") for c in ((ca.get("certChain") or {}).get("certificates") or [])
                 if isinstance(c, dict)]
        chain = [_pem("CERTIFICATE", raw) for raw in certs if isinstance(raw, str)]
        if chain:  # leaf-most first, root last
            roots.append(chain[-1])
            intermediates += chain[:-1]
    if not roots:
        raise ValueError(f"{path} has no certificate authority")
    with tempfile.TemporaryDirectory(prefix="sc-ci-trust-") as tmp:
        directory = Path(tmp)
        (directory / "ca-roots.pem").write_text("".join(roots))
        middle = None
        if intermediates:
            middle = directory / "ca-intermediates.pem"
            middle.write_text("".join(intermediates))
        env: dict[str, str] = {}
        for wanted, key, var, name in ((tlog, "tlogs", "SIGSTORE_REKOR_PUBLIC_KEY", "rekor.pub"),
                                       (ct_log, "ctlogs", "SIGSTORE_CT_LOG_PUBLIC_KEY_FILE", "ctlog.pub")):
            keys = _log_keys(data, key)
            if wanted and keys:
                (directory / name).write_text(keys[0])
                env[var] = str(directory / name)
        yield LegacyTrust(str(directory / "ca-roots.pem"), str(middle) if middle else None, env)
