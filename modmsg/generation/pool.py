"""Sending a stream's cases concurrently, with verdicts a sequential run would give (``--concurrency``).

A stream's cases are spread over ``lanes_for(--max-examples)`` lanes (at most ``STREAM_LANES``), each a message of
its own: the n-th case of the stream goes to lane ``n % lanes`` whatever ``--concurrency`` is, and a lane sends its
cases one at a time in draw order. So every message sees the same requests in the same order at any concurrency,
and a deterministic target answers each case the same way. Cases are drawn by Hypothesis one at a time, as before,
and sent a window of ``WINDOW`` cases at a time: up to ``--concurrency`` lanes send their cases of a window at once
(one connection each), while the next window is drawn; the window's answers are then judged in draw order on the
calling thread. The first failing case per requirement, the evidence and its order are therefore those of
``--concurrency 1``. A window is judged before the next one is sent, so at most two windows of cases are held:
memory stays flat.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from schemathesis import Case

from modmsg.evidence import Exchange
from modmsg.transport import RequestDropped
from modmsg.waiting import result_of

STREAM_LANES = 8
"""The most messages a stream's cases are spread over; also the most cases of a stream in flight at once."""
CASES_PER_LANE = 4
"""A lane costs a request (its message), so a stream of fewer than ``STREAM_LANES * CASES_PER_LANE`` cases has
fewer lanes: ``--max-examples 3`` (the smoke) sends every case to one message, as a sequential run would."""


def lanes_for(cases: int, per_lane: int = CASES_PER_LANE) -> int:
    """The lanes of a stream of ``cases`` cases (or of a test drawn in lanes, ``modmsg.generation.lanes``, of
    ``per_lane`` examples each): set by its size alone, never by ``--concurrency``."""
    return max(1, min(STREAM_LANES, cases // per_lane))


WINDOW = 4 * STREAM_LANES
"""Cases sent per window: four per lane, so a lane keeps its connection busy while the next window is drawn."""

Item = TypeVar("Item")
Lane_ = TypeVar("Lane_")
Run = TypeVar("Run")


class Skipped(Exception):
    """A case not sent because the window was stopped (an earlier error in another lane, or an interrupt)."""


@dataclass(frozen=True)
class Outcome(Generic[Item]):
    """One case of a window: the item drawn, what sending it gave (a value, or the exception it raised) and the
    exchanges it made (its own recorder's, in the order they were made)."""

    item: Item
    result: object
    exchanges: tuple[Exchange, ...]


Send = Callable[[Lane_, Item], tuple[object, tuple[Exchange, ...]]]
"""Send one item through one lane: (the result or the exception raised, the exchanges). Never raises."""


class LanePool(Generic[Lane_, Item]):
    """Windows of items sent through ``lanes`` (item n to lane n % lanes), ``workers`` lanes at once."""

    def __init__(
        self,
        lanes: Sequence[Lane_],
        workers: int,
        send: Send[Lane_, Item],
        *,
        goes_on: tuple[type[BaseException], ...] = (),
    ) -> None:
        """``goes_on``: exceptions that are an outcome of their case only (a request the target dropped); any other
        stops the pool, the window's later cases skipped."""
        if not lanes or workers < 1:
            raise ValueError("a lane pool needs at least one lane and one worker")
        self._lanes = tuple(lanes)
        self._send = send
        self._goes_on = goes_on
        self._executor = ThreadPoolExecutor(max_workers=min(workers, len(lanes)), thread_name_prefix="modmsg-lane")
        self._stop = threading.Event()
        self._sent = 0
        self._pending: list[tuple[list[int], Future[list[Outcome[Item]]]]] = []
        self._window: list[Item] = []

    def add(self, item: Item) -> bool:
        """Queue one drawn item; True when the window is full (the caller then calls :meth:`flush`)."""
        self._window.append(item)
        return len(self._window) >= WINDOW

    def flush(self, judge: Callable[[list[Outcome[Item]]], None]) -> None:
        """Judge the window sent before (``judge`` gets its outcomes in draw order), then send the queued one. When
        ``judge`` raises (the stream is settled, or failed), the queued window is not sent."""
        judge(self.drain())
        window, self._window = self._window, []
        by_lane: dict[int, list[int]] = {}
        for offset in range(len(window)):
            by_lane.setdefault((self._sent + offset) % len(self._lanes), []).append(offset)
        self._sent += len(window)
        self._pending = [
            (offsets, self._executor.submit(self._run_lane, self._lanes[lane], [window[o] for o in offsets]))
            for lane, offsets in by_lane.items()
        ]

    def drain(self) -> list[Outcome[Item]]:
        """Wait for the window being sent and return its outcomes in draw order."""
        pending, self._pending = self._pending, []
        placed: dict[int, Outcome[Item]] = {}
        for offsets, future in pending:
            outcomes: list[Outcome[Item]] = result_of(future)
            for offset, outcome in zip(offsets, outcomes, strict=True):
                placed[offset] = outcome
        return [placed[offset] for offset in sorted(placed)]

    def discard(self) -> None:
        """Forget the queued window (the stream is settled: nothing drawn after it is sent)."""
        self._window = []

    def close(self) -> None:
        """Stop: lanes finish the exchange in flight (bounded by its deadline) and send nothing more."""
        self._stop.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _run_lane(self, lane: Lane_, items: list[Item]) -> list[Outcome[Item]]:
        outcomes = []
        for item in items:
            if self._stop.is_set():
                outcomes.append(Outcome(item, Skipped("stopped before it was sent"), ()))
                continue
            result, exchanges = self._send(lane, item)
            if isinstance(result, BaseException) and not isinstance(result, self._goes_on):
                self._stop.set()
            outcomes.append(Outcome(item, result, exchanges))
        return outcomes


class StreamSettled(BaseException):
    """Ends a stream early. A BaseException, so Hypothesis passes it through instead of shrinking it."""


class StreamFailed(BaseException):
    """Carries the error of a case that got no answer out of the stream's Hypothesis run, unshrunk and unreplayed."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Drawing:
    """A case of a stream as drawn: the case, and where (the Hypothesis run's label and size, the call in it)."""

    case: Case
    batch: str
    size: int
    call: int


@dataclass
class Lane(Generic[Run]):
    """One lane of a stream: the run on the lane's message, once its first case is sent."""

    run: Run | None = None


def first_error(outcomes: Sequence[Outcome[Drawing]]) -> BaseException:
    """The error that stopped a window: the first in draw order that is not a skip or a dropped request."""
    errors = [o.result for o in outcomes if isinstance(o.result, BaseException)]
    real = [e for e in errors if not isinstance(e, Skipped | RequestDropped)]
    return (real or errors)[0]
