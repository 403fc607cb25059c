"""A pytest plugin for ``make bench``'s own runs (``-p bench.probe``): garbage collection and memory over a run.

* Garbage collection: a sampling profiler charges a collection to whatever Python frame allocated last, so it
  shows up nowhere as such; ``gc.callbacks`` time each one.
* Phases: wall-clock times (``time.time()``) when pytest is configured, has collected, starts and ends its
  session wrap-up, so that ``make bench`` can split a run's wall time into start-up, collection, tests, reports
  and exit without a profiler's overhead.
* Memory: the resident set after every test (``/proc/self/statm``). If it stays flat from test to test while the
  run's peak grows with ``--max-examples``, the growth is the working set *inside* one test (Hypothesis' state
  for that test's examples), not evidence or results piling up.

The totals go, as JSON, to the file named by ``BENCH_PROBE_OUT`` when pytest unconfigures.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import pytest

ENV = "BENCH_PROBE_OUT"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_state: dict[str, Any] = {"started": 0.0, "count": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "rss": [], "phases": {}}


def _mark(phase: str) -> None:
    _state["phases"][phase] = time.time()


def _callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _state["started"] = time.perf_counter()
        return
    generation = info["generation"]
    _state["count"][generation] += 1
    _state["seconds"][generation] += time.perf_counter() - _state["started"]


def rss_mb() -> float:
    """The current resident set, in MB (0 where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * _PAGE / 2**20


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if _callback not in gc.callbacks:
        gc.callbacks.append(_callback)
    _mark("configured")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    _mark("collected")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    _mark("tests_done")


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    _state["rss"].append(rss_mb())


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _mark("unconfigured")
    out = os.environ.get(ENV)
    if not out:
        return
    rss = _state["rss"] or [0.0]
    tenth = max(1, len(rss) // 10)
    data = {
        "gc_collections": list(_state["count"]),
        "gc_seconds": [round(s, 4) for s in _state["seconds"]],
        "gc_total_seconds": round(sum(_state["seconds"]), 4),
        "tests": len(_state["rss"]),
        "rss_after_first_tenth_of_tests_mb": round(max(rss[:tenth]), 1),
        "rss_after_tests_max_mb": round(max(rss), 1),
        "rss_after_last_test_mb": round(rss[-1], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "phases": dict(_state["phases"]),
    }
    gc.collect()  # count what is still reachable, not garbage waiting for the next full collection
    data["objects_tracked_at_end"] = len(gc.get_objects())
    Path(out).write_text(json.dumps(data) + "\n", encoding="utf-8")
