"""The defects that live in front of an application (gateways, proxies, frameworks): ASGI middleware that rewrites
what the correct reference server does, and the response rewriters the variants use."""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Header = tuple[bytes, bytes]

# ---------------------------------------------------------------------------------------------------------
# Middleware for defects that are not a knob of the application (gateways, proxies, frameworks)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One complete HTTP response, as a response-rewriting middleware sees it."""

    status: int
    headers: tuple[Header, ...]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key.lower() == name), None)

    def json(self) -> Any:
        if b"json" not in (self.header(b"content-type") or b""):
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def with_body(self, body: bytes, content_type: bytes | None = None, status: int | None = None) -> Reply:
        headers = tuple(
            (key, content_type if content_type is not None and key.lower() == b"content-type" else value)
            for key, value in self.headers
        )
        return Reply(self.status if status is None else status, headers, body)

    def with_json(self, data: Any) -> Reply:
        return self.with_body(json.dumps(data, ensure_ascii=False).encode("utf-8"))


Rewrite = Callable[[Scope, Reply], Reply]


class RewriteResponses:
    """Pure ASGI middleware: buffers each HTTP response and sends ``rewrite(scope, reply)`` instead."""

    def __init__(self, app: ASGIApp, *, rewrite: Rewrite) -> None:
        self.app = app
        self._rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started: list[Message] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.append(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            start = started[0]
            original = Reply(start["status"], tuple(start.get("headers", ())), b"".join(chunks))
            reply = self._rewrite(scope, original)
            headers = list(reply.headers)
            if reply is not original:
                headers = [(key, value) for key, value in headers if key.lower() != b"content-length"]
                if reply.status not in (204, 304):
                    headers.append((b"content-length", str(len(reply.body)).encode()))
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if reply.status == 204 else reply.body})

        await self.app(scope, receive, capture)


class OverrideMethod:
    """Pure ASGI middleware: requests with one of ``methods`` reach the application as ``to``."""

    def __init__(self, app: ASGIApp, *, methods: frozenset[str], to: str) -> None:
        self.app = app
        self._methods = methods
        self._to = to

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in self._methods:
            scope = {**scope, "method": self._to}
        await self.app(scope, receive, send)


class DeferredThreadDelete:
    """Pure ASGI middleware: DELETE of a thread is checked (as a GET) and acknowledged, but never applied."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = RewriteResponses(app, rewrite=self._acknowledge)

    @staticmethod
    def _acknowledge(scope: Scope, reply: Reply) -> Reply:
        if scope.get("modmsg_deferred_delete") and reply.status == 200:
            thread_id = scope["path"].rsplit("/", 1)[-1]
            return reply.with_json({"id": thread_id, "object": "thread.deleted", "deleted": True})
        return reply

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "DELETE" and _THREAD_PATH.fullmatch(scope["path"]):
            scope = {**scope, "method": "GET", "modmsg_deferred_delete": True}
        await self.app(scope, receive, send)


class EveryNthRequestRateLimited:
    """Pure ASGI middleware: every ``every``-th request of this server is answered 429 by a rate limiter."""

    def __init__(
        self, app: ASGIApp, *, every: int, headers: tuple[tuple[str, str], ...], body: bytes, content_type: str
    ) -> None:
        self.app = app
        self._every = every
        self._counter = itertools.count(1)  # one server, one event loop: no lock needed
        self._headers = [(b"content-type", content_type.encode())] + [
            (name.lower().encode(), value.encode()) for name, value in headers
        ]
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or next(self._counter) % self._every:
            await self.app(scope, receive, send)
            return
        headers = [*self._headers, (b"content-length", str(len(self._body)).encode())]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already read ``body`` to the application once, then defers to ``receive``."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a decoded JSON value holds a string a strict UTF-8 encoder refuses (an unpaired surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


class DropOnLoneSurrogate:
    """Pure ASGI middleware: a modify whose JSON body decodes to a lone surrogate kills the worker: the
    connection is closed without a byte of answer. Every other request is served normally.

    An ASGI application cannot close its connection directly; it can make the server do it. Uvicorn (h11 and
    httptools alike) marks the response started, then validates the headers before writing anything: a header
    value with a line break is refused with an exception, and a started response that fails is closed at once.
    ``tests/test_variants.py`` proves on a raw socket that not one byte is sent.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _MESSAGE_PATH.fullmatch(scope["path"]):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if self._crashes_on(body):
            try:
                await send({"type": "http.response.start", "status": 500, "headers": [(b"x-crash", b"worker\r\ndied")]})
            except Exception:  # the server refused the header and closes the connection: that is the point
                return
            raise RuntimeError("the server wrote a response start it should have refused")
        await self.app(scope, _replaying(body, receive), send)

    @staticmethod
    def _crashes_on(body: bytes) -> bool:
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            return False
        return _has_lone_surrogate(decoded)


