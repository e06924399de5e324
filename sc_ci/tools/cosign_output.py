"""Parsing what cosign prints: verified payloads and attestation envelopes (decoded in-toto statements)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping


def parse_payloads(stdout: str) -> list[Mapping[str, object]]:
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
    for envelope in parse_payloads(stdout):
        payload = envelope.get("payload")
        if isinstance(payload, str):
            decoded = json.loads(base64.b64decode(payload))
            if isinstance(decoded, dict):
                statements.append(decoded)
    return statements


def payload_type(payload: Mapping[str, object]) -> str | None:
    critical = payload.get("critical")
    kind = critical.get("type") if isinstance(critical, dict) else None
    return kind if isinstance(kind, str) else None


def payload_digest(payload: Mapping[str, object]) -> str | None:
    critical = payload.get("critical")
    if isinstance(critical, dict):
        image = critical.get("image")
        if isinstance(image, dict):
            digest = image.get("docker-manifest-digest")
            return digest if isinstance(digest, str) else None
    return None
