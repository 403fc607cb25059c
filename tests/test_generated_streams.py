"""The generated suite draws one stream per mode and judges every case for all the requirements of its mode.

What must hold (``modmsg.generation.streams.Streams``): one requirement failing never stops the stream judging the
others, each failing requirement reports its own failing case with that case's exchanges as evidence, a selection pays
only for the requirements it asks for, and the same seed replays the same stream. A failing case is shrunk for
its requirement within a bounded budget, never changing a verdict; a request the target drops is MM-ERR-08's
finding; the replay line names the target, profile, example count and seed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import SuiteRun, generated_run, run_suite

from modmsg.failures import MetadataNotEchoed, NoAnswer, ServerError
from modmsg.generation.builtin_checks import NO_5XX_REQ
from modmsg.generation.cases import HYPOTHESIS_BATCH, POSITIVE, batches
from modmsg.generation.run import GeneratedRun
from modmsg.generation.shrink import SHRINK_BUDGET, ShrinkBudget
from modmsg.generation.streams import Stream, Streams
from modmsg.reference import DEFAULT_BEHAVIOUR, Behaviour, start_server
from modmsg.transport import Exchange, RequestDropped, Transport, TransportError

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
        # The run replays exactly: the target as given, the profile, the example count and the seed.
        replay = r"Replay the run: pytest suites/test_generated.py --base-url http://127\.0\.0\.1:\d+/v1"
        options = "--profile openai --max-examples 10 --seed 3"
        assert re.search(rf"{replay} {options}\n", record["failure"]["detail"]), record["failure"]
        assert "bundled reference server" not in record["failure"]["detail"]
        assert "shrunk" in record["failure"]["detail"].lower(), record["failure"]  # shrunk, or why not
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
    """One lane at a time sends in draw order; several send the same requests, in the order their answers allow."""
    args = (*STREAM_TESTS, "--max-examples", "6", "--seed", "11")
    first = [r.get("body") for r in _modify_posts(_run(tmp_path, "first", *args, "--concurrency", "1")[1])]
    second = [r.get("body") for r in _modify_posts(_run(tmp_path, "second", *args, "--concurrency", "1")[1])]
    assert first and first == second
    pooled = [r.get("body") for r in _modify_posts(_run(tmp_path, "pooled", *args, "--concurrency", "4")[1])]
    assert sorted(pooled, key=str) == sorted(first, key=str)


def test_a_seed_draws_the_same_cases_whatever_else_the_process_imported(tmp_path: Path) -> None:
    """Hypothesis mixes the literals of local modules into its draws: those of a clone of modmsg (none from a wheel),
    of a vendor's plugin... The run draws without them, so a replay line replays on any install: a plugin module
    full of literals changes no case, and none of its literals is ever sent."""
    plugin = tmp_path / "plugins" / "modmsg_vendor_literals.py"
    plugin.parent.mkdir()
    literals = "\n".join(f'LITERAL_{i} = "zz-vendor-{i:03d}"' for i in range(300))
    plugin.write_text(f"{literals}\nNUMBERS = ({', '.join(str(7_000_001 + i) for i in range(100))})\n", "utf-8")
    args = (*STREAM_TESTS, "--max-examples", "30", "--seed", "11", "--concurrency", "1")
    plain = [r.get("body") or "" for r in _modify_posts(_run(tmp_path, "plain", *args)[1])]
    with_plugin = [
        r.get("body") or ""
        for r in _modify_posts(
            _run_with_env(tmp_path, "vendor", {"PYTHONPATH": str(plugin.parent)}, *args, "-p", plugin.stem)[1]
        )
    ]
    assert len(plain) > 30
    assert not [body for body in with_plugin if "zz-vendor-" in body or "700000" in body]
    assert with_plugin == plain


def _run_with_env(tmp_path: Path, name: str, env: dict[str, str], *args: str) -> tuple[SuiteRun, list[dict]]:
    recording = tmp_path / f"{name}.jsonl"
    with start_server(api_key=KEY) as server:
        run = run_suite(
            tmp_path / name,
            "--base-url", server.base_url, "--record-requests", str(recording), *args,
            env={"MODMSG_API_KEY": KEY, **env},
        )  # fmt: skip
    assert run.exit_code == 0, run.output[-2000:]
    sent = [json.loads(line) for line in recording.read_text(encoding="utf-8").split("\n") if line.strip()]
    return run, sent


def test_large_example_counts_are_drawn_in_bounded_batches_with_distinct_seeds() -> None:
    assert batches(HYPOTHESIS_BATCH, "positive") == [("positive", HYPOTHESIS_BATCH)]
    split = batches(2 * HYPOTHESIS_BATCH + 7, "negative")
    assert [size for _, size in split] == [HYPOTHESIS_BATCH, HYPOTHESIS_BATCH, 7]
    assert len({label for label, _ in split}) == 3 and split[0][0] == "negative"
    assert all(size <= HYPOTHESIS_BATCH for _, size in batches(10_000, "x"))
    assert sum(size for _, size in batches(10_000, "x")) == 10_000


# --------------------------------------------------------------------------------------------- in process

Send = Callable[[requests.PreparedRequest], requests.Response]


@contextmanager
def _generated_run(
    behaviour: Behaviour = DEFAULT_BEHAVIOUR,
    *,
    max_examples: int = 30,
    seed: int = 1,
    budget: ShrinkBudget = SHRINK_BUDGET,
    wire: Callable[[Transport, Send], Send] | None = None,
    answers: Callable[[Send], Send] | None = None,
) -> Iterator[GeneratedRun]:
    """A GeneratedRun against an in-process reference server; ``wire`` wraps the transport's ``send`` (what the
    transport makes of a request), ``answers`` its session's (what the target answers, as the evidence shows)."""
    with start_server(api_key=KEY, behaviour=behaviour) as server:
        transport = Transport(base_url=server.base_url, api_key=KEY)
        if wire is not None:
            transport.send = wire(transport, transport.send)  # type: ignore[method-assign]
        if answers is not None:
            session_send = transport.session.send
            answer = answers(lambda prepared: session_send(prepared, timeout=5, allow_redirects=False))
            transport.session.send = lambda prepared, **_: answer(prepared)  # type: ignore[method-assign]
        run = generated_run(transport, seed=seed, max_examples=max_examples, shrink_budget=budget)
        yield run


