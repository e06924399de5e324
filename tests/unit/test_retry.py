"""The retry policy: a time budget (not a count) per call, full-jitter backoff capped, Retry-After honoured
or given up on, the step deadline, one log line a retry; what is never retried (DNS no such host, 401/403,
verification failures, an unreachable transparency log) and how cosign/syft failures are then named."""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from sc_ci import retry
from sc_ci.errors import StepFailed, VerificationFailed
from sc_ci.runner import Completed
from sc_ci.tools import cosign_failures, syft


class Clock:
    """Fake time for tenacity's sleep and the budget's clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        monkeypatch.setattr(time, "monotonic", lambda: self.now)
        monkeypatch.setattr(time, "sleep", self.sleep)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    monkeypatch.delenv(retry.BUDGET_VAR, raising=False)
    return Clock(monkeypatch)


def flaky(failures: int, exc: BaseException, clock: Clock | None = None, cost: float = 0.0) -> object:
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if clock is not None:
            clock.now += cost
        if calls["n"] <= failures:
            raise exc
        return "ok"

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


def test_a_short_outage_is_outlasted(clock: Clock) -> None:
    # each attempt takes 1 s and the first ten fail (worst case 10 s + 31.5 s of waits, within 60 s): the old
    # policy (4 attempts, waits of at most 0.5 + 1 + 2 s) gave up within 8 s
    fn = flaky(10, retry.TransientError("connection refused"), clock, cost=1.0)
    assert retry.call(fn) == "ok"  # type: ignore[arg-type]
    assert fn.calls["n"] == 11  # type: ignore[attr-defined]
    assert all(0 <= s <= retry.MAX_WAIT for s in clock.sleeps)


def test_the_budget_bounds_the_whole_call(clock: Clock) -> None:
    started = clock.now
    fn = flaky(10_000, retry.TransientError("503 Service Unavailable"), clock, cost=2.0)
    with pytest.raises(retry.TransientError):
        retry.call(fn, budget=30)  # type: ignore[arg-type]
    assert clock.now - started <= 30 + 2.0  # the last attempt started within the budget
    assert fn.calls["n"] > 4  # type: ignore[attr-defined]


def test_full_jitter_backoff_doubles_up_to_the_cap(clock: Clock) -> None:
    fn = flaky(12, retry.TransientError("i/o timeout"), clock)
    retry.call(fn, rng=random.Random(1), initial=0.5, max_wait=4.0)  # type: ignore[arg-type]
    ceilings = [min(4.0, 0.5 * 2 ** i) for i in range(12)]
    assert all(0 <= s <= c for s, c in zip(clock.sleeps, ceilings, strict=True))
    assert max(clock.sleeps) > 2.0  # it does grow: not stuck at the first ceiling


def test_retry_after_on_429_and_503_is_honoured(clock: Clock) -> None:
    fn = flaky(2, retry.TransientError("HTTP 429", retry_after=7), clock)
    assert retry.call(fn) == "ok"  # type: ignore[arg-type]
    assert [round(s) for s in clock.sleeps] == [7, 7] or all(7 <= s <= 7.5 for s in clock.sleeps)

    response = requests.Response()
    response.status_code = 503
    response.headers["Retry-After"] = "3"
    fn = flaky(1, requests.HTTPError(response=response), clock)
    clock.sleeps.clear()
    assert retry.call(fn) == "ok"  # type: ignore[arg-type]
    assert 3 <= clock.sleeps[0] <= 3.5


def test_retry_after_beyond_the_budget_gives_up_at_once(clock: Clock) -> None:
    fn = flaky(5, retry.TransientError("HTTP 503", retry_after=120), clock)
    with pytest.raises(retry.RetryBudgetExceeded, match="asked to retry after 120s"):
        retry.call(fn, budget=60)  # type: ignore[arg-type]
    assert fn.calls["n"] == 1  # type: ignore[attr-defined]
    assert clock.sleeps == []


def test_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    parsed = retry.parse_retry_after(format_datetime(when, usegmt=True))
    assert parsed is not None
    assert 28 <= parsed <= 31
    assert retry.parse_retry_after("5") == 5.0
    assert retry.parse_retry_after("soon") is None
    assert retry.parse_retry_after(format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)) == 0.0
    assert retry.retry_after({"retry-after": "2"}) == 2.0


def test_the_step_deadline_shortens_the_budget(clock: Clock) -> None:
    started = clock.now
    fn = flaky(10_000, retry.TransientError("connection reset by peer"), clock, cost=1.0)
    with retry.step_deadline(10), pytest.raises(retry.TransientError):
        retry.call(fn)  # type: ignore[arg-type]
    assert clock.now - started <= 11


def test_the_budget_can_be_set_for_a_run(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(retry.BUDGET_VAR, "5")
    assert retry.default_budget() == 5.0
    monkeypatch.setenv(retry.BUDGET_VAR, "junk")
    assert retry.default_budget() == retry.BUDGET
    monkeypatch.setenv(retry.BUDGET_VAR, "0")
    fn = flaky(3, retry.TransientError("503"), clock)
    with pytest.raises(retry.TransientError):
        retry.call(fn)  # type: ignore[arg-type]
    assert fn.calls["n"] == 1  # type: ignore[attr-defined]


def test_each_retry_is_logged_once(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    fn = flaky(3, retry.TransientError("connection refused"), clock)
    with caplog.at_level(logging.WARNING, logger="sc_ci"):
        retry.call(fn)  # type: ignore[arg-type]
    lines = [r.getMessage() for r in caplog.records if "transient failure" in r.getMessage()]
    assert [line.split(")")[0] for line in lines] == [f"transient failure (attempt {n}" for n in (1, 2, 3)]
    assert all("connection refused; retrying in" in line and "budget]" in line for line in lines)


@pytest.mark.parametrize("exc", [
    VerificationFailed("bad signature"),
    StepFailed("denied"),
    ValueError("a bug"),
])
def test_non_transient_errors_are_never_retried(clock: Clock, exc: BaseException) -> None:
    fn = flaky(1, exc, clock)
    with pytest.raises(type(exc)):
        retry.call(fn)  # type: ignore[arg-type]
    assert fn.calls["n"] == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_never_retried(clock: Clock, status: int) -> None:
    response = requests.Response()
    response.status_code = status
    fn = flaky(1, requests.HTTPError(response=response), clock)
    with pytest.raises(requests.HTTPError):
        retry.call(fn)  # type: ignore[arg-type]
    assert fn.calls["n"] == 1  # type: ignore[attr-defined]


REKOR_OFFLINE = (
    'Error: signing [127.0.0.1:5000/a@sha256:fa]: signing digest: Post "https://rekor.sigstore.dev/api/v1/log/entries":'
    ' POST https://rekor.sigstore.dev/api/v1/log/entries giving up after 4 attempt(s): Post '
    '"https://rekor.sigstore.dev/api/v1/log/entries": dial tcp: lookup rekor.sigstore.dev on 10.0.0.53:53: '
    'no such host')
REKOR_NO_DNS_SERVER = (
    'Error: signing [r/a@sha256:fa]: signing digest: Post "https://rekor.sigstore.dev/api/v1/log/entries": POST '
    'https://rekor.sigstore.dev/api/v1/log/entries giving up after 4 attempt(s): Post "https://rekor.sigstore.dev/api/v1/'
    'log/entries": dial tcp: lookup rekor.sigstore.dev on 127.0.0.53:53: read udp 127.0.0.1:4->127.0.0.53:53: '
    'connect: connection refused')
PRIVATE_REKOR_DOWN = (
    'Error: signing [r/a@sha256:fa]: signing digest: Post "http://127.0.0.1:1/api/v1/log/entries": POST '
    'http://127.0.0.1:1/api/v1/log/entries giving up after 4 attempt(s): Post "http://127.0.0.1:1/api/v1/log/entries": '
    'dial tcp 127.0.0.1:1: connect: connection refused')


@pytest.mark.parametrize(("text", "transient"), [
    ("dial tcp 127.0.0.1:5000: connect: connection refused", True),
    ("read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer", True),
    ('Get "http://127.0.0.1:5000/v2/": EOF', True),
    ("GET https://reg/v2/: 503 Service Unavailable", True),
    ("unexpected status code 429 Too Many Requests", True),
    ("TOOMANYREQUESTS: too many requests", True),
    ('POST http://127.0.0.1:1/v2/a/blobs/uploads/: UNAVAILABLE: fault injected by faultproxy', True),
    ("lookup reg.example.com: Temporary failure in name resolution", True),
    ("lookup reg.example.com on 10.0.0.53:53: server misbehaving", True),
    ("dial tcp: lookup reg.example.com on 10.0.0.53:53: no such host", False),
    ("lookup regsitry.example.com: no such host; then connection refused", False),
    (REKOR_OFFLINE, False),
    (REKOR_NO_DNS_SERVER, False),
    (PRIVATE_REKOR_DOWN, False),
    ("no signatures found", False),
    ("MANIFEST_UNKNOWN: manifest unknown", False),
    ("sha256:ab500fe", False),
])
def test_transient_text(text: str, transient: bool) -> None:
    assert retry.is_transient_text(text) is transient


def _failed(stderr: str, code: int = 1) -> Completed:
    return Completed(("cosign", "sign"), code, "", stderr, 0.1)


@pytest.mark.parametrize("stderr", [REKOR_OFFLINE, REKOR_NO_DNS_SERVER])
def test_unreachable_public_rekor_names_the_transparency_log_and_the_fix(stderr: str) -> None:
    error = cosign_failures.classify(_failed(stderr), "r/a@sha256:fa", "signing")
    assert isinstance(error, StepFailed)
    assert "could not reach the transparency log service (Rekor at https://rekor.sigstore.dev)" in error.what
    assert "--no-tlog" in error.fix
    assert "transparencyLog: false" in error.fix
    assert "registry host" not in error.fix


def test_unreachable_private_rekor_is_named_too() -> None:
    error = cosign_failures.classify(_failed(PRIVATE_REKOR_DOWN), "r/a@sha256:fa", "signing",
                                     rekor_url="http://127.0.0.1:1")
    assert "transparency log service (Rekor at http://127.0.0.1:1)" in error.what


def test_v3_without_tuf_says_no_tlog_for_key_signing() -> None:
    stderr = ('Error: error getting signing config from TUF: failed to load metadata: tuf refresh failed: Get '
              '"https://tuf-repo-cdn.sigstore.dev/15.root.json": dial tcp: lookup tuf-repo-cdn.sigstore.dev on '
              '10.0.0.53:53: no such host')
    assert not retry.is_transient_text(stderr)
    error = cosign_failures.classify(_failed(stderr), "r/a@sha256:fa", "signing")
    assert "signing config" in error.what
    assert "--no-tlog" in error.fix


def test_network_failure_inside_verify_is_not_called_a_bad_signature() -> None:
    stderr = ('Error: no matching signatures: Get "http://127.0.0.1:5/v2/a/blobs/sha256:1a": dial tcp 127.0.0.1:5: '
              'connect: connection refused')
    error = cosign_failures.classify(_failed(stderr, 12), "r/a@sha256:fa", "verification")
    assert not isinstance(error, VerificationFailed)
    assert "could not be reached while verifying" in error.what
    real = cosign_failures.classify(_failed("Error: no matching signatures: invalid signature", 12), "r/a@sha256:fa",
                                    "verification")
    assert isinstance(real, VerificationFailed)


def test_syft_failures_are_named_from_its_error_lines() -> None:
    refused = Completed(("syft",), 1, "", "\x1b[31m[0000] ERROR could not determine source: Get "
                        '"http://127.0.0.1:9/v2/": dial tcp 127.0.0.1:9: connect: connection refused\x1b[0m', 0.1)
    error = syft.classify(refused, "r/a@sha256:fa")
    assert "could not be reached" in error.what
    assert "\x1b" not in error.why
    dns = Completed(("syft",), 1, "", 'ERROR Get "https://nope.example/v2/": dial tcp: lookup nope.example: '
                    "no such host", 0.1)
    assert "does not resolve" in syft.classify(dns, "nope.example/a@sha256:fa").what
    with pytest.raises(retry.TransientError):
        syft._transient_or(refused)
    assert syft._transient_or(dns) is dns  # not retried


def test_syft_argv_keeps_its_error_messages() -> None:
    from pathlib import Path

    argv = syft.Syft(Path("/opt/syft"), "1.41.0", {}).scan_argv("r/a@sha256:fa", [("cyclonedx-json", Path("a"))])
    assert "--quiet" not in argv
    assert "-q" not in argv
