"""The smoke's costs, and the best cover of the variants for comparison (run by hand, not by ``make bench``).

``python -m bench.smoke_select --costs`` measures what each test costs at ``--max-examples 3`` on the reference
server and writes ``suites/smoke-costs.json``, all the smoke rule (``modmsg.smoke``) reads: it looks at no variant.
Without ``--costs`` it computes what the selection used to be, the best cover of this project's own variants
(in-sample, so it overstates what a smoke catches on servers it has never seen):

1. The whole suite at the smoke's ``--max-examples`` against the reference server, with ``--record-requests``:
   what each test costs in requests (its setup, body and teardown, plus one end-of-session DELETE per thread it
   created).
2. The whole suite at the same setting against every broken variant: which tests FAIL on which variant (a test
   that also fails on the reference is ignored).
3. The best cover within ``--budget`` requests: the tests that together catch the most variants (fewest requests
   among equals), by an exact branch and bound.

It prints the cover; ``make bench`` measures the rule's selection itself (requests on the reference and on every
variant, variants caught).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.smoke import SMOKE_EXAMPLES
from modmsg.paths import REPO_DIR
from modmsg.reference.variants import VARIANTS
from modmsg.smoke import costs_path
from proving.mutation import REFERENCE, run_many, run_variant

THREAD_CREATE = ("POST", "threads")


def failing_tests(results: Path) -> set[str]:
    """Node ids of the tests that FAILed in a results.json."""
    data = json.loads(results.read_text(encoding="utf-8"))
    return {
        test["nodeid"]
        for requirement in data["requirements"]
        for test in requirement.get("tests") or ()
        if test["outcome"] == "FAIL"
    }


MODULE_FIXTURE = 20
"""A test whose setup sends at least this many requests is carrying a module-scoped fixture for its module."""


def test_costs(recording: Path) -> tuple[dict[str, int], dict[str, tuple[str, int]]]:
    """Requests per test node id in a ``--record-requests`` file, and the shared module fixtures.

    A test is charged its setup, body and teardown, plus the end-of-session DELETE of every thread it created. A
    module-scoped fixture is charged to the first test that uses it; the tests of that module that sent nothing
    themselves are taken to share it: ``shared[nodeid] = (carrier, fixture cost)``.
    """
    costs: Counter[str] = Counter()
    setup: Counter[str] = Counter()
    for line in recording.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        data = json.loads(line)
        nodeid, _, phase = data["test"].rpartition(" (")
        path = data["url"].split("/v1/", 1)[-1]
        if phase.startswith("teardown") and data["method"] == "DELETE" and path.count("/") == 1:
            continue  # the session's cleanup, charged below to the test that created the thread
        charge = 2 if data["method"] == "POST" and path == "threads" else 1
        costs[nodeid] += charge
        if phase.startswith("setup"):
            setup[nodeid] += charge
    carriers = {nodeid.split("::")[0]: (nodeid, n) for nodeid, n in setup.items() if n >= MODULE_FIXTURE}
    return dict(costs), carriers


def unit_costs(
    caught_by_test: Mapping[str, set[str]], costs: Mapping[str, int], carriers: Mapping[str, tuple[str, int]]
) -> dict[str, int]:
    """What selecting each test alone costs: its own requests, or (a test that only reads a module fixture) its
    share of the fixture's. The module fixture (the error-scenario table) sends only the scenarios the selected
    tests read, one per parameter, so a reader's share is the fixture's cost over the parameters its readers take.
    Tests that send nothing at all (a judge of what the run saw, e.g. every 429) cost nothing."""
    readers: dict[str, set[str]] = {}
    for nodeid in caught_by_test:
        module = nodeid.split("::")[0]
        if module in carriers and (nodeid not in costs or nodeid == carriers[module][0]):
            readers.setdefault(module, set()).add(nodeid.partition("[")[2] or nodeid)

    def share(module: str) -> int:
        return -(-carriers[module][1] // max(1, len(readers.get(module, ()))))

    unit = {}
    for nodeid in caught_by_test:
        module = nodeid.split("::")[0]
        carrier = carriers.get(module)
        if carrier is not None and nodeid == carrier[0]:
            unit[nodeid] = costs[nodeid] - carrier[1] + share(module)
        elif nodeid in costs:
            unit[nodeid] = costs[nodeid]
        elif carrier is not None:
            unit[nodeid] = share(module)
        else:
            unit[nodeid] = 0
    return unit


def best_cover(caught_by_test: Mapping[str, set[str]], cost: Mapping[str, int], *, budget: int) -> list[str]:
    """The tests that catch the most variants within ``budget`` requests (fewest requests among equals): an exact
    branch and bound over the tests no other test dominates (as cheap and catching at least as much)."""
    names = sorted(t for t in caught_by_test if caught_by_test[t] and cost[t] <= budget)
    kept = [
        t
        for t in names
        if not any(
            u != t
            and cost[u] <= cost[t]
            and caught_by_test[u] >= caught_by_test[t]
            and (cost[u] < cost[t] or caught_by_test[u] > caught_by_test[t] or u < t)
            for u in names
        )
    ]
    order = sorted(kept, key=lambda t: (-len(caught_by_test[t]) / max(cost[t], 0.5), t))
    best: tuple[int, int, list[str]] = (0, 0, [])

    def bound(index: int, spent: int, caught: frozenset[str]) -> float:
        room, gain = budget - spent, 0.0
        gains = sorted(
            ((len(caught_by_test[t] - caught), cost[t]) for t in order[index:] if caught_by_test[t] - caught),
            key=lambda item: -item[0] / max(item[1], 0.5),
        )
        for new, price in gains:
            if price <= room:
                room, gain = room - price, gain + new
            else:
                return len(caught) + gain + new * room / price
        return len(caught) + gain

    def search(index: int, spent: int, caught: frozenset[str], chosen: list[str]) -> None:
        nonlocal best
        if (len(caught), -spent) > (best[0], -best[1]):
            best = (len(caught), spent, list(chosen))
        if index == len(order) or bound(index, spent, caught) < best[0] + 1:
            return
        test = order[index]
        if spent + cost[test] <= budget and caught_by_test[test] - caught:
            chosen.append(test)
            search(index + 1, spent + cost[test], caught | caught_by_test[test], chosen)
            chosen.pop()
        search(index + 1, spent, caught, chosen)

    search(0, 0, frozenset(), [])
    return best[2]


def record_reference(work: Path) -> Path:
    recording = work / "reference.jsonl"
    examples = ("--max-examples", str(SMOKE_EXAMPLES), "--seed", "1")  # the same costs for the same suites
    outcome = run_variant(
        REFERENCE, work / "reference", *examples, "--record-requests", str(recording), max_examples=None
    )
    if outcome.failed:
        raise SystemExit(f"the reference server failed the suite: {outcome.describe()}")
    return recording


def failures_per_variant(work: Path, workers: int, seeds: Sequence[int]) -> dict[str, set[str]]:
    """variant -> the tests that FAIL on it with *every* seed (the whole suite at the smoke's --max-examples):
    a catch that depends on what Hypothesis happened to draw does not count."""
    found: dict[str, set[str]] = {}
    for seed in seeds:
        for variant, nodeids in _failures_once(work / f"seed-{seed}", workers, seed).items():
            found[variant] = found[variant] & nodeids if variant in found else nodeids
    return found


def _failures_once(work: Path, workers: int, seed: int) -> dict[str, set[str]]:
    examples = ("--max-examples", str(SMOKE_EXAMPLES), "--seed", str(seed))
    jobs = [("reference", lambda: run_variant(REFERENCE, work / "ref-plain", *examples, max_examples=None))]
    jobs += [(v.name, lambda v=v: run_variant(v, work / v.name, *examples, max_examples=None)) for v in VARIANTS]
    print(
        f"running the whole suite ({' '.join(examples)}) against the reference and {len(VARIANTS)} variants", flush=True
    )
    run_many(jobs, workers)
    false_alarms = failing_tests(work / "ref-plain" / "results.json")
    return {
        v.name: failing_tests(work / v.name / "results.json") - false_alarms
        for v in VARIANTS
        if (work / v.name / "results.json").is_file()
    }


def write_costs(work: Path) -> Path:
    """Measure what each test costs at the smoke's --max-examples on the reference server and write it to
    ``suites/smoke-costs.json``, which the smoke rule (``modmsg.smoke``) reads: no variant is looked at."""
    recording = record_reference(work)
    costs, carriers = test_costs(recording)
    results = json.loads((work / "reference" / "results.json").read_text(encoding="utf-8"))
    nodeids = {t["nodeid"] for r in results["requirements"] for t in r.get("tests") or ()}
    unit = unit_costs({nodeid: set() for nodeid in nodeids}, costs, carriers)
    path = costs_path()
    data = {
        "about": "requests per test at --max-examples 3 on the reference server: python -m bench.smoke_select --costs",
        "costs": {nodeid.split("/", 1)[-1]: unit[nodeid] for nodeid in sorted(unit)},
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.smoke_select", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=int, default=98, help="requests the selection may record (default 98: +1 probe, < 100)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO_DIR / "reports" / "smoke-select.json")
    parser.add_argument("--reuse", action="store_true", help="take the per-variant failures from --out")
    parser.add_argument("--seed", type=int, action="append", default=[], help="seeds (default 1, 2, 3)")
    parser.add_argument("--costs", action="store_true", help="only measure the costs the smoke rule reads")
    args = parser.parse_args(argv)
    if args.costs:
        with tempfile.TemporaryDirectory(prefix="modmsg-smoke-costs-") as tmp:
            print(f"wrote {write_costs(Path(tmp))}")
        return 0
    with tempfile.TemporaryDirectory(prefix="modmsg-smoke-select-") as tmp:
        work = Path(tmp)
        costs, carriers = test_costs(record_reference(work))
        if args.reuse:
            failing = {k: set(v) for k, v in json.loads(args.out.read_text(encoding="utf-8"))["failing"].items()}
        else:
            failing = failures_per_variant(work, args.workers, args.seed or [1, 2, 3])
    caught_by_test: dict[str, set[str]] = defaultdict(set)
    for variant, nodeids in failing.items():
        for nodeid in nodeids:
            caught_by_test[nodeid].add(variant)
    cost = unit_costs(caught_by_test, costs, carriers)
    chosen = [(nodeid, cost[nodeid]) for nodeid in best_cover(caught_by_test, cost, budget=args.budget)]
    caught: set[str] = set()
    print(f"{'requests':>8}  {'new':>3}  test")
    for nodeid, added in chosen:
        new = caught_by_test[nodeid] - caught
        caught |= new
        print(f"{added:>8}  {len(new):>3}  {nodeid}  ({', '.join(sorted(new))})")
    spent = sum(added for _, added in chosen)
    print(f"{spent} requests (+1 probe against a --base-url), {len(caught)}/{len(VARIANTS)} variants caught")
    print(f"not caught: {', '.join(sorted(v.name for v in VARIANTS if v.name not in caught)) or '-'}")
    nobody = sorted(v.name for v in VARIANTS if not failing.get(v.name))
    print(f"caught by no test at --max-examples {SMOKE_EXAMPLES}: {', '.join(nobody) or '-'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "costs": costs,
        "carriers": carriers,
        "failing": {k: sorted(v) for k, v in failing.items()},
        "chosen": chosen,
    }
    args.out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
