"""Facts every report shows, derived from a RunResult in one place: verdict, counts, grouping, ordering."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from modmsg.requirements import AREA_TITLES
from modmsg.results import Outcome, RequirementResult, RunResult, TestRecord

STATES: tuple[Outcome, ...] = (Outcome.PASS, Outcome.FAIL, Outcome.ERROR, Outcome.SKIP, Outcome.WAIVED)
LEVELS = ("MUST", "SHOULD", "MAY")
# Text always goes with the symbol; the symbol is never the only signal (nor is colour).
SYMBOLS = {"PASS": "✔", "FAIL": "✘", "ERROR": "⚠", "SKIP": "⊘", "WAIVED": "⚑"}
BAD = (Outcome.FAIL, Outcome.ERROR)
_FIRST = {Outcome.FAIL: 0, Outcome.ERROR: 1}


@dataclass(frozen=True)
class Verdict:
    key: str  # "conformant" | "not-conformant" | "partial": a CSS class and a machine-readable word
    label: str  # "CONFORMANT (MUST+SHOULD)", "NOT CONFORMANT", "PARTIAL RUN: NO CLAIM"
    symbol: str


@dataclass(frozen=True)
class AreaGroup:
    area: str
    title: str
    requirements: tuple[RequirementResult, ...]  # failures first: FAIL, ERROR, then catalogue order

    @property
    def counts(self) -> dict[str, int]:
        return state_counts(self.requirements)


def must_failing(run: RunResult) -> bool:
    """A MUST requirement FAILed or ERRORed: the one thing that makes a run not conformant."""
    return any(r.level == "MUST" and r.outcome in BAD for r in run.requirements)


def verdict(run: RunResult) -> Verdict:
    """The claim as a label, following modmsg.results.make_claim: MUST failures first, then completeness."""
    if run.claim.level:
        return Verdict("conformant", f"CONFORMANT ({run.claim.level})", "✔")
    if any(r.level == "MUST" and r.outcome.value == "FAIL" for r in run.requirements):
        return Verdict("not-conformant", "NOT CONFORMANT", "✘")
    if must_failing(run):  # only ERRORs: nothing is known about the target, so no verdict either way
        return Verdict("partial", "NO CLAIM: NOT JUDGED (ERROR)", "◐")
    if not run.claim.complete:
        return Verdict("partial", "PARTIAL RUN: NO CLAIM", "◐")
    return Verdict("not-conformant", "NOT CONFORMANT", "✘")


def state_counts(requirements: Iterable[RequirementResult]) -> dict[str, int]:
    counts = {state.value: 0 for state in STATES}
    for result in requirements:
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    return counts


def level_counts(requirements: Sequence[RequirementResult]) -> dict[str, dict[str, int]]:
    """Counts per state for each level: MUST, SHOULD, MAY (and any other level found)."""
    levels = list(LEVELS) + sorted({r.level for r in requirements} - set(LEVELS))
    return {level: state_counts(r for r in requirements if r.level == level) for level in levels}


def failures_first(requirements: Iterable[RequirementResult]) -> tuple[RequirementResult, ...]:
    # sorted() is stable: within each rank the catalogue order stays
    return tuple(sorted(requirements, key=lambda r: _FIRST.get(r.outcome, 2)))


def groups(run: RunResult) -> tuple[AreaGroup, ...]:
    by_area = run.by_area()
    order = [a for a in AREA_TITLES if a in by_area] + [a for a in by_area if a not in AREA_TITLES]
    return tuple(AreaGroup(area=a, title=AREA_TITLES.get(a, a), requirements=failures_first(by_area[a])) for a in order)


def failing(run: RunResult) -> tuple[RequirementResult, ...]:
    return failures_first(r for r in run.requirements if r.outcome in BAD)


def judged(run: RunResult) -> tuple[RequirementResult, ...]:
    """Requirements that got a verdict of their own (everything but SKIP)."""
    return tuple(r for r in run.requirements if r.outcome is not Outcome.SKIP)


def bad_tests(result: RequirementResult) -> tuple[TestRecord, ...]:
    """The tests that made this requirement FAIL or ERROR (or would have, before a waiver)."""
    return tuple(t for t in result.tests if t.outcome in BAD and (t.failed_req is None or t.failed_req == result.id))


def other_tests(result: RequirementResult) -> tuple[TestRecord, ...]:
    bad = set(map(id, bad_tests(result)))
    return tuple(t for t in result.tests if id(t) not in bad)
