"""Helpers shared by the checks: the declaration of what a check judges, and short, bounded descriptions of what
the target sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import requests

EXCERPT = 600
Check = TypeVar("Check", bound=Callable[..., Any])


def judges(req: str) -> Callable[[Check], Check]:
    """Declare the one requirement a check judges, whoever calls it: the check raises its failures with ``req``,
    its callers name no requirement, and the generated docs list it under ``req``.

    A check without this declaration is general (a status, a schema, an accepted or rejected request): it judges
    the requirement its caller names with ``req=``.
    """

    def declare(check: Check) -> Check:
        check.judges = req  # type: ignore[attr-defined]  # read back by judged_by
        return check

    return declare


def judged_by(check: Callable[..., Any]) -> str | None:
    """The requirement ``check`` declares with :func:`judges`; None for a general check."""
    return getattr(check, "judges", None)


def excerpt(response: requests.Response) -> str:
    content_type = response.headers.get("content-type", "no content type")
    body = response.text
    if len(body) > EXCERPT:
        body = body[:EXCERPT] + f"... ({len(response.content)} bytes)"
    return f"{response.status_code} {content_type}: {body}"


def dump(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."
