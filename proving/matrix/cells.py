"""The matrix as values: one run per product, a cell per requirement, the attribution of each cell.

Pure: nothing here starts a process or touches a file. ``attribute`` is the comparison that part 1 of issue 15
(``--upstream-url``) does inside a run; a run's own ``attribution`` field wins over it when the suite wrote one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PASSING = frozenset({"PASS"})
FAILING = frozenset({"FAIL"})
# Only a judged requirement is attributed. BLOCKED (a precondition failed first) and ERROR (no answer) say nothing
# about the requirement itself, as everywhere in the suite, so they are ``unknown``: the cell of the precondition
# that blocked them carries the attribution.
NOT_PASSING = frozenset({"FAIL", "BLOCKED", "ERROR"})  # the outcomes that get a line of evidence
ATTRIBUTIONS = ("introduced", "inherited", "masked", "none", "unknown")
CONTROL = "reference"


class Misaligned(ValueError):
    """Runs that do not share a suite commit, seed, example count and profile: they never share a matrix."""


def attribute(product: str, control: str) -> str:
    """The attribution of a product's outcome given the control's (the upstream run directly, same seed).

    fails through the product and passes on the control: ``introduced``; fails on both: ``inherited``; passes
    through the product and fails on the control: ``masked``; passes on both: ``none``; anything else (BLOCKED,
    ERROR, SKIP, WAIVED, NOT RUN on either side: a requirement one side did not judge): ``unknown``.
    """
    product_passes = _verdict(product)
    control_passes = _verdict(control)
    if product_passes is None or control_passes is None:
        return "unknown"
    if control_passes:
        return "none" if product_passes else "introduced"
    return "masked" if product_passes else "inherited"


def _verdict(outcome: str) -> bool | None:
    if outcome in PASSING:
        return True
    if outcome in FAILING:
        return False
    return None


@dataclass(frozen=True)
class Row:
    """One requirement as one run judged it."""

    id: str
    title: str
    level: str
    outcome: str
    evidence: str = ""
    attribution: str | None = None  # from results.json when the suite wrote one (part 1), else None


@dataclass(frozen=True)
class Alignment:
    """What runs must share to be compared cell by cell."""

    suite_commit: str
    seed: int
    max_examples: int
    profile: str


@dataclass(frozen=True)
class Run:
    """One product's run of the suite (or why it could not be judged: ``not_judged`` and no rows)."""

    product: str
    title: str
    version: str
    alignment: Alignment
    date: str
    isolation: str
    rows: tuple[Row, ...] = ()
    not_judged: str = ""
    upstream_url_used: bool = False
    claim: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)
    note: str = ""  # the suite stopped early and said why (its results judge what it reached)
    watched: bool = False  # its sockets were watched (a network namespace of its own); contacts say what was seen
    contacts: tuple[str, ...] = ()  # non-loopback addresses any socket had while the run went on (should be none)

    def outcome(self, requirement: str) -> str:
        for row in self.rows:
            if row.id == requirement:
                return row.outcome
        return "NOT RUN"

    def row(self, requirement: str) -> Row | None:
        return next((row for row in self.rows if row.id == requirement), None)


@dataclass(frozen=True)
class Cell:
    outcome: str
    attribution: str  # "" in the control column
    evidence: str = ""
    source: str = ""  # "results" (the suite's own field) or "control" (computed here); "" in the control column


@dataclass(frozen=True)
class Matrix:
    alignment: Alignment
    runs: tuple[Run, ...]  # the control first
    requirements: tuple[Row, ...]  # id, title, level (from the control run)
    cells: Mapping[tuple[str, str], Cell]  # (requirement id, product) -> cell

    def cell(self, requirement: str, product: str) -> Cell:
        return self.cells[(requirement, product)]

    def tally(self, product: str) -> dict[str, int]:
        """How many cells of ``product`` carry each attribution (outcomes for the control)."""
        counts: dict[str, int] = {}
        for (_, name), cell in self.cells.items():
            if name == product:
                key = cell.attribution or cell.outcome
                counts[key] = counts.get(key, 0) + 1
        return counts


def align(runs: Sequence[Run]) -> Alignment:
    """The runs' common alignment; Misaligned (one sentence) when any run differs from the first."""
    if not runs:
        raise Misaligned("no runs to put in a matrix")
    first = runs[0]
    for run in runs[1:]:
        for name in ("suite_commit", "seed", "max_examples", "profile"):
            ours, theirs = getattr(first.alignment, name), getattr(run.alignment, name)
            if ours != theirs:
                raise Misaligned(
                    f"run '{run.product}' has {name.replace('_', ' ')} {theirs} but '{first.product}' has {ours}: "
                    "only runs of the same suite commit, seed, example count and profile share a matrix; "
                    "rerun the odd one out"
                )
    return first.alignment