def _is_modify(prepared: requests.PreparedRequest) -> bool:
    return prepared.method == "POST" and "/messages/msg_" in (prepared.url or "")


def _positive(run: GeneratedRun, *reqs: str) -> Stream:
    return run.stream(POSITIVE, label=POSITIVE.value, reqs=reqs or None)


def _sent_body(finding_evidence: tuple[Exchange, ...]) -> str:
    posts = [e for e in finding_evidence if e.method == "POST" and "/messages/msg_" in e.url]
    assert len(posts) == 1, finding_evidence
    return posts[0].request_body or ""


def test_a_failing_stream_case_is_shrunk_for_its_requirement_the_same_for_a_seed() -> None:
    """A server that strips metadata values fails MM-GEN-01 on a large drawn body; the report shows the smallest
    body Hypothesis' shrink found that still is not echoed, with that case's exchange as its evidence."""
    reports = []
    budget = ShrinkBudget(requests=SHRINK_BUDGET.requests, seconds=600)  # the request cap, never the clock, ends it
    for _ in range(2):
        with _generated_run(replace(DEFAULT_BEHAVIOUR, value_transform="strip"), budget=budget) as run:
            finding = _positive(run, "MM-GEN-01").findings["MM-GEN-01"]
            shrunk_line = next(line for line in finding.failure.detail.splitlines() if line.startswith("Shrunk"))
            reports.append((shrunk_line, _sent_body(finding.evidence)))
            assert isinstance(finding.failure, MetadataNotEchoed), finding.failure
    detail, shrunk_body = reports[0]
    shrunk = r"Shrunk: from a (\d+)-byte body \(case \d+ of Hypothesis run 'positive'\) to a (\d+)-byte body"
    sizes = re.search(shrunk, detail)
    assert sizes and int(sizes[2]) < int(sizes[1]), detail
    assert len(shrunk_body.encode()) == int(sizes[2]) and json.loads(shrunk_body)["metadata"], shrunk_body
    assert reports[1] == reports[0]  # deterministic for a seed (the in-process server is)


def test_a_shrink_spends_at_most_its_budget_and_keeps_the_smallest_so_far() -> None:
    with _generated_run(replace(DEFAULT_BEHAVIOUR, value_transform="strip"), budget=ShrinkBudget(requests=4)) as run:
        stream = _positive(run, "MM-GEN-01")
        finding = stream.findings["MM-GEN-01"]
        # the fresh message and at most 3 re-sent cases (each one modify: MM-GEN-01 takes no snapshots)
        assert run.counts[POSITIVE.value] - stream.sent <= 3
    assert "stopped at the cap of 4 requests" in finding.failure.detail, finding.failure.detail
    assert isinstance(finding.failure, MetadataNotEchoed)


