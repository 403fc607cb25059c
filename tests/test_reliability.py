"""Reliability: the suite never blames the target for the network, never leaves threads behind, spares rate limits.

1. Faults are ERROR, not FAIL, with the cause in the reason; N tests in a row without an answer stop the run.
2. 429s are retried after retry-after-ms / Retry-After (seconds or HTTP date) within a budget; ``--rate-limit``
   throttles the client; a full run against a rate-limited reference server judges like an unlimited one.
3. Every thread of a run is deleted at the end, also after SIGINT and SIGTERM; after SIGKILL, ``modmsg sweep``
   deletes what the ledger lists, and only threads that carry their run's tag.
4. The fault proxy (latency, drop, reset, truncate, gateway pages) in front of the reference server: outcome
   states stay honest.

The real suite runs in subprocesses. They are slow to start (imports), so the module starts every background run
at once (``background`` fixture) and each test then waits for its own; the unit tests need no subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import REPO, SuiteRun, finished_run

from modmsg import cli
from modmsg.api import AssistantsApi
from modmsg.checks.preconditions import finding_for
from modmsg.config import URL_CONCURRENCY, ConfigError, resolve
from modmsg.ledger import LEDGER_NAME, RUN_TAG, Entry, Ledger
from modmsg.plugin import interrupts as interrupts_module
from modmsg.plugin.interrupts import Interrupts
from modmsg.plugin.outcomes import classify
from modmsg.plugin.threads import ThreadFactory
from modmsg.reference import Behaviour, ReferenceServer, start_server
from modmsg.results import Outcome
from modmsg.session import Throttle
from modmsg.transport import RateLimitedError, RequestDropped, Transport, TransportError, retry_delay
from modmsg.waiting import result_of
from proving.faultproxy import Fault, FaultPlan, FaultProxy, fault_proxy, start_fault_proxy

KEY = "sk-modmsg-reliability-5ecret-0123456789"
SEED = "4242"
RUN_TIMEOUT = 240.0  # seconds any one background run may take before the test gives up on it
SIGNAL_AFTER_THREADS = 8  # "midway": the run has created (and ledgered) this many threads, and a test is over


# ------------------------------------------------------------------------------------------------ helpers


def _no_sleep(_seconds: float) -> None:
    return None


@dataclass
class Sleeps:
    """An injectable ``sleep`` that records instead of waiting."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def run_ids_on(server: ReferenceServer) -> dict[str, str]:
    """thread id -> modmsg_run tag, for every tagged thread the server holds."""
    store = server.app.state.store
    tagged = {}
    for thread_id in server.thread_ids():
        thread = store.get_thread(thread_id)
        if thread is not None and RUN_TAG in thread.metadata:
            tagged[thread_id] = thread.metadata[RUN_TAG]
    return tagged


def ledger_run_id(report_dir: Path) -> str | None:
    entries = Ledger(report_dir / LEDGER_NAME).entries()
    return entries[0].run if entries else None


@dataclass
class Launched:
    """One run of the real suite in a subprocess (output to a file: a full pipe must never stall the run)."""

    name: str
    process: subprocess.Popen[bytes]
    report_dir: Path
    signalled: dict[str, Any] = field(default_factory=dict)

    def wait(self) -> SuiteRun:
        return finished_run(self.process, self.report_dir, f"background run {self.name}", RUN_TIMEOUT)


def launch(name: str, root: Path, *args: str, env: dict[str, str] | None = None) -> Launched:
    report_dir = root / name
    report_dir.mkdir(parents=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}
    command = [sys.executable, "-m", "pytest", str(REPO / "suites"), "-q", "-p", "no:cacheprovider"]
    command += ["--report-dir", str(report_dir), "--max-examples", "1", "--seed", SEED, *args]
    with (report_dir / "output.txt").open("wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env={**clean, "MODMSG_API_KEY": KEY, **(env or {})}, stdout=output, stderr=output
        )
    return Launched(name=name, process=process, report_dir=report_dir)


def signal_midway(run: Launched, sig: signal.Signals) -> threading.Thread:
    """Once the run has ledgered SIGNAL_AFTER_THREADS threads, send ``sig``; note whether it was still running."""

    def watch() -> None:
        ledger = Ledger(run.report_dir / LEDGER_NAME)
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline and run.process.poll() is None:
            entries = ledger.entries()
            made = sum(entry.event == "created" for entry in entries)
            # a deleted thread: a test is over (threads are made ahead of their tests, and deleted as each ends)
            over = any(entry.event == "deleted" for entry in entries)
            if made >= SIGNAL_AFTER_THREADS and over and ledger.pending():
                run.signalled["run_id"] = ledger.pending()[0].run
                run.signalled["running"] = run.process.poll() is None
                run.process.send_signal(sig)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, name=f"signal-{run.name}", daemon=True)
    watcher.start()
    return watcher


def records(run: SuiteRun) -> list[dict[str, Any]]:
    """Every test record of a run, once (a test of two requirements is listed under both)."""
    tests = {test["nodeid"]: test for requirement in run.results["requirements"] for test in requirement["tests"]}
    return list(tests.values())


@dataclass
class Background:
    servers: dict[str, ReferenceServer]
    proxies: dict[str, FaultProxy]
    runs: dict[str, Launched]
    watchers: list[threading.Thread]


