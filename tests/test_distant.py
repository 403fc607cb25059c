"""A distant target (``--latency-ms``) and concurrent generated streams whose verdicts equal a sequential run's."""

from __future__ import annotations

import _thread
import asyncio
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import generated_run, run_cli, run_suite

from bench import distant
from modmsg import strategies
from modmsg.api import AssistantsApi
from modmsg.config import ConfigError, resolve
from modmsg.failures import Failure
from modmsg.generation.cases import NEGATIVE, POSITIVE
from modmsg.generation.lanes import LaneCut, Lanes, lane_sizes
from modmsg.generation.pool import LanePool, Outcome, Skipped, first_error, lanes_for
from modmsg.generation.shrink import ShrinkBudget
from modmsg.ledger import LEDGER_NAME, Ledger
from modmsg.plugin.threads import CLEANUP_GIVE_UP, ThreadFactory
from modmsg.profiles import load_profile
from modmsg.reference import ReferenceServer, start_server
from modmsg.reference.latency import Latency
from modmsg.reference.variants import VARIANTS, Variant, get_variant
from modmsg.sequences.run import SequenceRun
from modmsg.transport import Exchange, RequestDropped, Transport


def _serve(latency: Latency, client: tuple[str, int] | None) -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, object]) -> None:
        return None

    scope = {"type": "http", "client": client}
    asyncio.run(latency(scope, receive, send))  # type: ignore[arg-type]


def test_latency_costs_one_round_trip_per_request_and_one_more_per_new_connection() -> None:
    waits: list[float] = []
    served: list[str] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def app(scope: object, receive: object, send: object) -> None:
        served.append("served")

    latency = Latency(app, round_trip=0.04, sleep=sleep)  # type: ignore[arg-type]
    for client in (("127.0.0.1", 5000), ("127.0.0.1", 5000), ("127.0.0.1", 5001), ("127.0.0.1", 5000)):
        _serve(latency, client)
    assert waits == [0.08, 0.04, 0.08, 0.04]
    assert len(served) == 4


def test_latency_is_bounded_and_checked() -> None:
    assert resolve({"reference_latency_ms": "40"}, env={}).reference_latency_ms == 40.0
    assert resolve({}, env={"MODMSG_REFERENCE_LATENCY_MS": "5"}).reference_latency_ms == 5.0
    for bad in ("-1", "nan", "70000", "soon"):
        with pytest.raises(ConfigError, match="--reference-latency-ms"):
            resolve({"reference_latency_ms": bad}, env={})
    with pytest.raises(ValueError):
        Latency(None, round_trip=61)  # type: ignore[arg-type]


def test_serve_refuses_a_bad_latency_in_one_sentence() -> None:
    result = run_cli("serve", "--latency-ms", "-5")
    assert result.returncode == 2
    assert "--latency-ms must be between 0 and 60000" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ concurrency with identical verdicts

KEY = "sk-distant"
REPO = Path(__file__).resolve().parents[1]
STREAM_REQS = frozenset({"MM-GEN-01", "MM-GEN-02", "MM-GEN-03", "MM-ERR-08"})
_VOLATILE = re.compile(r"\b(?:thread|msg|req)_[A-Za-z0-9]+|\b\d{10,}\b|127\.0\.0\.1:\d+|TestCaseId: \w+")


def _plain(text: str | None) -> str:
    """Text with what differs between two runs of the same seed masked: ids, timestamps, the server's port,
    Schemathesis' random test case id."""
    return _VOLATILE.sub("…", text or "")


def _verdicts(server: ReferenceServer, concurrency: int, *, seed: int = 7, max_examples: int = 16) -> dict[str, Any]:
    """Per mode and requirement of the streams: the outcome, the first failing case (where it was drawn, its
    failure text) and its evidence in order; and the test's evidence as recorded."""
    transport = Transport(base_url=server.base_url, api_key=KEY)
    seen: dict[str, Any] = {}
    for mode in (POSITIVE, NEGATIVE):
        run = generated_run(
            transport,
            seed=seed,
            max_examples=max_examples,
            shrink_budget=ShrinkBudget(requests=6, seconds=20),
            concurrency=concurrency,
        )
        with transport.recording() as recorder:
            stream = run.stream(mode, label=mode.value)
        seen[mode.value] = {
            "sent": stream.sent,
            "evidence": [(e.method, _plain(e.url), e.status) for e in recorder.snapshot() if e.status != 429],
            **{
                req: None
                if (finding := stream.findings.get(req)) is None
                else (
                    type(finding.failure).__name__,
                    _plain(str(finding.failure)),
                    finding.drawn and (finding.drawn.batch, finding.drawn.call, finding.drawn.fingerprint),
                    [
                        (e.method, _plain(e.url), e.status, _plain(e.request_body))
                        for e in finding.evidence
                        if e.status != 429
                    ],
                )
                for req in stream.reqs
            },
        }
    seen["429s"] = len(transport.rate_limited)  # not compared: when a 429 comes is a matter of timing
    return seen


