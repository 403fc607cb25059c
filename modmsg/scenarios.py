"""Error scenarios: requests the target must reject, and what the openai profile expects of each answer.

Each scenario is data (a name, how to send it, the expected status and the documented type/code/param), so
one table drives the envelope, content-type, error-code, request-id and no-secret tests alike.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from modmsg.api import AssistantsApi
from modmsg.strategies import MAX_KEY_LENGTH, MAX_VALUE_LENGTH, keys, text_of_length

NULL = None  # the documented code/param is JSON null


@dataclass(frozen=True)
class Context:
    api: AssistantsApi
    message: dict[str, Any]  # a live message (with seeded metadata) in a live thread
    other_thread: dict[str, Any]  # a live thread the message does not belong to
    wrong_key: str

    def modify(self, body: Any = None, **kwargs: Any) -> requests.Response:
        if body is not None:
            kwargs["body"] = body
        return self.api.modify_message(self.message["thread_id"], self.message["id"], **kwargs)


@dataclass(frozen=True)
class Scenario:
    name: str
    send: Callable[[Context], requests.Response]
    status: int
    code: str | None
    param: str | None
    type: str = "invalid_request_error"
    changes_nothing: bool = True  # the message must be unchanged afterwards

    def __str__(self) -> str:
        return self.name


def unknown_id(prefix: str) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(24))


def _unknown_thread(ctx: Context) -> requests.Response:
    return ctx.api.modify_message(unknown_id("thread_"), ctx.message["id"], {"metadata": {"a": "b"}})


def _unknown_message(ctx: Context) -> requests.Response:
    return ctx.api.modify_message(ctx.message["thread_id"], unknown_id("msg_"), {"metadata": {"a": "b"}})


def _other_thread(ctx: Context) -> requests.Response:
    return ctx.api.modify_message(ctx.other_thread["id"], ctx.message["id"], {"metadata": {"a": "b"}})


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("17 keys", lambda c: c.modify({"metadata": keys(17)}), 400, "object_above_max_properties", "metadata"),
    Scenario(
        "65-character key",
        lambda c: c.modify({"metadata": {text_of_length(MAX_KEY_LENGTH + 1): "v"}}),
        400,
        "string_above_max_length",
        "metadata",
    ),
    Scenario(
        "513-character value",
        lambda c: c.modify({"metadata": {"long": text_of_length(MAX_VALUE_LENGTH + 1)}}),
        400,
        "string_above_max_length",
        "metadata.long",
    ),
    Scenario(
        "integer value",
        lambda c: c.modify({"metadata": {"version": 2}}),
        400,
        "invalid_type",
        "metadata.version",
    ),
    Scenario("null value", lambda c: c.modify({"metadata": {"gone": None}}), 400, "invalid_type", "metadata.gone"),
    Scenario("metadata is a string", lambda c: c.modify({"metadata": "text"}), 400, "invalid_type", "metadata"),
    Scenario(
        "metadata is an array",
        lambda c: c.modify({"metadata": [{"k": "v"}]}),
        400,
        "invalid_type",
        "metadata",
    ),
    Scenario(
        "unknown body key",
        lambda c: c.modify({"metadata": {"a": "b"}, "content": "x"}),
        400,
        "unknown_parameter",
        "content",
    ),
    Scenario(
        "malformed JSON",
        lambda c: c.modify(data=b'{"metadata": {"a": ', headers={"Content-Type": "application/json"}),
        400,
        NULL,
        NULL,
    ),
    Scenario(
        "empty body",
        lambda c: c.modify(data=b"", headers={"Content-Type": "application/json"}),
        400,
        NULL,
        NULL,
    ),
    Scenario("body is an array", lambda c: c.modify([{"metadata": {}}]), 400, "invalid_type", NULL),
    Scenario(
        "missing OpenAI-Beta",
        lambda c: c.modify({"metadata": {"a": "b"}}, without=("OpenAI-Beta",)),
        400,
        "invalid_beta",
        NULL,
    ),
    Scenario(
        "OpenAI-Beta assistants=v1",
        lambda c: c.modify({"metadata": {"a": "b"}}, headers={"OpenAI-Beta": "assistants=v1"}),
        400,
        "invalid_beta",
        NULL,
    ),
    Scenario(
        "missing Authorization",
        lambda c: c.modify({"metadata": {"a": "b"}}, without=("Authorization",)),
        401,
        NULL,
        NULL,
    ),
    Scenario(
        "wrong API key",
        lambda c: c.modify({"metadata": {"a": "b"}}, headers={"Authorization": f"Bearer {c.wrong_key}"}),
        401,
        "invalid_api_key",
        NULL,
    ),
    Scenario("unknown thread", _unknown_thread, 404, NULL, NULL),
    Scenario("unknown message", _unknown_message, 404, NULL, NULL),
    Scenario("message of another thread", _other_thread, 404, NULL, NULL),
)

# Scenarios whose answer depends on an openai-profile decision (the beta header is not in the fragment).
OPENAI_ONLY = frozenset({"missing OpenAI-Beta", "OpenAI-Beta assistants=v1"})
