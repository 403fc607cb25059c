"""A small HTTP fault proxy on loopback, for proving that the suite stays honest when the network is not.

It sits in front of a loopback upstream (normally the reference server) and forwards every request, except
that a :class:`FaultPlan` picks requests to spoil:

* ``latency``: wait before forwarding (longer than the client's timeout, it is a timeout);
* ``drop``: read the request, then close the connection without answering (the upstream never sees it);
* ``reset``: forward, send the status line, headers and half the body, then reset the connection (RST);
* ``truncate``: forward, send the full ``Content-Length`` but only half the body, then close;
* ``respond``: answer by itself with a canned response, e.g. a gateway's 502/503 HTML page or a 429;
* ``refuse_after``: after that many requests stop listening, so every later connection is refused.

and, for a hostile target rather than a broken network:

* ``respond`` with bytes (e.g. :meth:`Fault.deep_json`, or a gzip bomb with ``Content-Encoding: gzip``);
* ``endless``: answer 200 with a chunked body that never ends (until the client leaves, or ``size`` bytes);
* ``drip``: forward, then send the answer's head (``part="headers"``) or body one byte every ``seconds``;
* ``rewrite``: forward, then set fields of the JSON object answer (e.g. an ``id`` that is not the thread's).

``FaultPlan.where`` (a regular expression searched in ``"METHOD PATH\nBODY"``) limits faults to the requests it
matches (the others pass untouched and are not counted); ``FaultProxy.seen`` lists every request received.

Usage::

    with start_fault_proxy(server.base_url, FaultPlan(faults=(Fault.drop(),), after=1, every=5)) as proxy:
        run the suite with --base-url proxy.base_url
    proxy.injected  # (request number, method, path, fault kind) of every spoiled request

The upstream must be a loopback address: this tool never talks to anything else.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

FaultKind = Literal["latency", "drop", "reset", "truncate", "respond", "endless", "drip", "rewrite"]
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)
UPSTREAM_TIMEOUT = 30.0
HOSTILE_LIMIT = 60.0
"""Seconds an ``endless`` or ``drip`` answer goes on at most, whether or not the client is still there."""
SEEN_LIMIT = 100_000

GATEWAY_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n"
    "<body><center><h1>{status} {reason}</h1></center><hr><center>modmsg-faultproxy</center></body></html>\n"
)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    seconds: float = 0.0
    status: int = 502
    headers: tuple[tuple[str, str], ...] = ()
    body: str | bytes = ""
    size: int = 0
    part: Literal["headers", "body"] = "body"
    fields: tuple[tuple[str, str], ...] = ()
    """``rewrite``: (name, JSON text) set in the answer object."""

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        return cls("latency", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset")

    @classmethod
    def truncate(cls) -> Fault:
        return cls("truncate")

    @classmethod
    def gateway_page(cls, status: int = 502) -> Fault:
        """What nginx or a cloud load balancer sends when the service behind it is down: an HTML page."""
        reason = http.client.responses.get(status, "Error")
        return cls(
            "respond",
            status=status,
            headers=(("Content-Type", "text/html"),),
            body=GATEWAY_PAGE.format(status=status, reason=reason),
        )

    @classmethod
    def respond(cls, status: int, headers: tuple[tuple[str, str], ...] = (), body: str | bytes = "") -> Fault:
        return cls("respond", status=status, headers=headers, body=body)

    @classmethod
    def deep_json(cls, depth: int = 1000, status: int = 200) -> Fault:
        """A JSON answer nested ``depth`` levels deep (an object of arrays)."""
        return cls.respond(status, (("Content-Type", "application/json"),), '{"a": ' + "[" * depth + "]" * depth + "}")

    @classmethod
    def endless(cls, size: int = 1 << 30) -> Fault:
        return cls("endless", size=size)

    @classmethod
    def drip(cls, seconds: float, part: Literal["headers", "body"] = "body") -> Fault:
        return cls("drip", seconds=seconds, part=part)

    @classmethod
    def rewrite(cls, **fields: object) -> Fault:
        return cls("rewrite", fields=tuple((name, json.dumps(value)) for name, value in fields.items()))

    @property
    def label(self) -> str:
        if self.kind == "respond":
            return f"respond {self.status}"
        if self.kind in ("latency", "drip"):
            return f"{self.kind} {self.seconds:g}s"
        return self.kind


@dataclass(frozen=True)
class FaultPlan:
    """Which requests to spoil, and how.

    Requests are numbered from 1 in arrival order. The first ``after`` pass untouched; from then on every
    ``every``-th request gets the next fault of ``faults`` (in turn), at most ``limit`` faults in all (None: no
    limit). ``latency`` is added to every request. After ``refuse_after`` requests the proxy stops listening.
    """

    faults: tuple[Fault, ...] = ()
    after: int = 0
    every: int = 1
    limit: int | None = None
    latency: float = 0.0
    refuse_after: int | None = None
    where: str = ""

    def __post_init__(self) -> None:
        if self.every < 1 or self.after < 0 or (self.limit is not None and self.limit < 0):
            raise ValueError("FaultPlan needs every >= 1, after >= 0 and limit >= 0")


@dataclass(frozen=True)
class Injection:
    number: int
    method: str
    path: str
    fault: str


def _rewritten(payload: bytes, fields: tuple[tuple[str, str], ...]) -> bytes:
    """The JSON object answer with ``fields`` set (anything else is sent as it came)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(body, dict):
        return payload
    body.update({name: json.loads(value) for name, value in fields})
    return json.dumps(body).encode("utf-8")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY every keep-alive answer written in two parts stalls ~40 ms (Nagle + delayed ACK).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        with suppress(OSError, ValueError):
            super().finish()
        self.server.proxy._track(self.connection, add=False)
        if self._upstream is not None:
            self._upstream.close()

    def handle_one_request(self) -> None:
        """Like the base class, but every method (QUERY, TRACE ...) goes to one handler."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline or len(self.raw_requestline) > 65536:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._proxy()
            if not self.wfile.closed:
                self.wfile.flush()
        except (TimeoutError, OSError, ValueError):
            self.close_connection = True

    # -- the request --------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _proxy(self) -> None:
        body = self._read_body()
        proxy = self.server.proxy
        if proxy.refusing:  # a request that slipped in on an open connection while the proxy went down
            self._abort(reset=False)
            return
        number, fault = proxy._next(self.command, self.path, body)
        delay = proxy.plan.latency + (fault.seconds if fault and fault.kind == "latency" else 0.0)
        if delay > 0:
            time.sleep(delay)
        if fault is not None and fault.kind == "drop":
            self._abort(reset=False)
            return
        if fault is not None and fault.kind == "endless":
            self._endless(fault.size)
            return
        if fault is None or fault.kind != "respond":
            status, headers, payload = self._forward(body)
            if fault is not None and fault.kind in ("reset", "truncate"):
                self._write(status, headers, payload, cut=True)
                self._abort(reset=fault.kind == "reset")
                return
            if fault is not None and fault.kind == "drip":
                self._drip(status, headers, payload, fault)
                return
            if fault is not None and fault.kind == "rewrite":
                payload = _rewritten(payload, fault.fields)
        if proxy._last(number):  # stop listening first, and answer with "Connection: close": no reuse
            self.close_connection = True
            proxy.refuse(keep=self.connection)
        if fault is not None and fault.kind == "respond":
            canned = fault.body if isinstance(fault.body, bytes) else fault.body.encode("utf-8")
            self._write(fault.status, list(fault.headers), canned)
        else:
            self._write(status, headers, payload)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request upstream; a kept-alive upstream connection that turns out closed is retried once."""
        while True:
            reused = self._upstream is not None
            if self._upstream is None:
                proxy = self.server.proxy
                self._upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, UPSTREAM_TIMEOUT)
                self._upstream.connect()
                assert self._upstream.sock is not None
                self._upstream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self._upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        self._upstream.putheader(name, value)
                if body or self.command in ("POST", "PUT", "PATCH"):
                    self._upstream.putheader("Content-Length", str(len(body)))
                self._upstream.endheaders(body or None)
                response = self._upstream.getresponse()
                payload = response.read()
                headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                return response.status, headers, payload
            except (OSError, http.client.HTTPException):
                self._upstream.close()
                self._upstream = None
                if not reused:
                    raise

    # -- the answer ---------------------------------------------------------------------------------------

    def _head(self, status: int, headers: list[tuple[str, str]], length: int) -> bytes:
        reason = http.client.responses.get(status, "")
        lines = [f"HTTP/1.1 {status} {reason}".rstrip()]
        lines += [f"{name}: {value}" for name, value in headers]
        if status not in (204, 304) and not 100 <= status < 200:
            lines.append(f"Content-Length: {length}")
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _write(self, status: int, headers: list[tuple[str, str]], payload: bytes, *, cut: bool = False) -> None:
        """One write for head and body; ``cut``: only half the body (the caller then breaks the connection)."""
        body = b"" if self.command == "HEAD" or status in (204, 304) else payload
        self.wfile.write(self._head(status, headers, len(payload)) + (body[: len(body) // 2] if cut else body))

    def _endless(self, size: int) -> None:
        """200, chunked, 64 KiB chunks of JSON-ish text until the client leaves (or ``size`` bytes, or the limit)."""
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b"[" * 0x10000 + b"\r\n"
        ends = time.monotonic() + HOSTILE_LIMIT
        with suppress(OSError, ValueError):
            for _ in range(max(1, size // 0x10000)):
                if time.monotonic() > ends:
                    break
                self.wfile.write(chunk)
        self._abort(reset=False)

    def _drip(self, status: int, headers: list[tuple[str, str]], payload: bytes, fault: Fault) -> None:
        """The answer, its head or its body one byte every ``fault.seconds`` (the rest at once)."""
        self.close_connection = True
        head = self._head(status, headers, len(payload))
        ends = time.monotonic() + HOSTILE_LIMIT
        with suppress(OSError, ValueError):
            if fault.part == "body":
                self.wfile.write(head)
            dripped, rest = (head, payload) if fault.part == "headers" else (payload, b"")
            for index in range(len(dripped)):
                if time.monotonic() > ends:
                    return self._abort(reset=False)
                self.wfile.write(dripped[index : index + 1])
                time.sleep(fault.seconds)
            self.wfile.write(rest)
        self._abort(reset=False)

    def _abort(self, *, reset: bool) -> None:
        self.close_connection = True
        with suppress(OSError, ValueError):
            self.wfile.flush()
            if not reset:
                self.connection.shutdown(socket.SHUT_RDWR)  # FIN: an orderly close, mid-exchange
                return
            # SO_LINGER 0 and a real close (the file wrappers hold references): the kernel sends RST.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.wfile.close()
            self.rfile.close()
            self.connection.close()


@dataclass
class FaultProxy:
    """A running proxy; ``base_url`` is the upstream's base URL with the proxy's host and port."""

    plan: FaultPlan
    upstream_host: str
    upstream_port: int
    path: str
    server: _Server
    thread: threading.Thread
    injected: list[Injection] = field(default_factory=list)
    requests: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)
    """(method, path) of every request received (the first ``SEEN_LIMIT``)."""
    matched: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _connections: set[socket.socket] = field(default_factory=set)
    _refusing: bool = False

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def refusing(self) -> bool:
        return self._refusing

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _next(self, method: str, path: str, body: bytes = b"") -> tuple[int, Fault | None]:
        plan = self.plan
        with self._lock:
            self.requests += 1
            number = self.requests
            if len(self.seen) < SEEN_LIMIT:
                self.seen.append((method, path))
            if plan.where and not re.search(plan.where, f"{method} {path}\n{body.decode('latin-1')}"):
                return number, None
            self.matched += 1
            counted = self.matched
            spoil = (
                plan.faults
                and counted > plan.after
                and (counted - plan.after) % plan.every == 0
                and (plan.limit is None or len(self.injected) < plan.limit)
            )
            if not spoil:
                return number, None
            fault = plan.faults[len(self.injected) % len(plan.faults)]
            self.injected.append(Injection(number, method, path, fault.label))
            return number, fault

    def _last(self, number: int) -> bool:
        return self.plan.refuse_after is not None and number >= self.plan.refuse_after

    def refuse(self, keep: socket.socket | None = None) -> None:
        """Stop listening and cut every open connection: from now on, connection refused.

        Safe from a handler thread (the accept loop runs in its own thread); returns once the port is closed.
        """
        with self._lock:
            if self._refusing:
                return
            self._refusing = True
        self._close(keep)

    def _close(self, keep: socket.socket | None = None) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            connections = [c for c in self._connections if c is not keep]
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        with self._lock:
            already = self._refusing
            self._refusing = True
        if not already:
            self._close()
        self.thread.join(5)


def start_fault_proxy(upstream: str, plan: FaultPlan = FaultPlan()) -> FaultProxy:
    """Start a proxy on a free loopback port in front of ``upstream`` (a loopback base URL)."""
    parts = urlsplit(upstream)
    if parts.scheme != "http" or not parts.hostname or not _loopback(parts.hostname):
        raise ValueError(f"the fault proxy only fronts plain-HTTP loopback servers, not {upstream!r}")
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    proxy = FaultProxy(
        plan=plan,
        upstream_host=parts.hostname,
        upstream_port=parts.port or 80,
        path=parts.path.rstrip("/"),
        server=server,
        thread=thread,
    )
    server.proxy = proxy
    thread.name = f"modmsg-faultproxy-{proxy.port}"
    thread.start()
    return proxy


@contextmanager
def fault_proxy(upstream: str, plan: FaultPlan = FaultPlan()) -> Iterator[FaultProxy]:
    proxy = start_fault_proxy(upstream, plan)
    try:
        yield proxy
    finally:
        proxy.stop()
