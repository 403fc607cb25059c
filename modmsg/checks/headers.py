"""Checks of response headers (HDR area)."""

from __future__ import annotations

from collections.abc import Mapping

import requests

from modmsg.checks._common import judges
from modmsg.failures import BadErrorEnvelope, MissingHeader, WrongContentType, WrongValue
from modmsg.wire import loads as bounded_json

REQUEST_ID_REQ = "MM-HDR-03"
RATE_LIMIT_REQ = "MM-HDR-04"


def content_type_is_json(response: requests.Response, *, req: str) -> None:
    """The media type of the response is application/json."""
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise WrongContentType(
            req=req,
            expected="Content-Type: application/json",
            received=f"Content-Type: {media_type or '(none)'} on {response.status_code}",
        )


@judges(REQUEST_ID_REQ)
def has_request_id(response: requests.Response) -> None:
    """The response carries a non-empty ``x-request-id`` header."""
    if not response.headers.get("x-request-id", "").strip():
        raise MissingHeader(
            req=REQUEST_ID_REQ,
            expected="a non-empty x-request-id header",
            received=f"headers: {', '.join(sorted(response.headers))}",
        )


@judges(RATE_LIMIT_REQ)
def rate_limit_is_well_formed(status: int, headers: Mapping[str, str], body: str) -> None:
    """A 429 carries the error envelope and, if Retry-After is present, an integer ≥ 1."""
    lowered = {k.lower(): v for k, v in headers.items()}
    retry_after = lowered.get("retry-after")
    if retry_after is not None and (not retry_after.strip().isdigit() or int(retry_after) < 1):
        raise WrongValue(
            req=RATE_LIMIT_REQ, expected="Retry-After an integer ≥ 1", received=f"Retry-After: {retry_after}"
        )
    try:
        error = bounded_json(body).get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict) or not {"message", "type", "param", "code"} <= set(error):
        raise BadErrorEnvelope(
            req=RATE_LIMIT_REQ, expected="a 429 with the error envelope", received=f"{status}: {body[:300]}"
        )
