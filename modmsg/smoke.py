"""The smoke selection (``-m smoke``), chosen by a rule that looks at no broken server: judge as many distinct MUST
requirements of every area as ``BUDGET`` requests allow at ``SMOKE_EXAMPLES`` generated cases per mode.

The rule is greedy and deterministic: in rounds over the areas (META, REQ, ERR, ...), take for each area the test
that judges the most MUST requirements not judged yet per request it costs, as long as the budget allows. What a
test costs is measured once on the reference server (``suites/smoke-costs.json``, written by ``python -m
bench.smoke_select --costs``): its setup, body and teardown plus the end-of-run DELETE of each thread it made.
Tests that share a drawn stream (one ``xdist_group``) share its cost: the first one taken pays for it. The plugin
marks the tests the rule takes with ``smoke`` at collection, so the selection follows the catalogue and the suites
as they change; a test fails when the costs are stale (a test judging a MUST requirement has none).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modmsg.paths import suites_dir

SMOKE_EXAMPLES = 3
BUDGET = 98
"""Requests the selection may record against a correct target: + 1 probe against a --base-url, under 100."""
COSTS_FILE = "smoke-costs.json"


@dataclass(frozen=True)
class Candidate:
    """A collected test: the MUST requirements it judges, what it costs alone, the stream it shares (if any)."""

    nodeid: str
    musts: frozenset[str]
    requests: int
    shares: str | None = None


def costs_path(directory: Path | None = None) -> Path:
    return (directory or suites_dir()) / COSTS_FILE


def load_costs(path: Path | None = None) -> dict[str, int]:
    """Node id -> requests, as measured; {} when the file is missing or unreadable (then nothing is selected)."""
    try:
        data = json.loads((path or costs_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    costs = data.get("costs") if isinstance(data, dict) else None
    return {str(k): int(v) for k, v in costs.items()} if isinstance(costs, dict) else {}


def area(req_id: str) -> str:
    """``MM-REQ-03`` -> ``REQ``."""
    return req_id.split("-")[1] if req_id.count("-") >= 2 else req_id


def choose(candidates: list[Candidate], budget: int = BUDGET) -> tuple[Candidate, ...]:
    """The tests the rule takes, in the order it takes them: in rounds over the areas of the MUST requirements
    (alphabetical), each round takes for each area the test that judges a MUST requirement of that area not judged
    yet and the most such requirements per request (the cheapest first among equals, then the node id), as long as
    it fits the budget; until no area gains. So a small budget is spread over every area before any area gets a
    second test: defects are spread over the areas too."""
    chosen: list[Candidate] = []
    judged: set[str] = set()
    paid: set[str] = set()
    spent = 0
    areas = sorted({area(req) for candidate in candidates for req in candidate.musts})
    gained = True
    while gained:
        gained = False
        for name in areas:
            best: tuple[tuple[float, int, str], Candidate, int] | None = None
            for candidate in candidates:
                new = candidate.musts - judged
                price = 0 if candidate.shares is not None and candidate.shares in paid else candidate.requests
                if not any(area(req) == name for req in new) or candidate in chosen or spent + price > budget:
                    continue
                key = (-len(new) / max(price, 0.5), price, candidate.nodeid)
                if best is None or key < best[0]:
                    best = (key, candidate, price)
            if best is None:
                continue
            _, candidate, price = best
            chosen.append(candidate)
            judged |= candidate.musts
            spent += price
            gained = True
            if candidate.shares is not None:
                paid.add(candidate.shares)
    return tuple(chosen)


def candidates_of(
    judged: Mapping[str, tuple[str, ...]],
    shares: Mapping[str, str | None],
    musts: frozenset[str],
    costs: Mapping[str, int],
) -> list[Candidate]:
    """Candidates from what each collected test judges (node id -> requirement ids) and shares; tests with no
    measured cost are left out (the staleness test names them). A shared stream costs what the test that drew it
    was charged, whichever of its tests is taken."""
    stream_cost: dict[str, int] = {}
    for nodeid, stream in shares.items():
        if stream is not None and nodeid in costs:
            stream_cost[stream] = max(stream_cost.get(stream, 0), costs[nodeid])
    return [
        Candidate(nodeid, frozenset(reqs) & musts, stream_cost.get(stream or "", costs[nodeid]), stream)
        for nodeid, reqs in judged.items()
        if frozenset(reqs) & musts and nodeid in costs
        for stream in (shares.get(nodeid),)
    ]
