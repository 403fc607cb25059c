"""The smoke selection (``pytest suites -m smoke --max-examples 3``) stays within its request budget.

Counted from the run's own recording (``--record-requests``), never from time. ``make bench`` measures how many
broken variants it catches (the goal: at least 80 %).
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_suite

from bench.smoke import BUDGET, SMOKE_ARGS
from modmsg.requirements import load_catalogue
from modmsg.smoke import Candidate, choose, load_costs
from modmsg.testindex import judging_tests

PROBE = 1
"""The GET a run against a --base-url sends at configure time, outside the transport (so not recorded)."""


def test_the_smoke_selection_stays_under_100_requests_against_the_reference(tmp_path: Path) -> None:
    recording = tmp_path / "smoke.jsonl"
    run = run_suite(tmp_path / "reports", *SMOKE_ARGS, "--seed", "1", "--record-requests", str(recording))
    assert run.exit_code == 0, run.output[-3000:]
    sent = [json.loads(line) for line in recording.read_text(encoding="utf-8").split("\n") if line.strip()]
    tests = {test["nodeid"] for r in run.results["requirements"] for test in r.get("tests") or ()}
    assert len(tests) >= 10, f"only {len(tests)} tests are marked smoke"
    assert all(record["status"] is not None for record in sent)
    assert len(sent) + PROBE < BUDGET, f"the smoke selection sent {len(sent)} requests (+{PROBE} probe)"
    assert run.results["claim"]["text"].startswith("partial run"), "a selection must never claim conformance"


def test_the_smoke_rule_takes_the_most_must_requirements_per_request_within_the_budget() -> None:
    """The rule looks at no broken server: MUST requirements judged per request, cheapest first, within the budget;
    tests that share a drawn stream pay for it once."""
    stream = "positive-stream"
    candidates = [
        Candidate("a.py::two_for_six", frozenset({"R1", "R2"}), 6),
        Candidate("a.py::one_for_four", frozenset({"R3"}), 4),
        Candidate("a.py::r1_again_for_one", frozenset({"R1"}), 1),
        Candidate("b.py::stream_one", frozenset({"R4"}), 12, stream),
        Candidate("b.py::stream_two", frozenset({"R5"}), 12, stream),
        Candidate("b.py::too_dear", frozenset({"R6", "R7", "R8"}), 90),
    ]
    chosen = [c.nodeid for c in choose(candidates, budget=30)]
    assert chosen == [
        "a.py::r1_again_for_one",  # 1 new requirement per request
        "a.py::one_for_four",  # 1/4
        "a.py::two_for_six",  # R2 is all it adds now: 1/6
        "b.py::stream_one",  # 1/12, before its twin by node id
        "b.py::stream_two",  # free once the stream is paid for: 1 + 4 + 6 + 12 = 23 <= 30; too_dear never fits
    ]
    assert choose(candidates, budget=0) == ()


def test_the_smoke_costs_cover_every_test_that_judges_a_must_requirement() -> None:
    """``suites/smoke-costs.json`` is stale when a test judging a MUST requirement has no measured cost (then the
    rule cannot take it) or a cost names a test that is gone: re-measure with ``python -m bench.smoke_select
    --costs``."""
    costs = load_costs()
    functions = {key.split("[", 1)[0] for key in costs}
    catalogue = load_catalogue()
    musts = {r.id for r in catalogue.active() if r.level.value == "MUST"}
    judging = {
        test.nodeid.split("/", 1)[-1] for req, tests in judging_tests().items() if req in musts for test in tests
    }
    assert judging, "the test index found no test judging a MUST requirement"
    assert sorted(judging - functions) == [], "tests judging a MUST requirement without a measured cost"
    every = {test.nodeid.split("/", 1)[-1] for tests in judging_tests().values() for test in tests}
    assert sorted(functions - every) == [], "measured costs of tests that no longer exist"