def _same(one: dict[str, Any], other: dict[str, Any]) -> None:
    assert {k: v for k, v in one.items() if k != "429s"} == {k: v for k, v in other.items() if k != "429s"}


def _stream_variants() -> list[Variant]:
    return [v for v in VARIANTS if STREAM_REQS & {*v.breaks, *v.generated}]


def test_concurrent_streams_give_the_verdicts_of_one_lane_on_the_reference_server() -> None:
    with start_server(KEY) as server:
        one, four = _verdicts(server, 1), _verdicts(server, 4)
    _same(one, four)
    assert all(one[mode][req] is None for mode in ("positive", "negative") for req in STREAM_REQS & set(one[mode]))
    assert one["negative"]["sent"] == 16


@pytest.mark.parametrize("variant", _stream_variants(), ids=lambda v: v.name)
def test_concurrent_streams_give_the_verdicts_of_one_lane_on_every_variant_a_stream_judges(variant: Variant) -> None:
    """Every variant whose defect a generated stream can find: same outcome per requirement, same first failing
    case (where drawn, its failure text, its exchanges in order), same evidence order, at concurrency 1 and 4."""
    with variant.start(KEY) as server:
        one, four = _verdicts(server, 1), _verdicts(server, 4)
    _same(one, four)


LOWERCASES = get_variant("lowercases_metadata_keys")  # fails MM-GEN-01 on generated input (seed 7); shrinks


def test_concurrent_streams_give_the_same_verdicts_under_429s() -> None:
    """The target answers 429 past 15 requests a second (Retry-After: 1): the retries land in every lane, and the
    verdicts, first failing cases and evidence (429s aside) are still those of one lane at a time."""
    limited = dataclasses.replace(LOWERCASES, behaviour=dataclasses.replace(LOWERCASES.behaviour, rate_limit=15))
    with limited.start(KEY) as server:
        one, four = _verdicts(server, 1), _verdicts(server, 4)
    _same(one, four)
    assert one["positive"]["MM-GEN-01"] is not None
    assert one["429s"] + four["429s"] > 0  # the rate limit was hit


def test_concurrent_streams_give_the_same_verdicts_against_a_distant_target() -> None:
    with LOWERCASES.start(KEY, latency_ms=20) as server:
        one, four = _verdicts(server, 1), _verdicts(server, 4)
    _same(one, four)
    assert one["positive"]["MM-GEN-01"] is not None


def test_the_end_of_run_cleanup_deletes_concurrently_and_settles_the_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / LEDGER_NAME)
    with start_server(KEY) as server:
        api = AssistantsApi(Transport(base_url=server.base_url, api_key=KEY))
        factory = ThreadFactory(api=api, run_id="modmsg-dddddddddddd", ledger=ledger, target="t", concurrency=4)
        made = [factory.create()["id"] for _ in range(12)]
        assert set(made) <= set(server.thread_ids())
        assert factory.cleanup() == ()
        assert not set(made) & set(server.thread_ids())
    assert ledger.pending() == []


def test_a_concurrent_cleanup_still_gives_up_on_a_dead_target(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / LEDGER_NAME)
    attempts: list[str] = []
    dead = Transport("http://127.0.0.1:9/v1", KEY, sleep=lambda _: None, connect_retries=0)
    send = dead.send

    def counted(prepared: requests.PreparedRequest) -> requests.Response:
        attempts.append(prepared.url or "")
        return send(prepared)

    dead.send = counted  # type: ignore[method-assign]
    factory = ThreadFactory(api=AssistantsApi(dead), run_id="modmsg-eeeeeeeeeeee", ledger=ledger, target="d")
    factory.concurrency = 4
    factory.created.extend(f"thread_{i:024d}" for i in range(40))
    for thread_id in factory.created:
        ledger.created(factory.run_id, thread_id, factory.target)
    assert len(factory.cleanup()) == 40 and len(ledger.pending()) == 40
    assert len(attempts) < CLEANUP_GIVE_UP + 4  # the give-up holds across the pool: at most 3 more were in flight