def build(runs: Iterable[Run], control: str = CONTROL, order: Sequence[str] = ()) -> Matrix:
    """The matrix of ``runs`` (aligned, the control among them and judged); Misaligned otherwise.

    Columns: the control first, then the products named in ``order`` in that order, then any other by name.
    """
    rank = {name: i for i, name in enumerate(order)}
    ordered = sorted(runs, key=lambda run: (run.product != control, rank.get(run.product, len(rank)), run.product))
    alignment = align(ordered)
    if not ordered or ordered[0].product != control:
        raise Misaligned(f"no '{control}' run: the control column is what every cell is attributed against")
    reference = ordered[0]
    if reference.not_judged or not reference.rows:
        raise Misaligned(f"the control run was not judged ({reference.not_judged or 'no requirements'})")
    cells: dict[tuple[str, str], Cell] = {}
    for row in reference.rows:
        cells[(row.id, control)] = Cell(row.outcome, "", row.evidence)
        for run in ordered[1:]:
            cells[(row.id, run.product)] = _cell(run, row.id, row.outcome)
    return Matrix(alignment, tuple(ordered), reference.rows, cells)


def _cell(run: Run, requirement: str, control_outcome: str) -> Cell:
    row = run.row(requirement)
    if row is None:
        return Cell("NOT RUN", "unknown", run.not_judged)
    if row.attribution in ATTRIBUTIONS:
        return Cell(row.outcome, row.attribution, row.evidence, "results")
    return Cell(row.outcome, attribute(row.outcome, control_outcome), row.evidence, "control")


# ------------------------------------------------------------------------------------------ JSON round trip


def run_to_json(run: Run) -> dict[str, Any]:
    return {
        "product": run.product,
        "title": run.title,
        "version": run.version,
        "alignment": vars(run.alignment),
        "date": run.date,
        "isolation": run.isolation,
        "not_judged": run.not_judged,
        "upstream_url_used": run.upstream_url_used,
        "claim": run.claim,
        "counts": dict(run.counts),
        "watched": run.watched,
        "contacts": list(run.contacts),
        "note": run.note,
        "rows": [vars(row) for row in run.rows],
    }


def run_from_json(data: Mapping[str, Any]) -> Run:
    """The run ``run_to_json`` wrote; KeyError/TypeError/ValueError on anything else."""
    return Run(
        product=str(data["product"]),
        title=str(data["title"]),
        version=str(data["version"]),
        alignment=Alignment(**data["alignment"]),
        date=str(data["date"]),
        isolation=str(data["isolation"]),
        rows=tuple(Row(**row) for row in data["rows"]),
        not_judged=str(data.get("not_judged", "")),
        upstream_url_used=bool(data.get("upstream_url_used", False)),
        claim=str(data.get("claim", "")),
        counts={str(k): int(v) for k, v in data.get("counts", {}).items()},
        watched=bool(data.get("watched", False)),
        contacts=tuple(str(c) for c in data.get("contacts", ())),
        note=str(data.get("note", "")),
    )


def rows_from_results(results: Mapping[str, Any]) -> tuple[Row, ...]:
    """One row per requirement of a results.json (its ``attribution`` kept when the suite wrote one)."""
    return tuple(
        Row(
            id=str(req["id"]),
            title=str(req["title"]),
            level=str(req["level"]),
            outcome=str(req["outcome"]),
            evidence=evidence(req),
            attribution=req.get("attribution") if isinstance(req.get("attribution"), str) else None,
        )
        for req in results["requirements"]
    )


def evidence(requirement: Mapping[str, Any], limit: int = 240) -> str:
    """One line: what the first failing test expected and got (or its reason); "" for a passing requirement."""
    if requirement.get("outcome") not in NOT_PASSING:
        return ""
    for test in requirement.get("tests", []):
        failure = test.get("failure")
        if test.get("outcome") in NOT_PASSING and failure:
            return _one_line(f"expected {failure.get('expected')}; got {failure.get('received')}", limit)
        if test.get("outcome") in NOT_PASSING and test.get("reason"):
            return _one_line(str(test["reason"]), limit)
    return _one_line(str(requirement.get("reason") or ""), limit)


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
