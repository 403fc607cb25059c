"""Deliberately broken variants of the reference server: one realistic defect each, named after the defect.

A variant is the reference server with one defect switched on: a ``Behaviour`` with a knob flipped, or (for
defects that live in front of an application, in a gateway or framework) an ASGI middleware that rewrites
what the correct server does. Each names the requirements its defect ``breaks``: the conformance suite must
FAIL every one of them, deterministically, and must not ERROR (``tests/test_variants.py`` proves both;
``make mutation`` scores them). Pattern: Schemathesis' ``test/apps/.../modifiers``.

``modmsg serve --variant NAME`` and the tests start a variant through the same ``Variant.start``.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modmsg.reference import DEFAULT_BEHAVIOUR, Behaviour, ReferenceServer, start_server

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
_RATE_LIMIT_BODY = json.dumps(
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


def _list_without_metadata(scope: Scope, reply: Reply) -> Reply:
    body = reply.json()
    if scope["method"] != "GET" or not _LIST_PATH.fullmatch(scope["path"]) or not isinstance(body, dict):
        return reply
    items = body.get("data")
    if not isinstance(items, list):
        return reply
    return reply.with_json({**body, "data": [{**item, "metadata": {}} for item in items]})


def _delete_as_204(scope: Scope, reply: Reply) -> Reply:
    if scope["method"] != "DELETE" or reply.status != 200:
        return reply
    headers = tuple((key, value) for key, value in reply.headers if key.lower() != b"content-type")
    return Reply(204, headers, b"")


def _html_400_page(scope: Scope, reply: Reply) -> Reply:
    if reply.status != 400:
        return reply
    page = b"<html><head><title>400 Bad Request</title></head><body><h1>Bad Request</h1></body></html>"
    return reply.with_body(page, content_type=b"text/html; charset=utf-8")


def _html_404_page(scope: Scope, reply: Reply) -> Reply:
    if reply.status != 404:
        return reply
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n'
        f"<body>\n<pre>Cannot {scope['method']} {html.escape(scope['path'])}</pre>\n</body>\n</html>\n"
    )
    return reply.with_body(page.encode(), content_type=b"text/html; charset=utf-8")


def _error_code_is_status(scope: Scope, reply: Reply) -> Reply:
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


# ---------------------------------------------------------------------------------------------------------
# The variants
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """The reference server with one defect: ``behaviour`` knobs and/or ``middleware`` in front of it.

    ``breaks`` is the exact set of requirements the defect breaks directly: each judges a response the defect
    shapes, so the suite FAILs every one of them on every run. Requirements that merely stand on one of them are
    BLOCKED, never FAIL. ``generated`` names requirements the same defect breaks only when generated input
    (Hypothesis or Schemathesis, seed-dependent) happens to reach it: they may FAIL, and need not.
    """

    name: str
    doc: str
    breaks: tuple[str, ...]
    behaviour: Behaviour
    middleware: tuple[Middleware, ...] = ()
    generated: tuple[str, ...] = ()

    def start(self, api_key: str, host: str = "127.0.0.1", port: int = 0) -> ReferenceServer:
        """Start this variant on loopback in a background thread (``port=0``: a free port)."""
        return start_server(api_key, self.behaviour, host, port, middleware=self.middleware)


def knobs(**changes: Any) -> Behaviour:
    """The correct behaviour with ``changes`` applied."""
    return replace(DEFAULT_BEHAVIOUR, **changes)


CORRECT = DEFAULT_BEHAVIOUR
GENERATED_ACCEPT = ("MM-GEN-01",)
GENERATED_REJECT = ("MM-GEN-02",)

VARIANTS: tuple[Variant, ...] = (
    # ------------------------------------------------------------------------------- limits (META-05..08, 18)
    Variant(
        "accepts_17_keys",
        "Off-by-one key limit (`> 17` instead of `> 16`): a 17-key metadata object is stored, and so is a merge "
        "that leaves 17 keys (MM-META-11).",
        ("MM-META-06", "MM-META-11"),
        knobs(max_keys=17),
        generated=GENERATED_REJECT,
    ),
    Variant(
        "accepts_65_character_key",
        "Key length checked with `> 65`: a 65-character key is stored, in any script (MM-META-18); the generated "
        "coverage cases send one too (MM-GEN-02), and a stored 65-character key echoed in a 200 breaks the "
        "documented response schema whenever a generated case gets one accepted (MM-GEN-03).",
        ("MM-META-07", "MM-META-18", "MM-GEN-02"),
        knobs(max_key_length=65),
        generated=("MM-GEN-03",),
    ),
    Variant(
        "accepts_513_character_value",
        "Value length checked with `> 513`: a 513-character value is stored, in any script (MM-META-18).",
        ("MM-META-08", "MM-META-18"),
        knobs(max_value_length=513),
        generated=GENERATED_REJECT,
    ),
    Variant(
        "rejects_512_character_value",
        "Value length checked with `>= 512`: a value of exactly 512 characters gets 400, in any script "
        "(MM-META-18); so does generated valid metadata that reaches 512 (MM-RESP-01, MM-GEN-01).",
        ("MM-META-05", "MM-META-18"),
        knobs(max_value_length=511),
        generated=("MM-RESP-01", "MM-GEN-01"),
    ),
    Variant(
        "counts_bytes_not_code_points",
        "Lengths measured in UTF-8 bytes (`len(s.encode())`): 64 'é' or 512 '€' are rejected; generated valid "
        "metadata with such strings gets 400 too (MM-RESP-01, MM-GEN-01).",
        ("MM-META-18",),
        knobs(length_unit="bytes"),
        generated=("MM-RESP-01", "MM-GEN-01"),
    ),
    # ------------------------------------------------------------------------------- value types (META-09, 10)
    Variant(
        "coerces_non_string_values",
        'Non-string metadata values are stored as their JSON text (`2` becomes `"2"`) instead of rejected.',
        ("MM-META-09",),
        knobs(coerce_non_string_values=True),
        generated=GENERATED_REJECT,
    ),
    Variant(
        "null_value_deletes_key",
        "JSON Merge Patch semantics (RFC 7396): a null metadata value deletes the key instead of getting 400.",
        ("MM-META-09",),
        knobs(delete_marker="null"),
        generated=GENERATED_REJECT,
    ),
    Variant(
        "ignores_non_object_metadata",
        "`metadata` that is a string, number, boolean or array is silently ignored (200) instead of rejected; "
        "the generated coverage cases send such bodies too (MM-GEN-02).",
        ("MM-META-10", "MM-GEN-02"),
        knobs(ignore_non_object_metadata=True),
    ),
    # ------------------------------------------------------------------------------- semantics and state
    Variant(
        "replaces_instead_of_merging",
        'The sent metadata replaces the stored map instead of being merged into it, so `{"metadata": {}}` '
        "empties it (MM-META-17); the merged-total and concurrency tests are BLOCKED by MM-META-04.",
        ("MM-META-04", "MM-META-17"),
        knobs(metadata_mode="replace"),
    ),
    Variant(
        "empty_string_deletes_key",
        'Stripe-style semantics: a pair whose value is "" deletes the key instead of storing "", so it is missing '
        "from the answer, the GET and the list.",
        ("MM-META-01", "MM-META-02", "MM-META-03"),
        knobs(delete_marker="empty_string"),
        generated=GENERATED_ACCEPT,
    ),
    Variant(
        "counts_only_sent_keys_toward_limit",
        "The 16-key limit is checked on the request alone, so a merge may grow the message past 16 keys.",
        ("MM-META-11",),
        knobs(merged_total_limit=False),
    ),
    Variant(
        "counts_overwritten_keys_twice",
        "The merged total is stored + sent keys without de-duplication: overwriting all 16 keys of a full message "
        "gets 400.",
        ("MM-META-05",),
        knobs(merged_limit_counts_overwrites=True),
        generated=GENERATED_ACCEPT,
    ),
    Variant(
        "partial_write_on_rejection",
        "Pairs are written as they are validated: the valid ones before the bad one stay stored after the 400, "
        "beside an unknown body key too (MM-REQ-01: rejected and not applied).",
        ("MM-META-12", "MM-REQ-01"),
        knobs(validate_before_write=False),
        generated=GENERATED_REJECT,
    ),
    Variant(
        "requires_metadata_key",
        "The request schema makes `metadata` required, so a modify with body `{}` gets 400; the generated "
        "coverage cases send `{}` too (MM-GEN-01).",
        ("MM-META-13", "MM-GEN-01"),
        knobs(require_metadata=True),
    ),
    Variant(
        "null_metadata_clears",
        '`{"metadata": null}` wipes the stored metadata instead of leaving it unchanged.',
        ("MM-META-14",),
        knobs(null_metadata="clear"),
    ),
    Variant(
        "rejects_null_metadata",
        '`{"metadata": null}`, which the schema allows, gets 400; the generated coverage cases send it too '
        "(MM-GEN-01).",
        ("MM-META-14", "MM-GEN-01"),
        knobs(null_metadata="error"),
    ),
    Variant(
        "modify_not_persisted",
        "The modify response shows the change, but the store keeps the old metadata: GET and list show the old "
        "pairs; everything judged on stored state is BLOCKED by MM-META-02.",
        ("MM-META-02", "MM-META-03"),
        knobs(persist_modify=False),
    ),
    Variant(
        "returns_message_before_modify",
        "The response is the row read before the UPDATE: the change is stored but not shown, to handwritten and "
        "generated modifies alike (MM-GEN-01).",
        ("MM-META-01", "MM-GEN-01"),
        knobs(modify_returns_previous=True),
    ),
    Variant(
        "repeated_pair_toggles",
        "A sent pair whose key already holds that value removes the key (a tag UI's toggle), so the same modify "
        "sent twice leaves the message without the pairs it sent.",
        ("MM-META-15",),
        knobs(repeated_pair_toggles=True),
        generated=GENERATED_ACCEPT,
    ),
    Variant(
        "loses_concurrent_updates",
        "Read-modify-write without a lock: concurrent modifies of distinct keys overwrite each other.",
        ("MM-META-16",),
        knobs(racy_modify=True),
    ),
    Variant(
        "list_shows_no_metadata",
        "listMessages returns summary items whose metadata is always `{}`.",
        ("MM-META-03",),
        CORRECT,
        rewrite(_list_without_metadata),
    ),
    Variant(
        "stale_read_cache",
        f"A read-through message cache that a modify does not invalidate (a Redis cache in front of the store): "
        f"the next {STALE_READS} reads after a modify (getMessage, or listMessages) serve the copy from before it.",
        ("MM-META-02", "MM-META-03"),
        CORRECT,
        (Middleware(StaleReadCache, stale_reads=STALE_READS),),
    ),
    Variant(
        "strips_metadata_values",
        "Values are whitespace-trimmed before they are stored.",
        ("MM-META-01", "MM-META-02", "MM-META-03"),
        knobs(value_transform="strip"),
        generated=GENERATED_ACCEPT,
    ),
    Variant(
        "normalizes_values_to_nfc",
        "Values are Unicode-normalised (NFC) before they are stored, so a decomposed 'é' comes back composed.",
        ("MM-META-01", "MM-META-02", "MM-META-03"),
        knobs(value_transform="nfc"),
        generated=GENERATED_ACCEPT,
    ),
    Variant(
        "lowercases_metadata_keys",
        "Keys are case-folded before they are stored (a case-insensitive column).",
        ("MM-META-01", "MM-META-02", "MM-META-03"),
        knobs(key_transform="casefold"),
        generated=GENERATED_ACCEPT,
    ),
    # ------------------------------------------------------------------------------- the success response
    Variant(
        "drops_null_fields",
        "Null-valued fields (`assistant_id`, `run_id`, ...) are omitted instead of sent as null, by modify, the "
        "sibling calls (MM-RESP-09) and for generated modifies (MM-GEN-01, MM-GEN-03) alike.",
        ("MM-RESP-02", "MM-RESP-03", "MM-RESP-09", "MM-GEN-01", "MM-GEN-03"),
        knobs(drop_null_fields=True),
    ),
    Variant(
        "wrong_object_name",
        'Messages carry `"object": "message"` instead of "thread.message", in every answer: modify, the sibling '
        "calls (MM-RESP-09) and generated modifies (MM-GEN-01, MM-GEN-03).",
        ("MM-RESP-02", "MM-RESP-04", "MM-RESP-09", "MM-GEN-01", "MM-GEN-03"),
        knobs(object_name="message"),
    ),
    Variant(
        "millisecond_timestamps",
        "`created_at` is in milliseconds (JavaScript `Date.now()`).",
        ("MM-RESP-06",),
        knobs(timestamp_unit="ms"),
    ),
    Variant(
        "new_id_on_modify",
        "A modify writes a new message version and answers with its new `id` and `thread_id`.",
        ("MM-RESP-05", "MM-RESP-07"),
        knobs(id_echo_correct=False),
    ),
    Variant(
        "modify_bumps_created_at",
        "An ORM `auto_now` on save: every modify also moves `created_at`.",
        ("MM-RESP-07",),
        knobs(modify_changes_other_fields=True, changed_field="created_at"),
    ),
    Variant(
        "uuid_ids",
        "Ids are `msg_`/`thread_` plus a UUID4's 32 hex digits, not OpenAI's 24 alphanumerics.",
        ("MM-RESP-08",),
        knobs(id_format="uuid"),
    ),
    Variant(
        "returns_201_on_modify",
        "A successful modify answers 201 Created instead of 200 (a REST framework's default for POST): generated "
        "valid modifies get it too (MM-GEN-01), and 201 is not documented (MM-GEN-03); every test that stands on "
        "a successful modify is BLOCKED by MM-RESP-01.",
        ("MM-RESP-01", "MM-GEN-01", "MM-GEN-03"),
        knobs(modify_success_status=201),
    ),
    Variant(
        "delete_returns_204",
        "DELETE of a message or thread answers 204 No Content instead of the deletion object.",
        ("MM-RESP-09",),
        CORRECT,
        rewrite(_delete_as_204),
    ),
    # ------------------------------------------------------------------------------- requests
    Variant(
        "ignores_unknown_body_fields",
        "Unknown body keys (`content`, `role`, ...) are silently ignored instead of rejected; the generated "
        "coverage cases send some too (MM-GEN-02).",
        ("MM-REQ-01", "MM-GEN-02"),
        knobs(reject_unknown_fields=False),
    ),
    Variant(
        "malformed_json_gets_422",
        "A body that is not JSON, or no body, gets 422 (FastAPI's default) instead of 400; generated malformed "
        "bodies too (MM-GEN-02), and 422 is not documented (MM-GEN-03).",
        ("MM-REQ-02", "MM-REQ-03", "MM-GEN-02", "MM-GEN-03"),
        knobs(invalid_json_status=422),
    ),
    Variant(
        "empty_body_treated_as_empty_object",
        "A modify with no body at all is treated as `{}` and answered 200; a generated coverage case sends no "
        "body too (MM-GEN-02).",
        ("MM-REQ-03", "MM-GEN-02"),
        knobs(empty_body_is_empty_object=True),
    ),
    Variant(
        "parses_any_content_type_as_json",
        "A handler that parses the body as JSON whatever its Content-Type (Starlette/FastAPI "
        "`json.loads(await request.body())`, Express `express.text({type: '*/*'})` + `JSON.parse`): a JSON body "
        "sent as `text/plain` or as a form is applied.",
        ("MM-REQ-09",),
        knobs(require_json_content_type=False),
    ),
    Variant(
        "non_object_body_crashes",
        "`body.get('metadata')` on a JSON array or string: a non-object body gets 500 instead of 400; a generated "
        "one too, which is neither a 4xx (MM-GEN-02) nor documented (MM-GEN-03).",
        ("MM-REQ-04", "MM-ERR-08"),
        knobs(non_object_body_crashes=True),
        generated=("MM-GEN-02", "MM-GEN-03"),
    ),
    Variant(
        "ignores_openai_beta_header",
        "The `OpenAI-Beta: assistants=v2` header is not required.",
        ("MM-REQ-05",),
        knobs(require_beta_header=False),
    ),
    Variant(
        "accepts_any_api_key",
        "Only the presence of a bearer token is checked, not its value.",
        ("MM-REQ-07",),
        knobs(accept_any_key=True),
    ),
    Variant(
        "answers_403_for_bad_credentials",
        "A missing or wrong API key gets 403 Forbidden instead of 401.",
        ("MM-REQ-06", "MM-REQ-07"),
        knobs(auth_status=403),
    ),
    Variant(
        "accepts_put_and_patch",
        "A router that maps PUT and PATCH to the modify handler as well; the generated coverage cases try both "
        "(MM-GEN-02).",
        ("MM-REQ-08", "MM-GEN-02"),
        CORRECT,
        (Middleware(OverrideMethod, methods=frozenset({"PUT", "PATCH"}), to="POST"),),
    ),
    # ------------------------------------------------------------------------------- not found
    Variant(
        "ignores_thread_id_in_path",
        "The message is looked up by its id alone: any thread id in the path, even an unknown one, works.",
        ("MM-ERR-01", "MM-ERR-03"),
        knobs(check_thread_exists=False, check_message_thread=False),
    ),
    Variant(
        "finds_message_through_any_thread",
        "Cross-thread access: the thread must exist, but the message need not belong to it.",
        ("MM-ERR-03",),
        knobs(check_message_thread=False),
    ),
    Variant(
        "answers_400_for_unknown_ids",
        "Unknown threads and messages get 400 instead of 404.",
        ("MM-ERR-01", "MM-ERR-02", "MM-ERR-03", "MM-ERR-04", "MM-ERR-05"),
        knobs(not_found_status=400),
    ),
    Variant(
        "deleted_message_still_modifiable",
        "Soft delete: DELETE answers `deleted: true` but the message stays readable and modifiable.",
        ("MM-ERR-04",),
        knobs(deleted_message_visible=True),
    ),
    Variant(
        "thread_delete_never_applied",
        "Deferred delete: DELETE of a thread is acknowledged, but the thread and its messages stay live.",
        ("MM-ERR-05",),
        CORRECT,
        (Middleware(DeferredThreadDelete),),
    ),
    # ------------------------------------------------------------------------------- error bodies
    Variant(
        "errors_in_status_failure_envelope",
        'Errors in a gateway\'s own envelope `{"status": "failure", "message": ...}` (the Portkey gateway\'s), for '
        "generated requests too (MM-GEN-02, MM-GEN-03); the error codes are BLOCKED by MM-ERR-06.",
        ("MM-ERR-06", "MM-GEN-02", "MM-GEN-03"),
        knobs(error_envelope="status_failure"),
    ),
    Variant(
        "errors_in_detail_envelope",
        'Errors in FastAPI\'s envelope `{"detail": ...}`, for generated requests too (MM-GEN-02, MM-GEN-03); '
        "the error codes are BLOCKED by MM-ERR-06.",
        ("MM-ERR-06", "MM-GEN-02", "MM-GEN-03"),
        knobs(error_envelope="detail"),
    ),
    Variant(
        "error_code_is_http_status",
        'The envelope\'s `code` is the HTTP status as an integer (`"code": 400`), not a string or null, for '
        "generated requests too (MM-GEN-02, MM-GEN-03).",
        ("MM-ERR-06", "MM-GEN-02", "MM-GEN-03"),
        CORRECT,
        rewrite(_error_code_is_status),
    ),
    Variant(
        "error_codes_always_null",
        "Every error has `code` and `param` null, so clients cannot tell the causes apart.",
        ("MM-ERR-07",),
        knobs(error_codes=False),
    ),
    Variant(
        "crashes_on_edge_metadata",
        "An empty key or an astral character in metadata crashes the handler with 500, so valid modifies carrying "
        "them fail (MM-RESP-01), astral characters at the limits too (MM-META-18); generated bodies with them get "
        "the 500 as well (MM-GEN-01, MM-GEN-02, MM-GEN-03).",
        ("MM-RESP-01", "MM-META-18", "MM-ERR-08"),
        knobs(server_error_on_edge=True),
        generated=("MM-GEN-01", "MM-GEN-02", "MM-GEN-03"),
    ),
    Variant(
        "drops_connection_on_lone_surrogate",
        'A worker whose strict UTF-8 encoder dies on a lone surrogate (`"\\ud800"` in a modify body): the '
        "connection is closed without an answer, while every other request is answered.",
        ("MM-ERR-08",),
        CORRECT,
        (Middleware(DropOnLoneSurrogate),),
    ),
    Variant(
        "echoes_api_key_in_errors",
        "Error messages quote the full API key the request carried.",
        ("MM-ERR-09",),
        knobs(echo_api_key_in_errors=True),
    ),
    # ------------------------------------------------------------------------------- headers
    Variant(
        "json_labelled_text_plain",
        "Every response is labelled `text/plain; charset=utf-8` although the body is JSON, generated ones too "
        "(MM-GEN-01, MM-GEN-03).",
        ("MM-HDR-01", "MM-HDR-02", "MM-GEN-01", "MM-GEN-03"),
        knobs(json_content_type=False),
    ),
    Variant(
        "html_error_page_for_400",
        "A proxy replaces every 400 with its own HTML error page, generated requests' too (MM-GEN-02, "
        "MM-GEN-03); the error codes are BLOCKED by MM-ERR-06.",
        ("MM-HDR-02", "MM-ERR-06", "MM-GEN-02", "MM-GEN-03"),
        CORRECT,
        rewrite(_html_400_page),
    ),
    Variant(
        "html_404_pages",
        "An Express-style app: an unknown thread or message falls through to the framework's default not-found "
        "page (404, text/html, `Cannot POST /v1/...`); the error codes of 404s are BLOCKED by MM-ERR-06.",
        ("MM-HDR-02", "MM-ERR-06"),
        CORRECT,
        rewrite(_html_404_page),
    ),
    Variant(
        "no_request_id_header",
        "No `x-request-id` header on any response.",
        ("MM-HDR-03",),
        knobs(request_id_header=False),
    ),
    Variant(
        "retry_after_zero",
        f"A rate limiter rounds down: every {RATE_LIMIT_EVERY}th request gets 429 with `Retry-After: 0`.",
        ("MM-HDR-04",),
        CORRECT,
        rate_limited_every(
            RATE_LIMIT_EVERY,
            headers=(("Retry-After", "0"),),
            body=_RATE_LIMIT_BODY,
            content_type="application/json",
        ),
    ),
    Variant(
        "rate_limit_without_envelope",
        f"A gateway's rate limiter answers every {RATE_LIMIT_EVERY}th request 429 with a plain-text body.",
        ("MM-HDR-04",),
        CORRECT,
        rate_limited_every(
            RATE_LIMIT_EVERY,
            headers=(("Retry-After", "1"), ("retry-after-ms", "10")),
            body=b"Too Many Requests",
            content_type="text/plain; charset=utf-8",
        ),
    ),
)


def get_variant(name: str) -> Variant:
    """The variant called ``name``; KeyError (with a hint) if there is none."""
    for variant in VARIANTS:
        if variant.name == name:
            return variant
    raise KeyError(f"unknown variant '{name}'; see `modmsg variants`")