def test_a_streams_lanes_are_set_by_its_size_never_by_the_concurrency() -> None:
    assert [lanes_for(n) for n in (1, 3, 7, 8, 16, 100, 10_000)] == [1, 1, 1, 2, 4, 8, 8]


def test_the_distant_bench_section_renders_its_figures_and_the_goal() -> None:
    data = {
        "latency_ms": 40.0,
        "concurrency_1": {"concurrency": 1, "seconds": 120.0, "requests": 1650},
        "default": {"concurrency": 4, "seconds": 20.0, "requests": 1650},
        "one_by_one": {"seconds": 76.0, "requests": 1648, "mismatches": 0},
        "ratio": 0.263,
        "ratio_concurrency_1": 1.579,
        "goal": 0.3,
        "stock": {"workers": 4, "seconds": 18.2, "requests": 131, "exit": 1},
        "ours_per_100": None,
        "stock_per_100": None,
    }
    text = "\n".join(distant.lines(data))
    assert "0.26x (meets the goal <= 0.3x)" in text and "st run --workers 4" in text
    assert "0.26x** (goal <= 0.3x" in distant.readme_rows(data)[0]
    assert distant.markdown(data)[0] == "## 6. A distant target"
    assert distant.readme_rows(None) == []


def test_a_lane_pool_answers_in_draw_order_and_an_error_stops_the_rest_of_its_window() -> None:
    """Item n goes to lane n % lanes; a lane sends its items in order. An error other than ``goes_on`` (a dropped
    request) stops the pool: the lane's later items are skipped, never sent, and the error is the window's."""
    sent: list[tuple[str, int]] = []

    def send(lane: str, item: int) -> tuple[object, tuple[Exchange, ...]]:
        if item == 3:
            return RequestDropped("dropped twice"), ()
        if item == 5:
            return RuntimeError("the target is down"), ()
        sent.append((lane, item))
        return item * 10, ()

    pool: LanePool[str, int] = LanePool(["even", "odd"], 2, send, goes_on=(RequestDropped,))
    judged: list[list[Outcome[int]]] = []
    try:
        for item in range(10):
            pool.add(item)
        pool.flush(judged.append)  # nothing sent before: judges an empty window, then sends this one
        outcomes = pool.drain()
    finally:
        pool.close()
    assert judged == [[]]
    assert [outcome.item for outcome in outcomes] == list(range(10))
    results = [outcome.result for outcome in outcomes]
    assert results[:3] == [0, 10, 20] and isinstance(results[3], RequestDropped)  # a dropped request goes on
    assert isinstance(results[5], RuntimeError)
    assert all(isinstance(results[n], Skipped) for n in (7, 9))  # the odd lane stopped at 5
    assert ("odd", 7) not in sent and ("odd", 9) not in sent
    assert all(lane == ("even" if item % 2 == 0 else "odd") for lane, item in sent)
    assert isinstance(first_error(outcomes), RuntimeError)  # type: ignore[arg-type]  # not the dropped request


def _suite(tmp_path: Path, server: ReferenceServer, concurrency: int) -> dict[str, Any]:
    run = run_suite(
        tmp_path / f"suite-{concurrency}",
        "--base-url", server.base_url, "--concurrency", str(concurrency), "--seed", "5", "--max-examples", "24",
        env={"MODMSG_API_KEY": KEY},
    )  # fmt: skip
    return {
        test["nodeid"]: (
            test["outcome"],
            _plain(json.dumps(test.get("failure"))),
            [(e["method"], _plain(e["url"]), e["status"]) for e in test.get("evidence") or ()],
        )
        for requirement in run.results["requirements"]
        for test in requirement.get("tests") or ()
    }


def test_the_whole_suite_at_concurrency_4_gives_every_test_the_verdict_and_evidence_of_concurrency_1(
    tmp_path: Path,
) -> None:
    """End to end, through the plugin and the reports: the streams, and the error-scenario table (each scenario
    has its own thread and message, so --concurrency of them are answered at once), judge and show the same."""
    with get_variant("echoes_api_key_in_errors").start(KEY) as server:
        one, four = _suite(tmp_path, server, 1), _suite(tmp_path, server, 4)
    assert one == four
    assert any(outcome == "FAIL" for outcome, _, _ in one.values())


# ------------------------------------------------------------------ Hypothesis tests drawn in lanes (sequences, limits)


