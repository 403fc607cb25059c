"""HDR: headers on success and, whenever the target rate-limits the suite, the shape of its 429s."""

from __future__ import annotations

import pytest

from modmsg.checks.headers import content_type_is_json, has_request_id, rate_limit_is_well_formed
from modmsg.checks.response import ok_json


@pytest.mark.req("MM-HDR-01")
def test_success_is_application_json_on_every_sibling_call(api, message):
    modify = api.modify_message(message["thread_id"], message["id"], {"metadata": {"h": "1"}})
    ok_json(modify, req="MM-RESP-01")
    content_type_is_json(modify, req="MM-HDR-01")
    for response in (api.get_message(message["thread_id"], message["id"]), api.list_messages(message["thread_id"])):
        ok_json(response, req="MM-RESP-09")
        content_type_is_json(response, req="MM-HDR-01")


@pytest.mark.req("MM-HDR-03")
def test_success_carries_request_id(api, message):
    response = api.modify_message(message["thread_id"], message["id"], {"metadata": {"h": "1"}})
    has_request_id(response)


@pytest.mark.req("MM-HDR-04")
@pytest.mark.modmsg_last
def test_every_429_seen_carries_envelope_and_valid_retry_after(transport):
    seen = list(transport.rate_limited)
    if not seen:
        pytest.skip("never triggered: the target answered no request of this run with 429")
    for status, headers, body in seen:
        rate_limit_is_well_formed(status, headers, body)
