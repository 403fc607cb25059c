"""The sequences of one run: drawn once, judged for every MM-SEQ requirement, each failure shrunk and kept.

``SequenceRun.run`` draws ``--max-sequences`` sequences of at most ``--max-steps`` steps in lanes
(``modmsg.generation.lanes``, ``SEQUENCES_PER_LANE`` sequences each, ``--concurrency`` lanes at once): each lane is
one Hypothesis run per round, seeded from ``--seed``, the lane and the round, no example database, on threads of
its own. A lane's first failing sequence is shrunk by Hypothesis to a minimal list of steps, and kept as its
requirement's ``Finding``. If that requirement is one of MM-SEQ, the lane draws another round without judging it
(and without drawing its kind of step), so one defect fails the requirements that see it and every other one is
still judged; a failure of another requirement (a precondition: a sibling call, a modify that is not 200, an
invalid body accepted ...) is every MM-SEQ requirement's finding, which BLOCKS them. Shrinking spends at most
``SHRINK_BUDGET`` requests and seconds per round; then the smallest failing sequence so far is reported. Each
requirement's finding is the first lane's, in lane order, that has one: the outcome of the lanes one after the
other, whatever ``--concurrency`` is.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Flaky
from hypothesis.stateful import get_state_machine_test
from schemathesis.generation.stateful.state_machine import release_state_machines

from modmsg.evidence import Exchange, Recorder
from modmsg.failures import Failure
from modmsg.generation.cases import derive_seed
from modmsg.generation.lanes import Lanes, lane_label, lane_sizes, own_transport
from modmsg.profiles import Profile
from modmsg.sequences.judge import SEQ_REQS, Judging
from modmsg.sequences.links import sequence_links, stateful_schema
from modmsg.sequences.machine import machine_class
from modmsg.sequences.steps import Abort, Context, ShrinkSpent, Step
from modmsg.transport import Transport

SAMPLE = 4
SEQUENCES_PER_LANE = 5
"""Sequences per lane: ``--max-sequences 40`` (the default) is drawn in 8 lanes, up to ``--concurrency`` at once."""
SHRINK_BUDGET = (1500, 10.0)
"""Requests and seconds a round may spend shrinking its failing sequence; then the smallest so far is reported."""


@dataclass(frozen=True)
class Finding:
    """A requirement's failing sequence (shrunk): the failure, with the steps listed, and their exchanges."""

    failure: Failure
    steps: tuple[Step, ...]

    @property
    def evidence(self) -> tuple[Exchange, ...]:
        return tuple(exchange for step in self.steps for exchange in step.exchanges)


@dataclass
class _Round:
    """One Hypothesis run: its first failure's requirement, and the smallest failing sequence of it so far."""

    reqs: frozenset[str]
    first: Failure | None = None
    smallest: Finding | None = None
    sent_at_failure: int = 0
    failed_at: float = 0.0

    @property
    def reports(self) -> frozenset[str]:
        """The requirements this round's finding can be reported for: its first failure's (every one it judges
        when that is a precondition's), or every one it judges before it failed."""
        if self.first is None or self.first.req not in SEQ_REQS:
            return self.reqs
        return frozenset({self.first.req})


class RoundCut(BaseException):
    """Ends a round whose finding an earlier lane has already made for every requirement it could report."""


@dataclass
class _Decided:
    """Per lane, the requirements it has a finding for (from the moment its round first fails): a later lane's
    finding for them is never reported, so it need not be drawn or shrunk."""

    lanes: int
    _decided: list[set[str]] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._decided = [set() for _ in range(self.lanes)]

    def add(self, lane: int, reqs: frozenset[str]) -> None:
        with self._lock:
            self._decided[lane] |= reqs

    def before(self, lane: int) -> set[str]:
        with self._lock:
            return set().union(*self._decided[:lane])


