"""The generated suite draws one stream per mode and judges every case for all the requirements of its mode.

What must hold (``modmsg.generated.Streams``): one requirement failing never stops the stream judging the others,
each failing requirement reports its own failing case with that case's exchanges as evidence, a selection pays
only for the requirements it asks for, and the same seed replays the same stream.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import SuiteRun, run_suite

from modmsg.generated import HYPOTHESIS_BATCH, batches
from modmsg.reference import DEFAULT_BEHAVIOUR, start_server

KEY = "sk-streams"
GENERATED = ("-k", "test_generated")
STREAM_TESTS = (
    "-k",
    "valid_requests_are_accepted_and_echoed or invalid_requests_are_rejected_and_change_nothing"
    " or get_documented_responses or no_generated_request_gets_a_server_error",
)


def _run(tmp_path: Path, name: str, *args: str, behaviour: Any = DEFAULT_BEHAVIOUR) -> tuple[SuiteRun, list[dict]]:
    recording = tmp_path / f"{name}.jsonl"
    with start_server(api_key=KEY, behaviour=behaviour) as server:
        run = run_suite(
            tmp_path / name,
            "--base-url", server.base_url, "--record-requests", str(recording), *args,
            env={"MODMSG_API_KEY": KEY},
        )  # fmt: skip
    sent = [json.loads(line) for line in recording.read_text(encoding="utf-8").split("\n") if line.strip()]
    return run, sent


def _records(run: SuiteRun) -> dict[str, dict[str, Any]]:
    return {
        t["nodeid"].split("::", 1)[1]: t
        for r in run.results["requirements"]
        for t in r.get("tests") or ()
        if t["nodeid"].startswith("suites/test_generated.py::")
    }


def _modify_posts(sent: list[dict]) -> list[dict]:
    return [r for r in sent if r["method"] == "POST" and "/messages/" in r["url"]]


def test_a_failing_requirement_does_not_stop_the_others_being_judged(tmp_path: Path) -> None:
    """Every valid modify gets 500: the positive stream fails MM-GEN-01, MM-GEN-03 and MM-ERR-08, each with a 500
    exchange as its own evidence; the negative stream, untouched, passes all three of its requirements."""
    from dataclasses import replace

    run, _ = _run(
        tmp_path, "crash", *GENERATED, "--max-examples", "10", "--seed", "3",
        behaviour=replace(DEFAULT_BEHAVIOUR, modify_success_status=500),
    )  # fmt: skip
    assert run.exit_code == 1, run.output[-3000:]
    records = _records(run)
    positive = {
        "test_generated_valid_requests_are_accepted_and_echoed": "MM-GEN-01",
        "test_generated_requests_get_documented_responses[positive]": "MM-GEN-03",
        "test_no_generated_request_gets_a_server_error[positive]": "MM-ERR-08",
    }
    for name, req in positive.items():
        record = records[name]
        assert record["outcome"] == "FAIL" and record["failed_req"] == req, (name, record)
        assert record["failure"]["detail"].count("Reproduce: curl") == 1, record["failure"]
        assert any(e["status"] == 500 and "/messages/" in e["url"] for e in record["evidence"]), name
    for name in (
        "test_generated_invalid_requests_are_rejected_and_change_nothing",
        "test_generated_requests_get_documented_responses[negative]",
        "test_no_generated_request_gets_a_server_error[negative]",
    ):
        assert records[name]["outcome"] == "PASS", (name, records[name])


def test_each_stream_is_drawn_once_and_a_selection_pays_only_for_what_it_judges(tmp_path: Path) -> None:
    """Six tests read two streams: the modify requests are one stream's worth per mode. MM-GEN-03 alone on the
    negative stream needs no snapshot of the message; MM-GEN-02 does (a GET before and after every case)."""
    examples = 8
    args = ("--max-examples", str(examples), "--seed", "5")
    run, sent = _run(tmp_path, "streams", *STREAM_TESTS, *args)
    assert run.exit_code == 0, run.output[-3000:]
    assert len(_records(run)) == 6
    # Hypothesis may stop early once a small space is exhausted, never draw more than asked.
    assert examples < len(_modify_posts(sent)) <= 2 * examples

    documented, sent = _run(tmp_path, "documented", "-k", "get_documented_responses and negative", *args)
    assert documented.exit_code == 0, documented.output[-3000:]
    gets = [r for r in sent if r["method"] == "GET" and "/messages/" in r["url"]]
    assert _modify_posts(sent) and not gets

    rejected, sent = _run(tmp_path, "rejected", "-k", "rejected_and_change_nothing", *args)
    assert rejected.exit_code == 0, rejected.output[-3000:]
    gets = [r for r in sent if r["method"] == "GET" and "/messages/" in r["url"]]
    assert len(gets) == 2 * len(_modify_posts(sent)) > 0


def test_the_same_seed_replays_the_same_streams(tmp_path: Path) -> None:
    args = (*STREAM_TESTS, "--max-examples", "6", "--seed", "11")
    first = [r.get("body") for r in _modify_posts(_run(tmp_path, "first", *args)[1])]
    second = [r.get("body") for r in _modify_posts(_run(tmp_path, "second", *args)[1])]
    assert first and first == second


def test_large_example_counts_are_drawn_in_bounded_batches_with_distinct_seeds() -> None:
    assert batches(HYPOTHESIS_BATCH, "positive") == [("positive", HYPOTHESIS_BATCH)]
    split = batches(2 * HYPOTHESIS_BATCH + 7, "negative")
    assert [size for _, size in split] == [HYPOTHESIS_BATCH, HYPOTHESIS_BATCH, 7]
    assert len({label for label, _ in split}) == 3 and split[0][0] == "negative"
    assert all(size <= HYPOTHESIS_BATCH for _, size in batches(10_000, "x"))
    assert sum(size for _, size in batches(10_000, "x")) == 10_000
