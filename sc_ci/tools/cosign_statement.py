"""in-toto Statement v1 for cosign attestations: the statement built here, signed by cosign.

`cosign attest --predicate` wraps every predicate in a Statement v0.1 (cosign v3.1.2 and v2.6.4,
pkg/cosign/attestation/attestation.go: every generate*Statement sets `Type: in_toto.StatementInTotoV01`), and
`cosign attest` ignores `--statement` (cmd/cosign/cli/attest.go never passes `o.Predicate.Statement` on;
attest/attest.go: "predicate cannot be empty"). What signs a Statement v1 unchanged is `cosign attest-blob
--statement FILE` (attest/attest_blob.go: the file is the payload, checked only by `validateStatement`), signed
as DSSE with payloadType `application/vnd.in-toto+json` (v3: signcommon.NewAttestationBundle; v2.6:
`dsse.WrapSigner(sv, types.IntotoPayloadType)`), then `cosign attach attestation` puts it on the image. Which
cosign can attach what decides the route, per storage format (see `route`):

- bundle (OCI 1.1 referrer): cosign v3 only. `attest-blob --bundle B` writes a Sigstore bundle; v3's attach
  detects it (`bundle.LoadJSONFromPath`) and writes it with `ociremote.WriteAttestationNewBundleFormat` and
  the statement's predicateType, exactly what `cosign attest` does in bundle mode. Key and keyless alike: the
  certificate and log entries travel inside the bundle. cosign v2.6.4's attach reads only DSSE envelopes
  (attach/attach.go decodes straight into `ssldsse.Envelope`), so v2.6 bundles stay v0.1.
- legacy (`.att` tag): key-based signing without a transparency log only, both majors. `attest-blob
  --output-signature E` writes the DSSE envelope (`--output-attestation` is the bare statement: attaching that
  fails with "invalid payloadType"); attach makes the layer with `static.WithLayerMediaType` alone: no
  certificate (a keyless attestation could not be verified) and no Rekor bundle (verifying a logged one would
  need an online Rekor search), so keyless and logged key attestations in `.att` stay v0.1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
#: The predicate cosign wraps as `{"Data": <text>, "Timestamp": …}` (`--type custom`): kept on `cosign attest`.
COSIGN_CUSTOM = "https://cosign.sigstore.dev/attestation/v1"
#: cosign's --type short names and the predicateType each stands for (cmd/cosign/cli/options/predicate.go,
#: PredicateTypeMap, identical in v2.6.4 and v3.1.2); any other --type value is a URI used as is.
PREDICATE_TYPES: Mapping[str, str] = {
    "custom": COSIGN_CUSTOM,
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "link": "https://in-toto.io/Link/v1",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "openvex": "https://openvex.dev/ns",
}

#: How one attestation is made: `bundle` (attest-blob --bundle + attach), `envelope` (attest-blob
#: --output-signature + attach), or None (`cosign attest --predicate`, Statement v0.1).
Route = Literal["bundle", "envelope"]


def route(major: int, fmt: Literal["bundle", "legacy"], *, keyless: bool, tlog: bool) -> Route | None:
    """Which Statement v1 route cosign `major` supports for one storage format; None: only v0.1 works."""
    if fmt == "bundle":
        return "bundle" if major >= 3 else None
    return "envelope" if not keyless and not tlog else None


def predicate_uri(cosign_type: str) -> str:
    """The predicateType a cosign --type value stands for."""
    return PREDICATE_TYPES.get(cosign_type, cosign_type)


def load_predicate(path: Path, cosign_type: str) -> dict[str, Any] | None:
    """The predicate as a Statement v1 carries it (a JSON object, unchanged); None where only `cosign attest`
    can make it: cosign's own wrapper type (`custom`), or a file that is not a JSON object (SPDX tag-value,
    plain text: cosign embeds those as a string, which Statement v1 does not allow), or an unreadable file
    (cosign attest then reports it as before)."""
    if predicate_uri(cosign_type) == COSIGN_CUSTOM:
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    return data if isinstance(data, dict) else None


def subject_of(image: str) -> tuple[str, str]:
    """(repository, sha256 hex) of `REPO@sha256:HEX`: the subject cosign names (`digest.Repository.String()`,
    `h.Hex` in attest/attest.go)."""
    repository, at, digest = image.rpartition("@")
    algorithm, _, hexdigest = digest.partition(":")
    if not at or not repository or algorithm != "sha256" or len(hexdigest) != 64 \
            or any(c not in "0123456789abcdef" for c in hexdigest):
        raise ValueError(f"{image!r} is not an image reference by sha256 digest (REPO@sha256:<64 hex>)")
    return repository, hexdigest


def statement_v1(image: str, predicate: Mapping[str, Any], cosign_type: str) -> dict[str, Any]:
    """The in-toto Statement v1 of `predicate` about `image` (by digest), as `cosign attest` would make it
    but with `_type` v1: subject name = the repository, digest = the manifest's sha256."""
    repository, hexdigest = subject_of(image)
    return {
        "_type": STATEMENT_V1,
        "subject": [{"name": repository, "digest": {"sha256": hexdigest}}],
        "predicateType": predicate_uri(cosign_type),
        "predicate": dict(predicate),
    }


def write_statement(path: Path, statement: Mapping[str, Any]) -> Path:
    """Write `statement` as compact JSON (what cosign signs byte for byte) to a new 0600 file."""
    with path.open("x", encoding="utf-8") as fh:
        path.chmod(0o600)
        json.dump(statement, fh, separators=(",", ":"))
    return path
