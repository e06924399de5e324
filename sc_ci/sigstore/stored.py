"""What the registry stores for one digest, read with the distribution API (no tool): cosign's legacy
`sha256-<hex>.sig` / `.att` tags (one layer per signature; certificate, chain and Rekor bundle in the layer's
annotations) and Sigstore bundles stored as OCI 1.1 referrers (or in the `sha256-<hex>` index tag where the
registry has no referrers API). Formats as cosign v3.1.2 / v2.6.4 write them (pkg/oci/static/signature.go,
pkg/oci/remote/write.go WriteAttestationNewBundleFormat, protobuf-specs sigstore_bundle.proto)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from sc_ci.imageref import ImageRef
from sc_ci.services.registry import RegistryClient, RegistryError

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"  # the Rekor bundle of a legacy signature
BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
IN_TOTO = "application/vnd.in-toto+json"
MAX_LAYERS = 256  # signatures or attestations per digest read (more is a registry filling attack)
MAX_ANNOTATION = 64 * 1024

Kind = Literal["signature", "attestation"]
Format = Literal["legacy", "bundle"]


@dataclass(frozen=True)
class Stored:
    """One signature or attestation as stored: what was signed, the signature, the signer's certificate (DER;
    None when a key signed it) and its log entry. Nothing here is trusted until cosign verified it and the
    certificate is bound to it (sc_ci.sigstore.binding)."""

    kind: Kind
    format: Format
    manifest: str  # digest of the manifest that holds it (the `.sig`/`.att` tag's, or the referrer's)
    layer: str  # digest of the layer blob (the signed payload, the DSSE envelope, or the bundle)
    payload: bytes  # the simple-signing payload, or the DSSE payload (an in-toto statement)
    payload_type: str  # "" for a simple-signing payload; the DSSE payloadType otherwise
    signature: bytes
    certificate: bytes | None = None
    chain: tuple[bytes, ...] = ()
    log_index: int | None = None
    integrated_time: int | None = None

    @property
    def dsse(self) -> bool:
        return bool(self.payload_type)

    def statement(self) -> dict[str, Any] | None:
        """The in-toto statement a DSSE payload holds (None: not one)."""
        if self.payload_type != IN_TOTO:
            return None
        try:
            data = json.loads(self.payload)
        except (ValueError, RecursionError):
            return None
        return data if isinstance(data, dict) else None

    @property
    def predicate_type(self) -> str:
        statement = self.statement()
        value = statement.get("predicateType") if statement else None
        return value if isinstance(value, str) else ""

    def subject_digests(self) -> frozenset[str]:
        """`sha256:<hex>` of every subject (a statement), or the image digest a simple-signing payload names."""
        if self.dsse:
            statement = self.statement() or {}
            found = set()
            for subject in statement.get("subject") or []:
                digest = subject.get("digest") if isinstance(subject, dict) else None
                if isinstance(digest, dict):
                    found |= {f"{k}:{v}" for k, v in digest.items() if isinstance(k, str) and isinstance(v, str)}
            return frozenset(found)
        try:
            data = json.loads(self.payload)
            digest = data["critical"]["image"]["docker-manifest-digest"]
        except (ValueError, KeyError, TypeError, RecursionError):
            return frozenset()
        return frozenset({digest}) if isinstance(digest, str) else frozenset()

    @property
    def sha256(self) -> str:
        """What identifies the artifact in evidence: the digest of its layer (signature, envelope or bundle)."""
        return self.layer


def _b64(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _pem_certificates(text: str) -> tuple[bytes, ...]:
    """Every CERTIFICATE block of a PEM text, as DER."""
    found: list[bytes] = []
    for block in text.split("-----BEGIN CERTIFICATE-----")[1:]:
        body = block.split("-----END CERTIFICATE-----", 1)[0]
        der = _b64("".join(body.split()))
        if der:
            found.append(der)
    return tuple(found)


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _manifest_json(client: RegistryClient, ref: ImageRef) -> dict[str, Any] | None:
    try:
        manifest = client.manifest(ref)
    except RegistryError as exc:
        if "no such image" in exc.what:
            return None
        raise
    try:
        data = json.loads(manifest.body)
    except (ValueError, RecursionError):
        return None
    return {**data, "_digest": manifest.digest} if isinstance(data, dict) else None


def _layers(data: dict[str, Any]) -> list[dict[str, Any]]:
    layers = data.get("layers")
    return [layer for layer in layers[:MAX_LAYERS] if isinstance(layer, dict)] if isinstance(layers, list) else []


def legacy(client: RegistryClient, ref: ImageRef, kind: Kind) -> list[Stored]:
    """The layers of the `sha256-<hex>.sig` (signatures) or `.att` (attestations) tag of `ref`'s digest."""
    algorithm, _, hexdigest = (ref.digest or "").partition(":")
    suffix = "sig" if kind == "signature" else "att"
    data = _manifest_json(client, ImageRef(ref.registry, ref.repository, tag=f"{algorithm}-{hexdigest}.{suffix}"))
    if data is None:
        return []
    found: list[Stored] = []
    for layer in _layers(data):
        digest = layer.get("digest")
        annotations = _mapping(layer.get("annotations"))
        if not isinstance(digest, str) or any(len(str(v)) > MAX_ANNOTATION for v in annotations.values()):
            continue
        try:
            blob = client.blob(ref, digest)
        except RegistryError:
            continue
        certificate = _pem_certificates(str(annotations.get(CERTIFICATE_ANNOTATION, "")))
        chain = _pem_certificates(str(annotations.get(CHAIN_ANNOTATION, "")))
        rekor = _rekor_bundle(annotations.get(BUNDLE_ANNOTATION))
        if kind == "signature":
            signature = _b64(annotations.get(SIGNATURE_ANNOTATION)) or b""
            payload, payload_type = blob, ""
        else:
            envelope = _envelope(blob)
            if envelope is None:
                continue
            payload, payload_type, signature = envelope
        found.append(Stored(kind, "legacy", str(data["_digest"]), digest, payload, payload_type, signature,
                            certificate[0] if certificate else None, chain, *rekor))
    return found