SENT_WITHOUT_ANSWER = frozenset({Fault.drop().label, Fault.reset().label, Fault.truncate().label})
FAULTS = (
    Fault.drop(),
    Fault.reset(),
    Fault.truncate(),
    Fault.gateway_page(502),
    Fault.gateway_page(503),
    Fault.latency(3.0),  # past the run's 1.5 s request timeout
)


@pytest.fixture(scope="module")
def background(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    """Start every subprocess run this module judges, all at once (they mostly wait on imports and back-off)."""
    root = tmp_path_factory.mktemp("reliability")
    servers = {
        "plain": start_server(KEY),
        "rate_limited": start_server(KEY, Behaviour(rate_limit=50)),
        "slow": start_server(KEY, Behaviour(rate_limit=5)),
        "killed": start_server(KEY),  # the SIGKILL run's alone: when it is idle, the killed run's requests are over
    }
    plain = servers["plain"].base_url
    proxies = {
        # The first 40 requests (probe, early tests) pass; then every 40th is spoiled, 12 in all, each kind twice.
        "faulty": start_fault_proxy(plain, FaultPlan(faults=FAULTS, after=40, every=40, limit=12)),
        # A target that dies midway: after 60 requests, connection refused.
        "dying": start_fault_proxy(plain, FaultPlan(refuse_after=60)),
    }
    runs = {
        "baseline": launch("baseline", root),
        "rate_limited": launch("rate_limited", root, "--base-url", servers["rate_limited"].base_url),
        "throttled": launch(
            "throttled",
            root,
            "--base-url",
            servers["slow"].base_url,
            "--req",
            "MM-META-16",
            "--req",
            "MM-HDR-04",
            env={"MODMSG_RATE_LIMIT": "5/s"},
        ),
        "faulty": launch(
            "faulty",
            root,
            "--base-url",
            proxies["faulty"].base_url,
            "--request-timeout",
            "1.5",
            "--max-transport-failures",
            "0",
        ),
        "dying": launch("dying", root, "--base-url", proxies["dying"].base_url),
        "sigint": launch("sigint", root, "--base-url", plain),
        "sigterm": launch("sigterm", root, "--base-url", plain),
        "sigkill": launch("sigkill", root, "--base-url", servers["killed"].base_url),
    }
    watchers = [
        signal_midway(runs["sigint"], signal.SIGINT),
        signal_midway(runs["sigterm"], signal.SIGTERM),
        signal_midway(runs["sigkill"], signal.SIGKILL),
    ]
    try:
        yield Background(servers=servers, proxies=proxies, runs=runs, watchers=watchers)
    finally:
        for run in runs.values():
            if run.process.poll() is None:
                run.process.kill()
                run.process.wait()
        for proxy in proxies.values():
            proxy.stop()
        for server in servers.values():
            server.stop()


# ------------------------------------------------------------------------------- 1. faults are ERROR


@pytest.fixture(scope="module")
def plain_server() -> Iterator[ReferenceServer]:
    with start_server(KEY) as server:
        yield server


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (Fault.drop(), "connection closed without a response"),
        (Fault.reset(), "connection reset"),
        (Fault.truncate(), "response truncated"),
        (Fault.gateway_page(502), "502 Bad Gateway with an HTML page"),
        (Fault.gateway_page(503), "503 Service Unavailable with an HTML page"),
        (Fault.latency(2.0), "no response within the timeout"),
    ],
    ids=lambda value: value.label if isinstance(value, Fault) else None,
)
def test_every_fault_is_a_transport_error_naming_its_cause(plain_server: ReferenceServer, fault: Fault, cause: str):
    with fault_proxy(plain_server.base_url, FaultPlan(faults=(fault,), limit=1)) as proxy:
        # Only the slow answer must outlast the timeout: the resend, the liveness probe and the next request must
        # not, however loaded the machine.
        timeout = 0.5 if fault.kind == "latency" else 10.0
        transport = Transport(proxy.base_url, KEY, timeout=timeout, sleep=_no_sleep)
        if fault.label in SENT_WITHOUT_ANSWER:
            # sent, then no answer: sent once more, and the target answers the resend
            assert transport.request("POST", "threads", json={"metadata": {"k": "v"}}).status_code == 200
            failed = transport.recorder.snapshot()[-2]
        else:
            with pytest.raises(TransportError, match=cause) as info:
                transport.request("POST", "threads", json={"metadata": {"k": "v"}})
            assert KEY not in str(info.value)
            failed = transport.recorder.snapshot()[-1]
        assert cause in (failed.error or "")
        assert KEY not in json.dumps(failed.as_dict())
        # the fault was one request: the next one through the same proxy is answered normally
        assert transport.request("GET", "threads/thread_doesnotexist").status_code == 404
        assert [injection.fault for injection in proxy.injected] == [fault.label]


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (Fault.drop(), "connection closed without a response"),
        (Fault.reset(), "connection reset"),
        (Fault.truncate(), "response truncated"),
    ],
    ids=lambda value: value.label if isinstance(value, Fault) else None,
)
def test_a_request_dropped_twice_by_a_live_target_is_a_finding_not_a_fault(
    plain_server: ReferenceServer, fault: Fault, cause: str
):
    with fault_proxy(plain_server.base_url, FaultPlan(faults=(fault,), limit=2)) as proxy:
        transport = Transport(proxy.base_url, KEY, timeout=10.0, sleep=_no_sleep)
        with pytest.raises(RequestDropped) as info:
            transport.request("POST", "threads", json={"metadata": {"k": "v"}})
        assert info.value.exchange is not None and cause in (info.value.exchange.error or "")
        assert [injection.fault for injection in proxy.injected] == [fault.label, fault.label]
    failure = finding_for(info.value)
    assert failure is not None and failure.req == "MM-ERR-08"


