"""``modmsg sweep``: delete what crashed runs left behind (the threads :mod:`modmsg.ledger` lists), and nothing else.

``modmsg sweep --base-url URL`` deletes the pending threads of the ledger after ``getThread`` shows that each still
carries the ``modmsg_run`` metadata tag of the run that recorded it. A thread without that tag is never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from modmsg.api import json_or_none
from modmsg.ids import is_safe, path
from modmsg.ledger import RUN_TAG, Entry, Event, Ledger, now
from modmsg.transport import Transport, TransportError

GIVE_UP_AFTER = 3
"""Consecutive transport failures after which a sweep stops asking (the target is down; try again later)."""


@dataclass(frozen=True)
class Swept:
    """What one pending ledger entry turned out to be."""

    entry: Entry
    action: Literal["deleted", "gone", "untagged", "kept", "would delete"]
    detail: str = ""


@dataclass(frozen=True)
class SweepResult:
    results: tuple[Swept, ...]
    other_targets: int
    dry_run: bool

    def count(self, action: str) -> int:
        return sum(r.action == action for r in self.results)

    @property
    def complete(self) -> bool:
        """Every entry settled (a dry run is complete when nothing stood in its way)."""
        return not any(r.action == "kept" for r in self.results)


def _tag(body: Any) -> str | None:
    metadata = body.get("metadata") if isinstance(body, dict) else None
    value = metadata.get(RUN_TAG) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else None


def _settle(transport: Transport, entry: Entry, dry_run: bool) -> Swept:
    if not is_safe(entry.thread):
        return Swept(entry, "kept", "not a thread id; left in the ledger for a human to look at")
    response = transport.request("GET", path("threads", entry.thread))
    if response.status_code == 404:
        return Swept(entry, "gone", "already deleted")
    if response.status_code != 200:
        return Swept(entry, "kept", f"getThread answered {response.status_code}")
    tag = _tag(json_or_none(response))
    if tag != entry.run:
        found = "no modmsg_run tag" if tag is None else f"the tag of another run ({tag})"
        return Swept(entry, "untagged", f"carries {found}; not ours to delete, left alone")
    if dry_run:
        return Swept(entry, "would delete", "carries its run's tag (dry run: not deleted)")
    deleted = transport.request("DELETE", path("threads", entry.thread))
    if deleted.status_code in (200, 404):
        return Swept(entry, "deleted")
    return Swept(entry, "kept", f"deleteThread answered {deleted.status_code}")


def sweep(
    transport: Transport,
    ledger: Ledger,
    target: str,
    *,
    run: str | None = None,
    dry_run: bool = False,
) -> SweepResult:
    """Delete the threads the ledger lists as pending for ``target`` that still carry their run's tag.

    Entries of other targets are left untouched. Threads that are gone or not tagged are settled in the ledger;
    those that could not be checked (transport failure, unexpected status) stay pending for the next sweep.
    """
    pending = ledger.pending(run=run)
    mine = [entry for entry in pending if entry.target == target]
    results: list[Swept] = []
    failures = 0
    for entry in mine:
        if failures >= GIVE_UP_AFTER:
            results.append(Swept(entry, "kept", "not tried: the target stopped answering"))
            continue
        try:
            swept = _settle(transport, entry, dry_run)
            failures = 0
        except TransportError as exc:
            failures += 1
            swept = Swept(entry, "kept", str(exc))
        results.append(swept)
        if not dry_run and swept.action in ("deleted", "gone", "untagged"):
            event: Event = "released" if swept.action == "untagged" else "deleted"
            ledger.append([Entry(event, entry.run, entry.thread, entry.target, now())])
    if not dry_run:
        ledger.compact()
    return SweepResult(results=tuple(results), other_targets=len(pending) - len(mine), dry_run=dry_run)
