"""Retry policy: backoff with jitter, on transient failures only (never on a verification failure)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from sc_ci.errors import VerificationFailed
from sc_ci.log import get_logger

log = get_logger("retry")
T = TypeVar("T")

# Phrases Go tools print for failures worth retrying (registry, Fulcio, Rekor, proxies).
_TRANSIENT = re.compile(
    r"connection refused|connection reset|broken pipe|i/o timeout|timeout awaiting|"
    r"tls handshake timeout|context deadline exceeded|no such host|temporary failure|"
    r"unexpected eof|server misbehaving|too many requests|\b429\b|"
    r"\b50[0234]\b|internal server error|bad gateway|service unavailable|gateway timeout",
    re.IGNORECASE,
)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class TransientError(Exception):
    """A failure that may pass on retry; carries the original message."""


def is_transient_text(text: str) -> bool:
    return bool(_TRANSIENT.search(text))


def is_transient_status(status: int) -> bool:
    return status in _TRANSIENT_STATUS


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, VerificationFailed):
        return False
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return is_transient_status(exc.response.status_code)
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("transient failure (attempt %d): %s; retrying", state.attempt_number, exc)


def call(fn: Callable[[], T], *, attempts: int = 4, max_wait: float = 8.0, initial: float = 0.5) -> T:
    """Call fn, retrying transient failures with exponential backoff and full jitter."""
    retrying = Retrying(
        retry=retry_if_exception(_is_transient),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=initial, max=max_wait),
        before_sleep=_log_retry,
        reraise=True,
    )
    return retrying(fn)