def test_a_gateway_page_is_kept_as_evidence_but_a_json_5xx_is_the_targets_answer(plain_server: ReferenceServer):
    plan = FaultPlan(
        faults=(Fault.gateway_page(502), Fault.respond(503, (("Content-Type", "application/json"),), "{}"))
    )
    with fault_proxy(plain_server.base_url, plan) as proxy:
        transport = Transport(proxy.base_url, KEY, sleep=_no_sleep)
        with pytest.raises(TransportError, match="gateway"):
            transport.request("GET", "threads/thread_x")
        page = transport.recorder.snapshot()[-1]
        assert page.status == 502 and "<html>" in (page.response_body or "")
        assert transport.request("GET", "threads/thread_x").status_code == 503  # JSON: judged, not excused


def test_connection_refused_and_dns_failure_name_their_cause(monkeypatch):
    import socket

    real_getaddrinfo = socket.getaddrinfo

    def no_such_host(host: object, *args: object, **kwargs: object) -> object:
        if host == "modmsg-reliability.invalid":  # answered here: no query ever leaves for a name server
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    sleeps = Sleeps()
    with pytest.raises(TransportError, match="connection refused"):
        Transport("http://127.0.0.1:9/v1", KEY, sleep=sleeps).request("GET", "threads/x")
    assert sleeps.calls == [0.2, 0.4]  # never sent: retried twice, then given up
    with pytest.raises(TransportError, match="host name could not be resolved"):
        Transport("http://modmsg-reliability.invalid/v1", KEY, sleep=_no_sleep, timeout=5).request("GET", "x")


def test_a_transport_error_is_classified_error_even_inside_an_exception_group():
    error = TransportError(f"POST http://127.0.0.1:9/v1/threads?key={KEY}: connection reset")

    def redact(text: str) -> str:
        return text.replace(KEY, "[REDACTED]")

    for raised in (error, ExceptionGroup("flaky", [error]), ExceptionGroup("two", [ValueError("x"), error])):
        outcome, failed_req, failure, reason = classify(raised, redact)
        assert (outcome, failed_req, failure) == (Outcome.ERROR, None, None)
        assert reason.startswith("TransportError:") and "connection reset" in reason and KEY not in reason


def test_faults_midway_through_a_full_run_are_errors_never_failures(background: Background):
    faulty = background.runs["faulty"].wait()
    baseline = background.runs["baseline"].wait()
    injected = background.proxies["faulty"].injected
    assert len(injected) == 12, injected
    tests = records(faulty)
    assert not [t for t in tests if t["outcome"] == "FAIL"], "a network fault was reported as the target's failure"
    errors = [t for t in tests if t["outcome"] == "ERROR"]
    assert errors, "12 faults were injected, yet no test noticed"
    for test in errors:
        assert test["reason"].startswith(("TransportError:", "RateLimitedError:")), test["reason"]
        assert KEY not in test["reason"]
    causes = " ".join(t["reason"] for t in errors)
    assert any(word in causes for word in ("reset", "without a response", "truncated", "gateway", "timeout"))
    # Every requirement that no fault touched is judged exactly as without faults.
    expected = baseline.outcomes()
    for requirement in faulty.results["requirements"]:
        touched = any(t["outcome"] == "ERROR" for t in requirement["tests"])
        if not touched:
            assert requirement["outcome"] == expected[requirement["id"]], requirement["id"]
        else:
            assert requirement["outcome"] == "ERROR", requirement["id"]


def test_a_target_that_dies_midway_stops_the_run_with_exit_2_and_one_sentence(background: Background):
    dying = background.runs["dying"].wait()
    assert dying.exit_code == 2, dying.output
    sentence = [line for line in dying.output.splitlines() if line.startswith("modmsg: stopped early")]
    assert len(sentence) == 1, dying.output
    # The target dies mid-exchange: a request on a connection it cut is reset, one sent afterwards is refused
    # (with --concurrency several exchanges are in flight when it dies, so either can be the last cause).
    died = ("connection refused", "connection reset")
    assert "5 tests in a row got no HTTP answer" in sentence[0] and any(c in sentence[0] for c in died)
    tests = records(dying)
    assert len(tests) < 100, "the run ground on after the target had died"
    errors = [t for t in tests if t["outcome"] == "ERROR"]
    assert len(errors) == 5 and all(any(c in t["reason"] for c in died) for t in errors), errors
    assert not [t for t in tests if t["outcome"] == "FAIL"]
    assert "modmsg sweep --base-url" in dying.output  # the threads it could not delete are named, with the fix
    results = json.loads((dying.report_dir / "results.json").read_text(encoding="utf-8"))
    assert results["claim"]["status"] == "no-claim" and results["claim"]["level"] is None
    assert "stopped early" in results["meta"]["stopped"] and results["meta"]["interrupted"] is False
    assert "PASS" not in {r["outcome"] for r in results["requirements"] if not r["tests"]}


