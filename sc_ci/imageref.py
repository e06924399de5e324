"""Parse and validate OCI image references (the distribution grammar) before any tool sees them."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from sc_ci.errors import UsageError
from sc_ci.sanitize import quoted

DEFAULT_REGISTRY = "docker.io"
MAX_REF_LENGTH = 1024  # name (255) + tag (128) + sha512 digest (135) with room to spare
_SHELL_META = set(";|&$`<>(){}!*?\\'\"#~")  # [ ] are allowed: IPv6 registry hosts
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
#: the algorithms the OCI image spec registers; anything else is refused
DIGEST_ALGOS = {"sha256": 64, "sha512": 128}
_DIGEST_ALGOS = DIGEST_ALGOS
_EXAMPLE = "registry.example.com/team/app:1.2.3  or  registry.example.com/team/app@sha256:<64 hex>"


@dataclass(frozen=True)
class ImageRef:
    """registry/repository[:tag][@digest]; `by_digest` is what every step works on."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def by_digest(self) -> str:
        if not self.digest:
            raise ValueError(f"{self} has no digest yet; resolve it first")
        return f"{self.name}@{self.digest}"

    def with_digest(self, digest: str) -> ImageRef:
        return replace(self, digest=_check_digest(digest, str(self)))

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def _bad(ref: str, why: str, fix: str = "") -> UsageError:
    return UsageError(f"invalid image reference {quoted(ref)}", why=why,
                      fix=fix or f"Use the form {_EXAMPLE}.")


def _check_digest(digest: str, ref: str) -> str:
    algo, sep, hexpart = digest.partition(":")
    if not sep or algo not in _DIGEST_ALGOS:
        raise _bad(ref, f"digest {quoted(digest, 80)} must be sha256:<64 hex> or sha512:<128 hex>")
    want = _DIGEST_ALGOS[algo]
    if len(hexpart) != want or not re.fullmatch(r"[0-9a-f]+", hexpart):
        raise _bad(ref, f"a {algo} digest has exactly {want} lower-case hex characters; got {len(hexpart)}",
                   fix="Copy the digest exactly, e.g. from `skopeo inspect` or the registry UI.")
    return digest


def check_digest(digest: str, source: str = "") -> str:
    """`digest` if it is a valid sha256/sha512 digest; UsageError (exit 2) otherwise."""
    return _check_digest(digest, source or digest)


def host_problem(host: str) -> str | None:
    """Why `host` is not a valid registry host[:port] (DNS name, IPv4, or [IPv6]), or None if it is."""
    if not host or len(host) > 255:
        return "the registry host is empty or longer than 255 characters"
    port: str | None = None
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return "an IPv6 host must be written in brackets: [::1]:5000"
        name, rest = host[1:end], host[end + 1:]
        if rest:
            if not rest.startswith(":"):
                return "only :port may follow a bracketed IPv6 host"
            port = rest[1:]
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return f"{quoted(name, 60)} is not an IPv6 address"
    else:
        name, sep, port_text = host.partition(":")
        if sep:
            port = port_text
        labels = name.split(".")
        if not all(_LABEL.match(label) for label in labels):
            return "a host name is dot-separated labels of letters, digits and inner hyphens (at most 63 each)"
    if port is not None and (not _PORT.match(port) or not 1 <= int(port) <= 65535):
        return f"port {quoted(port, 20)} is not a number from 1 to 65535"
    return None


def parse(ref: str) -> ImageRef:
    """Parse `ref` strictly. Raises UsageError (exit 2) naming the problem and the fix."""
    if not isinstance(ref, str) or not ref:
        raise _bad(str(ref), "the reference is empty")
    if len(ref) > MAX_REF_LENGTH:
        raise _bad(ref, f"it is {len(ref)} characters long; an image reference is at most {MAX_REF_LENGTH}")
    meta = sorted({c for c in ref if c in _SHELL_META})
    if meta:
        raise _bad(ref, f"it contains shell metacharacters {' '.join(meta)}; image references never do")
    if any(c.isspace() for c in ref):
        raise _bad(ref, "it contains whitespace", "Remove spaces/newlines; pass one image per --image flag.")
    if any(ord(c) < 32 or ord(c) > 126 for c in ref):
        raise _bad(ref, "it contains non-ASCII or control characters")
    if "://" in ref:
        raise _bad(ref, "a URL scheme is not part of an image reference",
                   fix="Drop the scheme: registry.example.com/app:1.0, not https://registry.example.com/app:1.0.")
    name, digest = ref, None
    if "@" in ref:
        name, _, digest = ref.partition("@")
        if "@" in digest:
            raise _bad(ref, "more than one '@'")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        if not _TAG.match(tag):
            raise _bad(ref, f"tag {quoted(tag, 60)} is not valid "
                            "(letters, digits, _ . -, at most 128, not starting with . or -)")
    if not name:
        raise _bad(ref, "there is no repository name")
    parts = name.split("/")
    registry = DEFAULT_REGISTRY
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry = first
        parts = parts[1:]
        problem = host_problem(registry)
        if problem:
            raise _bad(ref, f"registry host {quoted(registry, 80)} is not a valid host[:port]: {problem}")
    elif len(parts) == 1 and (":" in first or first == "localhost" or re.fullmatch(r"[\d.]+", first)
                              or ("." in first and tag is not None and tag.isdigit())):
        raise _bad(ref, "it names a registry but no repository",
                   fix=f"Add the repository path: {first}/team/app:1.0")
    if not parts or any(not p for p in parts):
        raise _bad(ref, "the repository path has an empty component (a doubled or trailing '/')")
    for p in parts:
        if not _COMPONENT.match(p):
            why = ("repository names are lower case" if p.lower() != p and _COMPONENT.match(p.lower())
                   else f"path component {quoted(p, 60)} may only hold a-z, 0-9 and single separators . _ __ -")
            raise _bad(ref, why)
    repository = "/".join(parts)
    if registry == DEFAULT_REGISTRY and len(parts) == 1:
        repository = f"library/{repository}"
    if len(registry) + 1 + len(repository) > 255:
        raise _bad(ref, "the name is longer than 255 characters")
    parsed = ImageRef(registry, repository, tag)
    return parsed.with_digest(digest) if digest is not None else parsed
