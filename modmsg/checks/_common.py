"""Helpers shared by the checks: short, bounded descriptions of what the target sent."""

from __future__ import annotations

import json
from typing import Any

import requests

EXCERPT = 600


def excerpt(response: requests.Response) -> str:
    content_type = response.headers.get("content-type", "no content type")
    body = response.text
    if len(body) > EXCERPT:
        body = body[:EXCERPT] + f"... ({len(response.content)} bytes)"
    return f"{response.status_code} {content_type}: {body}"


def dump(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."