def _rekor_bundle(value: object) -> tuple[int | None, int | None]:
    """(logIndex, integratedTime) of a legacy layer's Rekor bundle annotation."""
    if not isinstance(value, str) or not value:
        return None, None
    try:
        payload = json.loads(value).get("Payload")
    except (ValueError, AttributeError, RecursionError):
        return None, None
    if not isinstance(payload, dict):
        return None, None
    return _int(payload.get("logIndex")), _int(payload.get("integratedTime"))


def _envelope(blob: bytes) -> tuple[bytes, str, bytes] | None:
    """(payload, payloadType, first signature) of a DSSE envelope."""
    try:
        envelope = json.loads(blob)
    except (ValueError, RecursionError):
        return None
    if not isinstance(envelope, dict):
        return None
    payload = _b64(envelope.get("payload"))
    payload_type = envelope.get("payloadType")
    signatures = envelope.get("signatures")
    first = signatures[0] if isinstance(signatures, list) and signatures and isinstance(signatures[0], dict) else {}
    signature = _b64(first.get("sig"))
    if payload is None or not isinstance(payload_type, str) or signature is None:
        return None
    return payload, payload_type, signature


def bundles(client: RegistryClient, ref: ImageRef) -> list[Stored]:
    """The Sigstore bundles referring to `ref`'s digest. cosign writes image signatures as DSSE bundles too
    (predicateType https://sigstore.dev/cosign/sign/v1); everything else is an attestation."""
    found: list[Stored] = []
    for entry in client.referrers(ref)[:MAX_LAYERS]:
        if entry.artifact_type and not entry.artifact_type.startswith(BUNDLE_MEDIA_PREFIX):
            continue
        data = _manifest_json(client, ImageRef(ref.registry, ref.repository, digest=entry.digest))
        layers = _layers(data) if data else []
        if data is None or len(layers) != 1 or not str(layers[0].get("mediaType", "")).startswith(BUNDLE_MEDIA_PREFIX):
            continue
        digest = layers[0].get("digest")
        if not isinstance(digest, str):
            continue
        try:
            stored = parse_bundle(client.blob(ref, digest), str(data["_digest"]), digest)
        except RegistryError:
            continue
        if stored is not None:
            found.append(stored)
    return found


SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


def parse_bundle(blob: bytes, manifest: str, layer: str) -> Stored | None:
    """One Sigstore bundle (v0.1–v0.3 JSON): its DSSE envelope, certificate and first log entry."""
    try:
        bundle = json.loads(blob)
    except (ValueError, RecursionError):
        return None
    if not isinstance(bundle, dict):
        return None
    material = _mapping(bundle.get("verificationMaterial"))
    certificate: bytes | None = None
    chain: tuple[bytes, ...] = ()
    single = material.get("certificate")
    if isinstance(single, dict):
        certificate = _b64(single.get("rawBytes"))
    listed = material.get("x509CertificateChain")
    if certificate is None and isinstance(listed, dict) and isinstance(listed.get("certificates"), list):
        ders = [d for c in listed["certificates"] if isinstance(c, dict) and (d := _b64(c.get("rawBytes")))]
        certificate, chain = (ders[0], tuple(ders[1:])) if ders else (None, ())
    entries = material.get("tlogEntries")
    first = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        return None
    parsed = _envelope(json.dumps(envelope).encode())
    if parsed is None:
        return None
    payload, payload_type, signature = parsed
    stored = Stored("attestation", "bundle", manifest, layer, payload, payload_type, signature, certificate, chain,
                    _int(first.get("logIndex")), _int(first.get("integratedTime")))
    if stored.predicate_type == SIGN_PREDICATE:
        stored = Stored("signature", "bundle", manifest, layer, payload, payload_type, signature, certificate,
                        chain, stored.log_index, stored.integrated_time)
    return stored


def stored_for(client: RegistryClient, ref: ImageRef, kind: Kind) -> list[Stored]:
    """Every signature (or attestation) of `ref`'s digest, in both formats, that names this digest."""
    digest = ref.digest or ""
    found = [s for s in (*legacy(client, ref, kind), *bundles(client, ref)) if s.kind == kind]
    return [s for s in found if digest in s.subject_digests()]


def fingerprint(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
