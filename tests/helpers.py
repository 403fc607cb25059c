"""Shared by the project's own tests: run the real conformance suite (the user's code path) in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SuiteRun:
    exit_code: int
    output: str
    report_dir: Path

    @property
    def results(self) -> dict[str, Any]:
        return json.loads((self.report_dir / "results.json").read_text(encoding="utf-8"))

    def outcomes(self) -> dict[str, str]:
        return {r["id"]: r["outcome"] for r in self.results["requirements"]}


def run_suite(report_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> SuiteRun:
    """``python -m pytest suites ARGS`` with the reports in ``report_dir``; never inherits MODMSG_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(REPO / "suites"),
        "-q",
        "-p",
        "no:cacheprovider",
        "--report-dir",
        str(report_dir),
        *args,
    ]
    done = subprocess.run(
        command, cwd=REPO, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=timeout, check=False
    )
    return SuiteRun(exit_code=done.returncode, output=done.stdout + done.stderr, report_dir=report_dir)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}
    return subprocess.run(
        [sys.executable, "-m", "modmsg.cli", *args],
        cwd=REPO,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def finished_run(process: subprocess.Popen, report_dir: Path, what: str, timeout: float) -> SuiteRun:
    """Wait for a suite started in the background (its output in ``report_dir/output.txt``); fail the test, after
    killing it, when it does not end within ``timeout``."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{what} did not end within {timeout:.0f} s")
    output = (report_dir / "output.txt").read_text(encoding="utf-8", errors="replace")
    return SuiteRun(exit_code=process.returncode, output=output, report_dir=report_dir)


def generated_run(transport: Any, *, seed: int, max_examples: int, shrink_budget: Any, concurrency: int = 1) -> Any:
    """A GeneratedRun of the modify operation through ``transport``, on a fresh message, under the openai profile."""
    from modmsg.api import AssistantsApi
    from modmsg.generation.builtin_checks import load_schema, modify_operation
    from modmsg.generation.run import GeneratedRun
    from modmsg.profiles import load_profile

    api = AssistantsApi(transport)
    return GeneratedRun(
        operation=modify_operation(load_schema()),
        transport=transport,
        api=api,
        base_url=transport.base_url,
        profile=load_profile("openai"),
        message=api.create_message(api.create_thread()["id"]),
        seed=seed,
        max_examples=max_examples,
        replay_base_url=None,
        replay_profile="openai",
        shrink_budget=shrink_budget,
        concurrency=concurrency,
    )


class Cleanups:
    """The part of ``pytest.Config`` a plugin helper registers its undoing with (``add_cleanup``), for calling such a
    helper outside a session; :meth:`run` undoes as pytest does, last in, first out."""

    def __init__(self) -> None:
        self.cleanups: list[Callable[[], object]] = []

    def add_cleanup(self, function: Callable[[], object]) -> None:
        self.cleanups.append(function)

    def run(self) -> None:
        while self.cleanups:
            self.cleanups.pop()()


LATE_SIGNAL_AT = {
    "the reports": "def pytest_sessionfinish(session):\n",
    "the final cleanup": (
        "@pytest.hookimpl(tryfirst=True)\ndef pytest_runtest_teardown(item, nextitem):\n    if nextitem is not None:\n"
        "        return\n"
    ),
}
"""Where in a run :func:`late_signal_plugin` signals it: once the reports are being written, or as the last test's
teardown (the run's thread cleanup) begins."""


def late_signal_plugin(directory: Path, at: str, signals: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """A pytest plugin, written to ``directory``, that sends the run itself ``signals`` (names) ``at`` a moment of
    :data:`LATE_SIGNAL_AT`: the arguments that load it and the environment it needs."""
    (directory / "late_signal.py").write_text(
        "import os, signal\n\nimport pytest\n\n\n"
        + LATE_SIGNAL_AT[at]
        + "".join(f"    os.kill(os.getpid(), signal.{name})\n" for name in signals),
        encoding="utf-8",
    )
    return ("-p", "late_signal"), {"PYTHONPATH": os.pathsep.join([str(directory), os.environ.get("PYTHONPATH", "")])}
