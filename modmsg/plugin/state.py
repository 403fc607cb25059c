"""The state of one pytest session (in ``config.stash``, never global) and the run id that tags its threads."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modmsg.config import Settings
from modmsg.deviations import Deviations
from modmsg.ledger import Ledger, ledger_path
from modmsg.plugin.interrupts import Interrupts
from modmsg.profiles import Profile
from modmsg.redaction import Redactor, inert
from modmsg.requirements import Catalogue
from modmsg.results import RunResult, TestRecord
from modmsg.transport import RunBudget


def new_run_id() -> str:
    return f"modmsg-{secrets.token_hex(6)}"


@dataclass
class RunState:
    """Controller-side state of one pytest session (lives in ``config.stash``, never global)."""

    settings: Settings
    profile: Profile
    catalogue: Catalogue
    overlay: Deviations | None
    baseline: RunResult | None = None
    started: float = field(default_factory=time.time)
    records: list[TestRecord] = field(default_factory=list)
    redactor: Redactor | None = None
    result: RunResult | None = None
    written: tuple[Any, ...] = ()
    run_id: str = field(default_factory=lambda: new_run_id())
    interrupts: Interrupts = field(default_factory=Interrupts)
    transport_streak: int = 0
    """Tests in a row (in this process) that got no HTTP answer; any answered test resets it."""
    stopped_early: str | None = None
    leftovers: tuple[str, ...] = ()
    """Threads this process could not delete at the end (they stay in the ledger for ``modmsg sweep``)."""
    judging: bool = False
    """This session runs modmsg tests (not e.g. the project's own tests): it owns the report directory."""
    upstream_pass: bool = False
    """This session is the upstream pass of a run with --upstream-url: a passing test keeps its last exchanges
    (not its first), so an introduced failure's evidence can be put beside the upstream's same call."""
    upstream_ledger: Path | None = None
    """The upstream pass's ledger, when threads of that pass could not be deleted."""
    expected: dict[str, int] | None = None
    """Selected tests per requirement, where this process collected them (None on an xdist controller): a
    stopped run tells from it which requirements saw all their tests."""

    def __post_init__(self) -> None:
        if self.redactor is None:  # the transport fixture adds the bundled server's key once it is made
            self.redactor = Redactor.from_settings(self.settings)

    @property
    def ledger(self) -> Ledger | None:
        """Only runs against a real target keep a ledger: the bundled server's threads die with the process."""
        if not self.settings.base_url:
            return None
        return Ledger(ledger_path(self.settings.report_dir), redact=self.redact)

    def budget(self) -> RunBudget:
        """``--max-duration``, counted from the start of this process's run."""
        return RunBudget.since(self.settings.max_duration, elapsed=time.time() - self.started)

    def redact(self, text: str) -> str:
        assert self.redactor is not None
        return self.redactor.text(text)

    def console(self, text: str) -> str:
        """Redacted and inert: fit for the terminal."""
        return inert(self.redact(text))
