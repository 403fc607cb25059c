"""RESP-08/09: the sibling calls the suite stands on return schema-valid bodies and OpenAI-shaped ids."""

from __future__ import annotations

import re

import pytest

from modmsg.api import json_or_none as api_json
from modmsg.checks.response import field_equals, matches_schema, ok_json
from modmsg.failures import WrongValue
from modmsg.ids import is_safe

THREAD_ID = re.compile(r"^thread_[A-Za-z0-9]{24}$")
MESSAGE_ID = re.compile(r"^msg_[A-Za-z0-9]{24}$")
CLOCK_SKEW = 300  # seconds the target's clock may trail the suite's


@pytest.mark.req("MM-RESP-09")
@pytest.mark.parametrize("body", [None, {}], ids=["no body", "empty object"])
def test_create_thread_returns_thread_object(api, transport, modmsg_state, body):
    # These threads cannot carry the run tag (that would need a body), so they are deleted at once rather than
    # left to the session's cleanup or to `modmsg sweep`, which only ever deletes tagged threads; and only when
    # the answer shows what this request created: no metadata, created during this run. A target that answers
    # with some other thread's id (older, or carrying metadata) gets no DELETE of it.
    kwargs = {"data": b""} if body is None else {"json": body}
    response = transport.request("POST", "threads", **kwargs)
    try:
        created = ok_json(response, req="MM-RESP-09")
        matches_schema(created, "ThreadObject", req="MM-RESP-09")
    finally:
        answer = api_json(response)
        if isinstance(answer, dict) and _created_by_this_request(answer, since=modmsg_state.started):
            api.delete_thread(answer["id"])


def _created_by_this_request(thread: dict, *, since: float) -> bool:
    created_at = thread.get("created_at")
    return (
        is_safe(thread.get("id"))
        and not thread.get("metadata")
        and isinstance(created_at, int)
        and created_at >= int(since) - CLOCK_SKEW
    )


@pytest.mark.req("MM-RESP-09")
def test_create_get_and_list_return_message_objects(api, thread):
    created = api.create_message(thread["id"], content="hello")
    matches_schema(created, "MessageObject", req="MM-RESP-09")
    fetched = ok_json(api.get_message(thread["id"], created["id"]), req="MM-RESP-09")
    matches_schema(fetched, "MessageObject", req="MM-RESP-09")
    listing = ok_json(api.list_messages(thread["id"]), req="MM-RESP-09")
    matches_schema(listing, "ListMessagesResponse", req="MM-RESP-09")


@pytest.mark.req("MM-RESP-09")
def test_empty_list_has_null_or_string_cursors(api, thread):
    listing = ok_json(api.list_messages(thread["id"]), req="MM-RESP-09")
    field_equals(listing, "data", [], req="MM-RESP-09")
    for cursor in (
        "first_id",
        "last_id",
    ):  # the spec says string, OpenAI sent null (openai-behaviour.md §2 defect 4)
        if not (cursor in listing and (listing[cursor] is None or isinstance(listing[cursor], str))):
            raise WrongValue(
                req="MM-RESP-09",
                expected=f"{cursor} null or a string",
                received=repr(listing.get(cursor, "(absent)")),
            )


@pytest.mark.req("MM-RESP-09")
def test_delete_message_and_thread_return_deletion_objects(api, thread, message):
    deleted = ok_json(api.delete_message(thread["id"], message["id"]), req="MM-RESP-09")
    matches_schema(deleted, "DeleteMessageResponse", req="MM-RESP-09")
    field_equals(deleted, "id", message["id"], req="MM-RESP-09")
    gone = ok_json(api.delete_thread(thread["id"]), req="MM-RESP-09")
    matches_schema(gone, "DeleteThreadResponse", req="MM-RESP-09")
    field_equals(gone, "deleted", True, req="MM-RESP-09")


@pytest.mark.req("MM-RESP-08")
def test_ids_have_openai_formats(api, message):
    for name, value, pattern in (
        ("thread id", message["thread_id"], THREAD_ID),
        ("message id", message["id"], MESSAGE_ID),
    ):
        if not isinstance(value, str) or not pattern.match(value):
            raise WrongValue(req="MM-RESP-08", expected=f"{name} matching {pattern.pattern}", received=repr(value))