@dataclass
class SequenceRun:
    """Draws and judges the run's sequences once; each MM-SEQ test then reports its own verdict.

    The ``max_sequences`` sequences are drawn in lanes (``modmsg.generation.lanes``, ``SEQUENCES_PER_LANE`` each):
    lane ``i`` does what a run of its share of the sequences would, with its own seeds, threads and rounds, and
    up to ``concurrency`` lanes run at once. A requirement's finding is the first lane's, in lane order, that has
    one; a pass is every lane's. So the verdicts, the reported sequences and their evidence are those of the
    lanes one after the other (``--concurrency 1``). A lane stops drawing (or shrinking) a round as soon as the
    lanes before it have a finding for every requirement the round could report: its finding would not be
    reported."""

    transport: Transport = field(repr=False)
    base_url: str
    create_thread: Callable[[], dict[str, Any]] = field(repr=False)
    profile: Profile
    seed: int
    max_sequences: int
    max_steps: int
    replay: str
    """The command that replays the run (target, profile, seed, the sequence options)."""
    reqs: frozenset[str] = frozenset(SEQ_REQS)
    shrink_budget: tuple[int, float] = SHRINK_BUDGET
    concurrency: int = 1
    """``--concurrency``: how many lanes draw their sequences at once."""
    findings: dict[str, Finding] = field(default_factory=dict)
    sample: tuple[Exchange, ...] = ()
    sent: int = 0
    """Requests sent by the sequences (shrinking included)."""
    rounds: int = 0
    lanes: int = 0

    def run(self) -> None:
        """Every lane's rounds; then each requirement's finding from the first lane in lane order that has one."""
        sizes = lane_sizes(self.max_sequences, SEQUENCES_PER_LANE)
        runner = Lanes(len(sizes), self.concurrency)
        decided = _Decided(len(sizes))
        base = stateful_schema().as_state_machine()  # built once, here: the lanes subclass it
        lanes = [_Lane(self, index, size, runner, decided, base) for index, size in enumerate(sizes)]
        try:
            ran = runner.run(lambda index: lanes[index].run())
        finally:
            release_state_machines(*(machine for lane in lanes for machine in lane.machines))
            self.lanes = len(lanes)
            self.sent += sum(lane.sent for lane in lanes)
            self.rounds += sum(lane.rounds for lane in lanes)
        self.sample = lanes[0].sample
        for lane, outcome in zip(lanes, ran, strict=True):
            if not self.reqs - set(self.findings):
                break
            if outcome.error is not None:
                raise outcome.error
            for req, finding in lane.findings.items():
                self.findings.setdefault(req, finding)

    def _with_steps(self, failure: Failure, steps: tuple[Step, ...]) -> Failure:
        lines = [
            f"Sequence of {len(steps)} step(s), shrunk by Hypothesis (each step's request as a curl, then the reads "
            "that judged it; the last step failed):",
            *(line for step in steps for line in step.lines()),
            f"Replay the run: {self.replay}",
        ]
        text = "\n".join(lines)
        detail = f"{failure.detail}\n\n{text}" if failure.detail else text
        return dataclasses.replace(failure, detail=self.transport.redactor.text(detail))

    def verdict(self, req: str, add: Callable[[Exchange], None]) -> None:
        """Raise ``req``'s finding (its steps' exchanges go to ``add``, the test's evidence); the sample of
        exchanges of a pass otherwise."""
        finding = self.findings.get(req)
        for exchange in finding.evidence if finding else self.sample:
            add(exchange)
        if finding is not None:
            raise finding.failure


