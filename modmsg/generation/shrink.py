"""Shrinking: a stream's failing case, made as small as a bounded Hypothesis shrink can while it fails its
requirement the same way (the same failure type). A verdict never changes: only its example does.

The shrink sees the run only through ``Replay`` (draw the stream again, send a case to a fresh message, judge it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from modmsg.failures import Failure
from modmsg.generation.judges import Judge
from modmsg.generation.streams import Drawn, Finding
from modmsg.transport import RequestDropped, Transport, TransportError


def fingerprint(case: Case) -> str:
    """What identifies a drawn case whatever message it goes to (the path is pinned to the live message, so it is
    left out): a replay of the stream must draw the case it failed on before that case is shrunk."""
    parts = (case.method.upper(), case.media_type, case.body, case.query, sorted((case.headers or {}).items()))
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ShrinkBudget:
    """What shrinking one requirement's failing case may spend. A new attempt starts only while fewer than
    ``requests`` requests (the fresh message, every re-sent case and its snapshot GETs) and ``seconds`` (the
    replay of the stream up to the case included) are spent; then the smallest failing case so far is reported.
    The request cap makes a shrink the same for a seed against a deterministic target (a 429 answer is not counted:
    when one comes is a matter of timing); the time cap only guards against a slow one."""

    requests: int = 100
    seconds: float = 20.0


SHRINK_BUDGET = ShrinkBudget()


class _Reproduced(Exception):
    """Raised where a case fails the requirement being shrunk the same way: Hypothesis shrinks on it."""


class _ShrinkStopped(BaseException):
    """Ends a shrink (budget spent, the case did not fail again, the target stopped answering): a BaseException,
    so Hypothesis passes it through; the smallest failing case found so far is kept."""


@dataclass
class _Shrink:
    """The state of one shrink: what it started from, what it spent, the smallest failing case so far."""

    original: Finding
    drawn: Drawn
    budget: ShrinkBudget
    deadline: float
    calls: int = 0
    requests: int = 0
    best: Finding | None = None
    stopped: str = ""

    def check_budget(self) -> None:
        if self.requests >= self.budget.requests:
            raise _ShrinkStopped(f"stopped at the cap of {self.budget.requests} requests")
        if time.monotonic() > self.deadline:
            raise _ShrinkStopped(f"stopped at the cap of {self.budget.seconds:g} s")

    def result(self) -> Finding:
        """The smallest case that failed the requirement the same way, or the case as drawn, with a line saying
        which and why. A verdict never changes: only its example does."""
        original, best, req = self.original, self.best, self.original.failure.req
        spent = f"{self.requests} request{'' if self.requests == 1 else 's'}"
        if best is None or best.drawn is None:
            why = self.stopped or f"the case did not fail {req} again on a fresh message"
            return _noted(original, f"Not shrunk ({why}; {spent}): the case as drawn.")
        if best.drawn.fingerprint == self.drawn.fingerprint:
            why = f"; {self.stopped}" if self.stopped else ""
            return _noted(original, f"Not shrunk: no smaller case failed {req} the same way ({spent}{why}).")
        why = f"; {self.stopped}" if self.stopped else ""
        return _noted(
            best,
            f"Shrunk: from {self.drawn.body} (case {self.drawn.call} of Hypothesis run {self.drawn.batch!r}) to "
            f"{best.drawn.body} that fails {req} the same way, sent to a fresh message ({spent}{why}; at most "
            f"{self.budget.requests} requests and {self.budget.seconds:g} s per requirement).",
        )


def _noted(finding: Finding, line: str) -> Finding:
    failure = finding.failure
    detail = f"{failure.detail}\n{line}" if failure.detail else line
    return dataclasses.replace(finding, failure=dataclasses.replace(failure, detail=detail))


class Replay(Protocol):
    """What a shrink asks of the run: draw a Hypothesis run again, send a case to a fresh message and judge it."""

    shrink_budget: ShrinkBudget
    transport: Transport

    def fresh_message(self) -> None: ...

    def strategy(self, mode: GenerationMode) -> st.SearchStrategy[Case]: ...

    def run_batch(
        self, strategy: st.SearchStrategy[Any], body: Callable[[Any], None], *, label: str, size: int, shrink: bool
    ) -> None: ...

    def pin(self, case: Case) -> None: ...

    def attempt(self, case: Case, judges: Sequence[Judge]) -> Iterator[Failure]: ...

    def body_bytes(self, case: Case) -> int | None: ...


def shrink_finding(run: Replay, finding: Finding, judge: Judge) -> Finding:
    """The smallest case that fails ``judge``'s requirement the same way (the same failure type) as the
    stream's ``finding``, found by a bounded Hypothesis shrink, or ``finding`` itself with the reason.

    Hypothesis cannot shrink from a given case through a public API, so its run is replayed: the same seed
    label draws the same cases, the ones before the failing case are not sent, the failing one is sent again
    to a fresh message (a live target's state has moved on) and judged for this requirement alone; when it
    fails the same way, Hypothesis' shrink phase sends simpler cases. A case that still fails is kept when
    its body is not larger than the one kept so far (Hypothesis' order of simplicity is not body size); only
    that one is kept, so memory stays flat. Bounded by ``shrink_budget``.
    """
    if finding.drawn is None:
        return finding
    drawn = finding.drawn
    shrink = _Shrink(finding, drawn, run.shrink_budget, time.monotonic() + run.shrink_budget.seconds)
    try:
        with run.transport.recording(forward=True) as recorder:
            run.fresh_message()
        shrink.requests += sum(exchange.status != 429 for exchange in recorder.snapshot())
        run.run_batch(
            run.strategy(drawn.mode),
            lambda case: _shrink_case(run, case, judge, shrink),
            label=drawn.batch,
            size=drawn.size,
            shrink=True,
        )
        shrink.stopped = "the replay of the stream ended before the case was drawn"
    except _ShrinkStopped as stop:
        shrink.stopped = str(stop)
    except Exception as exc:  # _Reproduced: the smallest case, replayed last; or Hypothesis found it flaky
        if not isinstance(exc, _Reproduced) and shrink.best is None:
            shrink.stopped = f"stopped: {type(exc).__name__}"
    return shrink.result()


def _shrink_case(run: Replay, case: Case, judge: Judge, shrink: _Shrink) -> None:
    """One call of the shrink's Hypothesis run: raise ``_Reproduced`` when ``case`` fails the same way (from
    this one place: Hypothesis tells failures apart by where they are raised)."""
    shrink.calls += 1
    if shrink.calls < shrink.drawn.call:
        if time.monotonic() > shrink.deadline:
            raise _ShrinkStopped(f"stopped at the cap of {shrink.budget.seconds:g} s before the case was drawn")
        return  # a case the stream drew before the failing one: drawn again, not sent
    if _fails_the_same_way(run, case, judge, shrink):
        raise _Reproduced
    if shrink.calls == shrink.drawn.call:
        raise _ShrinkStopped(f"the case did not fail {judge.req} the same way again on a fresh message")


def _fails_the_same_way(run: Replay, case: Case, judge: Judge, shrink: _Shrink) -> bool:
    """Send ``case`` and judge it for ``judge`` alone; a failure of the original's type is the smallest so far."""
    run.pin(case)
    key = fingerprint(case)
    if shrink.calls == shrink.drawn.call and key != shrink.drawn.fingerprint:
        raise _ShrinkStopped("the replay of the stream drew another case")
    if shrink.best is not None and shrink.best.drawn is not None and key == shrink.best.drawn.fingerprint:
        return True  # Hypothesis replays the smallest case once more: it failed, no need to ask again
    shrink.check_budget()
    with run.transport.recording(forward=True) as recorder:
        try:
            failure = next(run.attempt(case, (judge,)), None)
        except RequestDropped:
            failure = None  # a different defect (only MM-ERR-08 judges a dropped request)
        except TransportError as exc:
            raise _ShrinkStopped(f"stopped: {exc}") from None
        except Exception as exc:  # never let a shrink turn into an error of the suite
            raise _ShrinkStopped(f"stopped: {type(exc).__name__}") from None
    exchanges = recorder.snapshot()
    shrink.requests += sum(exchange.status != 429 for exchange in exchanges)  # when a 429 comes is timing
    if failure is None or type(failure) is not type(shrink.original.failure):
        return False
    drawn = dataclasses.replace(shrink.drawn, call=shrink.calls, fingerprint=key, body_bytes=run.body_bytes(case))
    if shrink.best is None or shrink.best.drawn is None or drawn.smaller_than(shrink.best.drawn):
        shrink.best = Finding(failure, exchanges, drawn)
    return True  # Hypothesis shrinks on, also past a case whose body is larger than the smallest so far
