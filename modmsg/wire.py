"""The wire under :class:`modmsg.session.WireSession`: whatever a target sends, an exchange ends, and stays small.

* **One deadline per exchange.** ``--request-timeout`` bounds connecting, sending and reading the complete answer
  (not each socket read): a :class:`Watchdog` thread per session shuts the exchange's socket down when its
  :class:`Deadline` passes, so a target that drips its headers or its body one byte at a time is cut off too.
  The connections find their exchange's deadline through a context variable (set by the session for the duration
  of one exchange): ``requests`` and ``urllib3`` offer no other way to reach the socket of a request in flight.
* **One size cap per answer.** At most ``--max-response-size`` bytes of a body are read, counted *after*
  decompression; ``urllib3`` (2.6 and later) decodes at most the requested amount per read, so a gzip, deflate or
  brotli bomb is never expanded past the cap, and an endless chunked body stops there.
* **Bounded JSON.** :func:`loads` (and the ``.json()`` of every response the session returns) refuses JSON nested
  deeper than :data:`MAX_JSON_DEPTH` with a ``ValueError``, so no body can make a check, a reporter or the
  recursion limit of Python fail: to the suite, such a body is "not JSON".
"""

from __future__ import annotations

import heapq
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_JSON_DEPTH = 64
"""Deepest JSON nesting the suite parses (``{}`` is 1). The Assistants objects nest fewer than 10 levels."""
READ_CHUNK = 64 * 1024
"""Bytes asked of the decoder per read: also the most a compressed body can expand in one step."""


# ------------------------------------------------------------------------------------------------ JSON


class JsonTooDeep(ValueError):
    """A JSON text nested deeper than :data:`MAX_JSON_DEPTH`: treated like any other text that is not JSON."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not parsed (modmsg.wire.MAX_JSON_DEPTH)")


def loads(text: str | bytes | bytearray) -> Any:
    """``json.loads`` that raises :class:`JsonTooDeep` (a ``ValueError``) instead of building or recursing into
    anything deeper than :data:`MAX_JSON_DEPTH`."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonTooDeep() from None
    if too_deep(value):
        raise JsonTooDeep()
    return value


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` (parsed JSON) nests containers deeper than ``limit``; iterative, never recursive."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


class BoundedResponse(requests.Response):
    """The responses the suite's session returns: ``.json()`` parses with :func:`loads`."""

    def json(self, **kwargs: Any) -> Any:
        content = self.content
        if not self.encoding and content and len(content) > 3:
            with suppress(UnicodeDecodeError):  # json.loads(bytes) detects UTF-8/16/32 by itself
                return loads(content)
        return loads(self.text)


# ------------------------------------------------------------------------------------------------ failures


class BodyTooLarge(requests.RequestException):
    """The answer was larger than the cap (counted after decompression); only the first ``limit`` bytes were read."""

    def __init__(self, limit: int, **kwargs: Any) -> None:
        super().__init__(
            f"the answer is larger than {size_text(limit)} (--max-response-size), the rest was not read", **kwargs
        )
        self.limit = limit


class ExchangeTimeout(requests.Timeout):
    """The exchange (connect, send, complete answer) did not end within its deadline."""

    def __init__(self, seconds: float, **kwargs: Any) -> None:
        super().__init__(f"no response within the timeout: {seconds:g} s for the whole exchange", **kwargs)
        self.seconds = seconds


def size_text(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size:,} bytes"


# ------------------------------------------------------------------------------------------------ deadlines


@dataclass(eq=False)
class Deadline:
    """The deadline of one exchange, and the socket it currently uses (to cut when the deadline passes).

    The socket, not the connection: ``http.client`` lets go of a connection's socket once the head of an answer
    with ``Connection: close`` is read, while the body is still read from it.
    """

    seconds: float
    at: float
    expired: bool = False
    _done: bool = False
    _sock: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def after(cls, seconds: float, clock: Any = time.monotonic) -> Deadline:
        return cls(seconds=seconds, at=clock() + seconds)

    def attach(self, connection: Any) -> None:
        sock = getattr(connection, "sock", None)
        if sock is None:
            return
        with self._lock:
            self._sock = sock
            expired = self.expired
        if expired:
            _cut(sock)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            sock = self._sock
        if sock is not None:
            _cut(sock)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._sock = None

    @property
    def done(self) -> bool:
        return self._done


def _cut(sock: socket.socket) -> None:
    """Shut the socket down: a read or write blocked on it returns at once, in whatever thread it runs."""
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_CURRENT: ContextVar[Deadline | None] = ContextVar("modmsg_wire_deadline", default=None)


@contextmanager
def current(deadline: Deadline | None) -> Iterator[None]:
    """Make ``deadline`` the one the connections of this thread's exchange attach to."""
    token = _CURRENT.set(deadline)
    try:
        yield
    finally:
        _CURRENT.reset(token)


class Watchdog:
    """Expires deadlines when they pass: one daemon thread, started on demand, gone when nothing is watched."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._running = False
        self._wakes = float("inf")

    def watch(self, deadline: Deadline) -> None:
        with self._cond:
            while self._heap and self._heap[0][2].done:  # ended exchanges leave as new ones come
                heapq.heappop(self._heap)
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="modmsg-wire-watchdog", daemon=True).start()
            elif deadline.at < self._wakes:  # wake the thread only when it would sleep past this deadline
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while self._heap:
                at, _, deadline = self._heap[0]
                wait = at - time.monotonic()
                if deadline.done or wait <= 0:
                    heapq.heappop(self._heap)
                    deadline.expire()
                    continue
                self._wakes = at
                self._cond.wait(wait)
            self._running = False
            self._wakes = float("inf")


class _Watched:
    """A urllib3 connection that attaches itself to the deadline of the exchange it serves."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        deadline = _CURRENT.get()
        if deadline is not None:
            deadline.attach(self)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        deadline = _CURRENT.get()
        if deadline is not None:
            deadline.attach(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class WireAdapter(HTTPAdapter):
    """``requests``' adapter with connections that a deadline can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = POOLS
        return manager


# ------------------------------------------------------------------------------------------------ the body


def read_body(response: requests.Response, limit: int | None) -> None:
    """Read the streamed body into ``response.content``: at most ``limit`` bytes after decompression.

    Past the limit the connection is closed and :class:`BodyTooLarge` raised, with the first ``limit`` bytes kept
    on the response as evidence.
    """
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.iter_content(READ_CHUNK):
            total += len(chunk)
            if limit is not None and total > limit:
                chunks.append(chunk[: len(chunk) - (total - limit)])
                _keep(response, chunks)
                discard(response)
                raise BodyTooLarge(limit, response=response, request=response.request)
            chunks.append(chunk)
    except BodyTooLarge:
        raise
    except BaseException:
        _keep(response, chunks)
        discard(response)
        raise
    _keep(response, chunks)


def _keep(response: requests.Response, chunks: list[bytes]) -> None:
    response._content = b"".join(chunks)
    response._content_consumed = True  # type: ignore[attr-defined]  # requests' own flag, absent from its stubs


def discard(response: requests.Response) -> None:
    """Close the response's connection (never reused after a partial read)."""
    raw = response.raw
    if raw is None:
        return
    with suppress(Exception):
        raw.close()
    release = getattr(raw, "release_conn", None)
    if release is not None:
        with suppress(Exception):
            release()
