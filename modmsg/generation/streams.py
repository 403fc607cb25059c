"""The fuzzing streams: one per generation mode, drawn and sent once per test module, every case judged for every
requirement of its mode. Each requirement's test then reports its own verdict, the first failing case (``Finding``)
with its exchanges as evidence; drawing the same distribution again per requirement would cost a draw and a request
per case for no new input. ``Drawn`` says where a stream drew a case, so that it can be drawn again and shrunk.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from schemathesis import GenerationMode

from modmsg.failures import Failure
from modmsg.transport import Exchange, Transport


@dataclass(frozen=True)
class Drawn:
    """Where a stream drew a case: the Hypothesis run (its seed label and size), the call within it (from 1), the
    case's fingerprint and its size on the wire. Enough to draw the same case again, and no case kept."""

    mode: GenerationMode
    batch: str
    size: int
    call: int
    fingerprint: str
    body_bytes: int | None
    """The size of the body on the wire (0: no body; None: unknown)."""

    @property
    def body(self) -> str:
        if self.body_bytes is None:
            return "a body of unknown size"
        return f"a {self.body_bytes}-byte body" if self.body_bytes else "no body"

    def smaller_than(self, other: Drawn) -> bool:
        """Not larger on the wire than ``other`` (Hypothesis' order of cases is not the size of the body)."""
        return other.body_bytes is None or (self.body_bytes is not None and self.body_bytes <= other.body_bytes)


@dataclass(frozen=True)
class Finding:
    """The first case of a stream that failed one requirement (shrunk when it could be): the typed failure, that
    case's exchanges, and where the stream drew it (None: it cannot be drawn again)."""

    failure: Failure
    evidence: tuple[Exchange, ...]
    drawn: Drawn | None = None


@dataclass
class Stream:
    """What one fuzzing stream found: cases sent (judged, or sent in a window once the stream was settled), the
    first failure per requirement, a sample of exchanges."""

    reqs: tuple[str, ...]
    seed: int
    sent: int = 0
    findings: dict[str, Finding] = field(default_factory=dict)
    sample: tuple[Exchange, ...] = ()
    """The first case's exchanges: the evidence of a pass."""

    @property
    def settled(self) -> bool:
        """Every requirement has failed: further cases cannot change a verdict."""
        return all(req in self.findings for req in self.reqs)


class StreamSource(Protocol):
    """What draws a stream (a ``GeneratedRun`` on a fresh message)."""

    def stream(self, mode: GenerationMode, *, label: str, reqs: Collection[str] | None = None) -> Stream: ...


@dataclass
class Streams:
    """The fuzzing streams of one test module, each drawn once, on the first test that asks for its verdict.

    ``new_run`` gives a ``GeneratedRun`` on a fresh message (one per stream, so the modes never share state).
    Under pytest-xdist each worker has its own; ``modmsg run --workers`` groups a mode's tests on one worker.
    """

    new_run: Callable[[], StreamSource]
    transport: Transport = field(repr=False)
    reqs: frozenset[str] | None = None
    """The requirements the selected tests ask of the streams (None: every one of ``STREAM_JUDGES``)."""
    _done: dict[GenerationMode, Stream | Exception] = field(default_factory=dict, repr=False)

    def stream(self, mode: GenerationMode) -> Stream:
        done = self._done.get(mode)
        if done is None:
            try:
                done = self.new_run().stream(mode, label=mode.value, reqs=self.reqs)
            except Exception as exc:  # e.g. the target stopped answering: every test of the mode says so
                done = exc
            self._done[mode] = done
        if isinstance(done, Exception):
            raise done
        return done

    def verdict(self, mode: GenerationMode, req: str) -> Stream:
        """Raise ``req``'s first failure in the ``mode`` stream (shrunk when it could be), its case's exchanges in
        this test's evidence."""
        stream = self.stream(mode)
        if req not in stream.reqs:
            raise ValueError(f"the {mode.value} stream does not judge {req} (judges {', '.join(stream.reqs)})")
        finding = stream.findings.get(req)
        for exchange in finding.evidence if finding else stream.sample:
            self.transport.recorder.add(exchange)
        if finding is not None:
            raise finding.failure
        return stream