def test_max_transport_failures_and_rate_limit_settings():
    assert resolve({}, {}).max_transport_failures == 5
    assert resolve({}, {"MODMSG_MAX_TRANSPORT_FAILURES": "0"}).max_transport_failures == 0
    assert resolve({"rate_limit": "2.5/s"}, {}).rate_limit == 2.5
    assert resolve({}, {"MODMSG_RATE_LIMIT": "7"}).rate_limit == 7.0
    for bad in ("0", "-1", "fast", "5/min", "nan"):
        with pytest.raises(ConfigError, match="--rate-limit"):
            resolve({"rate_limit": bad}, {})
    with pytest.raises(ConfigError, match="--max-transport-failures"):
        resolve({"max_transport_failures": "-2"}, {})


# ------------------------------------------------------------------------------------ 2. rate limits


def _response(headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = 429
    response.headers.update(headers)
    return response


def test_retry_delay_honours_retry_after_ms_seconds_and_http_date():
    now = 1_800_000_000.0
    assert retry_delay(_response({"retry-after-ms": "250"}), 0) == 0.25
    assert retry_delay(_response({"retry-after-ms": "250", "Retry-After": "9"}), 0) == 0.25  # ms wins
    assert retry_delay(_response({"Retry-After": "3"}), 0) == 3.0
    assert retry_delay(_response({"Retry-After": formatdate(now + 7, usegmt=True)}), 0, now=lambda: now) == 7.0
    assert retry_delay(_response({"Retry-After": formatdate(now - 60, usegmt=True)}), 0, now=lambda: now) == 0.0
    assert retry_delay(_response({"Retry-After": "soon"}), 2) == 2.0  # unusable: exponential back-off
    assert retry_delay(_response({}), 10) == 8.0  # capped
    assert retry_delay(_response({"Retry-After": "nan"}), 0) == float("inf")  # longer than any budget


def _limited(*headers: dict[str, str]) -> tuple[Fault, ...]:
    body = '{"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": null}}'
    return tuple(
        Fault.respond(429, (("Content-Type", "application/json"), *headers_.items()), body) for headers_ in headers
    )


def test_429s_are_retried_after_the_delay_each_one_asks_for(plain_server: ReferenceServer):
    date = formatdate(time.time() + 50, usegmt=True)  # within the 60 s the back-off may wait in all
    faults = _limited({"retry-after-ms": "250"}, {"Retry-After": "2"}, {"Retry-After": date})
    with fault_proxy(plain_server.base_url, FaultPlan(faults=faults, limit=3)) as proxy:
        sleeps = Sleeps()
        transport = Transport(proxy.base_url, KEY, sleep=sleeps)
        response = transport.request("POST", "threads", json={})
        assert response.status_code == 200 and response.json()["object"] == "thread"
    assert sleeps.calls[:2] == [0.25, 2.0]
    assert 40 <= sleeps.calls[2] <= 50  # the date's own, less the seconds a loaded machine may take to get here
    assert len(transport.rate_limited) == 3  # every 429 is kept for MM-HDR-04


def test_429_back_off_is_bounded_in_attempts_and_in_total_wait(plain_server: ReferenceServer):
    with fault_proxy(plain_server.base_url, FaultPlan(faults=_limited({"Retry-After": "1"}))) as proxy:
        sleeps = Sleeps()
        transport = Transport(proxy.base_url, KEY, sleep=sleeps, max_429_retries=3)
        with pytest.raises(RateLimitedError, match="still rate limited"):
            transport.request("GET", "threads/thread_x")
        assert sleeps.calls == [1.0, 1.0, 1.0] and len(proxy.injected) == 4

        sleeps = Sleeps()
        transport = Transport(proxy.base_url, KEY, sleep=sleeps, max_429_wait=2.5)
        with pytest.raises(RateLimitedError):
            transport.request("GET", "threads/thread_x")
        assert sum(sleeps.calls) <= 2.5 and sleeps.calls == [1.0, 1.0]

    with fault_proxy(plain_server.base_url, FaultPlan(faults=_limited({"Retry-After": "3600"}))) as proxy:
        sleeps = Sleeps()
        with pytest.raises(RateLimitedError, match="asks for 3600 s"):
            Transport(proxy.base_url, KEY, sleep=sleeps).request("GET", "threads/thread_x")
        assert sleeps.calls == []  # never waits an hour


def test_a_persistent_429_is_an_error_not_a_failure():
    outcome, _, _, reason = classify(RateLimitedError("GET http://x/v1/threads/t: still rate limited"), str)
    assert outcome is Outcome.ERROR and reason.startswith("RateLimitedError")


def test_the_environment_is_read_once_per_origin_and_still_honoured(monkeypatch):
    """Proxy variables, ``no_proxy`` and the CA bundle apply as in plain requests; they are read once per origin,
    the target's when its transport is made, so no pool thread iterates ``os.environ`` while pytest changes it."""
    import modmsg.session

    reads: list[str] = []
    real = modmsg.session.get_environ_proxies

    def counted(url, no_proxy=None):
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(modmsg.session, "get_environ_proxies", counted)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "api.bypassed.invalid")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/modmsg-test.pem")
    transport = Transport(base_url="https://api.example.invalid/v1", api_key="sk-environment")
    assert reads == ["https://api.example.invalid/v1"]  # read when the transport is made
    session = transport.session
    for _ in range(3):
        proxied = session.merge_environment_settings("https://api.example.invalid/v1/threads", {}, None, None, None)
        assert proxied["proxies"]["https"] == "http://proxy.invalid:3128"
        assert proxied["verify"] == "/etc/ssl/modmsg-test.pem"
        proxied["proxies"]["https"] = "changed by a caller"  # a caller's change never reaches the next request
    bypassed = session.merge_environment_settings("https://api.bypassed.invalid/v1/x", {}, None, None, None)
    assert "https" not in bypassed["proxies"]
    assert reads == ["https://api.example.invalid/v1", "https://api.bypassed.invalid/v1/x"]
    plain = requests.Session().merge_environment_settings("https://api.example.invalid/v1", {}, None, None, None)
    assert session.merge_environment_settings("https://api.example.invalid/v1", {}, None, None, None) == plain


