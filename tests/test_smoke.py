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


def test_the_smoke_rule_spreads_the_budget_over_the_areas_most_must_requirements_per_request_first() -> None:
    """The rule looks at no broken server: in rounds over the areas, each takes the test that judges the most MUST
    requirements of it not judged yet per request, within the budget; tests sharing a drawn stream pay once."""
    stream = "negative-stream"
    candidates = [
        Candidate("a.py::meta_two_for_six", frozenset({"MM-META-01", "MM-META-02"}), 6),
        Candidate("a.py::meta_one_for_two", frozenset({"MM-META-01"}), 2),
        Candidate("a.py::meta_three_for_nine", frozenset({"MM-META-03"}), 9),
        Candidate("b.py::req_one_for_five", frozenset({"MM-REQ-01"}), 5),
        Candidate("c.py::gen_stream", frozenset({"MM-GEN-02"}), 12, stream),
        Candidate("c.py::gen_stream_twin", frozenset({"MM-GEN-03"}), 12, stream),
        Candidate("d.py::err_too_dear", frozenset({"MM-ERR-06", "MM-ERR-07"}), 90),
    ]
    chosen = [c.nodeid for c in choose(candidates, budget=30)]
    assert chosen == [
        # round 1, areas in order ERR (nothing fits), GEN, META, REQ
        "c.py::gen_stream",  # 1/12
        "a.py::meta_one_for_two",  # 1/2 beats 2/6
        "b.py::req_one_for_five",
        # round 2
        "c.py::gen_stream_twin",  # free once the stream is paid for
        "a.py::meta_two_for_six",  # MM-META-02 is all it adds: 1/6 beats 1/9; 12 + 2 + 5 + 6 = 25 <= 30
        # round 3: meta_three_for_nine no longer fits (25 + 9 > 30); nobody gains
    ]
    assert choose(candidates, budget=0) == ()
    assert [c.nodeid for c in choose(candidates, budget=2)] == ["a.py::meta_one_for_two"]


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
