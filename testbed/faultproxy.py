"""A fault-injecting TCP proxy on 127.0.0.1 in front of a registry: random 503 / 429 (with Retry-After) and
connection resets per HTTP request, scheduled full outages, bounded in time and count, with counters.

It speaks just enough HTTP/1.1 to find request boundaries on a keep-alive connection (request line and
headers, then a Content-Length or chunked body), so a fault can hit any request, not only the first of a
connection (Go clients reuse connections). A stream that does not start with an HTTP method (TLS, or
anything else) is forwarded as opaque bytes: only connection-level faults (resets, outages) apply to it.

    with FaultProxy("127.0.0.1:5000", error_rate=0.05, outage=Outage(3.0, 10.0), seed=7) as proxy:
        ...  # talk to proxy.host instead of the registry
    print(proxy.stats.summary())
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Fault = Literal["503", "429", "reset"]
_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"OPTIONS ")
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Outage:
    """Every `period` seconds the upstream is gone for `length` seconds: the port refuses connections and
    the connections open at its start are reset. The first outage starts `phase` seconds after start."""

    length: float = 3.0
    period: float = 10.0
    phase: float = 4.0

    def down(self, elapsed: float) -> bool:
        if elapsed < self.phase:
            return False
        return (elapsed - self.phase) % self.period < self.length


@dataclass
class Stats:
    """What the proxy saw and did (thread-safe updates through `bump`)."""

    connections: int = 0
    requests: int = 0
    opaque_connections: int = 0  # not HTTP (e.g. TLS): forwarded as bytes
    faults: Counter[str] = field(default_factory=Counter)  # "503", "429", "reset", "outage-drop"
    outages: int = 0  # outage windows that happened
    refused_seconds: float = 0.0  # time the port was closed
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: str, kind: str | None = None) -> None:
        with self._lock:
            if kind is None:
                setattr(self, name, getattr(self, name) + 1)
            else:
                self.faults[kind] += 1

    @property
    def injected(self) -> int:
        return sum(self.faults.values())

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        return (f"{self.requests} requests on {self.connections} connections; {self.injected} faults injected "
                f"({kinds}); {self.outages} outages ({self.refused_seconds:.1f}s refusing connections)")


class FaultProxy:
    """Forwards 127.0.0.1:PORT to `target` ("host:port"), injecting faults. `error_rate` is the chance that
    a request meets a fault, split evenly over `kinds` unless `rates` gives each its own. Faults stop after
    `fault_seconds` or `max_faults`; the proxy shuts itself down after `lifetime` seconds."""

    def __init__(self, target: str, *, error_rate: float = 0.0, rates: dict[Fault, float] | None = None,
                 kinds: tuple[Fault, ...] = ("503", "429", "reset"), retry_after: int = 1,
                 outage: Outage | None = None, seed: int | None = None, fault_seconds: float | None = None,
                 max_faults: int | None = None, lifetime: float = 900.0, port: int = 0) -> None:
        host, sep, target_port = target.rpartition(":")
        if not sep:
            raise ValueError(f"target must be host:port, not {target!r}")
        self.target = (host, int(target_port))
        self.rates: dict[Fault, float] = dict(rates) if rates is not None else \
            {k: error_rate / len(kinds) for k in kinds}
        if sum(self.rates.values()) > 1:
            raise ValueError("fault rates add up to more than 1")
        self.retry_after = retry_after
        self.outage = outage
        self.fault_seconds = fault_seconds
        self.max_faults = max_faults
        self.lifetime = lifetime
        self.stats = Stats()
        self._rng = random.Random(seed)  # noqa: S311 (fault choice, not cryptography)
        self._rng_lock = threading.Lock()
        self._port = port
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._started = 0.0
        self._threads: list[threading.Thread] = []
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()

    # ---- lifecycle --------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._port}"

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def start(self) -> FaultProxy:
        self._started = time.monotonic()
        self._listen()
        self._spawn(self._schedule)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._close_listener()
        self._drop_all(reset=False)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return not self._stop.is_set()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _listen(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(100):  # rebinding the same port after an outage: TIME_WAIT may delay it briefly
            try:
                server.bind(("127.0.0.1", self._port))
                break
            except OSError:
                if not self._port:
                    raise
                time.sleep(0.02)
        else:
            raise OSError(f"cannot listen on 127.0.0.1:{self._port} again")
        server.listen(128)
        server.settimeout(0.1)
        self._port = server.getsockname()[1]
        self._server = server
        self._spawn(self._accept, server)

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    def _schedule(self) -> None:
        """Outages on their schedule; shut down at the end of the lifetime."""
        down_since: float | None = None
        while not self._stop.wait(0.02):
            elapsed = self.elapsed
            if elapsed >= self.lifetime:
                self._stop.set()
                self._close_listener()
                self._drop_all(reset=False)
                return
            want_down = self.outage is not None and self._faulting() and self.outage.down(elapsed)
            if want_down and down_since is None:
                down_since = time.monotonic()
                self.stats.bump("outages")
                self._close_listener()
                self._drop_all(reset=True)
            elif not want_down and down_since is not None:
                self.stats.refused_seconds += time.monotonic() - down_since
                down_since = None
                self._listen()
        if down_since is not None:
            self.stats.refused_seconds += time.monotonic() - down_since

    def _faulting(self) -> bool:
        if self.fault_seconds is not None and self.elapsed >= self.fault_seconds:
            return False
        return self.max_faults is None or self.stats.injected < self.max_faults

    # ---- connections --------------------------------------------------------------
    def _accept(self, server: socket.socket) -> None:
        while self._server is server and not self._stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.stats.bump("connections")
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self._live_lock:
            self._live.add(sock)

    def _untrack(self, *socks: socket.socket) -> None:
        with self._live_lock:
            for sock in socks:
                self._live.discard(sock)

    def _drop_all(self, *, reset: bool) -> None:
        with self._live_lock:
            live = list(self._live)
            self._live.clear()
        for sock in live:
            if reset:
                self.stats.bump("faults", "outage-drop")
                _reset(sock)
            else:
                _close(sock)

    def _choose(self) -> Fault | None:
        if not self._faulting():
            return None
        with self._rng_lock:
            roll = self._rng.random()
        acc = 0.0
        for kind, rate in self.rates.items():
            acc += rate
            if roll < acc:
                return kind
        return None

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        reader = _Reader(client)
        try:
            first = reader.peek(8)
            if not first:
                return
            if not first.startswith(_METHODS):
                self.stats.bump("opaque_connections")
                if self._choose() == "reset":
                    self.stats.bump("faults", "reset")
                    _reset(client)
                    return
                upstream = self._connect()
                self._spawn_pipe(upstream, client)
                _pipe_bytes(reader, upstream)
                return
            while not self._stop.is_set():
                head = reader.read_head()
                if head is None:
                    return
                self.stats.bump("requests")
                fault = self._choose()
                if fault is not None:
                    self.stats.bump("faults", fault)
                    if fault == "reset":
                        _reset(client)
                    else:
                        _answer(client, int(fault), self.retry_after)
                    return
                if upstream is None:
                    upstream = self._connect()
                    self._spawn_pipe(upstream, client)
                upstream.sendall(head)
                _forward_body(reader, upstream, head)
        except OSError:
            pass
        finally:
            self._untrack(client, *(s for s in (upstream,) if s is not None))
            _close(client)
            if upstream is not None:
                _close(upstream)

    def _connect(self) -> socket.socket:
        upstream = socket.create_connection(self.target, timeout=60)
        upstream.settimeout(None)
        self._track(upstream)
        return upstream

    def _spawn_pipe(self, source: socket.socket, sink: socket.socket) -> None:
        threading.Thread(target=_pipe_socket, args=(source, sink), daemon=True).start()


class _Reader:
    """Buffered reads from a socket: peek, the HTTP head, exact byte counts, lines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def peek(self, n: int) -> bytes:
        while len(self.buf) < n and self._fill():
            pass
        return self.buf[:n]

    def read_head(self) -> bytes | None:
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > _MAX_HEAD or not self._fill():
                return None
        end = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:end], self.buf[end:]
        return head

    def read_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise OSError("connection closed inside a chunked body")
        end = self.buf.index(b"\r\n") + 2
        line, self.buf = self.buf[:end], self.buf[end:]
        return line

    def chunks(self, count: int) -> list[bytes]:
        """Exactly `count` bytes, in the pieces they arrive in."""
        out: list[bytes] = []
        while count > 0:
            if not self.buf and not self._fill():
                raise OSError("connection closed inside a body")
            piece, self.buf = self.buf[:count], self.buf[count:]
            out.append(piece)
            count -= len(piece)
        return out

    def take(self) -> bytes:
        data, self.buf = self.buf, b""
        return data


