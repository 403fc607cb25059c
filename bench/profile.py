"""Where the time of a suite run goes: a sampling profile of the run's main thread, folded into activities.

``py-spy`` samples from outside the process without slowing it (``--nonblocking``), so the shares are those of
an unprofiled run; ``pyinstrument`` (the fallback when py-spy cannot attach, e.g. without ptrace) hooks every
Python call, which here doubles the run and inflates call-heavy code (Hypothesis) against waiting.

Every sample of the main thread is given to the *innermost* activity marker on its stack (a request sent from
inside a generated case counts as HTTP, the drawing of the case itself as generation); a sample whose leaf is a
socket read inside HTTP is time spent waiting for the server's answer (the reference server runs in a thread
of the same process, so that wait is its work plus loopback).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PY_SPY_RATE = 200
"""Samples per second."""

WAIT = "HTTP: waiting for the answer (server work + loopback)"
CLIENT = "HTTP: client stack (requests, urllib3, http.client; and the GIL while the in-process server holds it)"
STARTUP = "start-up: imports and configuration"
DRAWING = "Hypothesis + Schemathesis: drawing cases"
SUITE = "suite: checks and test logic"
OTHER = "interpreter start and exit"
COLLECTION = "collection (schema loading, coverage cases)"
REPORTS = "reports (results.json, HTML, JUnit)"
EXIT_GC = "pytest: garbage collection at exit"
ACTIVITIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        (STARTUP, r"^(\w+\.)?(_find_and_load|pytest_configure|_preparse|pytest_load_initial\w*) "),
        (COLLECTION, r"^pytest_collection "),
        ("pytest per-test machinery", r"^pytest_runtestloop "),
        (DRAWING, r"^(ConjectureRunner\.run|StateForActualGivenExecution\.run_engine) "),
        (SUITE, r"\((suites/)?test_\w+\.py:|\(modmsg/(checks|generation|api|scenarios|strategies)"),
        ("Schemathesis: case to request, response checks", r"^(Case\.as_transport_kwargs|Case\.validate_response) "),
        ("JSON Schema validation", r"\(jsonschema/"),
        (CLIENT, r"^(Transport\._send|Session\.send|Session\.request|Session\.prepare_request) "),
        (
            "evidence capture and redaction",
            r"^(\w+\.)?(Transport\.record|RequestLog\.write|pytest_runtest_makereport) ",
        ),
        (REPORTS, r"^(\w+\.)?(pytest_sessionfinish|write_reports) "),
        (EXIT_GC, r"^gc_collect_harder "),
        (STARTUP, r"^_find_and_load "),
    )
)
SOCKET_LEAF = re.compile(r"\((socket|selectors|ssl)\.py:|^(recv_into|readinto|select|poll) ")


def activity(stack: Sequence[str]) -> str:
    """The innermost activity on ``stack`` (root first), with socket reads inside HTTP as waiting."""
    found = OTHER
    for frame in stack:
        for name, pattern in ACTIVITIES:
            if pattern.search(frame):
                found = name
    if found == CLIENT and stack and SOCKET_LEAF.search(stack[-1]):
        return WAIT
    return found


@dataclass(frozen=True)
class Profile:
    tool: str
    seconds: float
    """Wall time of the profiled run."""
    shares: tuple[tuple[str, float], ...]
    """(activity, fraction of the main thread's samples), largest first."""
    samples: int

    def as_dict(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "seconds": round(self.seconds, 2),
            "samples": self.samples,
            "shares": {name: round(share, 4) for name, share in self.shares},
        }


def fold(samples: Iterable[tuple[Sequence[str], float]]) -> tuple[tuple[tuple[str, float], ...], int]:
    weights: Counter[str] = Counter()
    count = 0
    for stack, weight in samples:
        weights[activity(stack)] += weight
        count += 1
    total = sum(weights.values()) or 1.0
    return tuple((name, weight / total) for name, weight in weights.most_common()), count


def parse_py_spy_raw(text: str) -> list[tuple[list[str], float]]:
    """py-spy's ``--format raw`` lines (``thread (id): name;frame;frame N``), main thread only.

    The main thread is the one py-spy names ``MainThread``; its samples from before ``threading`` named it (the
    first imports) carry only its id, so the thread is matched by id.
    """
    lines = []
    for line in text.split("\n"):
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            lines.append((stack.split(";"), float(count)))
    main = {frames[0].split(":", 1)[0] for frames, _ in lines if frames[0].endswith(": MainThread")}
    return [(frames[1:], count) for frames, count in lines if frames[0].split(":", 1)[0] in main]


def _pyinstrument_samples(path: Path) -> list[tuple[list[str], float]]:
    from pyinstrument.session import Session

    samples: list[tuple[list[str], float]] = []

    def walk(frame: object, stack: list[str]) -> None:
        here = [*stack, f"{frame.function} ({frame.file_path}:{frame.line_no})"]  # type: ignore[attr-defined]
        children = frame.children  # type: ignore[attr-defined]
        own = frame.time - sum(child.time for child in children)  # type: ignore[attr-defined]
        if own > 0:
            samples.append((here, own))
        for child in children:
            walk(child, here)

    walk(Session.load(path).root_frame(), [])
    return samples


def _relative(frame: str) -> str:
    """Frames as py-spy prints them (``func (package/module.py:line)``), whatever the tool."""
    return re.sub(r"\((?:[^()]*/site-packages/|[^()]*/work/main/)", "(", frame)


def profile_run(argv: Sequence[str], cwd: Path, env: dict[str, str], tool: str = "auto") -> Profile:
    """Run ``python argv`` under py-spy (or pyinstrument) and fold its main thread into activities."""
    import time

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    use_py_spy = tool == "py-spy" or (tool == "auto" and Path(py_spy).exists())
    with tempfile.TemporaryDirectory(prefix="modmsg-profile-") as tmp:
        if use_py_spy:
            out = Path(tmp) / "stacks.txt"
            command = [
                py_spy, "record", "--format", "raw", "--rate", str(PY_SPY_RATE), "--threads", "--idle",
                "--nonblocking", "-o", str(out), "--", sys.executable, *argv,
            ]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - started
            if out.is_file():
                samples = [([_relative(f) for f in s], w) for s, w in parse_py_spy_raw(out.read_text("utf-8"))]
                shares, count = fold(samples)
                return Profile("py-spy", seconds, shares, count)
            if tool == "py-spy":
                raise RuntimeError(f"py-spy could not profile the run: {done.stderr.strip()[-500:]}")
        out = Path(tmp) / "run.pyisession"
        command = [sys.executable, "-m", "pyinstrument", "-r", "session", "-o", str(out), *argv]
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        samples = [([_relative(f) for f in s], w) for s, w in _pyinstrument_samples(out)]
        shares, count = fold(samples)
        return Profile("pyinstrument", seconds, shares, count)