@dataclass
class _Lane:
    """One lane: rounds of its share of the sequences, on threads of its own, its exchanges on a transport of its
    own. The first round judges every requirement; once a round's first failure is an MM-SEQ requirement's, the
    next round is drawn without judging it (and without drawing its kind of step), so one defect fails the
    requirements that see it and every other one is still judged; a precondition's failure is every requirement's
    finding not made yet (BLOCKED)."""

    owner: SequenceRun = field(repr=False)
    index: int
    size: int
    lanes: Lanes = field(repr=False)
    decided: _Decided = field(repr=False)
    base: type = field(repr=False)
    findings: dict[str, Finding] = field(default_factory=dict)
    sample: tuple[Exchange, ...] = ()
    sent: int = 0
    rounds: int = 0
    machines: list[type] = field(default_factory=list, repr=False)
    transport: Transport = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.transport = own_transport(self.owner.transport, self.lanes)

    def run(self) -> None:
        """Every round until a round finds nothing or every judged requirement has a finding."""
        while pending := self.owner.reqs - set(self.findings):
            finding = self._round(frozenset(pending))
            if finding is None:
                break
            if finding.failure.req in SEQ_REQS:
                self.findings[finding.failure.req] = finding
            else:  # a precondition broke: it blocks every requirement not judged yet
                for req in pending:
                    self.findings[req] = finding

    def _round(self, reqs: frozenset[str]) -> Finding | None:
        self.rounds += 1
        state = _Round(reqs)
        with counting(self.transport) as counter:
            context = Context(
                transport=self.transport,
                base_url=self.owner.base_url,
                create_thread=self._create_thread,
                profile=self.owner.profile,
                links=sequence_links(),
                judging=Judging(reqs),
                on_failure=lambda failure, steps: self._failed(state, failure, steps, counter),
                may_send=lambda: self._may_send(state, counter),
                check=lambda: self._check(state),
            )
            machine = machine_class(context, self.base)
            self.machines.append(machine)
            test = get_state_machine_test(machine, settings=self.settings())
            label = lane_label("sequences", self.index) + (f"#{self.rounds}" if self.rounds > 1 else "")
            try:
                hypothesis.seed(derive_seed(self.owner.seed, label))(test)()
            except Abort as abort:
                raise abort.cause from None
            except (Failure, Flaky, ShrinkSpent, RoundCut):
                pass  # the smallest failing sequence is kept in ``state`` as it is found
            finally:
                self.sent += counter.sent
        self.sample = self.sample or counter.first
        return state.smallest

    def settings(self) -> hypothesis.settings:
        return hypothesis.settings(
            max_examples=self.size,
            stateful_step_count=self.owner.max_steps,
            database=None,  # no replay from disk: a run is exactly what its seed says
            deadline=None,
            derandomize=False,
            phases=(Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
            verbosity=hypothesis.Verbosity.quiet,
            print_blob=False,
            report_multiple_bugs=False,
        )

    def _create_thread(self) -> dict[str, Any]:
        """The run's thread factory, its createThread exchange recorded as this lane's (the factory sends it
        through the run's transport, on this thread)."""
        with self.owner.transport.capturing() as exchanges, self.lanes.on_the_wire():
            try:
                return self.owner.create_thread()
            finally:
                for exchange in exchanges:
                    self.transport.recorder.add(exchange)

    def _failed(self, state: _Round, failure: Failure, steps: tuple[Step, ...], counter: _Counting) -> Failure:
        """Keep the smallest failing sequence of the round's first requirement; return the failure to raise."""
        if state.first is None:
            state.first, state.sent_at_failure, state.failed_at = failure, counter.sent, time.monotonic()
            self.decided.add(self.index, state.reports)
        same = failure.req == state.first.req and type(failure) is type(state.first)
        if same and (state.smallest is None or len(steps) <= len(state.smallest.steps)):
            state.smallest = Finding(self.owner._with_steps(failure, steps), steps)
        return failure

    def _may_send(self, state: _Round, counter: _Counting) -> bool:
        if state.first is None:
            return True
        requests, seconds = self.owner.shrink_budget
        return counter.sent - state.sent_at_failure < requests and time.monotonic() - state.failed_at < seconds

    def _check(self, state: _Round) -> None:
        """Before each sequence and request: ``LaneCut`` once the lane is not needed (an earlier lane raised, or an
        interrupt), ``RoundCut`` once earlier lanes have a finding for every requirement the round could report."""
        self.lanes.check(self.index)
        if self.index and state.reports <= self.decided.before(self.index):
            raise RoundCut


@dataclass
class _Counting(Recorder):
    """Where a round's exchanges go (each step forwards to it): counted, the first few kept as a pass's sample."""

    sent: int = 0
    first: tuple[Exchange, ...] = ()

    def add(self, exchange: Exchange) -> None:
        self.sent += 1
        if len(self.first) < SAMPLE:
            self.first = (*self.first, exchange)
        super().add(exchange)


@contextmanager
def counting(transport: Transport) -> Iterator[_Counting]:
    """The round's exchanges recorded apart from the test that runs it (each verdict adds its own evidence)."""
    previous = transport.recorder
    transport.recorder = counter = _Counting(limit=SAMPLE)
    try:
        yield counter
    finally:
        transport.recorder = previous


@dataclass
class Sequences:
    """The run's sequences, drawn on the first test that asks for a verdict (under xdist, per worker: ``modmsg run
    --workers`` keeps the MM-SEQ tests on one worker)."""

    new_run: Callable[[], SequenceRun]
    _done: SequenceRun | Exception | None = field(default=None, repr=False)

    def drawn(self) -> SequenceRun:
        if self._done is None:
            run = self.new_run()
            try:
                run.run()
            except Exception as exc:  # e.g. the target stopped answering: every MM-SEQ test says so
                self._done = exc
            else:
                self._done = run
        if isinstance(self._done, Exception):
            raise self._done
        return self._done
