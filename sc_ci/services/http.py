"""The one HTTP session factory: User-Agent, default timeouts, no retries (those live in retry.py)."""

from __future__ import annotations

from typing import Any

import requests

from sc_ci import __version__

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read


class _TimeoutSession(requests.Session):
    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        return super().request(method, url, *args, **kwargs)


def session() -> requests.Session:
    s = _TimeoutSession()
    s.headers["User-Agent"] = f"sc-security-action/{__version__}"
    return s
