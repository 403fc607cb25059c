"""Reading request bodies: size cap, Content-Type, strict JSON (no NaN, no lone surrogates), unknown keys."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from modmsg.reference.behaviour import Behaviour
from modmsg.reference.errors import (
    ApiError,
    RequestFailed,
    bad_request,
    describe,
    parse_error,
    server_error,
    unknown_parameter,
)

JsonObject = dict[str, Any]


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _has_lone_surrogate(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def parse_json(raw: bytes, behaviour: Behaviour) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, no lone surrogates; anything else is the parse error."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise RequestFailed(parse_error(behaviour)) from None
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        raise RequestFailed(parse_error(behaviour))
    return value


async def read_body(request: Request, behaviour: Behaviour) -> bytes:
    too_large = ApiError(
        status=413,
        message=f"Request body too large: the limit is {behaviour.max_body_bytes} bytes.",
        code="request_too_large",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > behaviour.max_body_bytes:
        raise RequestFailed(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > behaviour.max_body_bytes:
            raise RequestFailed(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object_body(request: Request, behaviour: Behaviour, *, empty_is_object: bool) -> JsonObject:
    """The request body as a JSON object; an empty body is ``{}`` only when ``empty_is_object``."""
    raw = await read_body(request, behaviour)
    if not raw.strip():
        if empty_is_object:
            return {}
        raise RequestFailed(parse_error(behaviour))
    content_type = request.headers.get("content-type")
    if behaviour.require_json_content_type and content_type and not _is_json_media_type(content_type):
        raise RequestFailed(parse_error(behaviour))
    value = parse_json(raw, behaviour)
    if not isinstance(value, dict) and behaviour.non_object_body_crashes:
        raise RequestFailed(server_error())
    if not isinstance(value, dict):
        raise RequestFailed(
            bad_request(
                f"Invalid type for request body: expected an object, but got {describe(value)} instead.",
                code="invalid_type",
            )
        )
    return value


def reject_unknown(body: Mapping[str, Any], allowed: frozenset[str], prefix: str, behaviour: Behaviour) -> None:
    error = first_unknown(body, allowed, prefix, behaviour)
    if error is not None:
        raise RequestFailed(error)


def first_unknown(
    body: Mapping[str, Any], allowed: frozenset[str], prefix: str, behaviour: Behaviour
) -> ApiError | None:
    if not behaviour.reject_unknown_fields:
        return None
    for key in body:
        if key not in allowed:
            return unknown_parameter(prefix + key)
    return None
