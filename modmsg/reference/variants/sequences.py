"""Defects that live between operations: each correct call on its own, wrong only in what a later call sees.

Each is the layer a real deployment puts in front of (or beside) its store: a read cache, a denormalised thread
document, a pager, a thread delete that does not cascade, a get-or-create lookup. The MM-SEQ sequences are built to
catch them (``modmsg.sequences``); the handwritten suites look at one or two calls at a time.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modmsg.reference.variants.defects import Reply, RewriteResponses
from modmsg.reference.variants.variant import CORRECT, Variant

_THREAD = re.compile(r"/v1/threads/(?P<thread>[^/]+)")
_LIST = re.compile(r"/v1/threads/(?P<thread>[^/]+)/messages")
_MESSAGE = re.compile(r"/v1/threads/(?P<thread>[^/]+)/messages/(?P<message>[^/]+)")
CACHE_HITS = 3
"""Reads a cached getMessage answer serves before it expires (counted in reads, not seconds: deterministic)."""


class ReadCacheOutlivesModify:
    """A cache-aside in front of getMessage (Redis with a TTL): a read fills it, the next ``hits`` reads of that
    message are served from it, deletes invalidate it, and a modify forgets to: after a modify, a message read
    shortly before still reads as it was until its entry expires."""

    def __init__(self, app: ASGIApp, *, hits: int) -> None:
        self.app = RewriteResponses(app, rewrite=self._rewrite)
        self._hits = hits
        self._cached: dict[str, tuple[bytes, int]] = {}  # message id -> (body, reads left); one event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope, reply: Reply) -> Reply:
        method, path = scope.get("method"), scope.get("path", "")
        message, thread = _MESSAGE.fullmatch(path), _THREAD.fullmatch(path)
        if method == "DELETE" and message:
            self._cached.pop(message["message"], None)
        elif method == "DELETE" and thread:
            self._cached = {k: v for k, v in self._cached.items() if json.loads(v[0]).get("thread_id") != thread[1]}
        elif method == "GET" and message and reply.status == 200:
            cached = self._cached.get(message["message"])
            if cached is not None and cached[1] > 0:
                self._cached[message["message"]] = (cached[0], cached[1] - 1)
                return reply.with_body(cached[0])
            self._cached[message["message"]] = (reply.body, self._hits)
        return reply


class ListingFromCreationCopy:
    """A denormalised thread document: createMessage also appends a copy of the new message to its thread's
    document, listMessages serves the items from those copies, deleteMessage removes the copy, and modifyMessage
    updates only the message row. The listing keeps showing the metadata a message was created with."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = RewriteResponses(app, rewrite=self._rewrite)
        self._copies: dict[str, dict[str, Any]] = {}  # message id -> its item at creation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope, reply: Reply) -> Reply:
        method, path, body = scope.get("method"), scope.get("path", ""), reply.json()
        if reply.status != 200 or not isinstance(body, dict):
            return reply
        if method == "POST" and _LIST.fullmatch(path) and isinstance(body.get("id"), str):
            self._copies[body["id"]] = body
        elif method == "DELETE" and (message := _MESSAGE.fullmatch(path)):
            self._copies.pop(message["message"], None)
        elif method == "GET" and _LIST.fullmatch(path) and isinstance(body.get("data"), list):
            items = [self._copy_of(item) for item in body["data"]]
            return reply.with_json({**body, "data": items})
        return reply

    def _copy_of(self, item: Any) -> Any:
        return self._copies.get(str(item.get("id")), item) if isinstance(item, dict) else item