def test_a_case_that_does_not_fail_again_is_reported_as_drawn() -> None:
    """The stream's first case gets a 500; on the fresh message of the shrink every case succeeds. The verdict
    stays (MM-ERR-08 fails) and the case as drawn is the evidence, with the reason it was not shrunk."""
    state = {"fresh": False}

    def answers(send: Send) -> Send:
        def crashing(prepared: requests.PreparedRequest) -> requests.Response:
            response = send(prepared)
            if _is_modify(prepared) and not state["fresh"]:
                response.status_code = 500
            return response

        return crashing

    with _generated_run(answers=answers) as run:
        fresh = run.fresh_message

        def fresh_message() -> None:
            state["fresh"] = True
            fresh()

        run.fresh_message = fresh_message  # type: ignore[method-assign]
        finding = _positive(run, NO_5XX_REQ).findings[NO_5XX_REQ]
    assert isinstance(finding.failure, ServerError)
    assert "Not shrunk (the case did not fail MM-ERR-08 the same way again on a fresh message" in finding.failure.detail
    assert [e.status for e in finding.evidence if e.method == "POST"] == [500]  # the case as drawn
    assert finding.drawn is not None and finding.drawn.call == 1


def test_a_request_the_target_drops_is_a_finding_of_mm_err_08_and_the_stream_goes_on() -> None:
    """The transport drops one specific case (RequestDropped, e.g. a body the server's parser dies on): MM-ERR-08
    fails with the dropped exchange as evidence, every other case is still sent and judged. A target that stops
    answering altogether (any other TransportError) stays an error of every test of the mode."""
    dropped: dict[str, Any] = {}

    def wire(transport: Transport, send: Send) -> Send:
        def dropping(prepared: requests.PreparedRequest) -> requests.Response:
            if _is_modify(prepared):
                dropped["seen"] = dropped.get("seen", 0) + 1
                if dropped["seen"] == 3:
                    dropped["body"] = prepared.body
                if "body" in dropped and prepared.body == dropped["body"]:
                    exchange = Exchange(
                        method="POST", url=prepared.url or "", request_headers=(), request_body=str(prepared.body),
                        status=None, error="connection closed without a response",
                    )  # fmt: skip
                    raise RequestDropped("POST: connection closed without a response, twice", exchange)
            return send(prepared)

        return dropping

    with _generated_run(max_examples=10, wire=wire) as run:
        stream = _positive(run)
    assert set(stream.findings) == {NO_5XX_REQ}, {req: str(f.failure) for req, f in stream.findings.items()}
    finding = stream.findings[NO_5XX_REQ]
    assert isinstance(finding.failure, NoAnswer) and finding.failure.title == "Request answered with no HTTP response"
    assert any(e.error == "connection closed without a response" and e.status is None for e in finding.evidence)
    assert stream.sent == 10  # the stream went on after the dropped case

    def down(transport: Transport, send: Send) -> Send:
        def refusing(prepared: requests.PreparedRequest) -> requests.Response:
            if _is_modify(prepared):
                raise TransportError("POST: connection refused")
            return send(prepared)

        return refusing

    with _generated_run(max_examples=5, wire=down) as run:
        streams = Streams(new_run=lambda: run, transport=run.transport, reqs=None)
        for req in ("MM-GEN-01", NO_5XX_REQ):
            with pytest.raises(TransportError, match="connection refused"):
                streams.verdict(POSITIVE, req)


@pytest.mark.parametrize(
    ("base_url", "profile", "expected"),
    [
        (
            "https://gw.example/v1",
            "spec",
            "Replay the run: pytest suites/test_generated.py --base-url https://gw.example/v1 --profile spec "
            "--max-examples 30 --seed 1\n",
        ),
        (
            None,
            "vendor profile.yaml",
            "Replay the run: pytest suites/test_generated.py --profile 'vendor profile.yaml' --max-examples 30 "
            "--seed 1 (bundled reference server)\n",
        ),
    ],
    ids=["live-target", "bundled-server"],
)
def test_the_replay_line_names_target_profile_examples_and_seed(
    base_url: str | None, profile: str, expected: str
) -> None:
    with _generated_run(replace(DEFAULT_BEHAVIOUR, modify_success_status=500)) as run:
        run.replay_base_url, run.replay_profile = base_url, profile
        finding = _positive(run, NO_5XX_REQ).findings[NO_5XX_REQ]
    assert expected in finding.failure.detail, finding.failure.detail
