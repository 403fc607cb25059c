"""Checks name what they checked: the failure type of a refused check, the requirement a precondition blames,
and every schema violation of a body."""

from __future__ import annotations

import json

import pytest
import requests

from modmsg.checks.metadata import accepted, rejected
from modmsg.checks.response import MAX_VIOLATIONS, matches_schema
from modmsg.failures import (
    BoundaryRejected,
    CrossThreadAccess,
    InvalidRequestAccepted,
    LimitNotEnforced,
    SchemaViolation,
    WrongStatus,
)
from modmsg.scenarios import SCENARIOS


def answer(status: int, body: object = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers["content-type"] = "application/json"
    response._content = json.dumps(body if body is not None else {}).encode()
    return response


def test_an_accepted_request_is_named_by_what_was_checked():
    with pytest.raises(CrossThreadAccess) as raised:
        rejected(answer(200), req="MM-ERR-03", what="another thread", statuses=(404,), failure=CrossThreadAccess)
    assert raised.value.req == "MM-ERR-03"
    assert raised.value.title == "Message modified through a thread it does not belong to"
    with pytest.raises(InvalidRequestAccepted) as plain:
        rejected(answer(200), req="MM-REQ-02", what="a truncated body")
    assert type(plain.value) is InvalidRequestAccepted and plain.value.title == "Invalid request accepted"


def test_a_wrong_refusal_is_a_wrong_status_not_an_acceptance():
    with pytest.raises(WrongStatus) as raised:
        rejected(answer(403), req="MM-REQ-07", what="a wrong key", statuses=(401,), failure=LimitNotEnforced)
    assert raised.value.req == "MM-REQ-07"


def test_a_valid_modify_answered_201_blames_mm_resp_01_and_a_refusal_the_own_requirement():
    with pytest.raises(WrongStatus) as created:
        accepted(answer(201), req="MM-META-05", what="16 keys")
    assert created.value.req == "MM-RESP-01"
    with pytest.raises(BoundaryRejected) as refused:
        accepted(answer(400), req="MM-META-05", what="16 keys")
    assert refused.value.req == "MM-META-05"


def test_every_error_scenario_names_the_requirement_that_judges_its_rejection():
    assert all(scenario.req.startswith("MM-") for scenario in SCENARIOS)
    assert {s.req for s in SCENARIOS if s.status == 404} == {"MM-ERR-01", "MM-ERR-02", "MM-ERR-03"}


def test_a_schema_failure_lists_every_violation_not_only_the_first():
    body = {"id": 1, "object": "message", "created_at": "now"}
    with pytest.raises(SchemaViolation) as raised:
        matches_schema(body, "MessageObject", req="MM-RESP-02")
    received = raised.value.received
    assert "at id: 1 is not of type 'string'" in received
    assert "at object: 'message' is not one of ['thread.message']" in received
    assert "at created_at: 'now' is not of type 'integer'" in received
    assert "'attachments' is a required property" in received
    assert received.startswith(f"{received.count('at ')} violation(s): ")


def test_a_schema_failure_shows_at_most_max_violations_and_counts_the_rest():
    body = {"object": "list", "data": [{}, {}, {}], "first_id": None, "last_id": None, "has_more": False}
    with pytest.raises(SchemaViolation) as raised:
        matches_schema(body, "ListMessagesResponse", req="MM-RESP-09")
    received = raised.value.received
    total = int(received.split(" ", 1)[0])
    assert total > MAX_VIOLATIONS
    assert received.count("; at ") == MAX_VIOLATIONS - 1
    assert received.endswith(f"; and {total - MAX_VIOLATIONS} more")


def test_every_failure_type_carries_its_own_sample_for_a_catalogued_requirement():
    import inspect

    from modmsg import failures
    from modmsg.requirements import load_catalogue

    ids = {requirement.id for requirement in load_catalogue().requirements}
    types = [c for _, c in inspect.getmembers(failures, inspect.isclass) if issubclass(c, failures.Failure)]
    for cls in types:
        if cls is failures.Failure:
            continue
        assert "sample" in vars(cls), f"{cls.__name__} has no sample of its own"
        req, expected, received = cls.sample
        assert req in ids and expected and received, cls.__name__
        assert str(cls(req=req, expected=expected, received=received)).startswith(f"[{req}] {cls.title}")
