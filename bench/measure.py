"""Measuring one run: wall and CPU time and peak memory of a child process, and requests counted at the server."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from modmsg.reference.variants import Variant
from proving.mutation import subprocess_env


@dataclass(frozen=True)
class RunStats:
    """One child process: wall seconds, CPU seconds (user + system), peak resident memory, exit code, output."""

    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    exit_code: int
    output: str
    started_at: float = 0.0
    """Wall-clock time (``time.time()``) when the child was started: lines it up with its own timestamps."""
    ended_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "exit_code": self.exit_code,
        }


def run_child(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 1800.0) -> RunStats:
    """Run ``argv``; its own rusage (``wait4``) gives CPU time and peak RSS, unaffected by other children."""
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as out:
        started, started_at = time.perf_counter(), time.time()
        process = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
        seconds, ended_at = time.perf_counter() - started, time.time()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read()
    peak = usage.ru_maxrss / 1024  # kilobytes on Linux
    return RunStats(seconds, usage.ru_utime + usage.ru_stime, peak, process.returncode, output, started_at, ended_at)


def pytest_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without MODMSG_* settings (``proving.mutation.subprocess_env``), plus ``extra``."""
    return subprocess_env(extra)


class CountRequests:
    """Pure ASGI middleware: appends ``(method, path)`` of every HTTP request to ``into`` (outermost, so it also
    counts what a variant's own middleware answers)."""

    def __init__(self, app: ASGIApp, *, into: list[tuple[str, str]]) -> None:
        self.app = app
        self._into = into

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self._into.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


def counted(variant: Variant) -> tuple[Variant, list[tuple[str, str]]]:
    """``variant`` with a request counter in front; the list fills as the server is used."""
    seen: list[tuple[str, str]] = []
    return replace(variant, middleware=(Middleware(CountRequests, into=seen), *variant.middleware)), seen


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": _cpu_model() or platform.machine(),
    }
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except (OSError, ValueError, AttributeError):
        pass
    return info


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


@contextmanager
def served(api_key: str) -> Iterator[str]:
    """The reference server in a process of its own (``modmsg serve --port 0``), as a vendor's target would be:
    a client's peak memory and CPU are then its own. Yields the base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "modmsg.cli", "serve", "--port", "0"],
        env=clean_env(MODMSG_API_KEY=api_key), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline() if process.stdout else ""
        if "listening on" not in line:
            raise SystemExit(f"bench: `modmsg serve` did not start: {line.strip() or 'no output'}")
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        process.terminate()
        process.wait(timeout=30)