def _sequence_verdicts(server: ReferenceServer, concurrency: int, threads: set[str]) -> dict[str, Any]:
    """The sequences of ``--max-sequences 10`` (two lanes): per requirement, the failure, its shrunk steps and their
    evidence in order; the pass sample; which threads of this process created the target's threads."""
    transport = Transport(base_url=server.base_url, api_key=KEY)
    api = AssistantsApi(transport)

    def create_thread() -> dict[str, Any]:
        threads.add(threading.current_thread().name)
        return api.create_thread({"modmsg_run": "modmsg-distant"})

    run = SequenceRun(
        transport=transport,
        base_url=server.base_url,
        create_thread=create_thread,
        profile=load_profile("openai"),
        seed=3,
        max_sequences=10,
        max_steps=6,
        replay="pytest suites --req MM-SEQ --seed 3",
        shrink_budget=(200, 600.0),  # the request cap, not the time cap, ends a shrink: the same at any concurrency
        concurrency=concurrency,
    )
    run.run()
    assert run.lanes == 2
    return {
        "sample": [(e.method, _plain(e.url), e.status) for e in run.sample],
        **{
            req: (
                type(finding.failure).__name__,
                _plain(str(finding.failure)),
                [(e.method, _plain(e.url), e.status, _plain(e.request_body)) for e in finding.evidence],
            )
            for req, finding in sorted(run.findings.items())
        },
    }


@pytest.mark.parametrize("variant", ["get_or_create_on_modify", None], ids=["get_or_create_on_modify", "reference"])
def test_sequence_lanes_give_the_verdicts_sequence_and_evidence_of_one_lane_at_a_time(variant: str | None) -> None:
    """MM-SEQ at --concurrency 4 (two lanes at once, on threads of their own) and at 1 (one after the other): the
    same findings, the same shrunk sequence with its exchanges in order, the same pass sample."""
    start = get_variant(variant).start if variant else partial(start_server)
    one_threads: set[str] = set()
    four_threads: set[str] = set()
    with start(KEY) as server:
        one = _sequence_verdicts(server, 1, one_threads)
        four = _sequence_verdicts(server, 4, four_threads)
    assert one == four
    assert one_threads == {threading.main_thread().name}
    assert len(four_threads) == 2 and all(name.startswith("modmsg-lane") for name in four_threads)
    assert set(one) - {"sample"} == ({"MM-SEQ-02"} if variant else set())


def _limit_verdict(server: ReferenceServer, concurrency: int, test: str) -> tuple[str | None, list[Any], Counter[str]]:
    """A metadata-limit test of ``--max-examples 16`` (four lanes): its failure (shrunk by the failing lane's
    Hypothesis run), its evidence in order, the cases sent per mode and the messages modified."""
    transport = Transport(base_url=server.base_url, api_key=KEY)
    run = generated_run(
        transport, seed=7, max_examples=16, shrink_budget=ShrinkBudget(requests=6, seconds=20), concurrency=concurrency
    )
    failure: Failure | None = None
    with transport.recording() as recorder:
        try:
            if test == "within":
                run.within_the_limits(strategies.valid_metadata(), label="within-the-limits")
            else:
                run.one_past_a_limit(strategies.metadata_one_past_a_limit(), label="one-past-a-limit")
        except Failure as raised:
            failure = raised
    evidence = [(e.method, _plain(e.url), e.status, _plain(e.request_body)) for e in recorder.snapshot()]
    messages = {e.url.rsplit("/", 1)[-1] for e in recorder.snapshot() if e.method == "POST" and "/messages/" in e.url}
    return (failure and _plain(str(failure))), evidence, Counter({**run.counts, "messages": len(messages)})


@pytest.mark.parametrize(
    ("variant", "test"),
    [("lowercases_metadata_keys", "within"), ("accepts_17_keys", "past"), (None, "past")],
    ids=["lowercases_metadata_keys", "accepts_17_keys", "reference"],
)
def test_metadata_limit_lanes_report_the_first_failing_lanes_case_as_one_lane_at_a_time(
    variant: str | None, test: str
) -> None:
    """The metadata-limit cases at --concurrency 4 (four lanes at once) and at 1: the same failure (the first
    failing lane's, shrunk), the same evidence in the same order, ending with the failing case."""
    start = get_variant(variant).start if variant else partial(start_server)
    with start(KEY) as server:
        one, four = _limit_verdict(server, 1, test), _limit_verdict(server, 4, test)
    assert one[:2] == four[:2]  # how many cases the lanes after the failing one sent before they were cut: timing
    failure, evidence, counts = one
    assert (failure is not None) == (variant is not None)
    if failure is not None:
        assert any(method == "POST" for method, *_ in evidence[-3:])  # the failing case, replayed last
    else:  # 16 cases, each of the four lanes on a message of its own
        assert counts == four[2] == Counter({"negative": 16, "messages": 4})


