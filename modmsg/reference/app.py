"""The reference server: an in-memory Assistants v2 threads + messages API as a Starlette app.

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

import hmac
import html
import json
import logging
import math
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from modmsg.reference.behaviour import DEFAULT_BEHAVIOUR, Behaviour, StringTransform
from modmsg.reference.store import Message, NewMessage, Store, Thread, new_id, uuid_id

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
JsonObject = dict[str, Any]
Header = tuple[bytes, bytes]

# --------------------------------------------------------------------------------------------------------
# Error values and their wording (behaviour.md §3 quotes, §6 decisions)
# --------------------------------------------------------------------------------------------------------

BETA_VALUE = "assistants=v2"
PARSE_ERROR_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)
MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)
MISSING_BETA_MESSAGE = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again by setting "
    "the header 'OpenAI-Beta: assistants=v2'."
)
V1_BETA_MESSAGE = (
    "The v1 Assistants API has been deprecated. Please try again by setting the header "
    "'OpenAI-Beta: assistants=v2'. See the migration guide for more information: "
    "https://platform.openai.com/docs/assistants/migration."
)
INVALID_BETA_MESSAGE = (
    "Invalid 'OpenAI-Beta' header. Please try again by setting the header 'OpenAI-Beta: assistants=v2'."
)
SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"


@dataclass(frozen=True, kw_only=True)
class ApiError:
    """One error response: status, the four envelope fields and any extra headers."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class RequestFailed(Exception):
    """Raised anywhere in request handling to answer with ``error``."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(status=400, message=message, param=param, code=code)


def parse_error(behaviour: Behaviour) -> ApiError:
    return ApiError(status=behaviour.invalid_json_status, message=PARSE_ERROR_MESSAGE)


def describe(value: Any) -> str:
    """How OpenAI names a JSON value's type in ``invalid_type`` messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def invalid_type(param: str, expected: str, value: Any) -> ApiError:
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {describe(value)} instead.",
        param=param,
        code="invalid_type",
    )


def invalid_value(param: str, value: str, allowed: Sequence[str]) -> ApiError:
    quoted = [f"'{item}'" for item in allowed]
    listed = " and ".join(quoted) if len(quoted) == 2 else ", ".join(quoted[:-1]) + ", and " + quoted[-1]
    message = f"Invalid value: '{value}'. Supported values are: {listed}."
    return bad_request(message, param=param, code="invalid_value")


