"""Fresh threads and messages made ahead of their tests (``modmsg.plugin.ahead``): the same verdicts, failures and
evidence as made on demand (``--concurrency 1``), every thread deleted, a creation failure its own test's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import REPO, SuiteRun

from modmsg.api import AssistantsApi
from modmsg.ledger import Ledger, ledger_path
from modmsg.plugin.ahead import RECIPE, THREAD, Ahead, MessageRecipe, Unit, ahead_for, plan, shared_names
from modmsg.plugin.threads import ThreadFactory
from modmsg.reference import ReferenceServer, start_server
from modmsg.reference.variants import get_variant
from modmsg.transport import Transport, TransportError
from proving.faultproxy import Fault, FaultPlan, fault_proxy

KEY = "sk-distant-setup"
RUN = "modmsg-ffffffffffff"
_VOLATILE = re.compile(r"\b(?:thread|msg|req)_[A-Za-z0-9]+|\b\d{10,}\b|127\.0\.0\.1:\d+|modmsg-[0-9a-f]{12}")
# Tests that take `thread`, `message` and `seeded` (two suites' own message fixture), and a test that makes a
# thread of its own besides: a few seconds of suite per run.
SELECTION = ("--req", "MM-REQ-01", "--req", "MM-META-07", "--req", "MM-ERR-03", "--req", "MM-META-04")


def _plain(text: str | None) -> str:
    return _VOLATILE.sub("…", text or "")


def _run(report_dir: Path, base_url: str, concurrency: int, *args: str) -> SuiteRun:
    """The suite files SELECTION needs (collecting all of ``suites`` would double the cost), without MODMSG_*."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}
    files = [str(REPO / "suites" / name) for name in ("test_requests.py", "test_metadata.py", "test_errors.py")]
    command = [sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    done = subprocess.run(
        [*command, "--report-dir", str(report_dir), "--base-url", base_url, "--concurrency", str(concurrency), *args],
        cwd=REPO, env={**clean, "MODMSG_API_KEY": KEY}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return SuiteRun(exit_code=done.returncode, output=done.stdout + done.stderr, report_dir=report_dir)


def _suite(report_dir: Path, base_url: str, concurrency: int, *args: str) -> dict[str, Any]:
    run = _run(report_dir, base_url, concurrency, *args)
    assert run.exit_code in (0, 1), run.output[-2000:]
    assert Ledger(ledger_path(report_dir)).pending() == []
    return {
        test["nodeid"]: (
            test["outcome"],
            _plain(json.dumps(test.get("failure"))),
            [
                (e["method"], _plain(e["url"]).split("/v1", 1)[-1], e["status"], _plain(e.get("request_body")))
                for e in test["evidence"]
            ],
        )
        for requirement in run.results["requirements"]
        for test in requirement.get("tests") or ()
    }


def _both(tmp_path: Path, server: ReferenceServer, *args: str) -> tuple[dict[str, Any], dict[str, Any]]:
    one = _suite(tmp_path / "one", server.base_url, 1, *args)
    four = _suite(tmp_path / "four", server.base_url, 4, *args)
    assert server.thread_ids() == []  # every thread of both runs deleted, taken by a test or not
    return one, four


def test_made_ahead_the_reference_gets_the_verdicts_and_evidence_in_the_order_of_made_on_demand(tmp_path: Path):
    with start_server(KEY) as server:
        one, four = _both(tmp_path, server, *SELECTION)
    assert one == four
    assert {outcome for outcome, _, _ in one.values()} == {"PASS"}
    seeded = next(evidence for nodeid, (_, _, evidence) in one.items() if "65_character_key" in nodeid)
    assert [(method, url) for method, url, _, _ in seeded[:2]] == [
        ("POST", "/threads"),
        ("POST", "/threads/…/messages"),
    ]
    assert '"before": "seeded by createMessage"' in seeded[1][3]  # the suite's own fixture's message


def test_made_ahead_a_variant_fails_the_same_tests_and_what_an_early_stop_left_untaken_is_deleted(tmp_path: Path):
    with get_variant("partial_write_on_rejection").start(KEY) as server:
        one, four = _both(tmp_path, server, *SELECTION, "-x")  # both: every thread deleted, the ledger settled
    assert one == four
    assert [outcome for outcome, _, _ in one.values()] == ["FAIL"]  # -x: the tests after it never ran


def test_run_ahead_a_variant_caught_through_seeded_messages_and_a_second_thread_fails_the_same_way(tmp_path: Path):
    with get_variant("answers_400_for_unknown_ids").start(KEY) as server:
        one, four = _both(tmp_path, server, *SELECTION)
    assert one == four
    failed = {
        nodeid.rsplit("::", 1)[-1]: evidence for nodeid, (outcome, _, evidence) in one.items() if outcome == "FAIL"
    }
    assert list(failed) == ["test_message_of_another_thread_returns_404_and_changes_nothing"]
    assert [method for method, *_ in failed.popitem()[1]] == ["POST", "POST", "POST", "GET", "POST"]  # in order


def test_a_creation_the_target_fails_blocks_the_test_that_takes_it_as_on_demand(tmp_path: Path):
    refuse = Fault.respond(500, (("Content-Type", "application/json"),), '{"error": {"message": "no store"}}')
    with (
        start_server(KEY) as server,
        fault_proxy(server.base_url, FaultPlan(faults=(refuse,), where=r'^POST \S*/messages\n.*"before"')) as proxy,
    ):
        args = ("--req", "MM-ERR-01", "--req", "MM-ERR-03", "--req", "MM-ERR-05")
        one = _suite(tmp_path / "one", proxy.base_url, 1, *args)
        four = _suite(tmp_path / "four", proxy.base_url, 4, *args)
        assert server.thread_ids() == []
    assert one == four
    blocked = {nodeid: failure for nodeid, (outcome, failure, _) in one.items() if outcome != "PASS"}
    assert len(blocked) == 2 and all("createMessage answered 500" in failure for failure in blocked.values())
    assert one[next(n for n in one if "deleted_thread" in n)][0] == "PASS"  # the run goes on


# ------------------------------------------------------------------------------------------------ unit level


def _def(func: Any, scope: str = "function", argnames: tuple[str, ...] = ()) -> Any:
    return SimpleNamespace(func=func, scope=scope, argnames=argnames)


def _item(nodeid: str, args: tuple[str, ...], defs: dict[str, Any], marks: tuple[str, ...] = (), **params: Any):
    """A fake collected test: its arguments, the fixtures under them (by name), its marks and parameters."""

    def closure(name: str) -> list[str]:
        return [name, *(n for arg in getattr(defs.get(name), "argnames", ()) for n in closure(arg))]

    names = list(dict.fromkeys(["_modmsg_evidence", *(n for arg in args for n in closure(arg))]))
    return SimpleNamespace(
        nodeid=nodeid,
        obj=lambda **kwargs: None,
        fixturenames=names,
        _fixtureinfo=SimpleNamespace(argnames=args, name2fixturedefs={n: [d] for n, d in defs.items()}),
        callspec=SimpleNamespace(params=params),
        get_closest_marker=lambda mark: mark if mark in marks else None,
    )


def _marked(attribute: str, value: Any) -> Any:
    def func() -> None: ...

    setattr(func, attribute, value)
    return func


def test_the_plan_has_a_unit_per_test_on_the_plugins_thread_its_messages_in_setup_order_and_who_runs_ahead():
    seeded_recipe = MessageRecipe(metadata=(("a", "b"),))
    defs = {
        "_modmsg_evidence": _def(None),
        "thread": _def(_marked(THREAD, True), argnames=("modmsg_ahead",)),
        "modmsg_ahead": _def(None, "session"),
        "api": _def(None, "session"),
        "message": _def(_marked(RECIPE, MessageRecipe()), argnames=("modmsg_ahead", "thread")),
        "seeded": _def(_marked(RECIPE, seeded_recipe), argnames=("modmsg_ahead", "thread")),
        "table": _def(None, "module"),
        "modified": _def(None, argnames=("api", "message")),
    }
    conftest_thread = {**defs, "thread": _def(_marked("x", 1))}
    items = [
        _item("a", ("api", "seeded"), defs),
        _item("b", ("api",), defs),  # no thread: nothing to make
        _item("c", ("message",), conftest_thread),  # a conftest's own thread: made on demand
        _item("d", ("seeded", "api", "message", "key"), defs, key="k"),  # setup order: seeded first
        _item("e", ("thread",), defs),  # not wanted
        _item("f", ("message", "table"), defs),  # a module-scoped fixture: pytest's thread
        _item("g", ("modified",), defs),  # a function-scoped fixture of its own: pytest's thread
        _item("h", ("message",), defs, marks=("modmsg_alone",)),
        _item("i", ("message",), defs, marks=("modmsg_last",)),
    ]
    units = {unit.nodeid: unit for unit in plan(items, lambda item: item.nodeid != "e")}
    assert list(units) == ["a", "d", "f", "g", "h", "i"]
    assert units["a"].messages == (("seeded", seeded_recipe),) and units["a"].args == ("api", "seeded")
    assert units["d"].messages == (("seeded", seeded_recipe), ("message", MessageRecipe()))
    assert units["d"].params == {"key": "k"} and units["d"].test is not None
    assert all(units[n].test is None for n in "fghi") and units["g"].messages == (("message", MessageRecipe()),)
    assert shared_names(tuple(units.values())) == {"api"}
    assert ahead_for(3) == 6


def _ahead(server: ReferenceServer, units: tuple[Unit, ...], workers: int) -> tuple[Ahead, Transport]:
    transport = Transport(base_url=server.base_url, api_key=KEY)
    factory = ThreadFactory(api=AssistantsApi(transport), run_id=RUN, concurrency=2)
    return Ahead(threads=factory, transport=transport, units=units, workers=workers), transport


def test_made_ahead_objects_reach_their_own_test_with_their_creation_evidence_and_the_rest_are_deleted():
    seed = MessageRecipe(metadata=(("k", "v"),))
    units = tuple(Unit(f"t{n}", (("message", MessageRecipe()), ("seeded", seed))) for n in range(8))
    with start_server(KEY) as server:
        ahead, transport = _ahead(server, units, workers=3)
        with transport.recording() as recorder:
            thread = ahead.thread("t0")
            message = ahead.message("t0", "message", MessageRecipe(), thread)
            seeded = ahead.message("t0", "seeded", seed, thread)
        assert message["thread_id"] == seeded["thread_id"] == thread["id"] and seeded["metadata"] == {"k": "v"}
        assert [(e.method, e.url.rsplit("/", 1)[-1]) for e in recorder.snapshot()] == [
            ("POST", "threads"),
            ("POST", "messages"),
            ("POST", "messages"),
        ]
        assert '"k": "v"' in (recorder.snapshot()[2].request_body or "")
        with transport.recording() as recorder:
            on_demand = ahead.thread("not planned")  # made now, on this thread, recorded as it is made
        assert [e.method for e in recorder.snapshot()] == ["POST"] and on_demand["id"] in server.thread_ids()
        with transport.recording() as recorder:
            released = ahead.release(thread, "t.py::test")  # its test is over: deleted by the pool, in no evidence
            assert released is not None and released.result() is True
            ahead.close()
        assert recorder.snapshot() == () and thread["id"] not in server.thread_ids()
        made = ahead.threads.created
        assert thread["id"] not in made and on_demand["id"] in made
        assert 1 <= len(made) <= 1 + ahead_for(3)  # the on-demand one, and at most the window ahead
        assert ahead.threads.cleanup() == ()
        assert server.thread_ids() == []


def test_a_test_run_ahead_hands_out_its_outcome_after_its_fixtures_and_its_exchanges_in_the_order_made():
    def modifies(api: AssistantsApi, message: dict[str, Any], key: str) -> None:
        api.modify_message(message["thread_id"], message["id"], {"metadata": {key: "v"}})
        if key == "skip":
            pytest.skip("skipped ahead")
        api.get_message(message["thread_id"], message["id"])
        raise AssertionError(f"failed ahead after {key}")

    args = ("api", "message", "key")
    units = tuple(Unit(f"t{key}", (("message", MessageRecipe()),), modifies, args, {"key": key}) for key in "ab")
    with start_server(KEY) as server:
        ahead, transport = _ahead(
            server, (*units, Unit("tskip", units[0].messages, modifies, args, {"key": "skip"})), 2
        )
        ahead.shared = {"api": AssistantsApi(transport)}
        for key in ("b", "a", "skip"):  # whatever order pytest asks in, each test gets its own unit
            with transport.recording() as recorder:
                thread = ahead.thread(f"t{key}")
                message = ahead.message(f"t{key}", "message", MessageRecipe(), thread)
                ran = ahead.call(f"t{key}")
                assert ran is not None and message["thread_id"] == thread["id"]
                with pytest.raises(BaseException, match=f"ahead{'' if key == 'skip' else ' after ' + key}"):
                    ran.hand_out(transport)
            shown = [(e.method, e.url.split("/threads", 1)[-1].count("/")) for e in recorder.snapshot()]
            modify, read = ("POST", 3), ("GET", 3)
            assert shown == [("POST", 0), ("POST", 2), modify, *(() if key == "skip" else (read,))]
            assert f'"{key}": "v"' in (recorder.snapshot()[2].request_body or "")
        assert ahead.call("not planned") is None
        ahead.close()
        assert ahead.threads.cleanup() == () and server.thread_ids() == []


def test_a_creation_failure_made_ahead_is_raised_with_its_evidence_by_the_fixture_that_takes_it():
    units = (Unit("t0", (("message", MessageRecipe()),)), Unit("t1"))
    dead = Transport("http://127.0.0.1:9/v1", KEY, sleep=lambda _: None, connect_retries=0)
    ahead = Ahead(threads=ThreadFactory(api=AssistantsApi(dead), run_id=RUN), transport=dead, units=units, workers=2)
    with dead.recording() as recorder, pytest.raises(TransportError, match="connection refused"):
        ahead.thread("t0")
    assert [e.error for e in recorder.snapshot()] == ["connection refused"]  # its own creation's evidence only
    with dead.recording() as recorder, pytest.raises(TransportError, match="connection refused"):
        ahead.thread("t1")
    assert len(recorder.snapshot()) == 1
    ahead.close()
    assert ahead.threads.created == []


def test_a_recording_names_the_test_run_ahead_that_sent_each_request(tmp_path: Path):
    """``--record-requests`` labels a request with its own test (and phase) even when a pool thread sent it while
    pytest was on another test: the same requests per test as on demand (a thread's deletion aside, which the
    pool sends once the test is over and the on-demand run at the end of the session)."""

    def per_test(concurrency: int) -> dict[str, int]:
        recording = tmp_path / f"c{concurrency}.jsonl"
        run = _run(tmp_path / f"r{concurrency}", server.base_url, concurrency, *SELECTION, "--record-requests",
                   str(recording))  # fmt: skip
        assert run.exit_code == 0, run.output[-2000:]
        counts: dict[str, int] = {}
        for line in recording.read_text(encoding="utf-8").splitlines():
            sent = json.loads(line)
            if sent["method"] == "DELETE" and re.search(r"/threads/[^/]+$", sent["url"]):
                continue
            counts[sent["test"]] = counts.get(sent["test"], 0) + 1
        return counts

    with start_server(KEY) as server:
        one, four = per_test(1), per_test(4)
    assert one == four
    assert sum(1 for label in four if label.endswith("(setup)")) >= 5


def test_an_interrupt_while_the_pool_stops_still_deletes_every_thread():
    """A Ctrl-C while the pool waits for its units in flight (the pool's stop is the cleanup's first step, in the
    same finalizer) never skips the deletion of the run's threads."""
    with start_server(KEY) as server:
        units = tuple(Unit(f"t{n}") for n in range(4))
        ahead, _ = _ahead(server, units, workers=2)
        ahead.thread("t0")  # units t0..t3 made ahead

        def interrupted() -> None:
            ahead.close()
            raise KeyboardInterrupt

        ahead.threads.stops_with(interrupted)
        with pytest.raises(KeyboardInterrupt):
            ahead.threads.stop_and_clean_up()
        assert server.thread_ids() == []


def test_a_coroutine_or_a_hypothesis_test_never_runs_ahead():
    """Off pytest's thread a coroutine would never be awaited (and pass), and a Hypothesis test would draw beside
    the lanes without their lock: both get their objects made ahead, and run on pytest's thread."""
    defs = {
        "_modmsg_evidence": _def(None),
        "thread": _def(_marked(THREAD, True), argnames=("modmsg_ahead",)),
        "modmsg_ahead": _def(None, "session"),
        "message": _def(_marked(RECIPE, MessageRecipe()), argnames=("modmsg_ahead", "thread")),
    }

    async def coroutine(message: Any) -> None: ...

    drawn = _marked("is_hypothesis_test", True)
    plain, awaited, hypothesis = (_item(name, ("message",), defs) for name in ("plain", "awaited", "drawn"))
    awaited.obj, hypothesis.obj = coroutine, drawn
    units = plan([plain, awaited, hypothesis], lambda item: True)
    assert [(unit.nodeid, unit.test is not None) for unit in units] == [
        ("plain", True), ("awaited", False), ("drawn", False)
    ]  # fmt: skip


def test_the_runs_own_interrupt_arriving_while_the_pool_stops_is_not_raised_again():
    """A signal deferred on a pool thread can reach the main thread only while the pool stops: it is the run's
    own, already recorded interrupt, so the pool is waited for once more, every thread is deleted and nothing is
    raised (the reports are still written, as interrupted)."""
    with start_server(KEY) as server:
        units = tuple(Unit(f"t{n}") for n in range(4))
        ahead, _ = _ahead(server, units, workers=2)
        ahead.thread("t0")
        ahead.threads.interrupts.received = "SIGINT"
        calls: list[str] = []

        def stop() -> None:
            calls.append("stop")
            ahead.close()
            if len(calls) == 1:
                raise KeyboardInterrupt("modmsg: stopped by SIGINT")

        ahead.threads.stops_with(stop)
        assert ahead.threads.stop_and_clean_up() == ()
        assert calls == ["stop", "stop"] and server.thread_ids() == []
