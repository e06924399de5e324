"""Fulcio's certificate extensions (OIDs 1.3.6.1.4.1.57264.1.*, fulcio docs/oid-info.md), read from a real
certificate: the issuer, and for CI identities the build signer, runner environment, source repository, ref
and digest a verifier pins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography import x509

PREFIX = "1.3.6.1.4.1.57264.1."
#: OID suffix → extension name (fulcio v1.8.8 docs/oid-info.md). 1-6 hold raw bytes (deprecated); 8 and up
#: hold a DER UTF8String.
NAMES: Mapping[int, str] = MappingProxyType({
    1: "issuerV1", 2: "githubWorkflowTrigger", 3: "githubWorkflowSha", 4: "githubWorkflowName",
    5: "githubWorkflowRepository", 6: "githubWorkflowRef",
    8: "issuer", 9: "buildSignerURI", 10: "buildSignerDigest", 11: "runnerEnvironment",
    12: "sourceRepositoryURI", 13: "sourceRepositoryDigest", 14: "sourceRepositoryRef",
    15: "sourceRepositoryIdentifier", 16: "sourceRepositoryOwnerURI", 17: "sourceRepositoryOwnerIdentifier",
    18: "buildConfigURI", 19: "buildConfigDigest", 20: "buildTrigger", 21: "runInvocationURI",
    22: "sourceRepositoryVisibilityAtSigning", 23: "deploymentEnvironment", 24: "tokenSubject",
})
RAW = frozenset(range(1, 7))
MAX_VALUE = 4096  # a longer value is left out (read as absent): values are kept raw, sanitized where shown


@dataclass(frozen=True)
class FulcioCertificate:
    """What a Fulcio code-signing certificate says: its subject (SAN), issuer and CI extensions."""

    subject: str
    issuer: str
    extensions: Mapping[str, str] = field(default_factory=dict)
    not_before: str = ""
    not_after: str = ""
    serial: str = ""

    def get(self, name: str) -> str | None:
        return self.extensions.get(name)


def _der_utf8(value: bytes) -> str | None:
    """A DER UTF8String (tag 0x0C) with a definite length; None when it is not one."""
    if len(value) < 2 or value[0] != 0x0C:
        return None
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 3 or len(value) < 2 + count:
            return None
        length, offset = int.from_bytes(value[2:2 + count], "big"), 2 + count
    if len(value) != offset + length:
        return None
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _san(cert: x509.Certificate) -> str:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    for kind in (x509.UniformResourceIdentifier, x509.RFC822Name):
        names = san.get_values_for_type(kind)
        if names:
            return str(names[0])
    others = san.get_values_for_type(x509.OtherName)
    for other in others:
        text = _der_utf8(other.value)
        if text is not None:
            return text
    return ""


def read(cert: x509.Certificate) -> FulcioCertificate:
    """The SAN, the issuer (1.8, else the deprecated 1.1) and every Fulcio extension the certificate carries."""
    found: dict[str, str] = {}
    for ext in cert.extensions:
        dotted = ext.oid.dotted_string
        if not dotted.startswith(PREFIX):
            continue
        tail = dotted.removeprefix(PREFIX)
        if not tail.isdigit() or int(tail) not in NAMES:
            continue
        number = int(tail)
        raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
        if number in RAW:
            text: str | None = raw.decode("utf-8", "replace")
        else:
            text = _der_utf8(raw)
        if text is not None and len(text) <= MAX_VALUE:
            found[NAMES[number]] = text
    issuer = found.get("issuer") or found.get("issuerV1") or ""
    subject = _san(cert)
    return FulcioCertificate(
        subject=subject if len(subject) <= MAX_VALUE else "", issuer=issuer, extensions=MappingProxyType(found),
        not_before=cert.not_valid_before_utc.isoformat(), not_after=cert.not_valid_after_utc.isoformat(),
        serial=format(cert.serial_number, "x"))


def load(der_or_pem: bytes) -> x509.Certificate:
    """A certificate from DER or PEM bytes (ValueError when it is neither)."""
    text = der_or_pem.lstrip()
    if text.startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(text)
    return x509.load_der_x509_certificate(der_or_pem)
