"""Secret values that never print themselves, and the process-wide masker for log lines."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

_MIN_MASK_LEN = 4
MASK = "***"
_Listener = Callable[[str], None]


class Secret:
    """A string that hides itself from repr/str/format; call `.reveal()` only at the point of use."""

    __slots__ = ("_value", "name")

    def __init__(self, value: str, name: str = "secret") -> None:
        self._value = value
        self.name = name
        register(value)

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

    def register(self, value: str) -> None:
        # Each line of a multi-line secret is masked too, except PEM armour (-----BEGIN …-----).
        parts = {value, *(line for line in value.splitlines() if line.strip() and not line.startswith("-----"))}
        new = {p.strip() for p in parts if len(p.strip()) >= _MIN_MASK_LEN} - self._values
        if not new:
            return
        with self._lock:
            self._values |= new
            listeners = list(self._listeners)
        for value_ in sorted(new):
            for listener in listeners:
                listener(value_)

    def add_listener(self, listener: _Listener) -> None:
        with self._lock:
            self._listeners.append(listener)
            values = sorted(self._values)
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


_MASKER = _Masker()


def register(value: str) -> None:
    """Mark a value as secret: it is masked in every log line, summary and output from now on."""
    _MASKER.register(value)


def register_all(values: Iterable[str]) -> None:
    for v in values:
        register(v)


def mask(text: str) -> str:
    """Replace every registered secret in `text` with ***."""
    return _MASKER.mask(text)


def on_new_secret(listener: _Listener) -> None:
    """Call `listener(value)` for each secret registered, past and future (CI log masking)."""
    _MASKER.add_listener(listener)


def listening(listener: _Listener) -> bool:
    """Whether `listener` still gets new secrets (reset_for_tests drops every listener)."""
    return _MASKER.has_listener(listener)


def reset_for_tests() -> None:
    _MASKER.clear()
