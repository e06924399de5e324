"""Read an OpenVEX (v0.2.0) document and find the statement that applies to a finding in an image."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import unquote

from sc_ci.errors import ConfigError
from sc_ci.scan import fields as f
from sc_ci.scan.interface import Finding, normalize_id, normalize_package

MAX_VEX_BYTES = 16 * 1024 * 1024
MAX_STATEMENTS = 50_000
MAX_PRODUCTS = 1_000


class VexError(ConfigError):
    """The VEX document named by security.scan.vex is unreadable or not OpenVEX."""


class VexStatus(StrEnum):
    NOT_AFFECTED = "not_affected"
    AFFECTED = "affected"
    FIXED = "fixed"
    UNDER_INVESTIGATION = "under_investigation"


@dataclass(frozen=True)
class VexProduct:
    """A product (`@id` and identifiers.purl) and the subcomponents (packages) a statement narrows it to."""

    ids: frozenset[str]
    subcomponents: tuple[frozenset[str], ...] = ()


@dataclass(frozen=True)
class VexStatement:
    vulnerability: str
    aliases: frozenset[str]
    products: tuple[VexProduct, ...]
    status: VexStatus
    justification: str = ""
    impact_statement: str = ""
    action_statement: str = ""
    timestamp: str = ""
    index: int = 0  # position in the document: a later statement overrides an earlier one of equal time

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(normalize_id(i) for i in (self.vulnerability, *self.aliases) if i)

    @property
    def suppresses(self) -> bool:
        """not_affected (with the justification or impact statement the spec requires) and fixed suppress."""
        if self.status is VexStatus.FIXED:
            return True
        return self.status is VexStatus.NOT_AFFECTED and bool(self.justification or self.impact_statement)

    @property
    def reason(self) -> str:
        why = self.justification or self.impact_statement
        if self.justification and self.impact_statement:
            why = f"{self.justification}: {self.impact_statement}"
        return f"VEX {self.status}" + (f" ({why})" if why else "")


@dataclass(frozen=True)
class VexDocument:
    id: str
    author: str
    timestamp: str
    statements: tuple[VexStatement, ...]
    warnings: tuple[str, ...] = ()

    def statement_for(self, finding: Finding, *, image: str = "", digest: str = "") -> VexStatement | None:
        """The newest statement about this finding's vulnerability for this image or package, if any."""
        ids = finding.ids
        matching = [s for s in self.statements
                    if s.ids & ids and any(_product_applies(p, finding, image, digest) for p in s.products)]
        if not matching:
            return None
        return max(matching, key=lambda s: (_when(s.timestamp or self.timestamp), s.index))


def parse(data: bytes | str, *, where: str = "security.scan.vex") -> VexDocument:
    if len(data) > MAX_VEX_BYTES:
        raise VexError(f"the VEX document is over {MAX_VEX_BYTES} bytes", path=where,
                       fix="split it, or keep only statements about the images this project releases")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise VexError("the VEX document is not valid JSON", path=where, why=f.text(str(exc), 200),
                       fix="write an OpenVEX JSON document (https://github.com/openvex/spec)") from exc
    return parse_document(doc, where=where)


def parse_document(doc: object, *, where: str = "security.scan.vex") -> VexDocument:
    if not isinstance(doc, Mapping):
        raise _bad(where, "the document is not a JSON object")
    context = f.text(doc.get("@context"), f.MAX_URL)
    if not context.startswith("https://openvex.dev/ns"):
        raise _bad(where, "@context is not an OpenVEX context (https://openvex.dev/ns/v0.2.0)")
    raw = doc.get("statements")
    if not isinstance(raw, list):
        raise _bad(where, "statements is not an array")
    if len(raw) > MAX_STATEMENTS:
        raise _bad(where, f"it has {len(raw)} statements, over the limit of {MAX_STATEMENTS}")
    warnings: list[str] = []
    statements = tuple(_statement(s, i, where, warnings) for i, s in enumerate(raw))
    return VexDocument(
        id=f.text(doc.get("@id"), f.MAX_URL),
        author=f.text(doc.get("author"), f.MAX_NAME),
        timestamp=f.text(doc.get("timestamp"), 64),
        statements=statements,
        warnings=tuple(warnings),
    )


