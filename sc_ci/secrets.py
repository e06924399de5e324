"""Secret values that never print themselves, and the process-wide masker for log lines."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_MIN_MASK_LEN = 4
MASK = "***"
#: values too common to mask job-wide: `::add-mask::true` would blank every "true" in the whole log
COMMON_WORDS = frozenset({
    "true", "false", "yes", "no", "on", "off", "null", "none", "nil", "undefined", "empty", "default",
    "password", "passwd", "passw0rd", "secret", "token", "admin", "administrator", "root", "user",
    "username", "guest", "test", "testing", "example", "changeme", "latest", "main", "master", "develop",
    "stable", "release", "docker", "github", "gitlab", "registry", "localhost", "value", "key", "private",
    "public", "enabled", "disabled", "info", "debug", "error", "warning", "local",
})
_LOG = logging.getLogger("sc_ci.secrets")
_Listener = Callable[[str], None]


class Secret:
    """A string that hides itself from repr/str/format; call `.reveal()` only at the point of use."""

    __slots__ = ("_value", "name")

    def __init__(self, value: str, name: str = "secret") -> None:
        self._value = value
        self.name = name
        register(value, name)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


class _Masker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._listeners: list[_Listener] = []

    def register(self, value: str, name: str = "a secret") -> None:
        # Each line of a multi-line secret is masked too, except PEM armour (-----BEGIN …-----).
        if not isinstance(value, str) or not value.strip():
            return
        whole = value.strip()
        if is_weak(whole):
            _warn_weak(name, whole)
            return
        parts = {value, *(line for line in value.splitlines() if line.strip() and not line.startswith("-----"))}
        new = {p.strip() for p in parts if not is_weak(p.strip())} - self._values
        if not new:
            return
        with self._lock:
            self._values |= new
            listeners = list(self._listeners)
        # Listeners (CI log masking) get single lines only: a multi-line value is announced by its lines,
        # so a weak line inside it (`true`, `}`) is never masked job-wide.
        for value_ in sorted(v for v in new if "\n" not in v and "\r" not in v):
            for listener in listeners:
                listener(value_)

    def add_listener(self, listener: _Listener) -> None:
        with self._lock:
            self._listeners.append(listener)
            values = sorted(v for v in self._values if "\n" not in v and "\r" not in v)
        for v in values:
            listener(v)

    def has_listener(self, listener: _Listener) -> bool:
        with self._lock:
            return any(existing is listener for existing in self._listeners)

    def mask(self, text: str) -> str:
        if not text:
            return text
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for v in values:
            if v in text:
                text = text.replace(v, MASK)
        return text

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._listeners.clear()


def is_weak(value: str) -> bool:
    """Too short (< 4 characters) or too common (`true`, `password`, `latest`, …) to mask job-wide."""
    text = value.strip()
    return len(text) < _MIN_MASK_LEN or text.lower() in COMMON_WORDS


def _warn_weak(name: str, value: str) -> None:
    reason = "shorter than 4 characters" if len(value) < _MIN_MASK_LEN else "a common word"
    _LOG.warning("%s is %s: it is not masked in the job log (masking it would blank that text "
                 "everywhere); use a real secret value", name, reason)


_MASKER = _Masker()


def register(value: str, name: str = "a secret") -> None:
    """Mark a value as secret: it is masked in every log line, summary and output from now on.
    A weak value (see `is_weak`) is not masked job-wide; a warning naming `name` is logged instead."""
    _MASKER.register(value, name)


def register_all(values: Iterable[str]) -> None:
    for v in values:
        register(v)


def mask(text: str) -> str:
    """Replace every registered secret in `text` with ***."""
    return _MASKER.mask(text)


def mask_all(value: Any) -> Any:
    """A JSON-like value with every registered secret masked in each string (keys too); mappings, lists and
    tuples walked (tuples come back as lists)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {mask(str(k)): mask_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_all(v) for v in value]
    return value


def on_new_secret(listener: _Listener) -> None:
    """Call `listener(value)` for each secret registered, past and future (CI log masking)."""
    _MASKER.add_listener(listener)


def listening(listener: _Listener) -> bool:
    """Whether `listener` still gets new secrets (reset_for_tests drops every listener)."""
    return _MASKER.has_listener(listener)


_CI_MASKING: list[Callable[[], None]] = []


def when_ci_masking_needed(install: Callable[[], None]) -> None:
    """`install` (the CLI's: GitHub's ::add-mask:: for every secret) runs once something asks for CI masking."""
    _CI_MASKING.append(install)


def need_ci_masking() -> None:
    """A credential the CI did not give us is about to exist (an OIDC token minted for this run): from now on
    the CI log masks every secret. Called where the token is obtained; nothing happens outside such a CI."""
    while _CI_MASKING:
        _CI_MASKING.pop(0)()


def reset_for_tests() -> None:
    _MASKER.clear()
    _CI_MASKING.clear()