def test_no_request_reads_the_environment_on_its_thread(monkeypatch, plain_server: ReferenceServer):
    """A request through the transport takes its proxies and CA bundle from what was read when the transport was
    made: requests' own per-request lookup iterates ``os.environ``, which pytest changes under pool threads."""
    import requests.sessions

    def forbidden(*args, **kwargs):
        raise AssertionError("the environment was read for a request")

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    transport = Transport(base_url=plain_server.base_url, api_key=KEY)
    monkeypatch.setattr(requests.sessions, "resolve_proxies", forbidden)
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", forbidden)
    assert transport.request("POST", "threads", json={}).status_code == 200  # no_proxy honoured: sent directly
    assert transport.session.proxies_for("http://api.example.invalid/v1/x")["http"] == "http://proxy.invalid:3128"


def test_the_throttle_spaces_request_starts_without_a_burst():
    now = [100.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    throttle = Throttle(4, clock=lambda: now[0], sleep=sleep)
    starts = []
    for _ in range(5):
        throttle.wait()
        starts.append(now[0])
    assert starts == [100.0, 100.25, 100.5, 100.75, 101.0]
    now[0] += 10  # idle: no credit is saved up for a burst
    throttle.wait()
    throttle.wait()
    assert now[0] == 111.25


def test_rate_limit_option_keeps_a_client_under_the_targets_limit():
    with start_server(KEY, Behaviour(rate_limit=1)) as server:  # any two requests within a second: a 429
        unthrottled = Transport(server.base_url, KEY, max_429_retries=0)
        with pytest.raises(RateLimitedError):
            for _ in range(15):
                unthrottled.request("GET", "threads/thread_x")
    with start_server(KEY, Behaviour(rate_limit=10)) as server:
        throttled = Transport(server.base_url, KEY, max_429_retries=0, rate_limit=10)
        statuses = {throttled.request("GET", "threads/thread_x").status_code for _ in range(15)}
        assert statuses == {404} and throttled.rate_limited == []


def test_a_full_run_against_a_rate_limited_server_judges_like_an_unlimited_one(background: Background):
    limited = background.runs["rate_limited"].wait()
    baseline = background.runs["baseline"].wait()
    assert baseline.exit_code == 0, baseline.output[-3000:]
    assert limited.exit_code == 0, limited.output[-3000:]
    expected, got = baseline.outcomes(), limited.outcomes()
    assert expected.pop("MM-HDR-04") == "SKIP"  # no 429 without a rate limit ...
    assert got.pop("MM-HDR-04") == "PASS"  # ... real ones with it, each well-formed
    assert got == expected


def test_the_rate_limit_option_reaches_the_suite(background: Background):
    throttled = background.runs["throttled"].wait()
    outcomes = throttled.outcomes()
    # 13 concurrent writers against a 5 requests/s server would be answered 429; at --rate-limit 5 none is.
    assert outcomes["MM-META-16"] == "PASS", throttled.output[-3000:]
    assert outcomes["MM-HDR-04"] == "SKIP", throttled.output[-3000:]


# ------------------------------------------------------------------------------------------ 3. cleanup


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_run_stopped_midway_by_a_signal_deletes_every_thread_it_created(background: Background, sig):
    run = background.runs[sig.name.lower()]
    stopped = run.wait()
    assert run.signalled.get("running"), f"the run ended before it could be signalled:\n{stopped.output[-2000:]}"
    run_id = run.signalled["run_id"]
    assert stopped.exit_code == 2, stopped.output[-2000:]
    assert f"stopped by {sig.name}" in stopped.output
    left = [thread for thread, tag in run_ids_on(background.servers["plain"]).items() if tag == run_id]
    assert left == [], f"{len(left)} thread(s) of {run_id} left on the server"
    assert not (run.report_dir / LEDGER_NAME).exists()  # everything settled: the ledger is gone too
    results = json.loads((run.report_dir / "results.json").read_text(encoding="utf-8"))
    assert results["claim"]["status"] == "interrupted" and results["claim"]["level"] is None
    assert results["meta"]["interrupted"] is True and sig.name in results["meta"]["stopped"]
    summary = (run.report_dir / "summary.md").read_text(encoding="utf-8")
    assert "INTERRUPTED: NO CLAIM" in summary


def test_sweep_deletes_what_a_killed_run_left_behind(background: Background, monkeypatch, capsys):
    run = background.runs["sigkill"]
    killed = run.wait()
    assert killed.exit_code == -signal.SIGKILL
    run_id = run.signalled["run_id"]
    server = background.servers["killed"]
    # the creations the killed run had in flight may still be being answered: count what they leave once they are
    assert server.wait_until_idle(30), "the server still answers requests of a run that is over"
    leftovers = {thread for thread, tag in run_ids_on(server).items() if tag == run_id}
    assert leftovers, "SIGKILL cannot be caught, so the killed run must have left threads behind"
    # SIGKILL cannot be deferred: a thread whose creation was in flight can exist on the target without its id ever
    # reaching the run; every other one is in the ledger. At most one per sender: the N - 1 threads running tests
    # ahead, and pytest's thread or the N lanes it waits for.
    unledgered = leftovers - {e.thread for e in Ledger(run.report_dir / LEDGER_NAME).pending()}
    assert len(unledgered) <= 2 * URL_CONCURRENCY - 1, unledgered  # --base-url: --concurrency auto is 8
    monkeypatch.setenv("MODMSG_API_KEY", KEY)
    code = cli.main(["sweep", "--base-url", server.base_url, "--report-dir", str(run.report_dir)])
    assert code == 0, capsys.readouterr().out
    assert {thread for thread, tag in run_ids_on(server).items() if tag == run_id} == unledgered
    assert not (run.report_dir / LEDGER_NAME).exists()


def test_sweep_never_deletes_a_thread_without_its_runs_tag(tmp_path, monkeypatch, capsys):
    with start_server(KEY) as server:
        api = AssistantsApi(Transport(server.base_url, KEY))
        ours = api.create_thread({RUN_TAG: "modmsg-aaaaaaaaaaaa"})["id"]
        untagged = api.create_thread({"owner": "someone else"})["id"]
        other_run = api.create_thread({RUN_TAG: "modmsg-bbbbbbbbbbbb"})["id"]
        unlisted = api.create_thread({RUN_TAG: "modmsg-aaaaaaaaaaaa"})["id"]
        gone = api.create_thread({RUN_TAG: "modmsg-aaaaaaaaaaaa"})["id"]
        api.delete_thread(gone)
        ledger = Ledger(tmp_path / LEDGER_NAME)
        run, target = "modmsg-aaaaaaaaaaaa", server.base_url
        ledger.append(
            [
                Entry("created", run, ours, target),
                Entry("created", run, untagged, target),  # e.g. a hand-edited ledger: the tag check protects it
                Entry("created", run, other_run, target),
                Entry("created", run, gone, target),
                Entry("created", run, "../../etc", target),  # never becomes a request path
                Entry("created", run, ours, "https://another-target.example/v1"),  # not this target: not touched
            ]
        )
        with ledger.path.open("a", encoding="utf-8") as handle:
            handle.write('{"event": "created", "run": "modmsg-cut')  # what a kill mid-write leaves
        monkeypatch.setenv("MODMSG_API_KEY", KEY)
        argv = ["sweep", "--base-url", server.base_url, "--ledger", str(ledger.path)]

        assert cli.main([*argv, "--dry-run"]) == 1  # the malformed id blocks a clean result, even in a dry run
        assert "would delete 1" in capsys.readouterr().out
        assert ours in server.thread_ids()  # a dry run deletes nothing
        code = cli.main(argv)
        out = capsys.readouterr().out
        assert code == 1, out  # the malformed id stays for a human: the sweep says it is not complete
        assert ours not in server.thread_ids()
        assert {untagged, other_run, unlisted} <= set(server.thread_ids())
        assert KEY not in out
        remaining = {(e.thread, e.target) for e in ledger.pending()}
        assert remaining == {("../../etc", target), (ours, "https://another-target.example/v1")}


def test_cleanup_gives_up_on_a_dead_target_and_leaves_the_rest_to_the_ledger(tmp_path):
    ledger = Ledger(tmp_path / LEDGER_NAME)
    dead = AssistantsApi(Transport("http://127.0.0.1:9/v1", KEY, sleep=_no_sleep))
    factory = ThreadFactory(api=dead, run_id="modmsg-cccccccccccc", ledger=ledger, target="http://127.0.0.1:9/v1")
    factory.created.extend(f"thread_{i:024d}" for i in range(10))
    for thread_id in factory.created:
        ledger.created(factory.run_id, thread_id, factory.target)
    left = factory.cleanup()
    assert len(left) == 10 and len(ledger.pending()) == 10


def test_a_signal_during_thread_creation_waits_until_the_id_is_recorded():
    interrupts = Interrupts()
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"), interrupts.deferred():
        interrupts.handler(signal.SIGTERM, None)  # deferred: the block runs to the end
        recorded = True
    assert recorded
    assert interrupts.received == "SIGTERM"  # remembered, in case the exception gets swallowed somewhere
    with pytest.raises(KeyboardInterrupt, match="SIGINT"):
        Interrupts().handler(signal.SIGINT, None)  # outside a critical block: at once
    fresh = Interrupts()
    with pytest.raises(KeyboardInterrupt, match="SIGINT"), fresh.deferred():
        fresh.handler(signal.SIGTERM, None)
        fresh.handler(signal.SIGINT, None)  # a second signal does not wait


def test_the_ledger_survives_parallel_writers_and_settles_to_nothing(tmp_path):
    ledger = Ledger(tmp_path / "reports" / LEDGER_NAME)

    def writer(n: int) -> None:
        for i in range(25):
            ledger.created(f"modmsg-{n:012d}", f"thread_{n}_{i}", "http://127.0.0.1:1/v1")

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert len(ledger.pending()) == 100
    for entry in ledger.pending()[:60]:
        ledger.deleted(entry.run, entry.thread, entry.target)
    assert ledger.compact() == 40 and len(ledger.entries()) == 40
    for entry in ledger.pending():
        ledger.deleted(entry.run, entry.thread, entry.target)
    assert ledger.compact() == 0 and not ledger.path.exists()


def test_a_signal_deferred_during_a_failing_creation_still_interrupts():
    interrupts = Interrupts()
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"), interrupts.deferred():
        interrupts.handler(signal.SIGTERM, None)
        raise TransportError("POST http://127.0.0.1:9/v1/threads: connection reset")


def test_sweep_sends_through_the_runs_transport_so_the_size_cap_applies(tmp_path, monkeypatch, capsys):
    """``modmsg sweep`` builds its transport where the run does (modmsg.target.transport_for): the settings that
    bound a run's exchanges (here --max-response-size) bound the sweep's too."""
    with start_server(KEY) as server:
        api = AssistantsApi(Transport(server.base_url, KEY))
        run = "modmsg-aaaaaaaaaaaa"
        big = api.create_thread({RUN_TAG: run, "pad": "x" * 512, "pad2": "y" * 512})["id"]  # getThread > 1 KiB
        ledger = Ledger(tmp_path / LEDGER_NAME)
        ledger.append([Entry("created", run, big, server.base_url)])
        monkeypatch.setenv("MODMSG_API_KEY", KEY)
        monkeypatch.setenv("MODMSG_MAX_RESPONSE_SIZE", "1KiB")
        code = cli.main(["sweep", "--base-url", server.base_url, "--ledger", str(ledger.path)])
        out = capsys.readouterr().out
        assert code == 1, out
        assert "kept" in out and "--max-response-size" in out, out
        assert big in server.thread_ids()  # the answer was cut at the cap, so nothing was deleted on its word
        assert [entry.thread for entry in ledger.pending()] == [big]


def test_sweep_without_a_ledger_or_a_target_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MODMSG_BASE_URL", raising=False)
    monkeypatch.setenv("MODMSG_API_KEY", KEY)
    assert cli.main(["sweep", "--report-dir", str(tmp_path)]) == 2
    assert "sweep needs the target" in capsys.readouterr().err
    assert cli.main(["sweep", "--base-url", "http://127.0.0.1:9/v1", "--report-dir", str(tmp_path)]) == 0
    assert "nothing to sweep" in capsys.readouterr().out


def test_a_sigterm_deferred_while_a_pool_thread_creates_stops_the_run_as_sigterm():
    """--concurrency creates threads on pool threads: a signal deferred there is handed to the main thread (as the
    first signal the run handles), and the run still says which signal stopped it."""
    interrupts = Interrupts()
    entered, release = threading.Event(), threading.Event()

    def create() -> None:
        with interrupts.deferred():
            entered.set()
            release.wait(10)

    before = {sig: signal.getsignal(sig) for sig in Interrupts.SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, also when run as a background job
    worker = threading.Thread(target=create)
    try:
        with pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM"), interrupts.installed():
            worker.start()
            assert entered.wait(10)
            interrupts.handler(signal.SIGTERM, None)  # delivered to the main thread mid-creation: deferred
            release.set()
            worker.join(10)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the forwarded interrupt lands at the main thread's next step
                time.sleep(0.01)
    finally:
        release.set()
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert interrupts.received == "SIGTERM"


def test_a_signal_held_back_past_the_test_boundary_that_stops_the_run_is_not_raised_again(monkeypatch):
    """A signal held back while a pool thread creates a thread is received; the session stops at the next test
    boundary. Once that stop is under way the held-back signal is no longer handed over, and a hand-over already on
    its way is dropped: raised then, it landed inside pytest's own interrupt report, outside anything that catches
    it, and the run died by SIGINT after writing its reports (seen on CI). A new signal still ends the process."""
    woken: list[signal.Signals] = []
    monkeypatch.setattr(interrupts_module, "wake_main_thread", woken.append)

    def held_back(interrupts: Interrupts) -> Callable[[], None]:
        """A pool thread mid-creation when a SIGTERM arrives (deferred); the returned call lets the creation end."""
        entered, release = threading.Event(), threading.Event()

        def create() -> None:
            with interrupts.deferred():
                entered.set()
                release.wait(10)

        worker = threading.Thread(target=create)
        worker.start()
        assert entered.wait(10)
        interrupts.handler(signal.SIGTERM, None)

        def end() -> None:
            release.set()
            worker.join(10)

        return end

    first = Interrupts()
    end = held_back(first)
    assert first.received == "SIGTERM"
    first.stop_under_way()  # the plugin, at the end of the test during which the signal arrived
    end()
    assert woken == []  # the creation ended after the stop began: nothing handed over

    second, ended = Interrupts(), []
    second.exit_now = ended.append  # os._exit in a real run
    held_back(second)()
    assert len(woken) == 1  # handed over before the boundary ...
    second.stop_under_way()
    second.handler(woken[0], None)  # ... and delivered after it: dropped, no KeyboardInterrupt
    assert ended == []
    with suppress(KeyboardInterrupt):
        second.handler(signal.SIGINT, None)  # a new signal once the stop is under way: at once
    assert ended == [signal.SIGINT]


def test_once_the_test_loop_is_over_a_first_signal_is_noted_and_the_reports_finished():
    """Between the end of the test loop and the written reports (:meth:`Interrupts.hold`) a first signal is noted,
    not raised, except inside the upstream pass (an ``installed`` block entered after it), which it must still stop;
    a second one ends the process at once. Afterwards the previous handlers come back."""
    before = {sig: signal.getsignal(sig) for sig in Interrupts.SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        quiet = Interrupts()
        quiet.hold()
        assert signal.getsignal(signal.SIGTERM) == quiet.handler
        quiet.release()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) == signal.default_int_handler

        late, said, ended = Interrupts(), [], []
        late.say, late.exit_now = said.append, ended.append  # the real ones write to stderr and os._exit
        late.hold()
        late.handler(signal.SIGTERM, None)  # noted: no KeyboardInterrupt
        assert late.late == "SIGTERM" and late.received is None and len(said) == 1 and ended == []
        late.release()  # only noted: a process that goes on (a session inside another) gets its handlers back
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

        twice = Interrupts()
        twice.say, twice.exit_now = said.append, ended.append
        twice.hold()
        twice.handler(signal.SIGTERM, None)
        with suppress(KeyboardInterrupt):
            twice.handler(signal.SIGINT, None)
        assert ended == [signal.SIGINT]
        twice.release()

        cleanup = Interrupts()
        with cleanup.installed():  # the threads' cleanup, still under way when the loop ended (-x in a teardown)
            cleanup.hold()
            cleanup.handler(signal.SIGTERM, None)  # noted: raised here it would escape pytest's session end
        assert cleanup.late == "SIGTERM"
        cleanup.release()

        skipped = Interrupts()
        skipped.say = said.append
        skipped.hold()
        skipped.handler(signal.SIGTERM, None)  # noted before the upstream pass began ...
        with pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM"), skipped.installed():
            pytest.fail("the upstream pass began after the run was asked to end")  # ... so it does not begin
        skipped.release()

        ended.clear()
        cut = Interrupts()
        cut.exit_now = ended.append
        with suppress(KeyboardInterrupt), cut.deferred():  # a creation under way when the loop was cut short
            cut.handler(signal.SIGTERM, None)  # held back: the run is being interrupted
            cut.hold()
            cut.handler(signal.SIGINT, None)  # so this is a second signal, not a first one to note
        assert ended == [signal.SIGINT] and cut.late is None
        cut.release()

        upstream = Interrupts()
        with upstream.installed():  # the test loop, as the plugin runs it
            upstream.hold()
        with pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM"), upstream.installed():
            upstream.handler(signal.SIGTERM, None)  # the upstream pass is running: it must stop
        assert upstream.late is None and upstream.received == "SIGTERM"
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize(
    "sigint", [signal.default_int_handler, signal.SIG_IGN], ids=["in a terminal", "SIGINT ignored (background job)"]
)
def test_a_signal_a_pool_thread_held_back_wakes_the_main_thread_waiting_on_the_pool(sigint):
    """The main thread waits on a pool thread's future (as for a slow request) while another pool thread, mid-
    creation, holds back a SIGTERM: once that creation is recorded the main thread stops, without waiting for the
    future (a request that may take a whole --request-timeout). Also when SIGINT is ignored, as in a background
    job: then the SIGTERM the run handles carries it. A watchdog completes the future after 30 s, and says so."""
    interrupts = Interrupts()
    entered, release, interrupted = threading.Event(), threading.Event(), threading.Event()
    slow: Future[None] = Future()
    completed_by_watchdog: list[bool] = []

    def create() -> None:
        with interrupts.deferred():
            entered.set()
            release.wait(10)

    def watchdog() -> None:
        if not interrupted.wait(30):
            completed_by_watchdog.append(True)
            slow.set_result(None)

    before = {sig: signal.getsignal(sig) for sig in Interrupts.SIGNALS}
    signal.signal(signal.SIGINT, sigint)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    worker, guard = threading.Thread(target=create), threading.Thread(target=watchdog)
    try:
        with pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM"), interrupts.installed():
            worker.start()
            guard.start()
            assert entered.wait(10)
            interrupts.handler(signal.SIGTERM, None)  # delivered to the main thread mid-creation: deferred
            release.set()  # the creation ends and hands the signal over
            try:
                result_of(slow)  # how the main thread waits on the pool
            finally:
                interrupted.set()
    finally:
        release.set()
        interrupted.set()
        worker.join(10)
        guard.join(40)
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert completed_by_watchdog == [], "the main thread waited for the slow future instead of stopping"
    assert interrupts.received == "SIGTERM"
