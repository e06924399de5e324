"""The one HTTP session factory: User-Agent, default timeouts, no retries (those live in retry.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit

import requests

from sc_ci import __version__

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read
MAX_REDIRECTS = 10


class _TimeoutSession(requests.Session):
    """Default timeouts; on a redirect to another host, port or scheme the Authorization header is
    dropped (requests' `should_strip_auth`, kept strict here: only http→https on the same host keeps it)."""

    def should_strip_auth(self, old_url: str, new_url: str) -> bool:
        old, new = urlsplit(old_url), urlsplit(new_url)
        if (old.hostname or "").lower() != (new.hostname or "").lower():
            return True
        if old.scheme == new.scheme:
            return _port(old) != _port(new)
        return not (old.scheme == "http" and new.scheme == "https" and _port(old) == 80 and _port(new) == 443)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        return super().request(method, url, *args, **kwargs)


def _port(url: SplitResult) -> int | None:
    try:
        return url.port or {"http": 80, "https": 443}.get(url.scheme)
    except ValueError:
        return None


def session() -> requests.Session:
    s = _TimeoutSession()
    s.max_redirects = MAX_REDIRECTS
    s.headers["User-Agent"] = f"sc-security-action/{__version__}"
    return s
