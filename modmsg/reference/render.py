"""Rendering: the error envelope (its shape is a knob) and the success bodies of messages and threads."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from modmsg.reference.behaviour import Behaviour
from modmsg.reference.errors import ApiError
from modmsg.reference.store import Message, Thread


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
