"""REQ: request handling: unknown fields, malformed and non-object bodies, the request Content-Type, the beta header,
credentials, methods."""

from __future__ import annotations

import json

import pytest

from modmsg.checks.errors import not_a_server_error
from modmsg.checks.metadata import rejected, state_unchanged
from modmsg.checks.response import status_is
from modmsg.failures import (
    CredentialsNotChecked,
    InvalidRequestAccepted,
    MissingBetaHeaderAccepted,
    UnknownFieldAccepted,
)

JSON = {"Content-Type": "application/json"}
VALID = {"metadata": {"applied": "must not be"}}


def fetch(api, message):
    return api.fetch_message(message["thread_id"], message["id"])


def send_and_compare(api, message, *, req, what, statuses=(400,), failure=InvalidRequestAccepted, **request):
    """Send one request that must be rejected; the message must be unchanged afterwards."""
    before = fetch(api, message)
    response = api.modify_message(message["thread_id"], message["id"], **request)
    rejected(response, req=req, what=what, statuses=statuses, failure=failure)
    state_unchanged(before, fetch(api, message), req=req, what=what)
    return response


@pytest.mark.req("MM-REQ-01")
@pytest.mark.parametrize("key", ["content", "role", "metadatas", "Metadata", "status", "created_at"])
def test_unknown_body_key_is_rejected_and_not_applied(api, message, key):
    send_and_compare(
        api,
        message,
        req="MM-REQ-01",
        what=f"the unknown key {key!r}",
        failure=UnknownFieldAccepted,
        body={**VALID, key: "injected"},
    )


MALFORMED = {
    "truncated": b'{"metadata": {"a": ',
    "trailing comma": b'{"metadata": {"a": "b",}}',
    "single quotes": b"{'metadata': {}}",
    "plain text": b"metadata=a",
    "invalid UTF-8": b'{"metadata": {"a": "\xff\xfe"}}',
    "NaN literal": b'{"metadata": NaN}',
}


@pytest.mark.req("MM-REQ-02")
@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_json_is_rejected(api, message, name):
    send_and_compare(api, message, req="MM-REQ-02", what=f"a {name} body", data=MALFORMED[name], headers=JSON)


@pytest.mark.req("MM-REQ-03")
@pytest.mark.parametrize("content_type", ["application/json", None])
def test_empty_body_is_rejected(api, message, content_type):
    headers = {"Content-Type": content_type} if content_type else None
    send_and_compare(api, message, req="MM-REQ-03", what="an empty body", data=b"", headers=headers)


@pytest.mark.req("MM-REQ-04")
@pytest.mark.parametrize("body", [[], [VALID], "metadata", 1, 1.5, True, None], ids=repr)
def test_non_object_json_body_is_rejected(api, message, body):
    raw = json.dumps(body).encode()
    send_and_compare(api, message, req="MM-REQ-04", what=f"the JSON body {body!r}", data=raw, headers=JSON)


NON_JSON_CONTENT_TYPES = ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded"]


@pytest.mark.req("MM-REQ-09")
@pytest.mark.parametrize("content_type", NON_JSON_CONTENT_TYPES)
def test_valid_json_under_a_non_json_content_type_is_rejected(api, message, content_type):
    raw = json.dumps(VALID).encode()
    what = f"a valid JSON body sent as {content_type}"
    headers = {"Content-Type": content_type}
    send_and_compare(api, message, req="MM-REQ-09", what=what, statuses=(400, 415), data=raw, headers=headers)


@pytest.mark.req("MM-REQ-05")
@pytest.mark.parametrize("value", [None, "assistants=v1", "assistants=v3", "", "assistants=v2x"])
def test_missing_or_wrong_beta_header_is_rejected(api, message, value):
    request = {"without": ("OpenAI-Beta",)} if value is None else {"headers": {"OpenAI-Beta": value}}
    what = f"OpenAI-Beta {value!r}"
    send_and_compare(api, message, req="MM-REQ-05", what=what, failure=MissingBetaHeaderAccepted, body=VALID, **request)


@pytest.mark.req("MM-REQ-06")
def test_missing_credentials_give_401(api, message):
    send_and_compare(
        api,
        message,
        req="MM-REQ-06",
        what="no Authorization header",
        statuses=(401,),
        failure=CredentialsNotChecked,
        body=VALID,
        without=("Authorization",),
    )


@pytest.mark.req("MM-REQ-07")
@pytest.mark.parametrize(
    "authorization",
    ["Bearer sk-modmsg-wrong-key-0000000000", "Bearer ", "Basic dXNlcjpwYXNz"],
)
def test_wrong_credentials_give_401(api, message, authorization):
    send_and_compare(
        api,
        message,
        req="MM-REQ-07",
        what=f"Authorization {authorization.split()[0]} <wrong>",
        statuses=(401,),
        failure=CredentialsNotChecked,
        body=VALID,
        headers={"Authorization": authorization},
    )


@pytest.mark.req("MM-REQ-08")
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_unsupported_method_is_rejected(api, message, method):
    before = fetch(api, message)
    response = api.modify_message(message["thread_id"], message["id"], VALID, method=method)
    not_a_server_error(response, req="MM-REQ-08", what=method)
    status_is(response, (404, 405), req="MM-REQ-08")
    state_unchanged(before, fetch(api, message), req="MM-REQ-08", what=f"a {method}")
