"""Facts every report shows, derived from a RunResult in one place: verdict, counts, grouping, ordering."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from modmsg.requirements import AREA_TITLES
from modmsg.results import BUNDLED, Attribution, Outcome, RequirementResult, RunResult, TestRecord

STATES: tuple[Outcome, ...] = (
    Outcome.PASS,
    Outcome.FAIL,
    Outcome.BLOCKED,
    Outcome.ERROR,
    Outcome.SKIP,
    Outcome.WAIVED,
)
LEVELS = ("MUST", "SHOULD", "MAY")
# Text always goes with the symbol; the symbol is never the only signal (nor is colour).
SYMBOLS = {"PASS": "✔", "FAIL": "✘", "BLOCKED": "⛔", "ERROR": "⚠", "SKIP": "⊘", "WAIVED": "⚑"}
BAD = (Outcome.FAIL, Outcome.ERROR, Outcome.BLOCKED)
_FIRST = {Outcome.FAIL: 0, Outcome.ERROR: 1, Outcome.BLOCKED: 2}


@dataclass(frozen=True)
class Verdict:
    key: str  # the claim status (modmsg.results.Claim.status): a CSS class, a colour and a machine-readable word
    label: str  # "CONFORMANT (MUST+SHOULD)", "NOT CONFORMANT", "NOT CONFORMANT: 3 WAIVED", "PARTIAL RUN: NO CLAIM"
    symbol: str


@dataclass(frozen=True)
class AreaGroup:
    area: str
    title: str
    requirements: tuple[RequirementResult, ...]  # failures first: FAIL, ERROR, then catalogue order

    @property
    def counts(self) -> dict[str, int]:
        return state_counts(self.requirements)


def verdict(run: RunResult) -> Verdict:
    """The claim as a label; ``modmsg.results.make_claim`` decides, this only names its status."""
    claim = run.claim
    if claim.status == "conformant" and claim.level:
        return Verdict("conformant", f"CONFORMANT ({claim.level})", "✔")
    if claim.status == "waived":
        return Verdict("waived", f"NOT CONFORMANT: {claim.waivers} WAIVED", "⚑")
    if claim.status == "interrupted":
        return Verdict("interrupted", "INTERRUPTED: NO CLAIM", "◐")
    if claim.status == "no-claim":
        return Verdict("no-claim", "NO CLAIM: NOT JUDGED", "◐")
    if claim.status == "partial":
        return Verdict("partial", "PARTIAL RUN: NO CLAIM", "◐")
    return Verdict("not-conformant", "NOT CONFORMANT", "✘")


def product(run: RunResult) -> str:
    """The product under test as the deviations file names it ("Acme Gateway 2.1"), or "" without one."""
    meta = run.meta
    return " ".join(part for part in (meta.product, meta.product_version) if part)


def draws_with(run: RunResult) -> str:
    """``Python 3.11.7, Hypothesis 6.170.17, Schemathesis 4.32.5``: what a replay needs to draw the same cases."""
    return ", ".join(f"{name.capitalize()} {version}" for name, version in run.meta.draws_with)


def replay(run: RunResult) -> str:
    """The command that replays this run: same target, profile, seed, examples and selection (no secrets: the
    target is stored redacted, and the key comes from the environment as before)."""
    meta = run.meta
    parts = ["modmsg run"]
    if meta.target != BUNDLED:
        parts.append(f"--base-url {meta.target}")
    if meta.upstream is not None:
        parts.append(f"--upstream-url {meta.upstream}")
    parts.append(f"--profile {meta.profile}")
    if meta.seed is not None:
        parts.append(f"--seed {meta.seed}")
    parts.append(f"--max-examples {meta.max_examples}")
    parts += [f"--req {selector}" for selector in meta.selection]
    return " ".join(parts)


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
    """The tests that made this requirement FAIL, ERROR or BLOCKED (or would have, before a waiver)."""
    return tuple(t for t in result.tests if t.contributions().get(result.id) in BAD)


def other_tests(result: RequirementResult) -> tuple[TestRecord, ...]:
    bad = set(map(id, bad_tests(result)))
    return tuple(t for t in result.tests if id(t) not in bad)


# ------------------------------------------------------------------------------------------------ attribution
# Only runs with --upstream-url carry an attribution; every report shows it only then.

ATTRIBUTION_WORDS = {
    Attribution.INTRODUCED: "introduced by the target",
    Attribution.INHERITED: "inherited from the upstream",
    Attribution.MASKED: "masked by the target (the upstream fails it)",
    Attribution.NONE: "passes on both",
    Attribution.UNKNOWN: "attribution unknown",
}


def attribution_counts(run: RunResult) -> dict[str, int]:
    """Requirements per attribution, in the order of :class:`Attribution`, only those present."""
    counts = {a.value: sum(r.attribution is a for r in run.requirements) for a in Attribution}
    return {name: count for name, count in counts.items() if count}


def attribution_line(run: RunResult) -> str | None:
    """``attribution against the upstream URL: 2 introduced, 1 inherited, 30 none``; None without an upstream."""
    if run.meta.upstream is None:
        return None
    counts = ", ".join(f"{count} {name}" for name, count in attribution_counts(run).items()) or "nothing judged"
    return f"attribution against the upstream {run.meta.upstream}: {counts}"


def attribution_of(result: RequirementResult) -> str:
    """`` (introduced by the target; upstream PASS)`` for a requirement of a run with an upstream, else ""."""
    if result.attribution is None:
        return ""
    upstream = f"; upstream {result.upstream.outcome.value}" if result.upstream is not None else ""
    return f" ({ATTRIBUTION_WORDS[result.attribution]}{upstream})"


def upstream_twin(result: RequirementResult, test: TestRecord) -> TestRecord | None:
    """The upstream's run of the same test, for a requirement of a run with an upstream."""
    if result.upstream is None:
        return None
    return next((t for t in result.upstream.tests if t.nodeid == test.nodeid), None)


def _shape(url: object) -> str:
    """A URL's path from ``threads`` on, the ids after ``threads`` and ``messages`` masked: the same call on
    either side of a gateway."""
    path = str(url).split("://", 1)[-1].partition("/")[2].partition("?")[0]
    parts = path.split("/")
    parts = parts[parts.index("threads") :] if "threads" in parts else parts  # a gateway may add a prefix
    masked = ["{id}" if i and parts[i - 1] in ("threads", "messages") else part for i, part in enumerate(parts)]
    return "/".join(masked)


def matching_exchange(
    exchange: Mapping[str, object], candidates: Sequence[Mapping[str, object]]
) -> Mapping[str, object] | None:
    """The last of ``candidates`` (the upstream's exchanges) making the same call as ``exchange`` (the target's):
    same method, same path once ids are masked; else the last of them; None when there are none."""
    same = [
        c
        for c in candidates
        if c.get("method") == exchange.get("method") and _shape(c.get("url")) == _shape(exchange.get("url"))
    ]
    chosen = same or list(candidates)
    return chosen[-1] if chosen else None
