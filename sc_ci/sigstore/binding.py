"""Which stored signature cosign verified, and who signed it: a certificate is bound to a stored artifact when
it chains to a certificate authority of the trusted root and its key verifies the artifact's signature (over
the simple-signing payload, or the DSSE pre-authentication encoding); a key-signed artifact when the public
key verifies it. cosign stays the verifier (log, SCT, validity time); this only tells the evidence which
artifact and which certificate extensions it rests on — and an extra signature by anybody else is ignored."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from sc_ci.sigstore import fulcio
from sc_ci.sigstore.stored import Stored


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (secure-systems-lab/dsse, envelope.go PAE)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _verify(key: PublicKeyTypes, signature: bytes, message: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            digest: hashes.HashAlgorithm = hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
            key.verify(signature, message, ec.ECDSA(digest))
        elif isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                key.verify(signature, message, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
                           hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def signed_message(stored: Stored) -> bytes:
    return pae(stored.payload_type, stored.payload) if stored.dsse else stored.payload


def verifies(stored: Stored, key: PublicKeyTypes) -> bool:
    return bool(stored.signature) and _verify(key, stored.signature, signed_message(stored))


@dataclass(frozen=True)
class TrustedCAs:
    """The certificate authorities of a trusted root (Fulcio's), leaf-most first within each chain."""

    certificates: tuple[x509.Certificate, ...]
    source: str

    @classmethod
    def from_trusted_root(cls, path: Path) -> TrustedCAs:
        data = json.loads(path.read_text(encoding="utf-8"))
        authorities = data.get("certificateAuthorities") if isinstance(data, dict) else None
        found: list[x509.Certificate] = []
        for ca in authorities if isinstance(authorities, list) else []:
            chain_of = ca.get("certChain") if isinstance(ca, dict) else None
            chain = chain_of.get("certificates") if isinstance(chain_of, dict) else None
            for entry in chain if isinstance(chain, list) else []:
                raw = entry.get("rawBytes") if isinstance(entry, dict) else None
                if isinstance(raw, str):
                    found.append(x509.load_der_x509_certificate(base64.b64decode(raw)))
        if not found:
            raise ValueError(f"{path} names no certificate authority")
        return cls(tuple(found), str(path))


def find_trusted_root(configured: str | None, env: Mapping[str, str]) -> Path | None:
    """The trusted root cosign verified against: the configured file, else the one cosign keeps from TUF
    ($TUF_ROOT or ~/.sigstore/root, <mirror>/targets/trusted_root.json)."""
    if configured:
        return Path(configured)
    base = Path(env["TUF_ROOT"]) if env.get("TUF_ROOT") else Path(env.get("HOME") or os.path.expanduser("~")) \
        / ".sigstore" / "root"
    found = sorted(base.glob("*/targets/trusted_root.json")) if base.is_dir() else []
    return found[0] if found else None


def chains_to(leaf: x509.Certificate, extra: Sequence[x509.Certificate], trusted: TrustedCAs) -> bool:
    """`leaf` is signed by a trusted authority, through intermediates of the trust set (or of `extra`, which
    must themselves chain to it): at most four links, each checked by signature, ending in a trusted one."""
    pool = list(trusted.certificates)
    trusted_ders = {c.public_bytes(serialization.Encoding.DER) for c in pool}
    current = leaf
    for _ in range(4):
        issuers = [c for c in (*pool, *extra) if c.subject == current.issuer]
        issuer = next((c for c in issuers if _issued_by(current, c)), None)
        if issuer is None:
            return False
        if issuer.public_bytes(serialization.Encoding.DER) in trusted_ders:
            return True
        current = issuer
    return False


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@dataclass(frozen=True)
class Bound:
    """A stored artifact and the signer it is bound to (a certificate's content, or the key's label)."""

    stored: Stored
    certificate: fulcio.FulcioCertificate | None = None
    key: str = ""


def bind_keyless(candidates: Iterable[Stored], trusted: TrustedCAs | None) -> tuple[list[Bound], list[str]]:
    """The candidates whose certificate chains to `trusted` and verifies their signature; with the reasons
    the others were ignored. Without a trust set nothing can be bound (cosign may still have verified)."""
    bound: list[Bound] = []
    ignored: list[str] = []
    for stored in candidates:
        if stored.certificate is None:
            ignored.append(f"{stored.layer[:19]}…: no certificate (a key signed it)")
            continue
        try:
            cert = fulcio.load(stored.certificate)
            extra = [fulcio.load(c) for c in stored.chain]
        except ValueError:
            ignored.append(f"{stored.layer[:19]}…: the certificate cannot be read")
            continue
        if trusted is None:
            ignored.append(f"{stored.layer[:19]}…: no trusted root to check its certificate against")
            continue
        if not chains_to(cert, extra, trusted):
            ignored.append(f"{stored.layer[:19]}…: its certificate is not issued by a trusted authority")
            continue
        if not verifies(stored, cert.public_key()):
            ignored.append(f"{stored.layer[:19]}…: its signature does not verify with its certificate")
            continue
        bound.append(Bound(stored, fulcio.read(cert)))
    return bound, ignored


def bind_key(candidates: Iterable[Stored], public_pem: bytes | None, label: str) -> tuple[list[Bound], list[str]]:
    """The candidates whose signature verifies with the public key (PEM)."""
    if public_pem is None:
        return [], ["the public key is not readable here (a KMS key): cosign verified with it"]
    try:
        key = serialization.load_pem_public_key(public_pem)
    except ValueError:
        return [], ["the public key cannot be read"]
    bound: list[Bound] = []
    ignored: list[str] = []
    for stored in candidates:
        if verifies(stored, key):
            bound.append(Bound(stored, None, label))
        else:
            ignored.append(f"{stored.layer[:19]}…: not signed by {label}")
    return bound, ignored


def public_key_sha256(public_pem: bytes) -> str:
    """sha256 of the DER SubjectPublicKeyInfo: how the evidence names a key."""
    key = serialization.load_pem_public_key(public_pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()
