"""Hypothesis tests drawn in lanes: independent Hypothesis runs of one test, ``--concurrency`` of them at once,
their results read in lane order (``--concurrency``).

A test whose examples share nothing (the MM-SEQ sequences, each on threads of its own; the metadata-limit cases,
each lane on a message of its own; the generated round trips, each on a new message) draws its ``examples`` in
``lane_sizes(examples)`` Hypothesis runs instead of one: lane ``i`` draws its share with the seed of
``lane_label(label, i)``, derived from the run's seed. How many lanes there are and what each draws is set by the
test's size alone, never by ``--concurrency``; up to ``--concurrency`` lanes run at once, one thread each, lower
lanes first, and a test reads the lanes' results in lane order: it reports the first lane that failed, whose
Hypothesis run shrank its own failure. That is what ``--concurrency 1`` (the lanes one after the other, on the
calling thread) reports too, with the same evidence in the same order.

One lane runs Python at a time: a lane holds the lanes' lock except while its requests are on the wire (its
transport, ``own_transport``, lets go of it there), so the lanes overlap their round trips, not their draws.
Hypothesis parses source while it draws (lambda descriptions, constants, tracebacks), and CPython 3.11 fails
two parses at once on two threads ("SystemError: AST constructor recursion depth mismatch"); the GIL keeps the
draws on one core anyway.

A lane whose result can no longer be reported is cut at its next ``check`` (``LaneCut``): a lane after one that
failed, or every lane on an interrupt. Lanes before a failing one always run to their end: one of them may fail
too, and then it is the one reported. An interrupt (Ctrl-C, SIGTERM) on the calling thread cuts every lane and
waits for each to finish the exchange in flight before it goes on, so the run's cleanup sees every thread made.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import requests

from modmsg.evidence import Recorder
from modmsg.generation.cases import derive_seed
from modmsg.generation.pool import CASES_PER_LANE, lanes_for
from modmsg.transport import Transport
from modmsg.waiting import WAKE, result_of

Result = TypeVar("Result")


def lane_sizes(examples: int, per_lane: int = CASES_PER_LANE) -> list[int]:
    """The examples each lane draws: ``examples`` in ``examples // per_lane`` lanes (1 to ``pool.STREAM_LANES``, 8), the
    first lanes one more when it does not divide. Set by the test's size alone, never by ``--concurrency``."""
    lanes = lanes_for(examples, per_lane)
    share, extra = divmod(examples, lanes)
    return [share + (1 if index < extra else 0) for index in range(lanes)]


def lane_label(label: str, lane: int) -> str:
    """The seed label of a lane's Hypothesis run: the test's own label for the first lane."""
    return label if lane == 0 else f"{label}@{lane}"


class LaneCut(BaseException):
    """Ends a lane whose result can no longer be reported. A BaseException, so Hypothesis passes it through."""


@dataclass(frozen=True)
class Ran(Generic[Result]):
    """How a lane ended: its value, or the exception it raised, or cut before its end."""

    value: Result | None = None
    error: BaseException | None = None
    cut: bool = False


