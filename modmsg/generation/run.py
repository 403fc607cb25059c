"""``GeneratedRun``: generated cases against a live message of the run.

It pins the path to that message and the headers to the run's credentials, sends each case through the suite's
session (evidence recorded with ``Transport.record``), snapshots the message around negative cases, and judges the
answer; it draws the streams and has their findings shrunk. A request the target drops (``RequestDropped``) is
MM-ERR-08's finding (``NoAnswer``).

Credentials never enter a generated case: cases carry ``Bearer $MODMSG_API_KEY`` (each secret as the shell
variable that stands for it) and the real values are substituted only on the wire, so Hypothesis' "Falsifying
example" output and the evidence cannot show the key, and the curl reproducer (made from the request as sent,
through the run's redactor) runs as pasted once the variables are set.
"""

from __future__ import annotations

import copy
import dataclasses
import shlex
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.errors import FailureGroup

from modmsg.api import AssistantsApi
from modmsg.failures import Failure, NoAnswer
from modmsg.generation import pool as pooling
from modmsg.generation.builtin_checks import NO_5XX_REQ, checks_for, translate
from modmsg.generation.cases import (
    NEGATIVE,
    POSITIVE,
    Sent,
    batches,
    derive_seed,
    describe,
    effective_mode,
    hypothesis_settings,
    sent_pairs,
)
from modmsg.generation.judges import ACCEPTED, REJECTED, STREAM_JUDGES, Judge
from modmsg.generation.lanes import Lane, run_hypothesis_lanes
from modmsg.generation.shrink import SHRINK_BUDGET, ShrinkBudget, fingerprint, shrink_finding
from modmsg.generation.streams import Drawn, Finding, Stream
from modmsg.profiles import Profile
from modmsg.redaction import REDACTED, Redactor
from modmsg.strategies import MAX_KEYS
from modmsg.transport import Exchange, RequestDropped, Transport


def with_context(failure: Failure, context: str) -> Failure:
    detail = f"{failure.detail}\n\n{context}" if failure.detail else context
    return dataclasses.replace(failure, detail=detail)


_Outcome = pooling.Outcome[pooling.Drawing]


