"""RESP: what a successful modify returns, and the sibling calls the suite stands on."""

from __future__ import annotations

import pytest

from modmsg.checks.headers import content_type_is_json
from modmsg.checks.response import (
    created_at_is_unix_seconds,
    field_equals,
    matches_schema,
    nullable_fields_are_present,
    ok_json,
    only_metadata_changed,
)

BODY = {"metadata": {"suite": "modmsg"}}


def modify(api, message):
    """(message before, modify response) for one valid modify (called by the test, not a fixture of its own: a test
    whose fixtures are all the run's or its fresh objects runs ahead, see modmsg.plugin.ahead)."""
    return message, api.modify_message(message["thread_id"], message["id"], BODY)


@pytest.mark.req("MM-RESP-01")
def test_valid_modify_returns_200_json(api, message):
    modified = modify(api, message)
    ok_json(modified[1], req="MM-RESP-01")


@pytest.mark.req("MM-RESP-02")
def test_modified_message_validates_against_message_object(api, message):
    modified = modify(api, message)
    matches_schema(ok_json(modified[1], req="MM-RESP-01"), "MessageObject", req="MM-RESP-02")


@pytest.mark.req("MM-RESP-03")
def test_nullable_fields_are_present_not_omitted(api, message):
    modified = modify(api, message)
    nullable_fields_are_present(ok_json(modified[1], req="MM-RESP-01"))


@pytest.mark.req("MM-RESP-04")
def test_object_is_thread_message(api, message):
    modified = modify(api, message)
    field_equals(ok_json(modified[1], req="MM-RESP-01"), "object", "thread.message", req="MM-RESP-04")


@pytest.mark.req("MM-RESP-05")
def test_id_and_thread_id_echo_the_path(api, message):
    modified = modify(api, message)
    message, response = modified
    body = ok_json(response, req="MM-RESP-01")
    field_equals(body, "id", message["id"], req="MM-RESP-05")
    field_equals(body, "thread_id", message["thread_id"], req="MM-RESP-05")


@pytest.mark.req("MM-RESP-06")
def test_created_at_is_integer_unix_seconds(api, message):
    modified = modify(api, message)
    created_at_is_unix_seconds(ok_json(modified[1], req="MM-RESP-01"))


@pytest.mark.req("MM-RESP-07")
def test_modify_changes_nothing_but_metadata(api, message):
    before = api.fetch_message(message["thread_id"], message["id"])
    response = api.modify_message(message["thread_id"], message["id"], BODY)
    only_metadata_changed(before, ok_json(response, req="MM-RESP-01"))
    only_metadata_changed(before, api.fetch_message(message["thread_id"], message["id"]))


@pytest.mark.req("MM-HDR-01")
def test_success_response_is_application_json(api, message):
    modified = modify(api, message)
    content_type_is_json(modified[1], req="MM-HDR-01")
