"""``make bench``'s building blocks, checked deterministically (no timing is asserted anywhere)."""

from __future__ import annotations

import gc
import importlib
import json
import sys
from pathlib import Path

import pytest
import requests

from bench.measure import counted, run_child
from bench.profile import CLIENT, WAIT, activity, fold, parse_py_spy_raw
from bench.replay import Recorded, compile_templates, defined_ids, load, replay, replay_file
from bench.run import requests_by_test, requests_per_requirement
from bench.smoke_select import best_cover, unit_costs
from modmsg.api import AssistantsApi
from modmsg.config import resolve
from modmsg.recording import RequestLog, worker_path
from modmsg.reference import start_server
from modmsg.transport import Transport
from proving.mutation import REFERENCE

KEY = "sk-bench-recording-0123456789abcdef"


@pytest.mark.parametrize("module", ["run", "replay", "measure", "profile", "probe", "smoke", "smoke_select", "distant"])
def test_bench_modules_import(module: str) -> None:
    importlib.import_module(f"bench.{module}")


def record_a_small_run(path: Path) -> list[int]:
    """A few sibling calls, a modify, a GET of what was created and a wrong key, recorded like a suite run."""
    with start_server(api_key=KEY) as server:
        transport = Transport(base_url=server.base_url, api_key=KEY)
        transport.request_log = RequestLog(path, transport.redactor)
        api = AssistantsApi(transport)
        thread = api.create_thread({"modmsg_run": "bench-test"})
        message = api.create_message(thread["id"])
        statuses = [
            api.modify_message(thread["id"], message["id"], {"metadata": {"k": "v"}}).status_code,
            api.get_message(thread["id"], message["id"]).status_code,
            transport.request(
                "POST",
                f"threads/{thread['id']}/messages/{message['id']}",
                json={"metadata": {"a": "b"}},
                headers={"Authorization": "Bearer sk-wrong-on-purpose"},
            ).status_code,
            api.delete_thread(thread["id"]).status_code,
        ]
        transport.request_log.close()
    return [200, 200, *statuses]


def test_recording_keeps_the_key_out_and_the_replay_sends_the_same_requests(tmp_path: Path) -> None:
    recording = tmp_path / "requests.jsonl"
    statuses = record_a_small_run(recording)
    text = recording.read_text(encoding="utf-8")
    assert KEY not in text
    assert "Bearer [REDACTED]" in text
    assert "Bearer sk-wrong-on-purpose" in text  # a deliberately wrong key is no secret: replayed as sent
    records = load(recording)
    assert [r.status for r in records] == statuses == [200, 200, 200, 200, 401, 200]
    assert [r.method for r in records] == ["POST", "POST", "POST", "GET", "POST", "DELETE"]
    assert records[0].id is not None and records[0].id.startswith("thread_")
    assert all(r.test == "" or "test_bench" in r.test for r in records)

    other_key = "sk-bench-replay-fedcba9876543210"
    with start_server(api_key=other_key) as server:  # new ids, new key: both must be mapped for 200s
        result = replay_file(recording, server.base_url.rsplit("/v1", 1)[0], other_key)
        assert server.thread_ids() == []  # the replayed DELETE found the replay's own thread
    assert result.requests == 6
    assert result.mismatches == 0
    assert result.statuses == {200: 5, 401: 1}


def test_templates_put_the_key_back_and_locate_ids() -> None:
    line = {
        "method": "POST",
        "url": "http://127.0.0.1:1/v1/threads/thread_abc/messages",
        "headers": [["Authorization", "Bearer [REDACTED]"], ["Content-Length", "2"]],
        "body": '{"thread": "thread_abc"}',
        "status": 200,
        "id": None,
    }
    creator = {**line, "url": "http://127.0.0.1:1/v1/threads", "body": "{}", "id": "thread_abc"}
    records = [load_line(json.dumps(creator)), load_line(json.dumps(line))]
    templates = compile_templates(records, "sk-new")
    assert templates[0].defines == 0
    assert templates[1].headers == {"Authorization": "Bearer sk-new"}  # Content-Length is recomputed
    assert templates[1].target == ("/v1/threads/", 0, "/messages")
    assert templates[1].body == ('{"thread": "', 0, '"}')
    assert defined_ids(records) == ["thread_abc"]