def _statement(raw: object, index: int, where: str, warnings: list[str]) -> VexStatement:
    at = f"statements[{index}]"
    if not isinstance(raw, Mapping):
        raise _bad(where, f"{at} is not an object")
    vuln = raw.get("vulnerability")
    aliases: tuple[str, ...] = ()
    if isinstance(vuln, Mapping):  # v0.2.0
        name = f.text(vuln.get("name"), f.MAX_ID) or f.text(vuln.get("@id"), f.MAX_ID)
        if isinstance(vuln.get("aliases"), list):
            aliases = tuple(t for t in (f.text(a, f.MAX_ID) for a in vuln["aliases"][: f.MAX_ALIASES]) if t)
    else:  # v0.0.x wrote the name as a string
        name = f.text(vuln, f.MAX_ID)
    if not name:
        raise _bad(where, f"{at}.vulnerability has no name")
    status_text = f.text(raw.get("status"), 64)
    try:
        status = VexStatus(status_text)
    except ValueError:
        raise _bad(where, f"{at}.status must be one of {', '.join(VexStatus)}") from None
    products = raw.get("products")
    if not isinstance(products, list) or not products:
        warnings.append(f"VEX {at} ({name}) names no products and applies to nothing")
        products = []
    statement = VexStatement(
        vulnerability=name,
        aliases=frozenset(aliases),
        products=tuple(_product(p, f"{at}.products[{j}]", where) for j, p in enumerate(products[:MAX_PRODUCTS])),
        status=status,
        justification=f.text(raw.get("justification"), f.MAX_ID),
        impact_statement=f.text(raw.get("impact_statement"), f.MAX_TEXT),
        action_statement=f.text(raw.get("action_statement"), f.MAX_TEXT),
        timestamp=f.text(raw.get("timestamp"), 64),
        index=index,
    )
    if status is VexStatus.NOT_AFFECTED and not statement.suppresses:
        warnings.append(f"VEX {at} ({name}) says not_affected without a justification or impact_statement; "
                        "OpenVEX requires one, so it suppresses nothing")
    return statement


def _product(raw: object, at: str, where: str) -> VexProduct:
    if isinstance(raw, str):  # v0.0.x: products were plain identifiers
        return VexProduct(frozenset({f.text(raw, f.MAX_URL)}))
    if not isinstance(raw, Mapping):
        raise _bad(where, f"{at} is not an object")
    subs = raw.get("subcomponents")
    subcomponents = tuple(_identifiers(s) for s in subs[:MAX_PRODUCTS]) if isinstance(subs, list) else ()
    return VexProduct(_identifiers(raw), tuple(s for s in subcomponents if s))


def _identifiers(raw: object) -> frozenset[str]:
    if isinstance(raw, str):
        return frozenset({f.text(raw, f.MAX_URL)})
    if not isinstance(raw, Mapping):
        return frozenset()
    out = {f.text(raw.get("@id"), f.MAX_URL)}
    idents = raw.get("identifiers")
    if isinstance(idents, Mapping):
        out.add(f.text(idents.get("purl"), f.MAX_URL))
    return frozenset(i for i in out if i)


def _bad(where: str, what: str) -> VexError:
    return VexError(f"not an OpenVEX document: {what}", path=where,
                    fix="see https://github.com/openvex/spec/blob/main/OPENVEX-SPEC.md (v0.2.0), "
                        "e.g. written with `vexctl create`")


# ---------------------------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Purl:
    type: str
    namespace: str
    name: str
    version: str
    qualifiers: Mapping[str, str]


def parse_purl(text: str) -> Purl | None:
    """pkg:type/namespace/name@version?qualifiers#subpath (lenient; None when it is no purl)."""
    if not text.startswith("pkg:"):
        return None
    body = text[4:].lstrip("/").partition("#")[0]
    body, _, query = body.partition("?")
    path, _, version = body.rpartition("@") if "@" in body else (body, "", "")
    ptype, _, rest = path.partition("/")
    if not ptype or not rest:
        return None
    namespace, _, name = rest.rpartition("/")
    qualifiers = dict(q.partition("=")[::2] for q in query.split("&") if q)
    return Purl(ptype.lower(), unquote(namespace).lower(), unquote(name), unquote(version),
                {k.lower(): unquote(v) for k, v in qualifiers.items()})


def _product_applies(product: VexProduct, finding: Finding, image: str, digest: str) -> bool:
    if any(_is_package(i, finding) for i in product.ids):
        return True
    if not any(_is_image(i, image, digest) for i in product.ids):
        return False
    return not product.subcomponents or any(_is_package(i, finding) for s in product.subcomponents for i in s)


def _is_package(identifier: str, finding: Finding) -> bool:
    want = parse_purl(identifier)
    if want is None or want.type == "oci":
        return False
    have = parse_purl(finding.purl)
    if have is not None:
        if (want.type, want.namespace, normalize_package(want.name)) != (
                have.type, have.namespace, normalize_package(have.name)):
            return False
        return not want.version or want.version == have.version
    return normalize_package(want.name) == normalize_package(finding.package) and (
        not want.version or want.version == finding.version)


def _is_image(identifier: str, image: str, digest: str) -> bool:
    """pkg:oci/name@sha256:… (by digest), repo@sha256:… (by digest), or a repository name without one."""
    name = image.partition("@")[0]
    purl = parse_purl(identifier)
    if purl is not None:
        if purl.type != "oci":
            return False
        if purl.version:
            return bool(digest) and purl.version == digest
        repo = purl.qualifiers.get("repository_url", "")
        return bool(repo) and repo == name
    ref, at, ref_digest = identifier.partition("@")
    if at:
        return bool(digest) and ref_digest == digest
    return bool(name) and _strip_tag(ref) == name


def _strip_tag(ref: str) -> str:
    last = ref.rsplit("/", 1)[-1]
    return ref.rpartition(":")[0] if ":" in last else ref


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _when(timestamp: str) -> float:
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", timestamp.replace("Z", "+00:00"))).timestamp()
    except (ValueError, OverflowError, OSError):
        return 0.0
