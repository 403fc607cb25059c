"""listMessages: query parsing (limit, order, after, before, run_id) and paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.datastructures import QueryParams

from modmsg.reference.errors import RequestFailed, bad_request, invalid_type, invalid_value
from modmsg.reference.parsing import ASCII_INTEGER
from modmsg.reference.store import Message


@dataclass(frozen=True, kw_only=True)
class ListQuery:
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None
    run_id: str | None = None


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return 20
    if not ASCII_INTEGER.fullmatch(raw):
        raise RequestFailed(invalid_type("limit", "an integer", raw))
    try:
        limit = int(raw)
    except ValueError:  # more digits than int() accepts: out of range either way
        limit = -(10**9) if raw.startswith("-") else 10**9
    if 1 <= limit <= 100:
        return limit
    below = limit < 1
    side, bound = ("below minimum", ">= 1") if below else ("above maximum", "<= 100")
    message = f"Invalid 'limit': integer {side} value. Expected a value {bound}, but got {raw} instead."
    code = "integer_below_min_value" if below else "integer_above_max_value"
    raise RequestFailed(bad_request(message, param="limit", code=code))


def parse_list_query(params: QueryParams) -> ListQuery:
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise RequestFailed(invalid_value("order", order, ("asc", "desc")))
    return ListQuery(
        limit=parse_limit(params.get("limit")),
        order="asc" if order == "asc" else "desc",
        after=params.get("after") or None,
        before=params.get("before") or None,
        run_id=params.get("run_id") or None,
    )


def page(messages: list[Message], query: ListQuery) -> tuple[list[Message], bool]:
    """One page of ``messages`` (ascending) for ``query``; returns the page and ``has_more``."""
    items = [m for m in messages if query.run_id is None or m.run_id == query.run_id]
    if query.order == "desc":
        items.reverse()
    position = {message.id: index for index, message in enumerate(items)}
    start, end = 0, len(items)
    for cursor in (query.after, query.before):
        if cursor is not None and cursor not in position:
            return [], False
    if query.after is not None:
        start = position[query.after] + 1
    if query.before is not None:
        end = position[query.before]
    window = items[start:end]
    has_more = len(window) > query.limit
    if query.before is not None and query.after is None:
        return window[-query.limit :], has_more
    return window[: query.limit], has_more