def load_line(text: str) -> Recorded:
    data = json.loads(text)
    return Recorded(
        method=data["method"],
        target=data["url"].split("127.0.0.1:1", 1)[1],
        headers=tuple((a, b) for a, b in data["headers"]),
        body=data["body"].encode(),
        status=data["status"],
        id=data["id"],
    )


def test_a_body_that_is_not_utf8_is_kept_as_base64(tmp_path: Path) -> None:
    path = tmp_path / "binary.jsonl"
    with start_server(api_key=KEY) as server:
        transport = Transport(base_url=server.base_url, api_key=KEY)
        transport.request_log = RequestLog(path, transport.redactor)
        prepared = requests.Request(
            "POST", transport.url("threads"), data=b"\xff\xfe" + KEY.encode(), headers=transport.default_headers()
        ).prepare()
        transport.send(prepared)
        transport.request_log.close()
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "body_b64" in data and KEY not in path.read_text(encoding="utf-8")
    assert load(path)[0].body == b"\xff\xfe[REDACTED]"
    templates = compile_templates(load(path), "sk-x")
    with start_server(api_key="sk-x") as server:
        result = replay(templates, server.base_url.rsplit("/v1", 1)[0])
    assert result.mismatches == 0


def test_each_xdist_worker_gets_its_own_file_and_the_option_resolves() -> None:
    assert worker_path(Path("out/requests.jsonl"), None) == Path("out/requests.jsonl")
    assert worker_path(Path("out/requests.jsonl"), "gw1") == Path("out/requests.gw1.jsonl")
    assert resolve({}, env={"MODMSG_RECORD_REQUESTS": "r.jsonl"}).record_requests == Path("r.jsonl")
    assert resolve({}, env={}).record_requests is None