def test_lanes_run_in_lane_order_and_a_failing_lane_cuts_only_the_lanes_after_it() -> None:
    """Lane 1 fails: lanes 2 and 3 are cut (their results would not be reported), lane 0 runs to its end."""
    lanes = Lanes(4, 4)
    finished: list[int] = []

    def work(lane: int) -> int:
        if lane == 1:
            raise ValueError("lane 1 failed")
        for _ in range(2000):  # bounded: cut at a check, or 2000 checks
            lanes.check(lane)
            if lane == 0 and lanes.is_cut(2):
                break  # lane 0 goes on past the failure of lane 1
        finished.append(lane)
        return lane

    ran = lanes.run(work)
    assert ran[0].value == 0 and isinstance(ran[1].error, ValueError)
    assert ran[2].cut and ran[3].cut and finished == [0]
    assert lane_sizes(40, 5) == [5] * 8 and lane_sizes(10, 5) == [5, 5] and lane_sizes(25) == [5, 4, 4, 4, 4, 4]
    assert lane_sizes(3) == [3]


@pytest.mark.parametrize("workers", [1, 4])
def test_a_lane_that_skips_or_fails_through_pytest_is_read_in_lane_order_too(workers: int) -> None:
    """pytest's skip and fail are BaseExceptions: a lane ending in one is an outcome of that lane like any error,
    so the failure of an earlier lane is still the one read first, at any concurrency."""
    lanes = Lanes(3, workers)
    skipping = threading.Event()

    def work(lane: int) -> int:
        if lane == 0:
            if workers > 1:  # lane 1 skips while lane 0 is still under way, as a slower lane 0 would let it
                with lanes.on_the_wire():
                    skipping.wait(30)  # bounded; lane 1 sets it at once
            raise ValueError("lane 0 failed")
        if lane == 1:
            skipping.set()
            pytest.skip("lane 1 skipped")
        return lane

    try:
        ran = lanes.run(work)
    except pytest.skip.Exception:
        pytest.fail("lane 1's skip was raised over lane 0's failure")
    assert isinstance(ran[0].error, ValueError)
    assert ran[1].cut or isinstance(ran[1].error, pytest.skip.Exception)
    assert ran[2].cut or ran[2].value == 2


def test_an_interrupt_during_lanes_cuts_every_lane_and_waits_for_them() -> None:
    """A signal forwarded to the calling thread from a lane (as a deferred SIGTERM is): every lane that started is
    cut at its next check and has ended before the interrupt goes on, so the run's cleanup sees every thread."""
    lanes = Lanes(4, 4)
    started: list[int] = []
    ended: list[tuple[int, str]] = []

    def work(lane: int) -> None:
        started.append(lane)
        if lane == 0:
            _thread.interrupt_main()
        try:
            for _ in range(400):  # bounded: about 8 s unless cut
                lanes.check(lane)
                time.sleep(0.02)
        except LaneCut:
            ended.append((lane, "cut"))
            raise
        ended.append((lane, "ran out"))

    with pytest.raises(KeyboardInterrupt):
        lanes.run(work)
    assert started and sorted(lane for lane, _ in ended) == sorted(started)
    assert {how for _, how in ended} == {"cut"}


def test_a_sigterm_while_sequence_lanes_run_stops_the_run_and_deletes_every_thread(tmp_path: Path) -> None:
    """SIGTERM once the sequences' lanes (four, at --concurrency 4, against a distant target) have made threads:
    the lanes are cut and waited for, then the run's cleanup deletes every thread, the ledger included."""
    report_dir = tmp_path / "sigterm"
    with start_server(KEY, latency_ms=10) as server:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}
        command = [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "--req", "MM-SEQ"]
        command += ["--base-url", server.base_url, "--report-dir", str(report_dir), "--seed", "5"]
        command += ["--max-sequences", "200", "--concurrency", "4"]  # long enough to be stopped midway
        with (tmp_path / "output.txt").open("wb") as output:
            environment = {**clean, "MODMSG_API_KEY": KEY}
            process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=output, stderr=output)
            ledger = Ledger(report_dir / LEDGER_NAME)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None and len(ledger.pending()) < 6:
                time.sleep(0.02)
            running = process.poll() is None
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=120)
        text = (tmp_path / "output.txt").read_text(encoding="utf-8", errors="replace")
        assert running, text[-2000:]
        assert code == 2 and "stopped by SIGTERM" in text, text[-2000:]
        assert not [thread for thread in server.thread_ids() if thread], "threads left on the server"
    assert not ledger.path.exists()
