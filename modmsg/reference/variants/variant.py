"""One variant: the reference server with one defect, and the requirements that defect breaks."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from starlette.middleware import Middleware

from modmsg.reference import DEFAULT_BEHAVIOUR, Behaviour, ReferenceServer, start_server


@dataclass(frozen=True)
class Variant:
    """The reference server with one defect: ``behaviour`` knobs and/or ``middleware`` in front of it.

    ``breaks`` is the exact set of requirements the defect breaks directly: each judges a response the defect
    shapes, so the suite FAILs every one of them on every run. Requirements that merely stand on one of them are
    BLOCKED, never FAIL. ``generated`` names requirements the same defect breaks only when generated input
    (Hypothesis or Schemathesis, seed-dependent) happens to reach it: they may FAIL, and need not.
    """

    name: str
    doc: str
    breaks: tuple[str, ...]
    behaviour: Behaviour
    middleware: tuple[Middleware, ...] = ()
    generated: tuple[str, ...] = ()

    def start(
        self, api_key: str, host: str = "127.0.0.1", port: int = 0, *, latency_ms: float = 0.0
    ) -> ReferenceServer:
        """Start this variant on loopback in a background thread (``port=0``: a free port; ``latency_ms``: a
        distant target, see :func:`~modmsg.reference.start_server`)."""
        return start_server(api_key, self.behaviour, host, port, middleware=self.middleware, latency_ms=latency_ms)


def knobs(**changes: Any) -> Behaviour:
    """The correct behaviour with ``changes`` applied."""
    return replace(DEFAULT_BEHAVIOUR, **changes)


CORRECT = DEFAULT_BEHAVIOUR
GENERATED_ACCEPT = ("MM-GEN-01",)
GENERATED_REJECT = ("MM-GEN-02",)
