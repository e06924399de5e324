"""Retry policy: a time budget per call, full-jitter backoff, Retry-After honoured, transient failures only."""

from __future__ import annotations

import contextlib
import email.utils
import math
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception

from sc_ci.deadline import _DEADLINE
from sc_ci.deadline import remaining as remaining  # re-exported: callers use retry.step_deadline
from sc_ci.deadline import step_deadline as step_deadline
from sc_ci.errors import VerificationFailed
from sc_ci.log import get_logger

log = get_logger("retry")
T = TypeVar("T")

#: Total wall time one call may spend (attempts and waits together) before its last failure stands: long
#: enough to outlast a registry restart or a short outage, short enough that a dead service fails the step
#: within a minute. A step deadline (see `step_deadline`) shortens it, never lengthens it.
BUDGET = 60.0
BUDGET_VAR = "SC_CI_RETRY_BUDGET"  # seconds; overrides BUDGET for a whole run (read at call time, never at import)
INITIAL = 0.5  # first backoff ceiling; doubles each attempt (full jitter: a uniform wait in [0, ceiling])
MAX_WAIT = 4.0  # backoff ceiling cap
MAX_RETRY_AFTER = 30.0  # a server asking for longer than this (within the budget) is not waited for

# Phrases Go tools (cosign, syft, grype, trivy: net/http, go-containerregistry) and Python clients print for
# failures worth retrying. Go's own classification decides DNS: net.DNSError.IsTemporary is true for
# "server misbehaving" (SERVFAIL), timeouts and the cgo resolver's EAI_AGAIN ("Temporary failure in name
# resolution"), and false for "no such host" (an authoritative NXDOMAIN: the name does not exist, which
# no retry changes). So "no such host" is not here, and `_NEVER` overrides any transient phrase beside it.
_TRANSIENT = re.compile(
    r"connection refused|connection reset|broken pipe|i/o timeout|timeout awaiting|"
    r"tls handshake timeout|context deadline exceeded|temporary failure in name resolution|"
    r"server misbehaving|unexpected eof|\": EOF\b|server closed idle connection|use of closed network connection|"
    r"network is unreachable|too many requests|toomanyrequests|\b429\b|"
    r"\b50[0234]\b|internal server error|bad gateway|service unavailable|gateway timeout|"
    r"read timed out|connect timeout|remotedisconnected|connection aborted|"
    # a registry's 503 error code, as go-containerregistry prints it ("POST …/uploads/: UNAVAILABLE: msg",
    # no status number); ggcr's own Temporary() counts it, like TOOMANYREQUESTS
    r"(?-i:\bUNAVAILABLE: )",
    re.IGNORECASE,
)
# Never transient, whatever else the text says:
# - DNS NXDOMAIN ("no such host"): a typo or an offline machine; retrying only delays the real message.
# - The transparency log (Rekor) or the public Sigstore TUF repository unreachable: cosign's own Rekor client
#   already retried ("giving up after 4 attempt(s)"), and on an offline machine it never gets through; the
#   fix is configuration (--no-tlog / signing.sigstore.transparencyLog: false), see cosign_failures.
_NEVER = re.compile(
    r"no such host|"
    r"/api/v[12]/log/entries\S*\s+giving up after|"
    r"(?:lookup|dial tcp:? lookup) (?:rekor|tuf-repo-cdn)\.sigstore\.dev\b",
    re.IGNORECASE,
)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})



class TransientError(Exception):
    """A failure that may pass on retry; carries the original message and, when the server said so, how
    long it asked to be left alone (Retry-After, seconds)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryBudgetExceeded(TransientError):
    """The server asked to wait (Retry-After) longer than what is left of the budget: given up at once."""


def is_transient_text(text: str) -> bool:
    """Whether a tool's error output describes a failure worth retrying (network, 429, 5xx), and none that
    never is (DNS NXDOMAIN, an unreachable transparency log)."""
    return bool(_TRANSIENT.search(text)) and not _NEVER.search(text)


def is_never_retried(text: str) -> bool:
    return bool(_NEVER.search(text))


def is_transient_status(status: int) -> bool:
    return status in _TRANSIENT_STATUS


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); None when absent
    or unreadable; never negative."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The Retry-After of a response's headers (any mapping; requests' is case-insensitive)."""
    if headers is None:
        return None
    value = headers.get("Retry-After")
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return parse_retry_after(value)


def _retry_after_of(exc: BaseException | None) -> float | None:
    if isinstance(exc, TransientError):
        return exc.retry_after
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return retry_after(exc.response.headers)
    return None


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, VerificationFailed | RetryBudgetExceeded):
        return False
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return is_transient_status(exc.response.status_code)
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