@dataclass
class GeneratedRun:
    """Generated cases against one live message (replaced by a fresh one when a valid case needs room)."""

    operation: APIOperation = field(repr=False)
    transport: Transport = field(repr=False)  # its repr holds the API key
    api: AssistantsApi = field(repr=False)
    base_url: str
    profile: Profile = field(repr=False)
    message: dict[str, Any]
    seed: int  # the run's seed: --seed, or the one the plugin drew and recorded in the reports
    max_examples: int
    replay_base_url: str | None
    """The run's --base-url as the user gave it (None: the bundled reference server), for the replay line."""
    replay_profile: str
    """The run's --profile as the user gave it (a bundled name or a profile file), for the replay line."""
    concurrency: int = 1
    """``--concurrency``: how many lanes of a stream send at once (at most ``pool.STREAM_LANES``)."""
    shrink_budget: ShrinkBudget = SHRINK_BUDGET
    stored_keys: set[str] = field(init=False)
    """Keys the current message holds, so a valid case can be sent where it fits."""
    counts: Counter[str] = field(init=False, default_factory=Counter)
    """Cases sent per mode (shrinking replays included)."""
    headers: dict[str, str] = field(init=False)
    """The run's default headers with every secret value masked: what generated cases carry."""
    _real_headers: dict[str, str] = field(init=False, repr=False)
    _secret: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stored_keys = set(self.message.get("metadata") or {})
        real = self.transport.default_headers()
        redactor = self.transport.redactor
        self._real_headers = {name.lower(): value for name, value in real.items()}
        self._secret = frozenset(name.lower() for name in real if name.lower() in redactor.secret_headers)
        self.headers = {
            name: _masked(value, redactor) if name.lower() in self._secret else value for name, value in real.items()
        }

    @property
    def ids(self) -> dict[str, str]:
        return {"thread_id": self.message["thread_id"], "message_id": self.message["id"]}

    # -- generation ------------------------------------------------------------------------------------

    def strategy(self, mode: GenerationMode) -> st.SearchStrategy[Case]:
        """Cases whose path and headers are fixed, so every defect of a negative case is in the body."""
        return self.operation.as_strategy(generation_mode=mode, headers=dict(self.headers), path_parameters=self.ids)

    def run_batch(
        self, strategy: st.SearchStrategy[Any], body: Callable[[Any], None], *, label: str, size: int, shrink: bool
    ) -> None:
        """One Hypothesis run of ``size`` values seeded from the run's seed and ``label``: the same label draws the
        same values in the same order, with or without the shrink phase (which only acts once ``body`` raises)."""

        @hypothesis.seed(derive_seed(self.seed, label))
        @hypothesis_settings(size, shrink=shrink)
        @hypothesis.given(value=strategy)
        def example(value: Any) -> None:
            body(value)

        example()

    def stream(self, mode: GenerationMode, *, label: str, reqs: Collection[str] | None = None) -> Stream:
        """``max_examples`` cases of ``mode``, each judged for every requirement in ``STREAM_JUDGES[mode]`` (only
        those in ``reqs`` when given: a selection that judges fewer spends no request on the others, e.g. no
        snapshot GETs when MM-GEN-02 is not selected).

        Nothing is raised: a requirement's first failing case is kept and the stream goes on judging the others;
        it ends early only once every requirement has failed. A request the target drops (``RequestDropped``) is
        MM-ERR-08's finding, and the stream goes on. Sent by ``concurrency`` lanes, judged in draw order (``pool``).
        Then each finding is shrunk for its requirement alone (``shrink.shrink_finding``).
        """
        judges = tuple(judge for judge in STREAM_JUDGES[mode] if reqs is None or judge.req in reqs)
        stream = Stream(reqs=tuple(j.req for j in judges), seed=self.seed)
        strategy = self.strategy(mode)
        more = pooling.lanes_for(self.max_examples) - 1
        lanes = [pooling.Lane(self._lane(self.message))] + [pooling.Lane() for _ in range(more)]
        pool: pooling.LanePool[pooling.Lane[GeneratedRun], pooling.Drawing] = pooling.LanePool(
            lanes,
            self.concurrency,
            lambda lane, drawing: self._send_on(lane, drawing, stream, judges),
            goes_on=(RequestDropped,),
        )
        try:
            for batch, size in batches(self.max_examples, label):
                one_case = self._stream_case(stream, judges, mode, pool, batch, size)
                self.run_batch(strategy, one_case, label=batch, size=size, shrink=False)
                pool.flush(lambda outcomes: self._judge_window(stream, judges, mode, outcomes))
            self._judge_window(stream, judges, mode, pool.drain())
        except pooling.StreamSettled:
            pool.discard()
        except pooling.StreamFailed as failed:
            raise failed.error from None
        finally:
            pool.close()
            for lane in lanes:
                self.counts.update(lane.run.counts if lane.run is not None else {})
        for judge in judges:
            finding = stream.findings.get(judge.req)
            if finding is not None:
                stream.findings[judge.req] = shrink_finding(self, finding, judge)
        return stream

    def _stream_case(
        self,
        stream: Stream,
        judges: Sequence[Judge],
        mode: GenerationMode,
        pool: pooling.LanePool[pooling.Lane[GeneratedRun], pooling.Drawing],
        batch: str,
        size: int,
    ) -> Callable[[Case], None]:
        """Each case of a stream's Hypothesis run: queued; a full window judges the one before it and is sent."""
        calls = 0

        def one_case(case: Case) -> None:
            nonlocal calls
            calls += 1
            if stream.settled:
                raise pooling.StreamSettled
            if pool.add(pooling.Drawing(case, batch, size, calls)):
                pool.flush(lambda outcomes: self._judge_window(stream, judges, mode, outcomes))

        return one_case

    def _judge_window(
        self, stream: Stream, judges: Sequence[Judge], mode: GenerationMode, outcomes: Sequence[_Outcome]
    ) -> None:
        """Judge a window's cases in draw order for the requirements not failed yet, keeping each one's first failure;
        ``StreamSettled`` once all have failed, ``StreamFailed`` for a case without an answer (not dropped)."""
        stream.sent += sum(not isinstance(outcome.result, pooling.Skipped) for outcome in outcomes)
        for outcome in outcomes:
            if stream.settled:
                raise pooling.StreamSettled
            result, drawing = outcome.result, outcome.item
            if isinstance(result, BaseException) and not isinstance(result, RequestDropped):
                raise pooling.StreamFailed(pooling.first_error(outcomes))
            for exchange in outcome.exchanges:  # the test's evidence, in draw order
                self.transport.recorder.add(exchange)
            active = [judge for judge in judges if judge.req not in stream.findings]
            if isinstance(result, RequestDropped):
                judged = any(judge.req == NO_5XX_REQ for judge in active)
                failures = [self.no_answer(drawing.case, result, mode=effective_mode(drawing.case))] if judged else []
            else:
                assert isinstance(result, Sent)
                failures = list(self.failures(result, active))
            stream.sample = stream.sample or outcome.exchanges
            drawn = self._drawn(drawing.case, mode, drawing.batch, drawing.size, drawing.call) if failures else None
            for failure in failures:
                stream.findings[failure.req] = Finding(failure, outcome.exchanges, drawn)

    def _send_on(
        self, lane: pooling.Lane[GeneratedRun], drawing: pooling.Drawing, stream: Stream, judges: Sequence[Judge]
    ) -> tuple[object, tuple[Exchange, ...]]:
        """Send one drawn case through its lane (a pool thread), for the judges not failed when its window was sent."""
        active = [judge for judge in judges if judge.req not in stream.findings]
        result: object
        with self.transport.capturing() as exchanges:
            try:
                if lane.run is None:  # the lane's message, made by its first case (part of that case's evidence)
                    lane.run = self._lane(None)
                result = lane.run.send_case(drawing.case, active)
            except RequestDropped as dropped:
                result = dropped
                if dropped.exchange is not None and dropped.exchange not in exchanges:
                    exchanges.append(dropped.exchange)  # the evidence of MM-ERR-08's finding
                if lane.run is not None:
                    lane.run.counts[effective_mode(drawing.case).value] += 1
            except Exception as exc:  # the stream raises it, in draw order
                result = exc
        return result, tuple(exchanges)

    def _lane(self, message: dict[str, Any] | None, transport: Transport | None = None) -> GeneratedRun:
        """This run on a lane: its own counts and message (None: a new one of the thread); the transport shared, or
        ``transport`` (a lane's own, whose recorder keeps the lane's evidence) with an api on it."""
        lane = copy.copy(self)
        if transport is not None:
            lane.transport, lane.api = transport, AssistantsApi(transport)
        lane.counts = Counter()
        lane.message = message if message is not None else lane.api.create_message(self.message["thread_id"])
        lane.stored_keys = set(lane.message.get("metadata") or {})
        return lane

    def _drawn(self, case: Case, mode: GenerationMode, batch: str, size: int, call: int) -> Drawn:
        return Drawn(mode, batch, size, call, fingerprint(case), self.body_bytes(case))

    def within_the_limits(self, metadata: st.SearchStrategy[dict[str, str]], *, label: str) -> None:
        """Bodies up to every metadata limit (64-code-point keys, 512-code-point values, 16 pairs, wide and
        astral characters), judged as positive cases: Schemathesis rarely reaches the limits by itself."""
        self._metadata_cases(
            metadata.map(lambda values: ("within every limit", values)), POSITIVE, (ACCEPTED,), label=label
        )

    def one_past_a_limit(self, metadata: st.SearchStrategy[tuple[str, dict[str, object]]], *, label: str) -> None:
        """Bodies whose only defect is one step past a metadata limit, judged as negative cases: Schemathesis
        never generates a body whose only defect is 17 keys."""
        self._metadata_cases(
            metadata.map(lambda limit: (f"one past the {limit[0]} limit", limit[1])), NEGATIVE, (REJECTED,), label=label
        )

    def _metadata_cases(
        self,
        metadata: st.SearchStrategy[tuple[str, Mapping[str, object]]],
        mode: GenerationMode,
        judges: Sequence[Judge],
        *,
        label: str,
    ) -> None:
        """``max_examples`` metadata cases drawn in lanes (``modmsg.generation.lanes``): each lane a Hypothesis run
        of its share on a message of its own (the test's message for the first), ``concurrency`` lanes at once.
        The first failing lane's failure, shrunk and replayed last by its run, is raised with the evidence of
        the lanes before it and its own, in lane order: what ``--concurrency 1`` raises."""
        runs: dict[int, GeneratedRun] = {}

        def lane_cases(lane: Lane) -> None:
            run = runs[lane.index] = self._lane(self.message if lane.index == 0 else None, lane.transport)

            def metadata_case(described: tuple[str, Mapping[str, object]]) -> None:
                lane.check()
                what, values = described
                metadata: dict[str, Any] = dict(values)
                case = run.operation.Case(
                    body={"metadata": metadata},
                    media_type="application/json",
                    path_parameters=run.ids,
                    headers=dict(run.headers),
                )
                run.exercise(case, judges, mode=mode, note=f"metadata {what} (modmsg.strategies)")

            for batch, size in batches(lane.size, lane.label):
                run.run_batch(metadata, metadata_case, label=batch, size=size, shrink=True)

        try:
            run_hypothesis_lanes(
                lane_cases,
                examples=self.max_examples,
                seed=self.seed,
                label=label,
                concurrency=self.concurrency,
                transport=self.transport,
            )
        finally:
            for run in runs.values():
                self.counts.update(run.counts)

    # -- one case --------------------------------------------------------------------------------------

    def pin(self, case: Case) -> None:
        """Point the case at the live message and give it the run's (masked) credentials.

        Coverage cases are built at collection time, before any fixture, so this happens in the test body.
        """
        case.path_parameters = self.ids
        kept = {k: v for k, v in (case.headers or {}).items() if k.lower() not in self._real_headers}
        case.headers = {**kept, **self.headers}  # type: ignore[assignment]  # a plain dict, as Schemathesis makes

    def exercise(
        self, case: Case, judges: Sequence[Judge], *, mode: GenerationMode | None = None, note: str = ""
    ) -> None:
        """Send one case and raise the first failure of ``judges`` (in their order: the most specific first)."""
        failure = next(self.attempt(case, judges, mode=mode, note=note), None)
        if failure is not None:
            raise failure from None

    def attempt(
        self, case: Case, judges: Sequence[Judge], *, mode: GenerationMode | None = None, note: str = ""
    ) -> Iterator[Failure]:
        """Send one case (on the first ``next``) and yield each judge's failure, lazily. A request the target
        drops while it answers others (``RequestDropped``) is MM-ERR-08's finding when MM-ERR-08 is judged (no
        other judge can judge a case without an answer), and is raised otherwise."""
        try:
            sent = self.send_case(case, judges, mode=mode, note=note)
        except RequestDropped as dropped:
            mode = mode or effective_mode(case)
            self.counts[mode.value] += 1
            if not any(judge.req == NO_5XX_REQ for judge in judges):
                raise
            yield self.no_answer(case, dropped, mode=mode, note=note)
            return
        yield from self.failures(sent, judges)

    def no_answer(self, case: Case, dropped: RequestDropped, *, mode: GenerationMode, note: str = "") -> Failure:
        """MM-ERR-08's failure for a dropped request; the dropped exchange is in the evidence."""
        if dropped.exchange is not None and dropped.exchange not in self.transport.recorder.snapshot():
            self.transport.recorder.add(dropped.exchange)
        failure = NoAnswer(
            req=NO_5XX_REQ,
            expected="an HTTP answer that is not a 5xx",
            received=f"no HTTP response: {self.transport.redactor.text(str(dropped))}",
        )
        return with_context(failure, self.context_of(case, mode, note))

    def send_case(
        self, case: Case, judges: Sequence[Judge], *, mode: GenerationMode | None = None, note: str = ""
    ) -> Sent:
        """Pin and send one case, with the message's state around it when a judge needs it."""
        self.pin(case)
        mode = mode or effective_mode(case)
        if mode.is_positive:
            self._make_room(case)
        snapshot = mode.is_negative and any(judge.needs_state for judge in judges)
        before = self.api.fetch_message(**self.ids) if snapshot else None
        response = self.send(case)
        after = self.api.fetch_message(**self.ids) if snapshot else None
        self._note_stored(response, after)
        self.counts[mode.value] += 1
        return Sent(case=case, mode=mode, response=response, before=before, after=after, note=note)

    def failures(self, sent: Sent, judges: Sequence[Judge]) -> Iterator[Failure]:
        """Each judge's failure for one sent case, in the judges' order, with the case's context (what, curl,
        seed); lazily, so a caller that wants only the first judges no further."""
        for judge in judges:
            try:
                judge.check(sent, self)
            except Failure as failure:
                yield with_context(failure, self.context(sent))

    def builtin(self, sent: Sent, req: str) -> None:
        """Run the built-in checks mapped to ``req`` and translate their FailureGroup."""
        try:
            sent.case.validate_response(sent.response, checks=list(checks_for(req)))
        except FailureGroup as group:
            failure = translate(group, req=req, response=sent.response)
            raise dataclasses.replace(failure, detail=self.transport.redactor.text(failure.detail)) from None

    def context(self, sent: Sent) -> str:
        return self.context_of(sent.case, sent.mode, sent.note)

    def context_of(self, case: Case, mode: GenerationMode, note: str = "") -> str:
        """What was generated, the curl reproducer (credentials masked twice over) and how to replay the run."""
        try:
            # the request as the evidence shows it: secrets as $VARIABLE references, so it runs as pasted
            curl = self.transport.evidence(self.prepare(case)).curl()
        except Exception as exc:  # a body curl cannot express must not hide the finding
            curl = f"(no curl: {type(exc).__name__}; the evidence shows the request)"
        return "\n".join(
            (
                f"Generated: {describe(case, mode, note)}",
                f"Reproduce: {self.transport.redactor.text(curl)}",
                f"Replay the run: {self.transport.redactor.text(self.replay_command())}",
            )
        )

    def replay_command(self) -> str:
        """The command that replays this run's generated cases: the target, profile, example count and seed."""
        target = ("--base-url", self.replay_base_url) if self.replay_base_url else ()
        options = (*target, "--profile", self.replay_profile, "--max-examples", str(self.max_examples))
        command = shlex.join(("pytest", "suites/test_generated.py", *options, "--seed", str(self.seed)))
        return command if self.replay_base_url else f"{command} (bundled reference server)"

    def body_bytes(self, case: Case) -> int | None:
        """The size of the body ``case`` puts on the wire (0: none; None: the client cannot serialise it)."""
        try:
            body = self.prepare(case).body
        except Exception:  # a body the client cannot serialise is still a case
            return None
        if body is None:
            return 0
        return len(body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))

    def fresh_message(self) -> None:
        """Move on to a fresh message of the same thread."""
        self.message = self.api.create_message(self.message["thread_id"])
        self.stored_keys = set(self.message.get("metadata") or {})

    def _make_room(self, case: Case) -> None:
        """A valid case must not fail because earlier cases filled the message (openai: the merged result
        is limited to 16 keys), so it goes to a fresh message of the same thread when it would not fit."""
        if len(self.stored_keys | set(sent_pairs(case))) > MAX_KEYS:
            self.fresh_message()
            case.path_parameters = self.ids

    def _note_stored(self, response: requests.Response, after: Mapping[str, Any] | None) -> None:
        stored: Any = after.get("metadata") if after is not None else None
        if stored is None and response.status_code == 200:
            try:
                body = response.json()
            except ValueError:
                body = None
            stored = body.get("metadata") if isinstance(body, dict) else None
        if isinstance(stored, dict):
            self.stored_keys = set(stored)

    # -- the wire --------------------------------------------------------------------------------------

    def send(self, case: Case) -> requests.Response:
        """Send with the real credentials through the suite's transport; every attempt becomes evidence."""
        # The transport's own loop: the throttle, connect retries, the 429 budget, causes named in ERRORs.
        return self.transport.send(self.prepare(case))

    def prepare(self, case: Case) -> requests.PreparedRequest:
        """The request ``case`` makes, with the real credentials."""
        kwargs = case.as_transport_kwargs(base_url=self.base_url)
        kwargs["headers"] = {
            name: self._real_headers[name.lower()] if name.lower() in self._secret else value
            for name, value in (kwargs.get("headers") or {}).items()
        }
        return self.transport.session.prepare_request(requests.Request(**kwargs))


def _masked(value: str, redactor: Redactor) -> str:
    """A secret header's value as a generated case carries it: each secret as its shell variable reference
    (``Bearer $MODMSG_API_KEY``), and ``[REDACTED]`` should the value hold no secret the redactor knows."""
    shown = redactor.reference(value)
    return shown if shown != value else REDACTED
