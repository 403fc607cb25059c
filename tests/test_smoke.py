"""The smoke selection (``pytest suites -m smoke --max-examples 3``) stays within its request budget.

Counted from the run's own recording (``--record-requests``), never from time. ``make bench`` measures how many
broken variants it catches (the goal: at least 80 %).
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_suite

from bench.smoke import BUDGET, SMOKE_ARGS

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
