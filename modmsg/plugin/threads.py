"""The run's threads: made tagged with the run id, in the ledger the moment they exist, deleted at the end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from modmsg.api import AssistantsApi
from modmsg.failures import UntaggedThread
from modmsg.ids import SIBLINGS_REQ
from modmsg.ledger import RUN_TAG, Ledger
from modmsg.plugin.interrupts import Interrupts
from modmsg.transport import TransportError
from modmsg.waiting import mapped

CLEANUP_GIVE_UP = 3
"""Consecutive transport failures after which cleanup stops trying; the ledger keeps the rest for a sweep."""


@dataclass
class ThreadFactory:
    """Creates threads tagged with the run id and deletes every one of them at the end of the session.

    With a ledger (real targets), each id is recorded as soon as the target returns it and each deletion as it
    happens, so whatever a killed run leaves behind can be found by ``modmsg sweep``.
    """

    api: AssistantsApi
    run_id: str
    created: list[str] = field(default_factory=list)
    ledger: Ledger | None = None
    target: str = ""
    interrupts: Interrupts = field(default_factory=Interrupts)
    concurrency: int = 1
    """``--concurrency``: deletions in flight at once at the end of the run."""
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    _senders: list[Callable[[], None]] = field(default_factory=list, init=False, repr=False, compare=False)

    def __repr__(self) -> str:  # the dataclass repr would show the transport and the ids the target handed out
        return f"ThreadFactory(run_id={self.run_id!r}, created={len(self.created)} thread(s))"

    def stops_with(self, stop: Callable[[], None]) -> None:
        """``stop`` ends a sender of this run's threads (tests run ahead): :meth:`stop_and_clean_up` calls it first."""
        self._senders.append(stop)

    def stop_and_clean_up(self) -> tuple[str, ...]:
        """Stop the senders, then delete every thread (:meth:`cleanup`): the ids left behind. The run's own
        interrupt may arrive while a pool waits for its requests in flight (a signal deferred on a pool thread
        reaches the main thread only when that thread's creation is done): the pool is then waited for once more,
        so every thread it made reaches the cleanup, and the interrupt, already recorded (``interrupts.received``),
        is not raised again, so the run still writes its reports, as interrupted."""
        interrupted: KeyboardInterrupt | None = None
        try:
            self._stop_senders()
        except KeyboardInterrupt as exc:
            interrupted = exc
            if self.interrupts.received:
                self._stop_senders()
        leftovers = self.cleanup()
        if interrupted is not None and not self.interrupts.received:
            raise interrupted
        return leftovers

    def _stop_senders(self) -> None:
        for stop in reversed(self._senders):
            stop()

    def create(self, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        """A thread of this run. Only a thread whose createThread answer shows the run's tag is used and later
        deleted: without the tag it may be anybody's (:class:`UntaggedThread`, and its id is left alone)."""
        with self.interrupts.deferred():
            thread = self.api.create_thread({RUN_TAG: self.run_id, **(metadata or {})})
            tag = thread.get("metadata", {}).get(RUN_TAG) if isinstance(thread.get("metadata"), dict) else None
            if tag != self.run_id:
                raise UntaggedThread(
                    req=SIBLINGS_REQ,
                    expected=f"createThread echoes the metadata sent ({RUN_TAG}: {self.run_id})",
                    received=f"{RUN_TAG}: {tag!r}"[:300],
                    detail="The suite neither uses nor deletes a thread it cannot show to be its own.",
                )
            with self._lock:
                self.created.append(thread["id"])
            if self.ledger is not None and isinstance(thread.get("id"), str):
                self.ledger.created(self.run_id, thread["id"], self.target)
        return thread

    def release(self, thread_id: str) -> bool:
        """Delete one thread of the run now (its test is over) and drop it from the end-of-run cleanup; False when
        it could not be deleted (it stays for the cleanup)."""
        if not self._delete(self.api, thread_id, _Failures()):
            return False
        with self._lock:
            if thread_id in self.created:
                self.created.remove(thread_id)
        return True

    def cleanup(self) -> tuple[str, ...]:
        """Delete every thread of the run, newest first, ``concurrency`` at once; return the ids that could not be
        deleted (in that order).

        After ``CLEANUP_GIVE_UP`` transport failures in a row it stops asking (the target is gone), so a dead
        target cannot stretch the end of a run; the ledger keeps what is left (its writers lock the file).
        """
        todo = [thread_id for thread_id in reversed(dict.fromkeys(self.created)) if thread_id]
        self.created.clear()
        api = AssistantsApi(self.api.transport.final())  # deleted also once --max-duration is spent
        failures = _Failures()
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(todo) or 1))) as pool:
            deleted = mapped(pool, lambda thread_id: self._delete(api, thread_id, failures), todo)
        return tuple(thread_id for thread_id, done in zip(todo, deleted, strict=True) if not done)

    def _delete(self, api: AssistantsApi, thread_id: str, failures: _Failures) -> bool:
        if failures.given_up():
            return False
        try:
            status = api.delete_thread(thread_id).status_code
        except TransportError:
            failures.add()
            return False
        failures.reset()
        if status not in (200, 404):
            return False
        if self.ledger is not None:
            self.ledger.deleted(self.run_id, thread_id, self.target)
        return True


class _Failures:
    """Transport failures in a row during a cleanup, across its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def given_up(self) -> bool:
        with self._lock:
            return self._count >= CLEANUP_GIVE_UP

    def add(self) -> None:
        with self._lock:
            self._count += 1

    def reset(self) -> None:
        with self._lock:
            self._count = 0
