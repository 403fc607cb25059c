"""The smoke selection (``pytest suites -m smoke --max-examples 3``) against the reference and every variant.

Each server gets a request counter in front, so the figure is what a target that charges per request would bill:
the probe, every sibling call, retries and the end-of-session cleanup included. A variant counts as caught as
``make mutation`` counts it (``proving.mutation.build_rows``): the run FAILs a requirement the reference passes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import counted
from modmsg.reference.variants import Variant
from modmsg.requirements import load_catalogue
from proving.mutation import REFERENCE, Row, Score, SuiteOutcome, build_rows, fresh_key, run_many, run_suite, score

SMOKE_EXAMPLES = 3
SMOKE_ARGS = ("-m", "smoke", "--max-examples", str(SMOKE_EXAMPLES))
BUDGET = 100
"""The smoke must cost fewer requests than this against a correct target."""


@dataclass(frozen=True)
class SmokeRun:
    outcome: SuiteOutcome
    requests: int
    tests: int


def run_smoke(variant: Variant, report_dir: Path, *extra: str) -> SmokeRun:
    """The smoke selection against ``variant`` behind a request counter (``--base-url``, so the probe counts)."""
    server_variant, seen = counted(variant)
    api_key = fresh_key()
    with server_variant.start(api_key) as server:
        outcome = run_suite(server.base_url, api_key, report_dir, *SMOKE_ARGS, *extra, name=variant.name)
    return SmokeRun(outcome, len(seen), tests_in(report_dir))


@dataclass(frozen=True)
class SmokeResult:
    reference: SmokeRun
    variants: dict[str, SmokeRun]
    rows: list[Row]

    @property
    def score(self) -> Score:
        return score(self.rows, lambda row: row.caught)

    @property
    def max_requests(self) -> int:
        return max([self.reference.requests, *(run.requests for run in self.variants.values())])

    @property
    def selected_tests(self) -> int:
        """Tests the selection ran on the reference, from its results.json."""
        return self.reference.tests

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": "pytest suites " + " ".join(SMOKE_ARGS),
            "tests": self.selected_tests,
            "requests_reference": self.reference.requests,
            "requests_max_over_variants": self.max_requests,
            "reference_failed": list(self.reference.outcome.failed),
            "score": self.score.as_dict(),
            "missed": [row.variant for row in self.rows if not row.caught],
            "errors": {row.variant: list(row.errors) for row in self.rows if row.errors},
        }


def tests_in(report_dir: Path) -> int:
    """The tests a run's results.json names (0 when there is none)."""
    try:
        results = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    return len({test["nodeid"] for req in results.get("requirements", []) for test in req.get("tests") or ()})


def smoke_all(variants: Sequence[Variant], work: Path, *, workers: int = 2, seed: int | None = None) -> SmokeResult:
    """The smoke against the reference and every variant, ``workers`` at a time."""
    extra = ("--seed", str(seed)) if seed is not None else ()
    jobs = [("reference", lambda: run_smoke(REFERENCE, work / "reference", *extra))]
    jobs += [(v.name, lambda v=v: run_smoke(v, work / v.name, *extra)) for v in variants]
    done: dict[str, SmokeRun] = run_many(jobs, workers)
    reference = done.pop("reference")
    rows = build_rows(
        variants,
        {name: run.outcome for name, run in done.items()},
        reference.outcome,
        None,
        load_catalogue(),
    )
    return SmokeResult(reference, done, rows)
