"""Checks of metadata semantics, limits and atomicity (META area)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from modmsg.checks._common import dump, excerpt, judges
from modmsg.failures import (
    BoundaryRejected,
    Failure,
    InvalidRequestAccepted,
    LostUpdate,
    MetadataNotEchoed,
    PartialWrite,
    WrongMetadataSemantics,
    WrongStatus,
)

MODE_REQ = "MM-META-04"
NO_LOST_UPDATE_REQ = "MM-META-16"


def _metadata(body: Mapping[str, Any]) -> dict[str, Any]:
    value = body.get("metadata")
    return value if isinstance(value, dict) else {}


def metadata_contains(
    body: Mapping[str, Any],
    sent: Mapping[str, str],
    *,
    req: str,
    where: str = "the modify response",
    failure: type[Failure] = MetadataNotEchoed,
) -> None:
    """Every pair of ``sent`` is in ``body['metadata']`` with exactly the same key and value."""
    stored = _metadata(body)
    wrong = {k: stored.get(k, "(absent)") for k, v in sent.items() if k not in stored or stored[k] != v}
    if wrong:
        raise failure(
            req=req,
            expected=f"{where} to contain {len(sent)} pair(s) verbatim",
            received=f"{len(wrong)} differ: " + "; ".join(f"{dump(k)} -> {dump(v)}" for k, v in wrong.items()),
            detail=f"sent: {dump(dict(sent))}\nstored: {dump(body.get('metadata'))}",
        )


def expected_after(before: Mapping[str, str] | None, sent: Mapping[str, str], mode: str) -> dict[str, str]:
    """The metadata a profile mode predicts after sending ``sent`` on top of ``before``."""
    return {**(before or {}), **sent} if mode == "merge" else dict(sent)


@judges(MODE_REQ)
def metadata_follows_mode(
    before: Mapping[str, str] | None,
    sent: Mapping[str, str],
    after: Mapping[str, Any],
    *,
    mode: str,
) -> None:
    """Under merge the result is before+sent; under replace exactly sent; ``any`` accepts either."""
    actual = after.get("metadata") or {}
    modes = ("merge", "replace") if mode == "any" else (mode,)
    if any(actual == expected_after(before, sent, m) for m in modes):
        return
    raise WrongMetadataSemantics(
        req=MODE_REQ,
        expected=f"{' or '.join(modes)} semantics: {dump(expected_after(before, sent, modes[0]))}",
        received=dump(actual),
        detail=f"before: {dump(before)}\nsent: {dump(dict(sent))}",
    )


SUCCESS_REQ = "MM-RESP-01"
"""A valid modify that succeeds with another 2xx than 200 (201, 202 ...) breaks this requirement, not the one
whose input it was: the status of a successful modify is judged once, there."""


def accepted(response: requests.Response, *, req: str, what: str) -> None:
    """A request at a limit (or otherwise valid) is accepted with 200.

    A refusal or a crash fails ``req``; a success answered with another 2xx fails MM-RESP-01 (so ``req`` is
    BLOCKED by it, not failed for a defect it does not judge).
    """
    status = response.status_code
    if status == 200:
        return
    if 200 <= status < 300:
        raise WrongStatus(req=SUCCESS_REQ, expected=f"200 for {what}", received=excerpt(response))
    failure = BoundaryRejected if 400 <= status < 500 else WrongStatus
    raise failure(req=req, expected=f"200 for {what}", received=excerpt(response))


def rejected(
    response: requests.Response,
    *,
    req: str,
    what: str,
    statuses: tuple[int, ...] = (400,),
    failure: type[InvalidRequestAccepted] = InvalidRequestAccepted,
) -> None:
    """A request that must be refused is rejected with one of ``statuses``.

    ``failure`` names what was checked when the target accepted it (a 2xx): ``LimitNotEnforced`` for a limit,
    ``UnknownFieldAccepted`` for an unknown body key ...; any other wrong status is ``WrongStatus``.
    """
    status = response.status_code
    if status in statuses:
        return
    kind: type[Failure] = failure if 200 <= status < 300 else WrongStatus
    raise kind(req=req, expected=f"{' or '.join(map(str, statuses))} for {what}", received=excerpt(response))


def state_unchanged(before: Mapping[str, Any], after: Mapping[str, Any], *, req: str, what: str) -> None:
    """A rejected request left the stored message exactly as it was."""
    if dict(before) != dict(after):
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        raise PartialWrite(
            req=req,
            expected=f"the message unchanged after {what}",
            received="; ".join(f"{k}: {dump(before.get(k))} -> {dump(after.get(k))}" for k in changed),
        )


@judges(NO_LOST_UPDATE_REQ)
def no_update_lost(final: Mapping[str, Any], expected: Mapping[str, str]) -> None:
    """Every concurrently written pair is in the final stored metadata."""
    stored = _metadata(final)
    lost = sorted(k for k, v in expected.items() if stored.get(k) != v)
    if lost:
        raise LostUpdate(
            req=NO_LOST_UPDATE_REQ,
            expected=f"all {len(expected)} concurrently written keys stored",
            received=f"{len(lost)} lost: {', '.join(lost[:10])}",
        )
