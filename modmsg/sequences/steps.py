"""The vocabulary of a sequence: what a step may send (the metadata alphabet, the invalid bodies, unknown ids),
a step as a failure lists it, what every sequence of a run shares (``Context``), and the two signals that end a
run early."""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from modmsg.failures import Failure, InvalidRequestAccepted, LimitNotEnforced, WrongTypeAccepted
from modmsg.profiles import Profile
from modmsg.sequences.judge import Judging
from modmsg.sequences.links import Links
from modmsg.transport import Exchange, Transport

KEYS = ("k0", "k1", "k2", "k3")
VALUES = ("", "x", "y", "z1")
"""A small alphabet, so that keys collide and merge semantics show; plain ASCII, so no length, case or
normalisation rule of another requirement is exercised here."""
SENT = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), min_size=1, max_size=3)
AT_CREATION = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES[1:]), max_size=2)
LISTING_LIMIT = 100
MAX_LIVE_THREADS = 2
MAX_THREADS = 4
ECHO_REQ = "MM-RESP-05"


@dataclass(frozen=True)
class Invalid:
    """A modify body a target must refuse, and the requirement that judges that refusal on its own."""

    what: str
    metadata: Mapping[str, Any]
    req: str
    failure: type[InvalidRequestAccepted]


INVALID = (
    Invalid("a non-string value beside a valid pair", {"k0": "x", "k1": 1}, "MM-META-09", WrongTypeAccepted),
    Invalid("17 keys", {f"k{i}": "x" for i in range(17)}, "MM-META-06", LimitNotEnforced),
    Invalid("a 65-character key beside a valid pair", {"k0": "y", "k" * 65: "x"}, "MM-META-07", LimitNotEnforced),
    Invalid("a 513-character value", {"k1": "y" * 513}, "MM-META-08", LimitNotEnforced),
)
PICK = st.integers(min_value=0, max_value=7)
"""Which of the live (or deleted) objects a step takes: shrinks towards the first."""
UNKNOWN_ID = st.text(string.ascii_letters + string.digits, min_size=24, max_size=24).map(lambda s: f"msg_{s}")


@dataclass(frozen=True)
class Step:
    """One step of a sequence as the failure lists it: what was done, and its exchanges (the step's own request
    first, then the reads that judged it)."""

    number: int
    text: str
    exchanges: tuple[Exchange, ...]

    def lines(self) -> list[str]:
        head = f"{self.number}. {self.text}"
        if not self.exchanges:
            return [head + " (skipped: nothing sent)"]
        first, *reads = self.exchanges
        lines = [f"{head} -> {first.status if first.status is not None else 'no answer'}", f"   {first.curl()}"]
        lines += [f"   then {read.method} {read.url} -> {read.status}" for read in reads]
        return lines


class Abort(BaseException):
    """Ends the run at once (the target stopped answering): never shrunk."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class ShrinkSpent(BaseException):
    """Ends the shrinking of a round: its budget is spent, the smallest failing sequence so far is reported."""


@dataclass
class Context:
    """What every sequence of one run shares: the wire, the run's thread factory, the profile, what is judged,
    and where a failing sequence is reported."""

    transport: Transport = field(repr=False)
    base_url: str
    create_thread: Callable[[], dict[str, Any]] = field(repr=False)
    """The run's thread factory: each thread tagged with the run id and in the ledger before it is used."""
    profile: Profile
    links: Links = field(repr=False)
    judging: Judging
    on_failure: Callable[[Failure, tuple[Step, ...]], Failure]
    """Records a failing sequence; returns the failure with the steps listed (what is raised)."""
    may_send: Callable[[], bool] = lambda: True
    """False once the shrink budget is spent: later sequences are rejected before they send anything."""
    check: Callable[[], None] = lambda: None
    """Called before each sequence and each request: raises (a BaseException, which Hypothesis passes through)
    once the sequence's result can no longer be reported (``modmsg.sequences.run``: its lane or round is cut)."""
