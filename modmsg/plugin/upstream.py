"""The upstream pass (``--upstream-url``): the run's selection judged again, with the same seed, straight against
the upstream the target (a gateway) fronts, then merged into the target's results as attribution.

The pass is a pytest of its own (``python -m pytest`` with the run's own arguments, so the same suites, selection,
profile and overlay), told by the hidden option ``--modmsg-upstream-pass`` to judge the upstream: its settings are
:meth:`~modmsg.config.Settings.upstream_pass` of the run's (the upstream's URL, key and
``--upstream-header`` values, none of the target's headers, the run's seed and run id, what is left of
``--max-duration``). It writes its own reports, thread ledger included, to ``REPORT_DIR/upstream/``; its threads
carry the run's tag and are deleted by its own cleanup. The target's verdict, claim and exit code are never changed
by it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modmsg.attribution import attribute
from modmsg.config import ConfigError, Settings
from modmsg.ledger import ledger_path
from modmsg.results import RunResult
from modmsg.results_file import ResultsError, load_results

UPSTREAM_DIR = "upstream"
"""The upstream pass's reports and ledger: a private sub-directory of the report directory."""
PASS_OPTION = "--modmsg-upstream-pass"
PASS_DEST = "modmsg_upstream_pass"
GRACE = 300.0
"""Seconds the pass may run past its budget (its cleanup) before it is killed."""
_NOT_FOR_THE_PASS = ("--junitxml", "--junit-xml")
"""pytest options of the run the pass must not share: it would overwrite the run's file."""


@dataclass(frozen=True)
class PassOrder:
    """What the run tells its upstream pass (no secret: the pass reads the upstream's key from the environment)."""

    run_id: str
    seed: int
    report_dir: str
    max_duration: float

    def encode(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def decode(cls, text: str) -> PassOrder:
        try:
            data = json.loads(text)
            return cls(str(data["run_id"]), int(data["seed"]), str(data["report_dir"]), float(data["max_duration"]))
        except (ValueError, TypeError, KeyError):
            raise ConfigError(f"{PASS_OPTION} is for modmsg's own use (the upstream pass of --upstream-url)") from None


@dataclass(frozen=True)
class UpstreamPass:
    """The pass's rolled-up results (None when it gave none, ``why`` saying why) and its ledger, when threads of
    the pass could not be deleted."""

    result: RunResult | None
    why: str = ""
    ledger: Path | None = None


def addoption(group: Any) -> None:
    """The hidden option that makes a pytest the upstream pass of a run."""
    group.addoption(PASS_OPTION, dest=PASS_DEST, default=None, help=argparse.SUPPRESS)


def pass_settings(settings: Settings, config: pytest.Config) -> tuple[Settings, str | None]:
    """The settings of this process: the run's own, or, in an upstream pass, the pass's (and the run id to use)."""
    given = config.getoption(PASS_DEST, None)
    if not given:
        return settings, None
    order = PassOrder.decode(str(given))
    if not settings.upstream_url:
        raise ConfigError(f"{PASS_OPTION} needs --upstream-url")
    passed = settings.upstream_pass(report_dir=Path(order.report_dir), seed=order.seed, max_duration=order.max_duration)
    return passed, order.run_id


def upstream_dir(settings: Settings) -> Path:
    return Path(settings.report_dir) / UPSTREAM_DIR


def as_upstream_error(exc: ConfigError) -> ConfigError:
    """The target probe's sentence, said of the upstream and its settings."""
    message = str(exc)
    for theirs, ours in (
        ("target ", "upstream "),
        ("check --base-url", "check --upstream-url"),
        ("check MODMSG_API_KEY or --api-key-env", "check --upstream-api-key-env's variable and --upstream-header"),
        ("no Assistants API answers at", "no Assistants API answers at the upstream"),
    ):
        message = message.replace(theirs, ours, 1)
    return ConfigError(message.replace("is the base URL", "is the upstream URL"))


def pass_command(args: Sequence[str], order: PassOrder) -> list[str]:
    """``python -m pytest`` with the run's arguments (less those whose files the pass must not touch), told to
    be the upstream pass."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in _NOT_FOR_THE_PASS:
            skip = True
            continue
        if arg.startswith(tuple(f"{name}=" for name in _NOT_FOR_THE_PASS)):
            continue
        kept.append(arg)
    return [sys.executable, "-m", "pytest", *kept, PASS_OPTION, order.encode()]


def run_pass(
    config: pytest.Config,
    settings: Settings,
    run_id: str,
    started: float,
    say: Callable[[str], None],
    signals: AbstractContextManager[object],
) -> UpstreamPass:
    """Run the upstream pass to its end and read its results. A signal (``signals`` turns SIGINT and SIGTERM into
    KeyboardInterrupt) is passed on to the pass as SIGINT, which then deletes its threads and writes what it
    judged; a second one ends the run at once."""
    directory = upstream_dir(settings)
    left = settings.max_duration - (time.time() - started)
    if left < 1:
        return UpstreamPass(None, "the run's --max-duration was spent before the upstream pass")
    assert settings.seed is not None  # pytest_configure fixed it
    order = PassOrder(run_id, settings.seed, str(directory), left)
    from modmsg.report import clear_reports

    with contextlib.suppress(OSError):
        clear_reports(directory)  # no earlier pass's results may stand in for this one's
    say(f"modmsg: judging the same selection straight against the upstream (seed {settings.seed}) ...")
    command = pass_command(config.invocation_params.args, order)
    with signals:
        code, output = _wait(command, config.invocation_params.dir, left + GRACE)
    ledger = ledger_path(directory)
    leftovers = ledger if ledger.is_file() else None
    try:
        return UpstreamPass(load_results(directory / "results.json"), ledger=leftovers)
    except ResultsError:
        return UpstreamPass(None, why_no_results(code, output), leftovers)


def _wait(command: list[str], cwd: Path, timeout: float) -> tuple[int | None, str]:
    """The pass's exit code and output. It runs in a session of its own, so a Ctrl-C at the terminal reaches only
    the run, which passes exactly one SIGINT on (a second one would stop the pass's cleanup)."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except KeyboardInterrupt:
        return _settle(process, "interrupted by a signal")
    except subprocess.TimeoutExpired:
        return _settle(process, "stopped: it ran past --max-duration")
    return process.returncode, output


def _settle(process: subprocess.Popen[str], what: str) -> tuple[int | None, str]:
    """Stop the pass as a Ctrl-C would (it deletes its threads and writes what it judged), then collect it."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=60)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        process.kill()
        output, _ = process.communicate()
    return None, f"{output or ''}\nmodmsg: {what}"  # the last word: why_no_results quotes it


def why_no_results(code: int | None, output: str) -> str:
    """The pass's own sentence (its last ``modmsg:`` line), else what is known."""
    said = [line.removeprefix("modmsg: ").strip() for line in output.splitlines() if line.startswith("modmsg: ")]
    if said:
        return f"the upstream pass ended without results: {said[-1]}"
    return f"the upstream pass ended without results (exit {code})"


def attributed(run: RunResult, upstream: UpstreamPass, label: str) -> RunResult:
    """``run`` attributed against the pass (``label``: the upstream's URL, redacted)."""
    return attribute(run, upstream.result, label, upstream.why)