class _Policy:
    """Waits and the stop decision for one call: full jitter, Retry-After, the time budget."""

    def __init__(self, budget: float, initial: float, max_wait: float, attempts: int | None,
                 deadline: float | None, rng: random.Random | None) -> None:
        self.start = time.monotonic()
        limit = self.start + budget
        for bound in (deadline, _DEADLINE.get()):
            if bound is not None:
                limit = min(limit, bound)
        self.limit = limit
        self.budget = budget
        self.initial, self.max_wait, self.attempts = initial, max_wait, attempts
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self.next_wait = 0.0
        self.why_stopped = ""
        self._decided: tuple[int, bool] = (0, False)

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.max_wait, self.initial * math.pow(2, max(0, attempt - 1)))
        return self.rng.uniform(0, ceiling)

    def wait(self, state: RetryCallState) -> float:
        self._decide(state)
        return self.next_wait

    def stop(self, state: RetryCallState) -> bool:
        return self._decide(state)

    def _decide(self, state: RetryCallState) -> bool:
        """After a transient failure: give up (True), or wait `next_wait` seconds and try again. Decided
        once an attempt (tenacity asks `wait` and `stop` in either order, depending on its version)."""
        attempt = state.attempt_number
        if self._decided[0] == attempt:
            return self._decided[1]
        exc = state.outcome.exception() if state.outcome else None
        left = self.limit - time.monotonic()
        asked = _retry_after_of(exc)
        stop = False
        if asked is not None and asked > 0:
            wait = asked + self.rng.uniform(0, min(1.0, self.initial))  # spread the clients it told the same
            if asked > min(left, MAX_RETRY_AFTER):
                self.why_stopped = (f"the server asked to retry after {asked:.0f}s, beyond the "
                                    f"{max(0.0, left):.0f}s left of the retry budget")
                stop = True
        else:
            wait = self.backoff(attempt)
        if not stop and self.attempts is not None and attempt >= self.attempts:
            self.why_stopped = f"{attempt} attempts"
            stop = True
        if not stop and wait >= left:
            self.why_stopped = f"retry budget of {self.limit - self.start:.0f}s spent"
            stop = True
        self.next_wait = 0.0 if stop else wait
        self._decided = (attempt, stop)
        return stop

    def log_retry(self, state: RetryCallState) -> None:
        """One warning line a retry: the attempt, the failure, the wait (and a Retry-After honoured)."""
        exc = state.outcome.exception() if state.outcome else None
        asked = _retry_after_of(exc)
        honoured = f" (Retry-After {asked:g}s)" if asked is not None else ""
        elapsed = time.monotonic() - self.start
        log.warning("transient failure (attempt %d): %s; retrying in %.1fs%s [%.0fs of %.0fs budget]",
                    state.attempt_number, _one_line(exc), self.next_wait, honoured, elapsed,
                    self.limit - self.start)


def _one_line(exc: BaseException | None, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) if exc is not None else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_CEILING: list[float] = []  # `at_most` budgets in force (process-wide: the work runs in pool threads)


@contextlib.contextmanager
def at_most(seconds: float) -> Iterator[None]:
    """Every call's budget is at most `seconds` meanwhile (a dry run looks at the registry, never waits on it)."""
    _CEILING.append(seconds)
    try:
        yield
    finally:
        _CEILING.remove(seconds)


def default_budget() -> float:
    """BUDGET, or SC_CI_RETRY_BUDGET (seconds, 0 to 600: 0 means one attempt) when set and readable; never more
    than an `at_most` in force."""
    raw = os.environ.get(BUDGET_VAR, "").strip()
    try:
        value = float(raw) if raw else BUDGET
    except ValueError:
        value = BUDGET
    value = min(600.0, max(0.0, value)) if math.isfinite(value) else BUDGET
    return min([value, *_CEILING])


def call(fn: Callable[[], T], *, budget: float | None = None, attempts: int | None = None,
         max_wait: float = MAX_WAIT, initial: float = INITIAL, deadline: float | None = None,
         rng: random.Random | None = None) -> T:
    """Call fn, retrying transient failures (TransientError, connection errors, timeouts, 408/429/5xx)
    with exponential backoff and full jitter (a uniform wait in [0, min(max_wait, initial·2^n)]) until
    `budget` seconds (default: `default_budget()`) have passed since the first attempt — or the step deadline, or the
    absolute `deadline` (time.monotonic()), whichever comes first; `attempts` optionally caps the count.
    A Retry-After the server sent is waited for when it fits in what is left; otherwise the call gives up
    at once. The last failure is re-raised as is (a RetryBudgetExceeded when a Retry-After did not fit)."""
    policy = _Policy(default_budget() if budget is None else budget, initial, max_wait, attempts, deadline, rng)
    retrying = Retrying(
        retry=retry_if_exception(_is_transient),
        stop=policy.stop,
        wait=policy.wait,
        before_sleep=policy.log_retry,
        reraise=True,
    )
    try:
        return retrying(fn)
    except TransientError as exc:
        if policy.why_stopped.startswith("the server asked") and not isinstance(exc, RetryBudgetExceeded):
            raise RetryBudgetExceeded(f"{exc} ({policy.why_stopped})", retry_after=exc.retry_after) from exc
        raise
