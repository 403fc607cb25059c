"""Middleware: the gate (rate limit, authentication, OpenAI-Beta) and the guard (response headers, last-resort 500)."""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Mapping, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modmsg.reference.behaviour import Behaviour
from modmsg.reference.errors import (
    BETA_VALUE,
    INVALID_BETA_MESSAGE,
    MISSING_BETA_MESSAGE,
    MISSING_KEY_MESSAGE,
    V1_BETA_MESSAGE,
    ApiError,
    bad_request,
    server_error,
)
from modmsg.reference.render import ErrorRenderer, presented_key

logger = logging.getLogger(__name__)
Header = tuple[bytes, bytes]


_ASSISTANTS_PATH = re.compile(r"/v1/threads(?:/[^/]+(?:/messages(?:/[^/]+)?)?)?")


class TokenBucket:
    """Requests per second with a burst of one second's worth; thread-safe."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def wait_seconds(self) -> float:
        """Take a token and return 0, or return how long until one is available."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self._rate


def rate_limited(wait: float, rate: float, behaviour: Behaviour) -> ApiError:
    retry_after = max(1, math.ceil(wait))
    headers = (("Retry-After", str(retry_after)),) if behaviour.retry_after_header else ()
    return ApiError(
        status=429,
        message=f"Rate limit reached: {rate:g} requests per second. Please try again in {retry_after}s.",
        type="requests",
        code="rate_limit_exceeded",
        headers=headers,
    )


class Gate:
    """Pure ASGI middleware: rate limit, then authentication and OpenAI-Beta in ``check_order``."""

    def __init__(self, app: ASGIApp, *, api_key: str, behaviour: Behaviour, renderer: ErrorRenderer) -> None:
        self.app = app
        self._key = api_key.encode("utf-8")
        self._behaviour = behaviour
        self._renderer = renderer
        self._bucket = TokenBucket(behaviour.rate_limit) if behaviour.rate_limit else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = self._first_error(scope)
        if error is not None:
            await self._renderer.response(error, scope)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _first_error(self, scope: Scope) -> ApiError | None:
        if self._bucket is not None:
            wait = self._bucket.wait_seconds()
            if wait > 0:
                return rate_limited(wait, self._behaviour.rate_limit or 1.0, self._behaviour)
        headers = dict(reversed(scope["headers"]))  # the first occurrence of a header wins
        checks = (self._auth_error, self._beta_error)
        if self._behaviour.check_order == "beta_first":
            checks = (self._beta_error, self._auth_error)
        for check in checks:
            error = check(headers, scope)
            if error is not None:
                return error
        return None

    def _auth_error(self, headers: Mapping[bytes, bytes], scope: Scope) -> ApiError | None:
        behaviour = self._behaviour
        if not behaviour.require_auth:
            return None
        token = presented_key(scope)
        if token is None:
            return ApiError(status=behaviour.auth_status, message=MISSING_KEY_MESSAGE)
        if behaviour.accept_any_key or hmac.compare_digest(token.encode("latin-1"), self._key):
            return None
        shown = token if behaviour.echo_api_key_in_errors else mask_key(token)
        return ApiError(
            status=behaviour.auth_status,
            message=f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    def _beta_error(self, headers: Mapping[bytes, bytes], scope: Scope) -> ApiError | None:
        if not self._behaviour.require_beta_header or not _ASSISTANTS_PATH.fullmatch(scope["path"]):
            return None
        value = headers.get(b"openai-beta")
        if value == BETA_VALUE.encode():
            return None
        if value is None:
            message = MISSING_BETA_MESSAGE
        elif value.strip().lower() == b"assistants=v1":
            message = V1_BETA_MESSAGE
        else:
            message = INVALID_BETA_MESSAGE
        return bad_request(message, code="invalid_beta")


def mask_key(token: str) -> str:
    """At most the first 5 characters, and never more than half of the key, then asterisks."""
    return token[: min(5, len(token) // 2)] + "*" * 8


class Guard:
    """Outermost middleware: ``x-request-id`` and content-type on every response, and a last-resort 500."""

    def __init__(self, app: ASGIApp, *, behaviour: Behaviour, renderer: ErrorRenderer) -> None:
        self.app = app
        self._behaviour = behaviour
        self._renderer = renderer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ("req_" + secrets.token_hex(16)).encode()
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": self._headers(message.get("headers", []), request_id)}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            name = type(exc).__name__
            logger.error("reference server: unhandled %s on %s %s", name, scope["method"], scope["path"])
            if not started:
                response = self._renderer.response(server_error(), scope)
                await response(scope, receive, send_with_headers)

    def _headers(self, headers: Sequence[Header], request_id: bytes) -> list[Header]:
        result = [(name, value) for name, value in headers if name != b"x-request-id"]
        if not self._behaviour.json_content_type:
            result = [(n, b"text/plain; charset=utf-8" if n == b"content-type" else v) for n, v in result]
        if self._behaviour.request_id_header:
            result.append((b"x-request-id", request_id))
        return result