def test_requests_are_charged_to_tests_and_the_cleanup_apart(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = [
        ("POST", "/v1/threads", "suites/a.py::t1 (setup)"),
        ("POST", "/v1/threads/thread_1/messages/msg_1", "suites/a.py::t1 (call)"),
        ("DELETE", "/v1/threads/thread_2", "suites/a.py::t1 (call)"),
        ("DELETE", "/v1/threads/thread_1", "suites/b.py::t2[x (y)] (teardown)"),
    ]
    path.write_text(
        "\n".join(
            json.dumps({"method": m, "url": f"http://h{u}", "headers": [], "status": 200, "id": None, "test": t})
            for m, u, t in lines
        )
        + "\n",
        encoding="utf-8",
    )
    per_test, cleanup = requests_by_test(path)
    assert per_test == {"suites/a.py::t1": 3}
    assert cleanup == 1


def test_profile_samples_fold_into_the_innermost_activity() -> None:
    http = ["pytest_runtestloop (_pytest/main.py:1)", "Transport._send (modmsg/transport.py:1)"]
    assert activity([*http, "recv_into (socket.py:1)"]) == WAIT
    assert activity([*http, "HTTPResponse.begin (http/client.py:1)"]) == CLIENT
    drawing = ["pytest_runtestloop (_pytest/main.py:1)", "ConjectureRunner.run (hypothesis/engine.py:1)"]
    assert activity(drawing).startswith("Hypothesis")
    assert activity([*drawing, "GeneratedRun.exercise (modmsg/generation/run.py:1)", *http[1:]]) == CLIENT
    raw = (
        "thread (1);_find_and_load (<frozen importlib._bootstrap>:1) 2\n"  # before threading named the main thread
        "thread (1): MainThread;a (x.py:1);recv_into (socket.py:2) 3\n"
        "thread (2): server;b (y.py:1) 5\n"
    )
    samples = parse_py_spy_raw(raw)
    assert samples == [
        (["_find_and_load (<frozen importlib._bootstrap>:1)"], 2.0),
        (["a (x.py:1)", "recv_into (socket.py:2)"], 3.0),
    ]
    shares, count = fold([(["pytest_runtestloop (_pytest/main.py:1)"], 1.0), ([*http, "x (http/client.py:1)"], 3.0)])
    assert count == 2 and dict(shares) == {CLIENT: 0.75, "pytest per-test machinery": 0.25}


def test_the_cover_is_the_best_within_the_budget_and_a_shared_fixture_costs_what_it_sends() -> None:
    caught = {
        "a.py::cheap": {"a", "b"},
        "a.py::dear": {"a", "b", "c", "d"},
        "a.py::odd": {"e"},
        "a.py::judge": {"g"},  # sends nothing itself (judges what the run saw)
        "m.py::carrier[x]": {"f"},
        "m.py::sharer[y]": {"f", "h"},  # only reads the module fixture the carrier paid for
        "m.py::other[x]": {"f"},  # reads the same parameter's part of it
    }
    # the carrier's setup sent the fixture (20 requests) and its body 1 more; the fixture sends one part per
    # parameter read (x and y), so a test selected alone pays its parameter's share
    costs = {"a.py::cheap": 2, "a.py::dear": 10, "a.py::odd": 5, "m.py::carrier[x]": 21}
    cost = unit_costs(caught, costs, {"m.py": ("m.py::carrier[x]", 20)})
    assert cost == {"a.py::cheap": 2, "a.py::dear": 10, "a.py::odd": 5, "a.py::judge": 0, "m.py::carrier[x]": 11,
                    "m.py::sharer[y]": 10, "m.py::other[x]": 10}  # fmt: skip
    # greedy by variants per request takes cheap, judge and odd, then cannot afford dear: 4 variants, not 6
    assert sorted(best_cover(caught, cost, budget=15)) == ["a.py::dear", "a.py::judge", "a.py::odd"]
    assert sorted(best_cover(caught, cost, budget=25)) == ["a.py::dear", "a.py::judge", "a.py::odd", "m.py::sharer[y]"]


def test_the_counter_sees_every_request_and_the_child_runner_reports_the_exit_code(tmp_path: Path) -> None:
    variant, seen = counted(REFERENCE)
    with variant.start(KEY) as server:
        requests.get(f"{server.base_url}/threads/nope", timeout=5)
        requests.post(f"{server.base_url}/threads", json={}, timeout=5)
    assert [method for method, _ in seen] == ["GET", "POST"]
    stats = run_child([sys.executable, "-c", "import sys; print('hello'); sys.exit(3)"], cwd=tmp_path, env={})
    assert stats.exit_code == 3 and "hello" in stats.output and stats.peak_rss_mb > 0


def test_a_module_fixtures_requests_are_shared_out_over_the_tests_that_read_it(tmp_path: Path) -> None:
    recording = tmp_path / "r.jsonl"
    sent = [("suites/e.py::table[a] (setup)", "POST", "/v1/threads")] * 20  # the module fixture, charged to [a]
    sent += [("suites/e.py::own (call)", "GET", "/v1/threads/t/messages/m")] * 2
    sent += [("suites/e.py::own (teardown)", "DELETE", "/v1/threads/t")]  # end-of-session cleanup
    recording.write_text(
        "".join(
            json.dumps({"method": m, "url": f"http://h{u}", "headers": [], "status": 200, "id": None, "test": t}) + "\n"
            for t, m, u in sent
        ),
        encoding="utf-8",
    )
    tests = {"suites/e.py::table[a]": ["MM-ERR-06"], "suites/e.py::table[b]": ["MM-ERR-07"], "suites/e.py::own": []}
    tests["suites/e.py::own"] = ["MM-ERR-01", "MM-ERR-02"]
    results = tmp_path / "results.json"
    results.write_text(
        json.dumps(
            {
                "requirements": [
                    {
                        "id": req,
                        "outcome": "PASS",
                        "tests": [{"nodeid": n, "reqs": r, "duration": 0.1} for n, r in tests.items() if req in r],
                    }
                    for req in ("MM-ERR-01", "MM-ERR-02", "MM-ERR-06", "MM-ERR-07")
                ]
            }
        ),
        encoding="utf-8",
    )
    per = requests_per_requirement(recording, results)
    assert per["total"] == 23 and per["cleanup"] == 1 and per["judged"] == 4
    assert per["per_requirement"] == {"MM-ERR-01": 1.0, "MM-ERR-02": 1.0, "MM-ERR-06": 10.0, "MM-ERR-07": 10.0}


def test_the_probe_reports_collections_and_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import probe

    out = tmp_path / "probe.json"
    monkeypatch.setenv(probe.ENV, str(out))
    probe.pytest_configure(None)  # type: ignore[arg-type]
    try:
        for index in range(3):
            probe.pytest_runtest_logfinish(f"t{index}", None)
        probe.pytest_unconfigure(None)  # type: ignore[arg-type]
    finally:
        gc.callbacks.remove(probe._callback)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["tests"] >= 3 and data["rss_after_last_test_mb"] > 0 and data["peak_rss_mb"] > 0
    assert len(data["gc_collections"]) == 3 and data["objects_tracked_at_end"] > 0
