"""The thread ledger: every thread a run against a real target creates, written the moment it exists.

The Assistants API has no "list threads" call, so a run cannot be cleaned up by looking around the target
afterwards. Instead every run against a ``--base-url`` appends one line per thread it creates to a ledger,
``<report dir>/.modmsg-threads.jsonl``, *as it creates it*, and one line per thread it deletes; ``modmsg sweep``
(:mod:`modmsg.sweep`) deletes what a killed run left behind.

Lines are JSON objects ``{"event", "run", "thread", "target", "at"}`` with ``event`` one of ``created``,
``deleted`` (the run or a sweep deleted it, or it was already gone) and ``released`` (it does not carry the run's
tag, so it is not ours to delete). A run's ledger redacts every line: a thread id that carries a secret (a
hostile target can echo the key in its ids) is written redacted and so never swept. Writers hold an exclusive
``flock`` (where the platform has one), so parallel runs and xdist workers can share one ledger; once every
thread in it is settled the file is removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock, appends are still single writes
    fcntl = None  # type: ignore[assignment]

RUN_TAG = "modmsg_run"
LEDGER_NAME = ".modmsg-threads.jsonl"

Event = Literal["created", "deleted", "released"]


def ledger_path(report_dir: Path) -> Path:
    return Path(report_dir) / LEDGER_NAME


@dataclass(frozen=True)
class Entry:
    event: Event
    run: str
    thread: str
    target: str
    at: str = ""

    def line(self) -> str:
        return json.dumps(
            {"event": self.event, "run": self.run, "thread": self.thread, "target": self.target, "at": self.at},
            ensure_ascii=False,
        )

    @classmethod
    def parse(cls, line: str) -> Entry | None:
        """None for anything that is not a complete entry (e.g. the half-written last line of a killed run)."""
        try:
            data = json.loads(line)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("event") not in ("created", "deleted", "released"):
            return None
        run, thread, target = (data.get(name) for name in ("run", "thread", "target"))
        if not all(isinstance(value, str) and value for value in (run, thread, target)):
            return None
        return cls(data["event"], str(run), str(thread), str(target), str(data.get("at", "")))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[IO[str]]:
    """The ledger opened for read and append under an exclusive lock; survives a concurrent removal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = path.open("a+", encoding="utf-8")
        try:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:  # removed (settled) by another writer while we waited: start over
                    continue
            yield handle
            return
        finally:
            handle.close()


@dataclass(frozen=True)
class Ledger:
    """Append-only record of the threads runs created on real targets (``reports/.modmsg-threads.jsonl``)."""

    path: Path
    redact: Callable[[str], str] | None = field(default=None, repr=False, compare=False)
    """The run's redactor (``Redactor.text``): applied to the thread id and target of every line written."""

    def append(self, entries: Iterable[Entry]) -> None:
        redact = self.redact
        if redact is not None:
            entries = [dataclasses.replace(e, thread=redact(e.thread), target=redact(e.target)) for e in entries]
        lines = "".join(entry.line() + "\n" for entry in entries)
        if not lines:
            return
        with _locked(self.path) as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() > 0:
                handle.seek(handle.tell() - 1)
                if handle.read(1) != "\n":  # a killed writer left half a line: never glue onto it
                    lines = "\n" + lines
            handle.write(lines)
            handle.flush()

    def created(self, run: str, thread: str, target: str) -> None:
        self.append([Entry("created", run, thread, target, now())])

    def deleted(self, run: str, thread: str, target: str) -> None:
        self.append([Entry("deleted", run, thread, target, now())])

    def entries(self) -> list[Entry]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        return [entry for line in text.splitlines() if (entry := Entry.parse(line)) is not None]

    def pending(self, target: str | None = None, run: str | None = None) -> list[Entry]:
        """``created`` entries not yet settled, oldest first; optionally only for one target or run."""
        return [
            entry
            for entry in _pending(self.entries())
            if (target is None or entry.target == target) and (run is None or entry.run == run)
        ]

    def compact(self) -> int:
        """Rewrite the ledger to its pending entries (remove it when none are left); return how many remain."""
        if not self.path.exists():
            return 0
        with _locked(self.path) as handle:
            handle.seek(0)
            entries = [entry for line in handle.read().splitlines() if (entry := Entry.parse(line)) is not None]
            keep = _pending(entries)
            if keep:
                handle.seek(0)
                handle.truncate()
                handle.write("".join(entry.line() + "\n" for entry in keep))
                handle.flush()
            else:
                self.path.unlink(missing_ok=True)
            return len(keep)


def _pending(entries: Sequence[Entry]) -> list[Entry]:
    settled = {(e.target, e.run, e.thread) for e in entries if e.event != "created"}
    seen: set[tuple[str, str, str]] = set()
    pending = []
    for entry in entries:
        key = (entry.target, entry.run, entry.thread)
        if entry.event == "created" and key not in settled and key not in seen:
            seen.add(key)
            pending.append(entry)
    return pending