def unknown_parameter(param: str) -> ApiError:
    return bad_request(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")


def missing_parameter(param: str) -> ApiError:
    message = f"Missing required parameter: '{param}'."
    return bad_request(message, param=param, code="missing_required_parameter")


def too_many_properties(param: str, limit: int, count: int) -> ApiError:
    return bad_request(
        f"Invalid '{param}': too many properties. Expected an object with at most {limit} properties, "
        f"but got an object with {count} properties instead.",
        param=param,
        code="object_above_max_properties",
    )


def thread_not_found(thread_id: str, behaviour: Behaviour) -> ApiError:
    return ApiError(status=behaviour.not_found_status, message=f"No thread found with id '{thread_id}'.")


def message_not_found(message_id: str, behaviour: Behaviour) -> ApiError:
    return ApiError(status=behaviour.not_found_status, message=f"No message found with id '{message_id}'.")


def unknown_url(method: str, path: str) -> ApiError:
    return ApiError(
        status=404,
        message=f"Unknown request URL: {method} {path}. Please check the URL for typos, or see the docs "
        "at https://platform.openai.com/docs/api-reference/.",
        code="unknown_url",
    )


def method_not_allowed(method: str, path: str, allowed: Sequence[str]) -> ApiError:
    listed = ", ".join(allowed)
    return ApiError(
        status=405,
        message=f"Method not allowed: {method} {path}. Supported methods: {listed}.",
        code="method_not_allowed",
        headers=(("Allow", listed),),
    )


def server_error() -> ApiError:
    return ApiError(status=500, message=SERVER_ERROR_MESSAGE, type="server_error")


# --------------------------------------------------------------------------------------------------------
# Rendering errors (the envelope is a knob) and success bodies
# --------------------------------------------------------------------------------------------------------


def presented_key(scope: Scope) -> str | None:
    """The bearer token of the request, if any (only used by the ``echo_api_key_in_errors`` defect)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            parts = value.split(None, 1)
            if len(parts) == 2 and parts[0].lower() == b"bearer":
                return parts[1].strip().decode("latin-1") or None
            return None
    return None


@dataclass(frozen=True)
class ErrorRenderer:
    behaviour: Behaviour

    def response(self, error: ApiError, scope: Scope) -> Response:
        behaviour = self.behaviour
        message = error.message
        if behaviour.echo_api_key_in_errors:
            key = presented_key(scope)
            if key and key not in message:
                message = f"{message} (API key used: {key})"
        headers = dict(error.headers)
        if behaviour.error_envelope == "html":
            page = f"<html><body><h1>{error.status}</h1><p>{html.escape(message)}</p></body></html>"
            return Response(page, status_code=error.status, headers=headers, media_type="text/html")
        body: dict[str, Any]
        if behaviour.error_envelope == "status_failure":
            body = {"status": "failure", "message": message}
        elif behaviour.error_envelope == "detail":
            body = {"detail": message}
        else:
            codes = behaviour.error_codes
            body = {
                "error": {
                    "message": message,
                    "type": error.type,
                    "param": error.param if codes else None,
                    "code": error.code if codes else None,
                }
            }
        return JSONResponse(body, status_code=error.status, headers=headers)


def timestamp(seconds: int | None, behaviour: Behaviour) -> int | None:
    if seconds is None or behaviour.timestamp_unit == "s":
        return seconds
    return seconds * 1000


def drop_nulls(data: dict[str, Any], behaviour: Behaviour) -> dict[str, Any]:
    if not behaviour.drop_null_fields:
        return data
    return {key: value for key, value in data.items() if value is not None}


def message_json(message: Message, behaviour: Behaviour) -> dict[str, Any]:
    data = {
        "id": message.id,
        "object": behaviour.object_name,
        "created_at": timestamp(message.created_at, behaviour),
        "assistant_id": message.assistant_id,
        "thread_id": message.thread_id,
        "run_id": message.run_id,
        "status": message.status,
        "incomplete_details": None,
        "completed_at": None,
        "incomplete_at": None,
        "role": message.role,
        "content": list(message.content),
        "attachments": None if message.attachments is None else list(message.attachments),
        "metadata": dict(message.metadata),
    }
    return drop_nulls(data, behaviour)


def thread_json(thread: Thread, behaviour: Behaviour) -> dict[str, Any]:
    data = {
        "id": thread.id,
        "object": "thread",
        "created_at": timestamp(thread.created_at, behaviour),
        "metadata": dict(thread.metadata),
        "tool_resources": thread.tool_resources,
    }
    return drop_nulls(data, behaviour)


# --------------------------------------------------------------------------------------------------------
# Reading request bodies
# --------------------------------------------------------------------------------------------------------

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")


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


def reject_unknown(body: JsonObject, allowed: frozenset[str], prefix: str, behaviour: Behaviour) -> None:
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


# --------------------------------------------------------------------------------------------------------
# Metadata: validation, merge and the string knobs
# --------------------------------------------------------------------------------------------------------


def measure(text: str, behaviour: Behaviour) -> int:
    if behaviour.length_unit == "bytes":
        return len(text.encode("utf-8", "surrogatepass"))
    if behaviour.length_unit == "utf16":
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    return len(text)


def transform(text: str, how: StringTransform) -> str:
    if how == "strip":
        return text.strip()
    if how == "casefold":
        return text.casefold()
    if how in ("nfc", "nfkc"):
        return unicodedata.normalize("NFC" if how == "nfc" else "NFKC", text)
    if how == "ascii":
        return text.encode("ascii", "replace").decode("ascii")
    return text


Pairs = tuple[tuple[str, str | None], ...]
"""Validated metadata pairs; a None value deletes its key (only with ``Behaviour.delete_marker``)."""


def _check_pair(key: str, value: Any, param: str, behaviour: Behaviour) -> tuple[str | None, ApiError | None]:
    """Validate one metadata pair; returns the value to store (None: delete the key; "" on error) and the error."""
    key_length = measure(key, behaviour)
    if key_length > behaviour.max_key_length:
        return "", bad_request(
            f"Invalid property name in '{param}': '{key}' is too long. Expected a string with maximum "
            f"length {behaviour.max_key_length}, but got a string with length {key_length} instead.",
            param=param,
            code="string_above_max_length",
        )
    if key == "" and not behaviour.allow_empty_key:
        return "", bad_request(
            f"Invalid property name in '{param}': expected a non-empty string.",
            param=param,
            code="invalid_value",
        )
    value_param = f"{param}.{key}"
    if value is None and behaviour.delete_marker == "null":
        return None, None
    if value == "" and behaviour.delete_marker == "empty_string":
        return None, None
    if not isinstance(value, str):
        if value is None or not behaviour.coerce_non_string_values:
            return "", invalid_type(value_param, "a string", value)
        value = json.dumps(value, ensure_ascii=False)
    value_length = measure(value, behaviour)
    if value_length > behaviour.max_value_length:
        return "", bad_request(
            f"Invalid '{value_param}': string too long. Expected a string with maximum length "
            f"{behaviour.max_value_length}, but got a string with length {value_length} instead.",
            param=value_param,
            code="string_above_max_length",
        )
    return value, None


def validate_metadata(value: Any, param: str, behaviour: Behaviour) -> tuple[Pairs, ApiError | None]:
    """Check a metadata object; returns the valid pairs before the first error, and that error."""
    if not isinstance(value, dict):
        return (), invalid_type(param, "an object", value)
    if len(value) > behaviour.max_keys:
        return (), too_many_properties(param, behaviour.max_keys, len(value))
    pairs: list[tuple[str, str | None]] = []
    for key, raw in value.items():
        stored, error = _check_pair(key, raw, param, behaviour)
        if error is not None:
            return tuple(pairs), error
        kept = None if stored is None else transform(stored, behaviour.value_transform)
        pairs.append((transform(key, behaviour.key_transform), kept))
    return tuple(pairs), None


def new_metadata(value: Any, param: str, behaviour: Behaviour) -> dict[str, str]:
    """Metadata of a new thread or message: absent or null is ``{}``; any error is raised."""
    if value is None:
        return {}
    pairs, error = validate_metadata(value, param, behaviour)
    if error is not None:
        raise RequestFailed(error)
    return {key: stored for key, stored in pairs if stored is not None}


@dataclass(frozen=True)
class MetadataPatch:
    """What a modify request asks for: no metadata, ``null``, or these pairs."""

    kind: Literal["absent", "null", "object"]
    pairs: Pairs = ()


def read_patch(body: Mapping[str, Any], behaviour: Behaviour) -> tuple[MetadataPatch, ApiError | None]:
    if "metadata" not in body:
        return MetadataPatch("absent"), None
    value = body["metadata"]
    if value is None:
        if behaviour.null_metadata == "error":
            return MetadataPatch("absent"), invalid_type("metadata", "an object", None)
        return MetadataPatch("null"), None
    if not isinstance(value, dict) and behaviour.ignore_non_object_metadata:
        return MetadataPatch("absent"), None
    pairs, error = validate_metadata(value, "metadata", behaviour)
    return MetadataPatch("object", pairs), error


def merge(
    current: Mapping[str, str], patch: MetadataPatch, behaviour: Behaviour
) -> tuple[dict[str, str], ApiError | None]:
    """The metadata after ``patch``; over the key limit, the pairs that still fit and the error."""
    if patch.kind == "absent" or (patch.kind == "null" and behaviour.null_metadata != "clear"):
        return dict(current), None
    if patch.kind == "null":
        return {}, None
    result = {} if behaviour.metadata_mode == "replace" else dict(current)
    total = len(result.keys() | {key for key, _ in patch.pairs})
    naive_total = len(result) + len(patch.pairs)
    if behaviour.merged_total_limit and behaviour.merged_limit_counts_overwrites and naive_total > behaviour.max_keys:
        return result, too_many_properties("metadata", behaviour.max_keys, naive_total)
    for key, value in patch.pairs:
        if value is None:
            result.pop(key, None)
            continue
        if behaviour.merged_total_limit and key not in result and len(result) >= behaviour.max_keys:
            return result, too_many_properties("metadata", behaviour.max_keys, total)
        result[key] = value
    return result, None


def is_edge_metadata(body: Mapping[str, Any]) -> bool:
    """An empty key or an astral character anywhere in the metadata (``server_error_on_edge``)."""
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        return False
    texts = [*metadata, *(value for value in metadata.values() if isinstance(value, str))]
    return "" in metadata or any(max(text, default="\0") > "\uffff" for text in texts)


# --------------------------------------------------------------------------------------------------------
# createMessage / createThread / modifyThread request bodies
# --------------------------------------------------------------------------------------------------------

_MESSAGE_KEYS = frozenset({"role", "content", "attachments", "metadata"})
_THREAD_KEYS = frozenset({"messages", "tool_resources", "metadata"})
_MODIFY_THREAD_KEYS = frozenset({"tool_resources", "metadata"})
_ROLES = ("user", "assistant")
_DETAILS = ("auto", "low", "high")
_TOOLS = ("code_interpreter", "file_search")
_PART_TYPES = ("text", "image_file", "image_url")
_SEARCH = "tool_resources.file_search"


def require_object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestFailed(invalid_type(param, "an object", value))
    return value


def require_string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise RequestFailed(invalid_type(param, "a string", value))
    return value


def require_array(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise RequestFailed(invalid_type(param, "an array", value))
    return value


def require_choice(value: Any, param: str, allowed: Sequence[str]) -> str:
    text = require_string(value, param)
    if text not in allowed:
        raise RequestFailed(invalid_value(param, text, allowed))
    return text


def require_key(body: Mapping[str, Any], key: str, prefix: str) -> Any:
    if key not in body:
        raise RequestFailed(missing_parameter(prefix + key))
    return body[key]


def _image_part(part: Mapping[str, Any], kind: str, param: str, behaviour: Behaviour) -> dict[str, Any]:
    target_key = "file_id" if kind == "image_file" else "url"
    inner = require_object(require_key(part, kind, param + "."), f"{param}.{kind}")
    reject_unknown(inner, frozenset({target_key, "detail"}), f"{param}.{kind}.", behaviour)
    target_param = f"{param}.{kind}.{target_key}"
    target = require_string(require_key(inner, target_key, f"{param}.{kind}."), target_param)
    if kind == "image_url" and not target.startswith(("https://", "http://", "data:")):
        raise RequestFailed(
            bad_request(
                f"Invalid '{param}.image_url.url': expected an 'https://', 'http://' or 'data:' URL.",
                param=f"{param}.image_url.url",
                code="invalid_value",
            )
        )
    stored: dict[str, Any] = {target_key: target}
    if "detail" in inner:
        stored["detail"] = require_choice(inner["detail"], f"{param}.{kind}.detail", _DETAILS)
    return {"type": kind, kind: stored}


def content_part(part: Any, param: str, behaviour: Behaviour) -> dict[str, Any]:
    obj = require_object(part, param)
    kind = require_choice(require_key(obj, "type", param + "."), param + ".type", _PART_TYPES)
    reject_unknown(obj, frozenset({"type", kind}), param + ".", behaviour)
    if kind == "text":
        text = require_string(require_key(obj, "text", param + "."), param + ".text")
        return {"type": "text", "text": {"value": text, "annotations": []}}
    return _image_part(obj, kind, param, behaviour)


def message_content(value: Any, param: str, behaviour: Behaviour) -> tuple[dict[str, Any], ...]:
    if isinstance(value, str):
        return ({"type": "text", "text": {"value": value, "annotations": []}},)
    if not isinstance(value, list):
        raise RequestFailed(invalid_type(param, "a string or an array of content parts", value))
    if not value:
        raise RequestFailed(
            bad_request(
                f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty "
                "array instead.",
                param=param,
                code="empty_array",
            )
        )
    return tuple(content_part(part, f"{param}[{index}]", behaviour) for index, part in enumerate(value))


def attachment(value: Any, param: str, behaviour: Behaviour) -> dict[str, Any]:
    obj = require_object(value, param)
    reject_unknown(obj, frozenset({"file_id", "tools"}), param + ".", behaviour)
    file_id = require_string(require_key(obj, "file_id", param + "."), param + ".file_id")
    tools = []
    for index, tool in enumerate(require_array(require_key(obj, "tools", param + "."), param + ".tools")):
        tool_param = f"{param}.tools[{index}]"
        tool_obj = require_object(tool, tool_param)
        reject_unknown(tool_obj, frozenset({"type"}), tool_param + ".", behaviour)
        prefix = tool_param + "."
        tools.append({"type": require_choice(require_key(tool_obj, "type", prefix), prefix + "type", _TOOLS)})
    return {"file_id": file_id, "tools": tools}


def new_message(body: Mapping[str, Any], prefix: str, behaviour: Behaviour) -> NewMessage:
    """Validate a CreateMessageRequest (``prefix`` is e.g. ``messages[0].`` inside createThread)."""
    reject_unknown(body, _MESSAGE_KEYS, prefix, behaviour)
    role = require_choice(require_key(body, "role", prefix), prefix + "role", _ROLES)
    content = message_content(require_key(body, "content", prefix), prefix + "content", behaviour)
    attachments: tuple[dict[str, Any], ...] | None = ()
    raw_attachments = body.get("attachments", [])
    if raw_attachments is None:
        attachments = None
    else:
        items = require_array(raw_attachments, prefix + "attachments")
        attachments = tuple(
            attachment(item, f"{prefix}attachments[{index}]", behaviour) for index, item in enumerate(items)
        )
    metadata = new_metadata(body.get("metadata"), prefix + "metadata", behaviour)
    return NewMessage(role=role, content=content, attachments=attachments, metadata=metadata)


def _id_list(value: Any, param: str, limit: int) -> list[str]:
    items = require_array(value, param)
    if len(items) > limit:
        raise RequestFailed(
            bad_request(
                f"Invalid '{param}': array too long. Expected an array with maximum length {limit}, but got "
                f"an array with length {len(items)} instead.",
                param=param,
                code="array_above_max_length",
            )
        )
    return [require_string(item, f"{param}[{index}]") for index, item in enumerate(items)]


def tool_resources(value: Any, behaviour: Behaviour, *, creating: bool) -> dict[str, Any] | None:
    """Validate ``tool_resources``; a ``vector_stores`` helper becomes one generated vector store id."""
    if value is None:
        return None
    obj = require_object(value, "tool_resources")
    reject_unknown(obj, frozenset({"code_interpreter", "file_search"}), "tool_resources.", behaviour)
    result: dict[str, Any] = {}
    if "code_interpreter" in obj:
        interp = require_object(obj["code_interpreter"], "tool_resources.code_interpreter")
        reject_unknown(interp, frozenset({"file_ids"}), "tool_resources.code_interpreter.", behaviour)
        file_ids = _id_list(interp.get("file_ids", []), "tool_resources.code_interpreter.file_ids", 20)
        result["code_interpreter"] = {"file_ids": file_ids}
    if "file_search" in obj:
        allowed = {"vector_store_ids", "vector_stores"} if creating else {"vector_store_ids"}
        search = require_object(obj["file_search"], "tool_resources.file_search")
        reject_unknown(search, frozenset(allowed), "tool_resources.file_search.", behaviour)
        store_ids = _id_list(search.get("vector_store_ids", []), f"{_SEARCH}.vector_store_ids", 1)
        helpers = require_array(search.get("vector_stores", []), f"{_SEARCH}.vector_stores")
        for index, helper in enumerate(helpers):
            require_object(helper, f"tool_resources.file_search.vector_stores[{index}]")
            store_ids.append(new_id("vs"))
        if len(store_ids) > 1:
            raise RequestFailed(
                bad_request(
                    f"Invalid '{_SEARCH}': at most one vector store can be attached to a thread.",
                    param="tool_resources.file_search",
                    code="invalid_value",
                )
            )
        result["file_search"] = {"vector_store_ids": store_ids}
    return result


# --------------------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ListQuery:
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None
    run_id: str | None = None


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return 20
    if not _ASCII_INTEGER.fullmatch(raw):
        raise RequestFailed(invalid_type("limit", "an integer", raw))
    try:
        limit = int(raw)
    except ValueError:  # more digits than int() accepts: out of range either way
        limit = -(10**9) if raw.startswith("-") else 10**9
    if 1 <= limit <= 100:
        return limit
    below = limit < 1
    side, bound = ("below minimum", ">= 1") if below else ("above maximum", "<= 100")
    message = f"Invalid 'limit': integer {side} value. Expected a value {bound}, but got {raw} instead."
    code = "integer_below_min_value" if below else "integer_above_max_value"
    raise RequestFailed(bad_request(message, param="limit", code=code))


def parse_list_query(params: QueryParams) -> ListQuery:
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise RequestFailed(invalid_value("order", order, ("asc", "desc")))
    return ListQuery(
        limit=parse_limit(params.get("limit")),
        order="asc" if order == "asc" else "desc",
        after=params.get("after") or None,
        before=params.get("before") or None,
        run_id=params.get("run_id") or None,
    )


def page(messages: list[Message], query: ListQuery) -> tuple[list[Message], bool]:
    """One page of ``messages`` (ascending) for ``query``; returns the page and ``has_more``."""
    items = [m for m in messages if query.run_id is None or m.run_id == query.run_id]
    if query.order == "desc":
        items.reverse()
    position = {message.id: index for index, message in enumerate(items)}
    start, end = 0, len(items)
    for cursor in (query.after, query.before):
        if cursor is not None and cursor not in position:
            return [], False
    if query.after is not None:
        start = position[query.after] + 1
    if query.before is not None:
        end = position[query.before]
    window = items[start:end]
    has_more = len(window) > query.limit
    if query.before is not None and query.after is None:
        return window[-query.limit :], has_more
    return window[: query.limit], has_more


# --------------------------------------------------------------------------------------------------------
# Middleware: the gate (rate limit, auth, OpenAI-Beta) and the guard (headers, last-resort 500)
# --------------------------------------------------------------------------------------------------------

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

        async def send_with_headers(message: dict[str, Any]) -> None:
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
        reject_unknown(body, _THREAD_KEYS, "", behaviour)
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
        reject_unknown(body, _MODIFY_THREAD_KEYS, "", behaviour)
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
            result = await run_in_threadpool(racy, thread_id, message_id, change, **options)
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
