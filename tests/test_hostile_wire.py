"""A hostile target cannot crash the suite, exhaust it, stall it, or turn it against objects it did not create.

The fault proxy (``proving.faultproxy``) in front of the reference server serves each attack on the requests a
``FaultPlan.where`` pattern picks: a gzip (and a deflate) bomb, an endless chunked body, headers or a body dripped
one byte at a time, JSON nested 1,000 and 100,000 levels deep, createThread answers carrying a path-traversal id or
another thread's id without the run's tag, and a connection dropped on one input (or on every input).

1. Unit level: :class:`modmsg.transport.Transport` and the code that uses it, in this process.
2. End to end: the real suite (``pytest suites --base-url …``) in subprocesses, all started at once by the
   ``runs`` fixture; each run ends, shows no traceback of the suite, writes its reports and stays under 500 MB.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import REPO, SuiteRun, finished_run

from modmsg.api import AssistantsApi, SetupError, json_or_none
from modmsg.checks.errors import error_envelope_is_valid
from modmsg.checks.response import json_body
from modmsg.failures import BadErrorEnvelope, NotJson, UnsafeId, UntaggedThread
from modmsg.ids import path, segment
from modmsg.ledger import RUN_TAG, Entry, Ledger
from modmsg.plugin.threads import ThreadFactory
from modmsg.reference import ReferenceServer, start_server
from modmsg.report.text import body as shown_body
from modmsg.sweep import sweep
from modmsg.transport import (
    RequestDropped,
    ResponseTooLarge,
    RunBudget,
    RunBudgetSpent,
    Transport,
    TransportError,
)
from modmsg.wire import MAX_JSON_DEPTH, JsonTooDeep, loads
from proving.faultproxy import Fault, FaultPlan, FaultProxy, fault_proxy, start_fault_proxy

KEY = "sk-modmsg-hostile-5ecret-0123456789"
RUN = "modmsg-hostile00000"
TRAVERSAL = "thread_x/../../files/file-victim"
MODIFY = r"^POST \S*/threads/[^/\s]+/messages/msg_"
TAGGED_CREATE = r"^POST \S*/threads\n.*modmsg_run"
MiB = 1 << 20
RUN_TIMEOUT = 120.0
RSS_LIMIT_KB = 500 * 1024  # ru_maxrss is in KiB on Linux


def _bomb(expanded: int, wbits: int) -> bytes:
    """``expanded`` bytes of zeros, compressed (wbits 31: gzip, 15: zlib/deflate): ~1,000 times smaller."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(MiB)
    return b"".join([compressor.compress(block) for _ in range(expanded // MiB)] + [compressor.flush()])


def _json(status: int, body: str | bytes, *headers: tuple[str, str]) -> Fault:
    return Fault.respond(status, (("Content-Type", "application/json"), *headers), body)


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with start_server(api_key=KEY) as running:
        yield running


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return _bomb(300 * MiB, 31)


@pytest.fixture(scope="module")
def foreign(server: ReferenceServer) -> str:
    """A thread somebody else created on the target (no modmsg_run tag)."""
    return requests.post(
        f"{server.base_url}/threads",
        json={"metadata": {"owner": "someone else"}},
        headers={"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"},
        timeout=10,
    ).json()["id"]


def transport_via(proxy: FaultProxy, **kwargs: Any) -> Transport:
    return Transport(base_url=proxy.base_url, api_key=KEY, sleep=lambda _s: None, **kwargs)


def attack(server: ReferenceServer, fault: Fault, where: str = "^GET ", limit: int | None = None) -> Any:
    return fault_proxy(server.base_url, FaultPlan(faults=(fault,), where=where, limit=limit))


# ------------------------------------------------------------------------------------------------ 1. size


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_never_expanded_past_the_cap(server, gzip_bomb, encoding):
    bomb = gzip_bomb if encoding == "gzip" else _bomb(64 * MiB, 15)
    with attack(server, _json(200, bomb, ("Content-Encoding", encoding))) as proxy:
        transport = transport_via(proxy, max_response_size=MiB)
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLarge) as caught:
                transport.request("GET", "threads/thread_abc")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert "larger than 1 MiB (--max-response-size)" in str(caught.value)
    assert peak < 16 * MiB, f"{peak:,} bytes allocated to read a response capped at 1 MiB"
    (evidence,) = transport.recorder.snapshot()
    assert evidence.status == 200 and "--max-response-size" in (evidence.error or "")


def test_an_endless_chunked_body_stops_at_the_cap(server):
    with attack(server, Fault.endless(size=64 * MiB), limit=1) as proxy:
        transport = transport_via(proxy, max_response_size=2 * MiB)
        with pytest.raises(ResponseTooLarge, match="larger than 2 MiB"):
            transport.request("GET", "threads/thread_abc")
        assert transport.request("GET", "threads/thread_abc").status_code == 404  # next exchange: a new connection


def test_an_answer_within_the_cap_is_read_whole(server):
    transport = Transport(base_url=server.base_url, api_key=KEY, max_response_size=1024)
    response = transport.request("GET", "threads/thread_abc")
    assert response.status_code == 404 and response.json()["error"]["type"] == "invalid_request_error"


# ------------------------------------------------------------------------------------------------ 2. time


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_dripped_answer_ends_at_the_whole_exchange_deadline(server, part):
    with attack(server, Fault.drip(0.1, part)) as proxy:
        transport = transport_via(proxy, timeout=1.0)
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"1 s for the whole exchange \(--request-timeout\)") as caught:
            transport.request("GET", "threads/thread_abc")
        elapsed = time.monotonic() - started
    assert type(caught.value) is TransportError  # a timeout is never taken for a dropped request
    assert elapsed < 4.0, f"the exchange went on for {elapsed:.1f} s past a 1 s deadline"
    assert [e.error for e in transport.recorder.snapshot()] == [
        "no response within the timeout: 1 s for the whole exchange (--request-timeout)"
    ]


def test_no_request_is_sent_once_the_run_budget_is_spent(server):
    with attack(server, Fault.latency(0)) as proxy:
        transport = transport_via(proxy, budget=RunBudget(seconds=5, ends=time.monotonic() - 1))
        with pytest.raises(RunBudgetSpent, match=r"run budget of 5 s \(--max-duration\) is spent"):
            transport.request("GET", "threads/thread_abc")
        assert proxy.seen == []
        assert transport.final().request("GET", "threads/thread_abc").status_code == 404  # the cleanup still runs


def test_an_exchange_never_runs_past_the_run_budget(server):
    with attack(server, Fault.drip(0.1, "body")) as proxy:
        transport = transport_via(proxy, timeout=30.0, budget=RunBudget.since(1.0))
        with pytest.raises(RunBudgetSpent, match="was cut off"):
            transport.request("GET", "threads/thread_abc")


# ------------------------------------------------------------------------------------------------ 3. deep JSON


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_deep_json_is_not_json_to_the_suite_and_crashes_nothing(server, depth):
    with attack(server, Fault.deep_json(depth), where="^") as proxy:
        transport = transport_via(proxy)
        response = transport.request("GET", "threads/thread_abc/messages/msg_abc")
        with pytest.raises(JsonTooDeep):
            response.json()
        assert json_or_none(response) is None
        with pytest.raises(NotJson):
            json_body(response, req="MM-RESP-01")
        with pytest.raises(BadErrorEnvelope):
            error_envelope_is_valid(response, req="MM-ERR-06")
        with pytest.raises(SetupError, match="createThread answered 200"):
            AssistantsApi(transport).create_thread({RUN_TAG: RUN})
    shown = shown_body(response.text)  # the report writers' view of an evidence body
    assert shown is not None and not shown.is_json


def test_json_up_to_the_depth_bound_parses():
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads(nested) is not None
    with pytest.raises(ValueError):
        loads("[" + nested + "]")


# ------------------------------------------------------------------------------------------------ 4. ids


def test_every_path_segment_is_percent_encoded():
    assert path("threads", TRAVERSAL) == "threads/thread_x%2F..%2F..%2Ffiles%2Ffile-victim"
    assert segment("..") == "%2E%2E" and segment(".") == "%2E" and segment("a?b#c") == "a%3Fb%23c"
    with pytest.raises(ValueError, match="dot segment"):
        Transport(base_url="http://127.0.0.1:9/v1", api_key=KEY).url("threads/x/../../files/f")


def test_a_path_traversal_id_from_create_thread_is_a_finding_and_never_used(server):
    with attack(server, Fault.rewrite(id=TRAVERSAL), where=r"^POST \S*/threads\n") as proxy:
        api = AssistantsApi(transport_via(proxy))
        with pytest.raises(UnsafeId) as caught:
            api.create_thread({RUN_TAG: RUN})
        api.delete_thread(TRAVERSAL)  # a test that deletes what it was given still stays under /threads
        seen = list(proxy.seen)
    assert caught.value.req == "MM-RESP-09" and caught.value.title == "Id unsafe to use in a path"
    assert [p for _, p in seen] == ["/v1/threads", "/v1/threads/thread_x%2F..%2F..%2Ffiles%2Ffile-victim"]


def test_a_created_thread_without_the_run_tag_is_a_finding_and_never_touched(server, foreign):
    with attack(server, Fault.rewrite(id=foreign, metadata={"owner": "someone else"}), where=TAGGED_CREATE) as proxy:
        factory = ThreadFactory(api=AssistantsApi(transport_via(proxy)), run_id=RUN)
        with pytest.raises(UntaggedThread) as caught:
            factory.create()
        assert factory.cleanup() == ()
        seen = list(proxy.seen)
    assert caught.value.req == "MM-RESP-09" and "modmsg_run" in caught.value.expected
    assert not any(foreign in p for _, p in seen) and foreign in server.thread_ids()


def test_sweep_never_puts_an_unsafe_ledger_id_into_a_path(server, tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append([Entry("created", RUN, TRAVERSAL, "target")])
    with attack(server, Fault.latency(0)) as proxy:
        result = sweep(transport_via(proxy), ledger, "target")
        assert proxy.seen == []
    assert [r.action for r in result.results] == ["kept"]


# ------------------------------------------------------------------------------------------------ 5. drops

SURROGATE = b'{"metadata": {"k": "\\ud800"}}'


@pytest.mark.parametrize("fault", [Fault.drop(), Fault.reset()], ids=["closed", "reset"])
def test_a_request_dropped_twice_by_a_live_target_is_named(server, fault):
    with attack(server, fault, where=r"\\ud800") as proxy:
        transport = transport_via(proxy)
        with pytest.raises(RequestDropped) as caught:
            transport.request("POST", "threads/thread_abc/messages/msg_abc", data=SURROGATE)
        seen = list(proxy.seen)
        assert transport.request("POST", "threads/thread_abc/messages/msg_abc", json={}).status_code == 404
    dropped = caught.value.exchange
    assert dropped is not None and dropped.request_body == SURROGATE.decode() and dropped.status is None
    assert "twice" in str(caught.value) and "answered the request sent right after it" in str(caught.value)
    assert [m for m, _ in seen] == ["POST", "POST", "GET"]  # sent, sent once more, then the liveness request


def test_a_target_that_answers_nothing_stays_a_transport_error(server):
    with attack(server, Fault.drop(), where="^") as proxy:
        transport = transport_via(proxy)
        with pytest.raises(TransportError) as caught:
            transport.request("POST", "threads/thread_abc/messages/msg_abc", data=SURROGATE)
    assert type(caught.value) is TransportError and "answers nothing" in str(caught.value)


# ------------------------------------------------------------------------------------------------ 6. end to end


@dataclass
class Run:
    name: str
    process: subprocess.Popen[bytes]
    report_dir: Path
    proxy: FaultProxy

    def wait(self) -> SuiteRun:
        run = finished_run(self.process, self.report_dir, f"the run against the {self.name} attack", RUN_TIMEOUT)
        output = run.output
        for crash in ("Traceback (most recent call last)", "INTERNALERROR", "RecursionError", "MemoryError"):
            assert crash not in output, f"{self.name}: {crash} in the suite's output"
        assert run.exit_code in (0, 1, 2) and (self.report_dir / "results.json").exists(), run.output[-2000:]
        assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < RSS_LIMIT_KB
        return run


def _reasons(run: SuiteRun) -> str:
    return "\n".join(
        f"{req['id']} {req['outcome']} {test.get('reason', '')} {(test.get('failure') or {}).get('title', '')}"
        for req in run.results["requirements"]
        for test in req["tests"]
    )


@pytest.fixture(scope="module")
def runs(server, gzip_bomb, foreign, tmp_path_factory) -> Iterator[dict[str, Run]]:
    """Every end-to-end run, started at once (each waits for its own in its test)."""
    ids = (Fault.rewrite(id=TRAVERSAL), Fault.rewrite(id=foreign, metadata={}))
    bomb = _json(200, gzip_bomb, ("Content-Encoding", "gzip"))
    attacks: dict[str, tuple[FaultPlan, tuple[str, ...]]] = {
        "size-and-time": (
            FaultPlan(faults=(bomb, Fault.drip(0.1, "body")), where=MODIFY),
            ("--req", "MM-RESP", "--request-timeout", "1"),
        ),
        "budget": (FaultPlan(), ("--req", "MM-META", "--max-duration", "1")),
        "deep": (
            FaultPlan(faults=(Fault.deep_json(1000),), where=MODIFY),
            ("--req", "MM-GEN-01", "--req", "MM-RESP-01"),
        ),
        "ids": (FaultPlan(faults=ids, where=TAGGED_CREATE), ("--req", "MM-RESP-09")),
        "drop": (FaultPlan(faults=(Fault.drop(),), where=r"\\ud800"), ("--req", "MM-ERR-08")),
    }
    root = tmp_path_factory.mktemp("hostile")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}
    started: dict[str, Run] = {}
    try:
        for name, (plan, args) in attacks.items():
            proxy = start_fault_proxy(server.base_url, plan)
            report_dir = root / name
            report_dir.mkdir()
            command = [sys.executable, "-m", "pytest", str(REPO / "suites"), "-q", "-p", "no:cacheprovider"]
            command += ["-p", "no:randomly", "--base-url", proxy.base_url, "--report-dir", str(report_dir)]
            command += ["--max-examples", "2", "--seed", "7", *args]
            with (report_dir / "output.txt").open("wb") as output:
                process = subprocess.Popen(
                    command, cwd=REPO, env={**clean, "MODMSG_API_KEY": KEY}, stdout=output, stderr=output
                )
            started[name] = Run(name, process, report_dir, proxy)
        yield started
    finally:
        for run in started.values():
            if run.process.poll() is None:
                run.process.kill()
                run.process.wait()
            run.proxy.stop()


def test_end_to_end_a_bomb_and_a_drip_are_errors_naming_their_limit(runs):
    run = runs["size-and-time"].wait()
    reasons = _reasons(run)
    assert "larger than 8 MiB (--max-response-size)" in reasons
    assert "1 s for the whole exchange (--request-timeout)" in reasons


def test_end_to_end_a_spent_run_budget_stops_the_run(runs):
    run = runs["budget"].wait()
    assert "modmsg: stopped: the run budget of 1 s (--max-duration) is spent" in run.output
    assert "RunBudgetSpent" in _reasons(run)


def test_end_to_end_deep_json_is_judged_not_crashed(runs):
    run = runs["deep"].wait()
    assert run.outcomes()["MM-RESP-01"] == "FAIL" and run.outcomes()["MM-GEN-01"] == "FAIL"
    assert "Body is not JSON" in _reasons(run) and (run.report_dir / "report.html").exists()


def test_end_to_end_foreign_and_traversal_ids_never_leave_the_run(runs, server, foreign):
    run = runs["ids"].wait()
    seen = runs["ids"].proxy.seen
    assert seen and all(p.startswith("/v1/threads") for _, p in seen), [p for _, p in seen if "threads" not in p]
    assert not any(foreign in p for _, p in seen) and foreign in server.thread_ids()
    assert run.outcomes()["MM-RESP-09"] == "FAIL"
    results = (run.report_dir / "results.json").read_text(encoding="utf-8")
    assert "Id unsafe to use in a path" in results or "no such id into a path" in results
    assert "cannot show to be its own" in results  # the untagged thread's finding (a test's or a fixture's)


def test_end_to_end_a_dropped_input_is_a_finding_of_mm_err_08_not_an_error(runs):
    run = runs["drop"].wait()
    outcomes = {req["id"]: req["outcome"] for req in run.results["requirements"]}
    assert outcomes["MM-ERR-08"] == "FAIL" and "ERROR" not in outcomes.values(), _reasons(run)
    received = [
        (test.get("failure") or {}).get("received", "")
        for req in run.results["requirements"]
        if req["id"] == "MM-ERR-08"
        for test in req["tests"]
    ]
    assert any("the target drops this input" in text for text in received), _reasons(run)


# ------------------------------------------------------------------------------------------------ cookies


def test_a_target_setting_a_new_cookie_on_every_answer_cannot_grow_every_request():
    """A target that sets a fresh cookie on every answer (and one too large to keep): the session keeps at most
    MAX_COOKIES, so the Cookie header it sends stops growing; a cookie it keeps is still updated (sticky sessions
    of a gateway keep working)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from modmsg.session import MAX_COOKIE_BYTES, MAX_COOKIES, WireSession

    received: list[str] = []

    class Cookies(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: without it each answer stalls ~40 ms

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            received.append(self.headers.get("Cookie") or "")
            n = len(received)
            self.send_response(200)
            self.send_header("Set-Cookie", f"fresh{n}=v{n}; Path=/")
            self.send_header("Set-Cookie", f"sticky=s{n}; Path=/")
            self.send_header("Set-Cookie", f"huge={'x' * MAX_COOKIE_BYTES}; Path=/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Cookies)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = WireSession()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/x"
        for _ in range(3 * MAX_COOKIES):
            assert session.get(url, timeout=5).status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    sent = [header.split("; ") if header else [] for header in received]
    assert max(len(cookies) for cookies in sent) == MAX_COOKIES
    assert all(len(cookies) <= MAX_COOKIES for cookies in sent)
    assert not any(c.startswith("huge=") for cookies in sent for c in cookies)
    assert f"sticky=s{len(received) - 1}" in sent[-1]  # the last answer's value, kept past the cap
    assert len(session.cookies) == MAX_COOKIES


def test_expired_cookies_do_not_fill_the_jar_and_all_cookies_together_stay_small():
    from requests.cookies import MockRequest, create_cookie

    from modmsg.session import MAX_COOKIE_BYTES, MAX_COOKIES, MAX_COOKIES_BYTES, WireSession

    session = WireSession()
    jar = session.cookies
    request = MockRequest(requests.Request("GET", "http://127.0.0.1/v1/x").prepare())
    for n in range(MAX_COOKIES):  # a full jar of cookies that have since expired
        jar.set_cookie(create_cookie(f"old{n}", "v", domain="127.0.0.1", path="/", expires=int(time.time()) - 60))
    fresh = create_cookie("fresh", "v", domain="127.0.0.1", path="/")
    assert jar._policy.set_ok(fresh, request)  # type: ignore[attr-defined]
    jar.clear()
    big = "x" * (MAX_COOKIE_BYTES - 10)
    jar.set_cookie(create_cookie("a", big, domain="127.0.0.1", path="/"))
    jar.set_cookie(create_cookie("b", "x" * (MAX_COOKIES_BYTES - len(big) - 10), domain="127.0.0.1", path="/"))
    assert not jar._policy.set_ok(create_cookie("c", "x" * 20, domain="127.0.0.1", path="/"), request)  # type: ignore[attr-defined]
    assert jar._policy.set_ok(create_cookie("a", "replaced", domain="127.0.0.1", path="/"), request)  # type: ignore[attr-defined]
