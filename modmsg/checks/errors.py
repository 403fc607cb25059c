"""Checks of error responses (ERR area): envelope, documented codes, no 5xx, no echoed credentials."""

from __future__ import annotations

from typing import Any

import requests

from modmsg.checks._common import dump, excerpt, judges
from modmsg.failures import BadErrorEnvelope, SecretEchoed, ServerError, WrongErrorCode

_UNSET: Any = object()


ERROR_CODE_REQ = "MM-ERR-07"
NO_SECRET_REQ = "MM-ERR-09"


def error_envelope_is_valid(response: requests.Response, *, req: str) -> dict[str, Any]:
    """The body is {"error": {message: str, type: str, param: str|null, code: str|null}}; returns the inner object."""
    try:
        body = response.json()
    except ValueError:
        raise BadErrorEnvelope(
            req=req, expected='JSON {"error": {message, type, param, code}}', received=excerpt(response)
        ) from None
    error = body.get("error") if isinstance(body, dict) else None
    problems = []
    if not isinstance(error, dict):
        problems.append("no 'error' object")
    else:
        for key, kinds in (
            ("message", (str,)),
            ("type", (str,)),
            ("param", (str, type(None))),
            ("code", (str, type(None))),
        ):
            if key not in error:
                problems.append(f"'{key}' missing")
            elif not isinstance(error[key], kinds):
                problems.append(f"'{key}' is {type(error[key]).__name__}")
    if problems or not isinstance(error, dict):
        raise BadErrorEnvelope(
            req=req,
            expected='{"error": {message: str, type: str, param: str|null, code: str|null}}',
            received=f"{'; '.join(problems)} in {excerpt(response)}",
        )
    return error


@judges(ERROR_CODE_REQ)
def error_matches(
    response: requests.Response,
    *,
    type: str = "invalid_request_error",
    code: Any = _UNSET,
    param: Any = _UNSET,
) -> None:
    """The envelope carries the documented type, code and param (arguments left out are not judged)."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise WrongErrorCode(req=ERROR_CODE_REQ, expected="an error envelope", received=excerpt(response)) from None
    expected = {"type": type}
    if code is not _UNSET:
        expected["code"] = code
    if param is not _UNSET:
        expected["param"] = param
    actual = {key: error.get(key) for key in expected}
    if actual != expected:
        raise WrongErrorCode(
            req=ERROR_CODE_REQ,
            expected=dump(expected),
            received=dump(actual),
            detail=f"message: {error.get('message')!r}",
        )


def not_a_server_error(response: requests.Response, *, req: str, what: str = "") -> None:
    """The target answered with anything but a 5xx."""
    if response.status_code >= 500:
        raise ServerError(
            req=req,
            expected=f"a 2xx or 4xx answer{' to ' + what if what else ''}",
            received=excerpt(response),
        )


@judges(NO_SECRET_REQ)
def no_secret_echoed(response: requests.Response, secrets: tuple[str, ...]) -> None:
    """No secret value appears in the body or any header value (the evidence shows it redacted)."""
    haystacks = [response.text, *response.headers.values()]
    for secret in secrets:
        if secret and any(secret in text for text in haystacks):
            where = "body" if secret in response.text else "a header"
            raise SecretEchoed(
                req=NO_SECRET_REQ,
                expected="no credential in the response",
                received=f"the API key appears in the {where} (shown redacted in the evidence)",
            )