class Lanes:
    """Runs ``count`` lanes, ``concurrency`` at once (lower lanes first), and cuts those whose result is not needed."""

    def __init__(self, count: int, concurrency: int) -> None:
        if count < 1 or concurrency < 1:
            raise ValueError("lanes need at least one lane and one worker")
        self.count = count
        self._workers = min(count, concurrency)
        self._lock = threading.Lock()
        self._cut_from = count
        """Lanes from this index on are cut."""
        self._running = 0
        self._idle = threading.Condition(self._lock)
        self._python = threading.Lock()
        """Held by the lane that runs Python (draws, judges); let go while a lane's request is on the wire."""

    def cut_after(self, lane: int) -> None:
        """Lanes after ``lane`` are no longer needed (it failed: theirs would not be reported)."""
        with self._lock:
            self._cut_from = min(self._cut_from, lane + 1)

    def stop(self) -> None:
        """Every lane stops at its next check (an interrupt)."""
        with self._lock:
            self._cut_from = 0

    def is_cut(self, lane: int) -> bool:
        with self._lock:
            return lane >= self._cut_from

    def check(self, lane: int) -> None:
        """Raise ``LaneCut`` when ``lane`` is cut: lanes call it before each example and each request."""
        if self.is_cut(lane):
            raise LaneCut(f"lane {lane} is no longer needed")

    @contextmanager
    def on_the_wire(self) -> Iterator[None]:
        """A lane's request on the wire (or its back-off): another lane may run Python meanwhile."""
        self._python.release()
        try:
            yield
        finally:
            self._python.acquire()

    def run(self, work: Callable[[int], Result]) -> list[Ran[Result]]:
        """``work(lane)`` for every lane, its outcomes in lane order. An exception ends its lane and cuts the lanes
        after it; an interrupt on the calling thread cuts every lane, waits for them, and is raised."""
        if self._workers == 1:  # one after the other, on this thread: what any concurrency reports
            return [self._one(work, lane) for lane in range(self.count)]
        executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="modmsg-lane")
        try:
            futures: list[Future[Ran[Result]]] = [executor.submit(self._one, work, lane) for lane in range(self.count)]
            return [result_of(future) for future in futures]
        except BaseException:
            self._settle()
            raise
        finally:
            executor.shutdown(wait=False, cancel_futures=True)  # every lane has ended, or ends when it starts

    def _settle(self) -> None:
        """Cut every lane and wait until none runs (a lane that starts later sees it is cut and does nothing);
        also when the interrupt came while a lane's thread was being started."""
        self.stop()
        with self._idle:
            while self._running:
                self._idle.wait(WAKE)

    def _one(self, work: Callable[[int], Result], lane: int) -> Ran[Result]:
        with self._python:
            with self._lock:
                if lane >= self._cut_from:
                    return Ran(cut=True)
                self._running += 1
            try:
                return Ran(value=work(lane))
            except LaneCut:
                return Ran(cut=True)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # pytest's skip or fail too: an outcome of its lane, read in lane order
                self.cut_after(lane)
                return Ran(error=exc)
            finally:
                with self._idle:
                    self._running -= 1
                    self._idle.notify_all()


@dataclass(frozen=True)
class Lane:
    """One lane of a Hypothesis test: which, how many examples, its seed label, and a transport of its own whose
    recorder keeps the lane's exchanges (the wire and its limits are the run's)."""

    index: int
    size: int
    label: str
    seed: int
    transport: Transport = field(repr=False)
    lanes: Lanes = field(repr=False)

    def check(self) -> None:
        """Raise ``LaneCut`` once this lane's result can no longer be reported (call it before each example)."""
        self.lanes.check(self.index)


def own_transport(transport: Transport, lanes: Lanes) -> Transport:
    """``transport`` for one of ``lanes``: the same session, throttle, budget and 429 list, its own evidence
    recorder, and each request (its retries and back-off included) sent without the lanes' lock."""
    lane = copy.copy(transport)
    lane.recorder = Recorder(limit=transport.recorder.limit)
    send = lane._send

    def send_on_the_wire(prepared: requests.PreparedRequest) -> requests.Response:
        with lanes.on_the_wire():
            return send(prepared)

    lane._send = send_on_the_wire  # type: ignore[method-assign]  # send() and request() both go through it
    return lane


def run_hypothesis_lanes(
    test: Callable[[Lane], None],
    *,
    examples: int,
    seed: int,
    label: str,
    concurrency: int,
    transport: Transport,
    per_lane: int = CASES_PER_LANE,
) -> None:
    """One Hypothesis test drawn in lanes: ``test(lane)`` draws ``lane.size`` examples seeded from ``lane.seed``
    and raises its failure (shrunk, replayed last, as Hypothesis does). The lanes' exchanges go to
    ``transport``'s recorder (the test's evidence) in lane order, up to the first lane that failed, whose
    failure is raised: what one Hypothesis run after the other gives."""
    sizes = lane_sizes(examples, per_lane)
    lanes = Lanes(len(sizes), concurrency)
    made = [
        Lane(index, size, lane_label(label, index), derive_seed(seed, lane_label(label, index)), t, lanes)
        for index, size in enumerate(sizes)
        for t in (own_transport(transport, lanes),)
    ]
    ran = lanes.run(lambda index: test(made[index]))
    for lane, outcome in zip(made, ran, strict=True):
        if outcome.cut:  # only lanes after a failing one are cut: it was raised already
            break
        for exchange in lane.transport.recorder.snapshot():
            transport.recorder.add(exchange)
        if outcome.error is not None:
            raise outcome.error
