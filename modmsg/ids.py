"""Ids the target hands out, before they go into a path: validated, and every path segment percent-encoded.

An id is text the target chose. Put into a path as it came, ``thread_x/../../files/file-victim`` becomes
``DELETE /v1/files/file-victim`` (``urllib3`` resolves dot segments before sending). So every id taken from a
response is checked against :data:`ID_PATTERN` (the alphabet of OpenAI's ids) where it enters the suite, a refused
id is a finding about the target (:class:`UnsafeId`), and every segment of every path the suite builds is
percent-encoded by :func:`path` (dot segments included), whatever it holds.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard
from urllib.parse import quote

from modmsg.failures import UnsafeId

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""ASCII letters, digits, ``_`` and ``-``, 1 to 128 characters."""
ID_RULE = "an id of ASCII letters, digits, '_' and '-' (1 to 128 characters)"
SIBLINGS_REQ = "MM-RESP-09"
"""The requirement a sibling call breaks with an unusable answer: sibling calls return valid bodies."""


def is_safe(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def segment(value: str) -> str:
    """One path segment, percent-encoded (``/``, ``?``, ``#``, ``%`` ...); ``.`` and ``..`` encoded too."""
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def path(*segments: str) -> str:
    return "/".join(segment(part) for part in segments)


def checked_id(body: dict[str, Any], what: str, key: str = "id") -> str:
    """``body[key]`` when it is a safe id; else :class:`UnsafeId` (MM-RESP-09) naming the call that returned it."""
    value = body.get(key)
    if not is_safe(value):
        shown = repr(value)
        raise UnsafeId(
            req=SIBLINGS_REQ,
            expected=f"{what} returns {key!r} as {ID_RULE}",
            received=f"{key}: {shown[:200]}{'...' if len(shown) > 200 else ''}",
            detail="The suite puts no such id into a path (it could name another object, e.g. by '..' segments).",
        )
    return value
