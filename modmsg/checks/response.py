"""Checks of a successful modify (RESP area) and of the sibling calls' bodies."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any

import requests
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from modmsg.checks._common import dump, excerpt, judges
from modmsg.failures import FieldChanged, MissingField, NotJson, SchemaViolation, WrongStatus, WrongValue
from modmsg.spec import load_overlaid

NULLABLE_FIELDS = (
    "incomplete_details",
    "completed_at",
    "incomplete_at",
    "assistant_id",
    "run_id",
    "attachments",
    "metadata",
)
CLOCK_WINDOW = 86_400
ROOT = "urn:modmsg:spec"
MAX_VIOLATIONS = 20
VIOLATION_CHARS = 200


NULLABLE_REQ = "MM-RESP-03"
CREATED_AT_REQ = "MM-RESP-06"
UNCHANGED_FIELDS_REQ = "MM-RESP-07"


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    document = load_overlaid()
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry = Registry().with_resource(ROOT, resource)
    return Draft202012Validator({"$ref": f"{ROOT}#/components/schemas/{schema_name}"}, registry=registry)


def status_is(response: requests.Response, expected: int | Collection[int], *, req: str) -> None:
    """The response status is one of ``expected``."""
    allowed = {expected} if isinstance(expected, int) else set(expected)
    if response.status_code not in allowed:
        raise WrongStatus(req=req, expected=" or ".join(map(str, sorted(allowed))), received=excerpt(response))


def json_body(response: requests.Response, *, req: str) -> Any:
    """The body parses as JSON; returns it."""
    try:
        return response.json()
    except ValueError:
        raise NotJson(req=req, expected="a JSON body", received=excerpt(response)) from None


def ok_json(response: requests.Response, *, req: str) -> dict[str, Any]:
    """200 with a JSON object body."""
    status_is(response, 200, req=req)
    body = json_body(response, req=req)
    if not isinstance(body, dict):
        raise NotJson(req=req, expected="a JSON object", received=dump(body))
    return body


def _violation(error: ValidationError) -> str:
    where = "/".join(map(str, error.absolute_path)) or "(root)"
    return f"at {where}: {error.message[:VIOLATION_CHARS]}"


def matches_schema(body: Any, schema_name: str, *, req: str) -> None:
    """The body validates against ``#/components/schemas/NAME``; a failure lists every violation (20 at most).

    Beyond ``MAX_VIOLATIONS`` the failure says how many more there are.
    """
    errors = sorted(
        _validator(schema_name).iter_errors(body), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    if errors:
        shown = [_violation(error) for error in errors[:MAX_VIOLATIONS]]
        more = len(errors) - len(shown)
        raise SchemaViolation(
            req=req,
            expected=f"a body valid against {schema_name}",
            received=f"{len(errors)} violation(s): " + "; ".join(shown) + (f"; and {more} more" if more else ""),
            detail=f"body: {dump(body)}",
        )


@judges(NULLABLE_REQ)
def nullable_fields_are_present(body: Mapping[str, Any]) -> None:
    """Every nullable MessageObject field is present (null when empty), never omitted."""
    missing = [name for name in NULLABLE_FIELDS if name not in body]
    if missing:
        raise MissingField(
            req=NULLABLE_REQ,
            expected=f"keys {', '.join(NULLABLE_FIELDS)} present (null when empty)",
            received=f"missing: {', '.join(missing)}",
            detail=f"body: {dump(body)}",
        )


def field_equals(body: Mapping[str, Any], name: str, expected: Any, *, req: str) -> None:
    """``body[name]`` is present and equals ``expected``."""
    if name not in body or body[name] != expected:
        received = dump(body[name]) if name in body else "(absent)"
        raise WrongValue(req=req, expected=f"{name} = {dump(expected)}", received=f"{name} = {received}")


@judges(CREATED_AT_REQ)
def created_at_is_unix_seconds(body: Mapping[str, Any], *, now: float | None = None) -> None:
    """``created_at`` is an integer within a day of the suite's clock (seconds, not ms)."""
    value = body.get("created_at")
    now = time.time() if now is None else now
    if isinstance(value, bool) or not isinstance(value, int) or abs(value - now) > CLOCK_WINDOW:
        raise WrongValue(
            req=CREATED_AT_REQ,
            expected=f"created_at an integer within a day of {int(now)} (Unix seconds)",
            received=f"created_at = {dump(value)}",
        )


@judges(UNCHANGED_FIELDS_REQ)
def only_metadata_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Every field except ``metadata`` is the same before and after a modify."""
    changed = sorted(k for k in set(before) | set(after) if k != "metadata" and before.get(k) != after.get(k))
    if changed:
        raise FieldChanged(
            req=UNCHANGED_FIELDS_REQ,
            expected="every field except metadata unchanged",
            received="; ".join(f"{k}: {dump(before.get(k))} -> {dump(after.get(k))}" for k in changed),
        )
