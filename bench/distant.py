"""A distant target: the default run against a reference server that answers each request ``LATENCY_MS`` late and
each new connection once more (``modmsg serve --latency-ms``), at ``--concurrency 1`` and at the default; the same
recorded requests sent one by one over one kept-alive connection; and the stock Schemathesis CLI with ``--workers``
equal to our concurrency. Run alone with ``python -m bench.distant`` (``make bench`` runs it as one section).

The goal: the default run takes at most ``GOAL`` times the one-by-one time of its own requests.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.measure import clean_env, counted, machine, pytest_argv, run_child
from bench.replay import compile_templates, defined_ids, load, replay
from modmsg.config import URL_CONCURRENCY
from modmsg.paths import REPO_DIR
from modmsg.reference.variants import Variant
from proving.mutation import (
    REFERENCE,
    STOCK_TIMEOUT,
    QuietInvalidRequests,
    fresh_key,
    live_message,
    stock_command,
    subprocess_env,
)

LATENCY_MS = 40.0
GOAL = 0.3
DEFAULT_CONCURRENCY: int = URL_CONCURRENCY
"""What ``--concurrency auto`` gives a run against a URL (``config.auto_concurrency``)."""
SEED = "1"


def ours(work: Path, name: str, concurrency: int) -> dict[str, Any]:
    """The default run (recorded) against a distant reference server behind a request counter."""
    server_variant, seen = counted(REFERENCE)
    api_key = fresh_key()
    recording = work / f"{name}.jsonl"
    with server_variant.start(api_key, latency_ms=LATENCY_MS) as server:
        argv = pytest_argv(
            "--base-url", server.base_url, "--report-dir", str(work / name), "--record-requests", str(recording),
            "--seed", SEED, "--concurrency", str(concurrency),
        )  # fmt: skip
        stats = run_child(argv, cwd=REPO_DIR, env=clean_env(MODMSG_API_KEY=api_key))
    if stats.exit_code != 0:
        raise SystemExit(f"bench: the run at --concurrency {concurrency} failed on the distant reference server")
    return {
        "concurrency": concurrency,
        "seconds": round(stats.seconds, 2),
        "requests": len(seen),
        "recording": str(recording),
    }


def one_by_one(recording: Path) -> dict[str, Any]:
    """The recorded requests sent one at a time over one kept-alive connection to a fresh distant server."""
    records = load(recording)
    api_key = fresh_key()
    with REFERENCE.start(api_key, latency_ms=LATENCY_MS) as server:
        result = replay(compile_templates(records, api_key), server.base_url.rsplit("/v1", 1)[0], defined_ids(records))
    return {"seconds": round(result.seconds, 2), "requests": result.requests, "mismatches": result.mismatches}


def stock(work: Path, workers: int, variant: Variant = REFERENCE) -> dict[str, Any]:
    """``st run --workers N`` (the mutation bench's command) against the same distant target, requests counted."""
    server_variant, seen = counted(variant)
    api_key = fresh_key()
    workdir = work / "stock"
    workdir.mkdir(parents=True, exist_ok=True)
    with server_variant.start(api_key, latency_ms=LATENCY_MS) as server:
        ids = live_message(server.base_url, api_key)
        setup = len(seen)
        command = stock_command(
            server.base_url, api_key, workdir, ids, seed=int(SEED), examples=100, baseline=None, update=False
        )
        command[command.index("--workers") + 1] = str(workers)
        started = time.perf_counter()
        done = subprocess.run(
            command, cwd=workdir, env=subprocess_env({"NO_COLOR": "1"}), capture_output=True, text=True,
            timeout=STOCK_TIMEOUT, check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    return {"workers": workers, "seconds": round(seconds, 2), "requests": len(seen) - setup, "exit": done.returncode}


def mutation_caught(report_dir: Path) -> tuple[int | None, int | None]:
    """Variants caught by ours and by the stock CLI, from ``make mutation``'s reports/mutation.json (if any)."""
    path = report_dir / "mutation.json"
    if not path.is_file():
        return None, None
    data = json.loads(path.read_text(encoding="utf-8"))
    stock_score = ((data.get("stock") or {}).get("score") or {}).get("all") or {}
    return data["score"]["all"].get("caught"), stock_score.get("caught")


def measure(work: Path, report_dir: Path) -> dict[str, Any]:
    sequential = ours(work, "distant-1", 1)
    default = ours(work, "distant-default", DEFAULT_CONCURRENCY)
    floor = one_by_one(Path(default["recording"]))
    stock_run = stock(work, DEFAULT_CONCURRENCY)
    caught_ours, caught_stock = mutation_caught(report_dir)
    return {
        "latency_ms": LATENCY_MS,
        "concurrency_1": {k: v for k, v in sequential.items() if k != "recording"},
        "default": {k: v for k, v in default.items() if k != "recording"},
        "one_by_one": floor,
        "ratio": round(default["seconds"] / floor["seconds"], 3),
        "ratio_concurrency_1": round(sequential["seconds"] / floor["seconds"], 3),
        "goal": GOAL,
        "stock": stock_run,
        "ours_per_100": _per_100(caught_ours, default["requests"]),
        "stock_per_100": _per_100(caught_stock, stock_run["requests"]),
    }


def _per_100(caught: int | None, requests: int) -> float | None:
    return None if caught is None or not requests else round(100 * caught / requests, 2)


def lines(data: dict[str, Any]) -> list[str]:
    """The section as printed and as written to RESULTS.md (one line per figure)."""
    one, default, floor, st = data["concurrency_1"], data["default"], data["one_by_one"], data["stock"]
    met = "meets" if data["ratio"] <= data["goal"] else "misses"
    return [
        f"distant target: reference server answering {data['latency_ms']:g} ms late (+1 round trip per new connection)",
        f"  ours --concurrency 1: {one['seconds']:.1f} s, {one['requests']} requests",
        f"  ours --concurrency {default['concurrency']} (default): {default['seconds']:.1f} s, "
        f"{default['requests']} requests",
        f"  its {floor['requests']} recorded requests one by one on one kept-alive connection: "
        f"{floor['seconds']:.1f} s",
        f"  ratio default / one-by-one: {data['ratio']:.2f}x ({met} the goal <= {data['goal']:g}x); at concurrency 1: "
        f"{data['ratio_concurrency_1']:.2f}x",
        f"  stock `st run --workers {st['workers']}`: {st['seconds']:.1f} s, {st['requests']} requests",
        "  variants caught per 100 requests (make mutation's scores): "
        + (
            f"ours {data['ours_per_100']}, stock {data['stock_per_100']}"
            if data["ours_per_100"] is not None
            else "n/a (no reports/mutation.json)"
        ),
    ]


def markdown(data: dict[str, Any]) -> list[str]:
    """The section of bench/RESULTS.md."""
    return [
        "## 6. A distant target",
        "",
        "Against the reference server in this process answering each request "
        f"{data['latency_ms']:g} ms late and the first request of each new connection twice that (`modmsg serve "
        "--latency-ms`), behind a request counter; the one-by-one time replays the default run's recorded requests "
        "over one kept-alive `requests.Session` against a fresh such server.",
        "",
        "```",
        *lines(data),
        "```",
        "",
    ]


def readme_rows(data: dict[str, Any] | None) -> list[str]:
    """The README performance table's rows (none when the bench had no distant section)."""
    if not data:
        return []
    default, floor = data["default"], data["one_by_one"]
    return [
        f"| distant target ({data['latency_ms']:g} ms a round trip): default run vs its requests one by one | "
        f"{default['seconds']:.0f} s vs {floor['seconds']:.0f} s: **{data['ratio']:.2f}x** (goal <= "
        f"{data['goal']:g}x; `--concurrency 1`: {data['ratio_concurrency_1']:.2f}x); stock `st run --workers "
        f"{data['stock']['workers']}` {data['stock']['seconds']:.0f} s, {data['stock']['requests']} requests |"
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.distant", description=__doc__.splitlines()[0])
    parser.add_argument("--report-dir", type=Path, default=REPO_DIR / "reports")
    args = parser.parse_args(argv)
    logging.getLogger("uvicorn.error").addFilter(QuietInvalidRequests())  # the stock tool's unparseable requests
    with tempfile.TemporaryDirectory(prefix="modmsg-distant-") as tmp:
        data = measure(Path(tmp), args.report_dir)
    data["machine"] = machine()
    for line in lines(data):
        print(line, flush=True)
    out = args.report_dir / "bench-distant.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