class StaleReadCache:
    """Pure ASGI middleware: a read-through cache of messages that a modify does not invalidate.

    Every message body the server hands out on create or read is cached; a successful modify leaves the cached
    copy in place and marks it stale for the next ``stale_reads`` reads of that message (getMessage, or
    listMessages showing it), which get the copy from before the modify; after that the cache is refreshed.
    Counting reads instead of seconds keeps the defect deterministic.
    """

    def __init__(self, app: ASGIApp, *, stale_reads: int) -> None:
        self.app = RewriteResponses(app, rewrite=self._rewrite)
        self._stale_reads = stale_reads
        self._cached: dict[str, dict[str, Any]] = {}  # one server, one event loop: no lock needed
        self._stale: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def _read(self, message: dict[str, Any]) -> dict[str, Any]:
        message_id = message.get("id")
        if not isinstance(message_id, str):
            return message
        if self._stale.get(message_id, 0) > 0 and message_id in self._cached:
            self._stale[message_id] -= 1
            return self._cached[message_id]
        self._cached[message_id] = message
        return message

    def _rewrite(self, scope: Scope, reply: Reply) -> Reply:
        body = reply.json()
        if reply.status != 200 or not isinstance(body, dict):
            return reply
        method, path = scope["method"], scope["path"]
        if method == "POST" and _LIST_PATH.fullmatch(path):  # createMessage: written through to the cache
            self._read(body)
        elif method == "POST" and _MESSAGE_PATH.fullmatch(path):  # modify: the cache is not invalidated
            self._stale[path.rsplit("/", 1)[-1]] = self._stale_reads
        elif method == "GET" and _MESSAGE_PATH.fullmatch(path):
            served = self._read(body)
            return reply if served is body else reply.with_json(served)
        elif method == "GET" and _LIST_PATH.fullmatch(path) and isinstance(body.get("data"), list):
            items = body["data"]
            served_items = [self._read(item) if isinstance(item, dict) else item for item in items]
            if any(a is not b for a, b in zip(served_items, items, strict=True)):
                return reply.with_json({**body, "data": served_items})
        return reply


_THREAD_PATH = re.compile(r"/v1/threads/[^/]+")
_LIST_PATH = re.compile(r"/v1/threads/[^/]+/messages")
_MESSAGE_PATH = re.compile(r"/v1/threads/[^/]+/messages/[^/]+")
STALE_READS = 2
RATE_LIMIT_BODY = json.dumps(
    {
        "error": {
            "message": "Rate limit reached for requests. Please try again later.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
).encode()
RATE_LIMIT_EVERY = 40


def list_without_metadata(scope: Scope, reply: Reply) -> Reply:
    body = reply.json()
    if scope["method"] != "GET" or not _LIST_PATH.fullmatch(scope["path"]) or not isinstance(body, dict):
        return reply
    items = body.get("data")
    if not isinstance(items, list):
        return reply
    return reply.with_json({**body, "data": [{**item, "metadata": {}} for item in items]})


def delete_as_204(scope: Scope, reply: Reply) -> Reply:
    if scope["method"] != "DELETE" or reply.status != 200:
        return reply
    headers = tuple((key, value) for key, value in reply.headers if key.lower() != b"content-type")
    return Reply(204, headers, b"")


def html_400_page(scope: Scope, reply: Reply) -> Reply:
    if reply.status != 400:
        return reply
    page = b"<html><head><title>400 Bad Request</title></head><body><h1>Bad Request</h1></body></html>"
    return reply.with_body(page, content_type=b"text/html; charset=utf-8")


def html_404_page(scope: Scope, reply: Reply) -> Reply:
    if reply.status != 404:
        return reply
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n'
        f"<body>\n<pre>Cannot {scope['method']} {html.escape(scope['path'])}</pre>\n</body>\n</html>\n"
    )
    return reply.with_body(page.encode(), content_type=b"text/html; charset=utf-8")


def error_code_is_status(scope: Scope, reply: Reply) -> Reply:
    body = reply.json()
    if reply.status < 400 or not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return reply
    return reply.with_json({"error": {**body["error"], "code": reply.status}})


def rewrite(function: Rewrite) -> tuple[Middleware, ...]:
    """The middleware of a variant whose defect is ``function`` applied to every response."""
    return (Middleware(RewriteResponses, rewrite=function),)


def rate_limited_every(
    every: int, *, headers: tuple[tuple[str, str], ...], body: bytes, content_type: str
) -> tuple[Middleware, ...]:
    """The middleware of a variant whose rate limiter answers every ``every``-th request with 429."""
    return (Middleware(EveryNthRequestRateLimited, every=every, headers=headers, body=body, content_type=content_type),)