def _headers(head: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            found[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return found


def _forward_body(reader: _Reader, upstream: socket.socket, head: bytes) -> None:
    headers = _headers(head)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = reader.read_line()
            upstream.sendall(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:  # trailers, then the empty line
                while (trailer := reader.read_line()) != b"\r\n":
                    upstream.sendall(trailer)
                upstream.sendall(b"\r\n")
                return
            for piece in reader.chunks(size + 2):
                upstream.sendall(piece)
    length = headers.get("content-length", "0").strip()
    for piece in reader.chunks(int(length) if length.isdigit() else 0):
        upstream.sendall(piece)


def _answer(client: socket.socket, status: int, retry_after: int) -> None:
    reason = {503: "Service Unavailable", 429: "Too Many Requests"}[status]
    body = (b'{"errors":[{"code":"UNAVAILABLE","message":"fault injected by faultproxy"}]}' if status == 503
            else b'{"errors":[{"code":"TOOMANYREQUESTS","message":"fault injected by faultproxy"}]}')
    client.sendall(f"HTTP/1.1 {status} {reason}\r\nRetry-After: {retry_after}\r\nContent-Type: application/json"
                   f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    with contextlib.suppress(OSError):
        client.shutdown(socket.SHUT_WR)


def _pipe_bytes(reader: _Reader, sink: socket.socket) -> None:
    if rest := reader.take():
        sink.sendall(rest)
    _pipe_socket(reader.sock, sink)


def _pipe_socket(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a crashing server or a middlebox does. SHUT_RD first: it sends
    nothing, but wakes a thread blocked reading this socket (close() alone would not, and the peer would
    wait forever on a connection nobody serves)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket) -> None:
    """Close for good: shutdown first, so a thread blocked on the socket wakes up and the peer sees FIN."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