class ListingByLastWrite:
    """An API layer that pages a thread's messages itself, ordered by ``updated_at`` (the row's last write, kept
    to the microsecond) where the spec says ``created_at``: the two agree until a message is modified, which
    moves it to the newest end of its thread's listing (and shifts every cursor after it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._version = itertools.count(1)
        self._versions: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope.get("path", ""), scope.get("method")
        if scope["type"] != "http" or method != "GET" or not _LIST.fullmatch(path):
            await RewriteResponses(self.app, rewrite=self._note_write)(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        everything = {**scope, "query_string": urlencode({"limit": 100, "order": "asc"}).encode()}
        await RewriteResponses(self.app, rewrite=lambda _scope, reply: self._page(reply, query))(
            everything, receive, send
        )

    def _note_write(self, scope: Scope, reply: Reply) -> Reply:
        body = reply.json()
        path = scope.get("path", "")
        written = _LIST.fullmatch(path) or _MESSAGE.fullmatch(path)
        if scope.get("method") == "POST" and reply.status == 200 and isinstance(body, dict) and written:
            self._versions[str(body.get("id"))] = next(self._version)
        return reply

    def _page(self, reply: Reply, query: dict[str, str]) -> Reply:
        body = reply.json()
        if reply.status != 200 or not isinstance(body, dict) or not isinstance(body.get("data"), list):
            return reply
        items = sorted(body["data"], key=lambda m: self._versions.get(m.get("id"), 0))
        if query.get("order", "desc") != "asc":
            items.reverse()
        ids = [item.get("id") for item in items]
        start = ids.index(query["after"]) + 1 if query.get("after") in ids else 0
        end = ids.index(query["before"]) if query.get("before") in ids else len(items)
        limit = int(query.get("limit", "20")) if query.get("limit", "20").isdigit() else 20
        window = items[start:end]
        shown = window[-limit:] if "before" in query and "after" not in query else window[:limit]
        first, last = (shown[0]["id"], shown[-1]["id"]) if shown else (None, None)
        return reply.with_json(
            {**body, "data": shown, "first_id": first, "last_id": last, "has_more": len(window) > limit}
        )


def _not_found(thread_id: str) -> bytes:
    message = f"No thread found with id '{thread_id}'."
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return json.dumps({"error": error}).encode()


class ThreadDeleteKeepsMessages:
    """deleteThread removes the thread row only: its messages are not cascaded, and the message routes look a
    message up by its id and its ``thread_id`` column without loading the thread, so they stay readable and
    writable through the deleted thread's id; the thread routes (getThread, listMessages, createMessage) 404."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._deleted: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        thread = _THREAD.fullmatch(path) or _LIST.fullmatch(path)
        if scope["type"] == "http" and thread and thread["thread"] in self._deleted:
            await _answer(send, 404, _not_found(thread["thread"]))
            return
        if scope["type"] == "http" and scope["method"] == "DELETE" and _THREAD.fullmatch(path):
            checked = {**scope, "method": "GET"}  # the thread row is looked up, then only that row goes

            def acknowledge(_scope: Scope, reply: Reply) -> Reply:
                if reply.status != 200:
                    return reply
                self._deleted.add(path.rsplit("/", 1)[-1])
                return reply.with_json({"id": path.rsplit("/", 1)[-1], "object": "thread.deleted", "deleted": True})

            await RewriteResponses(self.app, rewrite=acknowledge)(checked, receive, send)
            return
        await self.app(scope, receive, send)


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GetOrCreateOnModify:
    """The modify handler loads the message with get-or-create (Django's ``get_or_create`` on the thread and the
    id, autocommit): an unknown id in an existing thread inserts a blank message carrying the sent metadata, then
    the handler sees ``created`` and answers 404 without rolling the insert back. The answer is right; the thread
    has one more message."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = _MESSAGE.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        if message is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        replies: list[Message] = []

        async def keep(reply: Message) -> None:
            replies.append(reply)

        await self.app(scope, _once(body), keep)
        if (
            replies
            and replies[0].get("status") == 404
            and b"No message found" in b"".join(r.get("body", b"") for r in replies[1:])
        ):
            await self._insert(scope, message["thread"], body)
        for reply in replies:
            await send(reply)

    async def _insert(self, scope: Scope, thread_id: str, sent: bytes) -> None:
        try:
            metadata = json.loads(sent).get("metadata")
        except (ValueError, AttributeError):
            metadata = None
        new = {"role": "user", "content": " ", **({"metadata": metadata} if isinstance(metadata, dict) else {})}
        create = {**scope, "path": f"/v1/threads/{thread_id}/messages", "raw_path": None, "query_string": b""}

        async def ignore(_message: Message) -> None:
            return None

        await self.app(create, _once(json.dumps(new).encode()), ignore)


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return b"".join(chunks)


def _once(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


SEQUENCE_VARIANTS: tuple[Variant, ...] = (
    Variant(
        "read_cache_outlives_modify",
        f"A cache-aside in front of getMessage (filled by a read, {CACHE_HITS} reads per entry, invalidated by "
        "deletes but not by a modify): a message read shortly before a modify reads as it was before it; the "
        "concurrency test reads its result back through the cache too (MM-META-16).",
        ("MM-SEQ-01", "MM-META-16"),
        CORRECT,
        (Middleware(ReadCacheOutlivesModify, hits=CACHE_HITS),),
    ),
    Variant(
        "listing_from_creation_copy",
        "A denormalised thread document holds a copy of each message made at createMessage: listMessages serves "
        "those copies, so the listing keeps the metadata a message was created with.",
        ("MM-SEQ-01", "MM-META-03"),
        CORRECT,
        (Middleware(ListingFromCreationCopy),),
    ),
    Variant(
        "listing_ordered_by_update",
        "listMessages pages by the row's last write (`ORDER BY updated_at`) instead of created_at: a modify "
        "moves a message to the newest end of its thread's listing.",
        ("MM-SEQ-04",),
        CORRECT,
        (Middleware(ListingByLastWrite),),
    ),
    Variant(
        "thread_delete_keeps_messages",
        "deleteThread removes the thread row only and the message routes never load the thread: its messages stay "
        "readable and writable through the deleted thread's id.",
        ("MM-SEQ-03", "MM-ERR-05"),
        CORRECT,
        (Middleware(ThreadDeleteKeepsMessages),),
    ),
    Variant(
        "get_or_create_on_modify",
        "The modify handler loads the message with get-or-create and answers 404 when it was created, without "
        "rolling back: a modify of an unknown id leaves a new message in the thread.",
        ("MM-SEQ-02",),
        CORRECT,
        (Middleware(GetOrCreateOnModify),),
    ),
)
