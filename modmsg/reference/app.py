"""The reference server: an in-memory Assistants v2 threads + messages API as a Starlette app.

This module holds the endpoints, the routing and the factory; the pieces they use live beside it: ``errors``
(error values and wording), ``render`` (envelope and success bodies), ``parsing`` (request bodies), ``metadata``
(limits and merge), ``payloads`` (create/modify bodies), ``listing`` (listMessages paging), ``gate`` (rate limit,
auth, OpenAI-Beta, response headers), ``store`` (state) and ``behaviour`` (the knobs of the variants).

With ``Behaviour()`` it implements the ``openai`` profile exactly (behaviour.md §6). The order of checks
for every request is: rate limit (only if configured), authentication (401), ``OpenAI-Beta`` (400, only on
the ``/v1/threads...`` paths), route (404 ``unknown_url``) and method (405), thread (404), message (404),
query or body (400). A whole request is validated before anything changes.

Decisions where §6 is silent (documented here and in the project's tests):

* ``after``/``before`` cursors that name no message of the listed page (unknown, deleted, other thread,
  or filtered out by ``run_id``) give 200 with an empty page, never 400; an empty cursor is ignored.
* ``before`` alone returns the ``limit`` messages immediately preceding the cursor (the previous page), in
  the requested order; ``has_more`` says whether more lie beyond them. With ``after`` and ``before``
  together, the messages strictly between the two are paged from ``after``.
* A known path with an unsupported method gives 405 ``method_not_allowed`` with an ``Allow`` header, after
  the auth and ``OpenAI-Beta`` checks; an unknown path gives 404 ``unknown_url`` after the auth check only.
* A body sent with a ``Content-Type`` that is not JSON (``text/plain``, form, multipart) gets the JSON parse
  error; a missing ``Content-Type`` is tolerated. Invalid UTF-8, ``NaN``/``Infinity`` and lone surrogate
  escapes (``"\\ud800"``) are parse errors too.
* Metadata checks run in this order: type of ``metadata``, number of keys, then per key (in body order):
  key length, value type, value length; unknown body keys are reported before any metadata error.
* 429 bodies use type ``requests`` and code ``rate_limit_exceeded`` (as OpenAI did); the last-resort 500 uses
  type ``server_error``. Every other error has type ``invalid_request_error``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from modmsg.reference.behaviour import DEFAULT_BEHAVIOUR, Behaviour
from modmsg.reference.errors import (
    ApiError,
    RequestFailed,
    message_not_found,
    method_not_allowed,
    missing_parameter,
    server_error,
    thread_not_found,
    unknown_url,
)
from modmsg.reference.gate import Gate, Guard
from modmsg.reference.listing import page, parse_list_query
from modmsg.reference.metadata import is_edge_metadata, merge, new_metadata, read_patch
from modmsg.reference.parsing import first_unknown, json_object_body, reject_unknown
from modmsg.reference.payloads import (
    MODIFY_THREAD_KEYS,
    THREAD_KEYS,
    new_message,
    require_array,
    require_object,
    tool_resources,
)
from modmsg.reference.render import ErrorRenderer, message_json, thread_json
from modmsg.reference.store import Message, NewMessage, Store, Thread, new_id, uuid_id

Endpoint = Callable[[Request], Awaitable[Response]]


# --------------------------------------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------------------------------------


def _other_field_changed(message: Message, behaviour: Behaviour) -> Message:
    changed = behaviour.changed_field
    if changed == "created_at":
        return replace(message, created_at=message.created_at + 1)
    if changed == "status":
        return replace(message, status="in_progress")
    if changed == "role":
        return replace(message, role="assistant" if message.role == "user" else "user")
    if changed == "content":
        extra = {"type": "text", "text": {"value": "", "annotations": []}}
        return replace(message, content=(*message.content, extra))
    return replace(message, assistant_id=new_id("asst"))


@dataclass(frozen=True)
class Api:
    """The endpoint handlers, bound to one store and one behaviour."""

    store: Store
    behaviour: Behaviour

    # --- lookups (404s) ---

    def thread(self, thread_id: str) -> Thread:
        thread = self.store.get_thread(thread_id)
        if thread is None:
            raise RequestFailed(thread_not_found(thread_id, self.behaviour))
        return thread

    def message(self, thread_id: str, message_id: str) -> Message:
        if self.behaviour.check_thread_exists:
            self.thread(thread_id)
        any_thread = not self.behaviour.check_message_thread
        message = self.store.get_message(thread_id, message_id, any_thread=any_thread)
        if message is None:
            raise RequestFailed(message_not_found(message_id, self.behaviour))
        return message

    def json(self, data: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(data, status_code=status)

    # --- threads ---

    async def create_thread(self, request: Request) -> Response:
        behaviour = self.behaviour
        body = await json_object_body(request, behaviour, empty_is_object=True)
        reject_unknown(body, THREAD_KEYS, "", behaviour)
        messages: list[NewMessage] = []
        if "messages" in body:
            for index, item in enumerate(require_array(body["messages"], "messages")):
                param = f"messages[{index}]"
                messages.append(new_message(require_object(item, param), param + ".", behaviour))
        resources = tool_resources(body.get("tool_resources", {}), behaviour, creating=True)
        metadata = new_metadata(body.get("metadata"), "metadata", behaviour)
        thread = self.store.create_thread(metadata=metadata, tool_resources=resources, messages=messages)
        return self.json(thread_json(thread, behaviour))

    async def get_thread(self, request: Request) -> Response:
        return self.json(thread_json(self.thread(request.path_params["thread_id"]), self.behaviour))

    async def modify_thread(self, request: Request) -> Response:
        behaviour = self.behaviour
        thread_id = request.path_params["thread_id"]
        self.thread(thread_id)
        empty_ok = behaviour.empty_body_is_empty_object
        body = await json_object_body(request, behaviour, empty_is_object=empty_ok)
        reject_unknown(body, MODIFY_THREAD_KEYS, "", behaviour)
        patch, error = read_patch(body, behaviour)
        if error is not None:
            raise RequestFailed(error)
        resources = None
        if "tool_resources" in body:
            resources = tool_resources(body["tool_resources"], behaviour, creating=False)

        def change(current: Thread) -> Thread:
            metadata, merge_error = merge(current.metadata, patch, behaviour)
            if merge_error is not None:
                raise RequestFailed(merge_error)
            updated = replace(current, metadata=metadata)
            return replace(updated, tool_resources=resources) if "tool_resources" in body else updated

        thread = self.store.update_thread(thread_id, change)
        if thread is None:
            raise RequestFailed(thread_not_found(thread_id, behaviour))
        return self.json(thread_json(thread, behaviour))

    async def delete_thread(self, request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        if not self.store.delete_thread(thread_id):
            raise RequestFailed(thread_not_found(thread_id, self.behaviour))
        return self.json({"id": thread_id, "object": "thread.deleted", "deleted": True})

    # --- messages ---

    async def create_message(self, request: Request) -> Response:
        behaviour = self.behaviour
        thread_id = request.path_params["thread_id"]
        self.thread(thread_id)
        body = await json_object_body(request, behaviour, empty_is_object=False)
        message = self.store.create_message(thread_id, new_message(body, "", behaviour))
        if message is None:
            raise RequestFailed(thread_not_found(thread_id, behaviour))
        return self.json(message_json(message, behaviour))

    async def list_messages(self, request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        messages = self.store.list_messages(thread_id)
        if messages is None:
            raise RequestFailed(thread_not_found(thread_id, self.behaviour))
        query = parse_list_query(request.query_params)
        data, has_more = page(messages, query)
        return self.json(
            {
                "object": "list",
                "data": [message_json(message, self.behaviour) for message in data],
                "first_id": data[0].id if data else None,
                "last_id": data[-1].id if data else None,
                "has_more": has_more,
            }
        )

    async def get_message(self, request: Request) -> Response:
        message = self.message(request.path_params["thread_id"], request.path_params["message_id"])
        return self.json(message_json(message, self.behaviour))

    async def modify_message(self, request: Request) -> Response:
        behaviour = self.behaviour
        thread_id, message_id = request.path_params["thread_id"], request.path_params["message_id"]
        self.message(thread_id, message_id)
        empty_ok = behaviour.empty_body_is_empty_object
        body = await json_object_body(request, behaviour, empty_is_object=empty_ok)
        unknown = first_unknown(body, frozenset({"metadata"}), "", behaviour)
        missing = missing_parameter("metadata") if behaviour.require_metadata and "metadata" not in body else None
        patch, metadata_error = read_patch(body, behaviour)
        error = unknown or missing or metadata_error
        if error is not None and behaviour.validate_before_write:
            raise RequestFailed(error)
        if behaviour.server_error_on_edge and is_edge_metadata(body):
            raise RequestFailed(server_error())

        def change(current: Message) -> tuple[Message, tuple[ApiError | None, Message]]:
            metadata, merge_error = merge(current.metadata, patch, behaviour)
            if merge_error is not None and behaviour.validate_before_write:
                raise RequestFailed(merge_error)
            updated = replace(current, metadata=metadata)
            if behaviour.modify_changes_other_fields:
                updated = _other_field_changed(updated, behaviour)
            return updated, (merge_error, current)

        options = {"any_thread": not behaviour.check_message_thread, "persist": behaviour.persist_modify}
        if behaviour.racy_modify:
            racy = self.store.update_message_racy
            result = await run_in_threadpool(lambda: racy(thread_id, message_id, change, **options))
        else:
            result = self.store.update_message(thread_id, message_id, change, **options)
        if result is None:
            raise RequestFailed(message_not_found(message_id, behaviour))
        updated, (merge_error, previous) = result
        failure = error or merge_error
        if failure is not None:
            raise RequestFailed(failure)
        data = message_json(previous if behaviour.modify_returns_previous else updated, behaviour)
        if not behaviour.id_echo_correct:
            data.update(id=new_id("msg"), thread_id=new_id("thread"))
        return self.json(data, behaviour.modify_success_status)

    async def delete_message(self, request: Request) -> Response:
        thread_id, message_id = request.path_params["thread_id"], request.path_params["message_id"]
        self.message(thread_id, message_id)
        if not self.behaviour.deleted_message_visible:
            deleted = self.store.delete_message(
                thread_id, message_id, any_thread=not self.behaviour.check_message_thread
            )
            if deleted is None:
                raise RequestFailed(message_not_found(message_id, self.behaviour))
        return self.json({"id": message_id, "object": "thread.message.deleted", "deleted": True})


# --------------------------------------------------------------------------------------------------------
# Routing and the factory
# --------------------------------------------------------------------------------------------------------

_METHOD_ORDER = ("GET", "HEAD", "POST", "DELETE")


class ByMethod:
    """ASGI app for one path that dispatches on the method (HEAD follows GET); any other method is 405.

    A plain ASGI app (not a function endpoint) so that Starlette's ``Route`` matches every method and the
    405 envelope, with its ``Allow`` header, is ours.
    """

    def __init__(self, handlers: Mapping[str, Endpoint]) -> None:
        self._handlers = dict(handlers)
        methods = set(handlers) | ({"HEAD"} if "GET" in handlers else set())
        self._allowed = [method for method in _METHOD_ORDER if method in methods]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        handler = self._handlers.get("GET" if method == "HEAD" else method)
        if handler is None:
            raise RequestFailed(method_not_allowed(method, scope["path"], self._allowed))
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)


def routes(api: Api) -> list[Route]:
    return [
        Route("/v1/threads", ByMethod({"POST": api.create_thread})),
        Route(
            "/v1/threads/{thread_id}",
            ByMethod({"GET": api.get_thread, "POST": api.modify_thread, "DELETE": api.delete_thread}),
        ),
        Route(
            "/v1/threads/{thread_id}/messages",
            ByMethod({"GET": api.list_messages, "POST": api.create_message}),
        ),
        Route(
            "/v1/threads/{thread_id}/messages/{message_id}",
            ByMethod({"GET": api.get_message, "POST": api.modify_message, "DELETE": api.delete_message}),
        ),
    ]


def create_app(
    api_key: str,
    behaviour: Behaviour = DEFAULT_BEHAVIOUR,
    *,
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """A fresh reference server app with its own empty store (``app.state.store``).

    ``middleware`` (e.g. a variant's response rewriter) wraps everything else, outside the middleware that
    adds ``x-request-id`` and the last-resort 500, so what it changes reaches the client unchanged.
    """
    if not api_key:
        raise ValueError("the reference server needs a non-empty API key")
    if behaviour.rate_limit is not None and behaviour.rate_limit <= 0:
        raise ValueError("Behaviour.rate_limit must be a positive number of requests per second, or None")
    store = Store(id_factory=uuid_id if behaviour.id_format == "uuid" else new_id)
    renderer = ErrorRenderer(behaviour)

    async def on_failed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestFailed)
        return renderer.response(exc.error, request.scope)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            error = unknown_url(request.method, request.scope["path"])
        else:
            error = ApiError(status=exc.status_code, message=str(exc.detail))
        return renderer.response(error, request.scope)

    app = Starlette(
        routes=routes(Api(store, behaviour)),
        middleware=[
            *middleware,
            Middleware(Guard, behaviour=behaviour, renderer=renderer),
            Middleware(Gate, api_key=api_key, behaviour=behaviour, renderer=renderer),
        ],
        exception_handlers={RequestFailed: on_failed, HTTPException: on_http},
    )
    app.router.redirect_slashes = False
    app.state.store = store
    app.state.behaviour = behaviour
    return app
