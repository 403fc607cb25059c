"""Error scenarios: requests the target must reject, and what the openai profile expects of each answer.

Each scenario is data (a name, how to send it, the expected status and the documented type/code/param, and the
requirement that judges whether it is rejected at all), so one table drives the envelope, content-type,
error-code, request-id and no-secret tests alike. A scenario the target accepts fails its own requirement
(``req``, with the ``failure`` type that names what was checked); the tests that judge the error answer are then
BLOCKED by it, since there is no error answer to judge.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from modmsg.api import AssistantsApi
from modmsg.failures import (
    CredentialsNotChecked,
    CrossThreadAccess,
    InvalidRequestAccepted,
    LimitNotEnforced,
    MissingBetaHeaderAccepted,
    MissingResourceAccepted,
    UnknownFieldAccepted,
    WrongTypeAccepted,
)
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
    req: str  # the requirement that judges whether this request is rejected at all
    failure: type[InvalidRequestAccepted] = InvalidRequestAccepted  # what an acceptance of it is called
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
    Scenario(
        "17 keys",
        lambda c: c.modify({"metadata": keys(17)}),
        400,
        "object_above_max_properties",
        "metadata",
        req="MM-META-06",
        failure=LimitNotEnforced,
    ),
    Scenario(
        "65-character key",
        lambda c: c.modify({"metadata": {text_of_length(MAX_KEY_LENGTH + 1): "v"}}),
        400,
        "string_above_max_length",
        "metadata",
        req="MM-META-07",
        failure=LimitNotEnforced,
    ),
    Scenario(
        "513-character value",
        lambda c: c.modify({"metadata": {"long": text_of_length(MAX_VALUE_LENGTH + 1)}}),
        400,
        "string_above_max_length",
        "metadata.long",
        req="MM-META-08",
        failure=LimitNotEnforced,
    ),
    Scenario(
        "integer value",
        lambda c: c.modify({"metadata": {"version": 2}}),
        400,
        "invalid_type",
        "metadata.version",
        req="MM-META-09",
        failure=WrongTypeAccepted,
    ),
    Scenario(
        "null value",
        lambda c: c.modify({"metadata": {"gone": None}}),
        400,
        "invalid_type",
        "metadata.gone",
        req="MM-META-09",
        failure=WrongTypeAccepted,
    ),
    Scenario(
        "metadata is a string",
        lambda c: c.modify({"metadata": "text"}),
        400,
        "invalid_type",
        "metadata",
        req="MM-META-10",
        failure=WrongTypeAccepted,
    ),
    Scenario(
        "metadata is an array",
        lambda c: c.modify({"metadata": [{"k": "v"}]}),
        400,
        "invalid_type",
        "metadata",
        req="MM-META-10",
        failure=WrongTypeAccepted,
    ),
    Scenario(
        "unknown body key",
        lambda c: c.modify({"metadata": {"a": "b"}, "content": "x"}),
        400,
        "unknown_parameter",
        "content",
        req="MM-REQ-01",
        failure=UnknownFieldAccepted,
    ),
    Scenario(
        "malformed JSON",
        lambda c: c.modify(data=b'{"metadata": {"a": ', headers={"Content-Type": "application/json"}),
        400,
        NULL,
        NULL,
        req="MM-REQ-02",
    ),
    Scenario(
        "empty body",
        lambda c: c.modify(data=b"", headers={"Content-Type": "application/json"}),
        400,
        NULL,
        NULL,
        req="MM-REQ-03",
    ),
    Scenario("body is an array", lambda c: c.modify([{"metadata": {}}]), 400, "invalid_type", NULL, req="MM-REQ-04"),
    Scenario(
        "missing OpenAI-Beta",
        lambda c: c.modify({"metadata": {"a": "b"}}, without=("OpenAI-Beta",)),
        400,
        "invalid_beta",
        NULL,
        req="MM-REQ-05",
        failure=MissingBetaHeaderAccepted,
    ),
    Scenario(
        "OpenAI-Beta assistants=v1",
        lambda c: c.modify({"metadata": {"a": "b"}}, headers={"OpenAI-Beta": "assistants=v1"}),
        400,
        "invalid_beta",
        NULL,
        req="MM-REQ-05",
        failure=MissingBetaHeaderAccepted,
    ),
    Scenario(
        "missing Authorization",
        lambda c: c.modify({"metadata": {"a": "b"}}, without=("Authorization",)),
        401,
        NULL,
        NULL,
        req="MM-REQ-06",
        failure=CredentialsNotChecked,
    ),
    Scenario(
        "wrong API key",
        lambda c: c.modify({"metadata": {"a": "b"}}, headers={"Authorization": f"Bearer {c.wrong_key}"}),
        401,
        "invalid_api_key",
        NULL,
        req="MM-REQ-07",
        failure=CredentialsNotChecked,
    ),
    Scenario("unknown thread", _unknown_thread, 404, NULL, NULL, req="MM-ERR-01", failure=MissingResourceAccepted),
    Scenario("unknown message", _unknown_message, 404, NULL, NULL, req="MM-ERR-02", failure=MissingResourceAccepted),
    Scenario("message of another thread", _other_thread, 404, NULL, NULL, req="MM-ERR-03", failure=CrossThreadAccess),
)

# Scenarios whose answer depends on an openai-profile decision (the beta header is not in the fragment).
OPENAI_ONLY = frozenset({"missing OpenAI-Beta", "OpenAI-Beta assistants=v1"})
