"""Small helpers every platform module shares: reading env values, git refs, and credential-free URLs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

Which = Callable[[str], str | None]

_SHA_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_SCP_RE = re.compile(r"(?:[^@/]+@)?(?P<host>[^@/:]+):(?P<path>(?!//).+)")


def get(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value with surrounding blanks removed, or None when unset or blank."""
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def first(env: Mapping[str, str], *names: str) -> str | None:
    """The first of `names` that is set and not blank."""
    for name in names:
        value = get(env, name)
        if value is not None:
            return value
    return None


def is_true(env: Mapping[str, str], name: str) -> bool:
    return (get(env, name) or "").lower() == "true"


def pick(env: Mapping[str, str], fields: Iterable[tuple[str, str]]) -> dict[str, str]:
    """`{key: env[var]}` for every (key, var) pair whose variable is set; used for `extra`."""
    out: dict[str, str] = {}
    for key, var in fields:
        value = get(env, var)
        if value is not None:
            out[key] = value
    return out


def branch_ref(name: str | None) -> str | None:
    if name is None:
        return None
    return name if name.startswith("refs/") else f"refs/heads/{name}"


def tag_ref(name: str | None) -> str | None:
    if name is None:
        return None
    return name if name.startswith("refs/") else f"refs/tags/{name}"


def git_sha(value: str | None) -> str | None:
    """A full SHA-1 / SHA-256 commit id, or None (some CIs put `HEAD` or a short id there)."""
    if value is None:
        return None
    value = value.lower()
    return value if _SHA_RE.fullmatch(value) else None


def join_url(base: str, *parts: str) -> str:
    """`base/part/part` with exactly one slash at each join (a part may itself contain `//`)."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.lstrip('/')}"
    return out


def strip_credentials(url: str | None) -> str | None:
    """The URL without any `user[:password]@` part (scp-like `git@` is kept). None if unparsable."""
    if url is None:
        return None
    if "://" not in url:
        if "@" not in url:
            return url
        user, rest = url.rsplit("@", 1)
        return f"git@{rest}" if user == "git" else rest
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def origin(url: str | None) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, credentials dropped."""
    clean = strip_credentials(url)
    if clean is None or "://" not in clean:
        return None
    parts = urlsplit(clean)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def web_url(remote: str | None) -> str | None:
    """A browsable https URL for a git remote (https, ssh:// or scp-like `git@host:o/r.git`).

    `.git` and credentials are dropped; ssh ports are dropped (they are not the web port).
    """
    clean = strip_credentials(remote)
    if clean is None:
        return None
    if "://" not in clean:
        match = _SCP_RE.fullmatch(clean)
        if match is None:
            return None
        host, path = match["host"], match["path"]
        scheme = "https"
    else:
        parts = urlsplit(clean)
        if not parts.hostname:
            return None
        if parts.scheme in ("http", "https"):
            scheme, host = parts.scheme, parts.netloc
        else:  # ssh://, git://, git+ssh://
            scheme, host = "https", parts.hostname
        path = parts.path
    path = path.strip("/").removesuffix(".git")
    return f"{scheme}://{host}/{path}" if path else f"{scheme}://{host}"


def repo_slug(url: str | None) -> str | None:
    """`owner/repo` (or `group/sub/project`) from a web URL made by `web_url`."""
    if url is None:
        return None
    path = urlsplit(url).path.strip("/")
    return path or None
