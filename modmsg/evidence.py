"""Evidence: each request and its answer as a redacted, truncated :class:`Exchange`, the curl line that replays it,
and the :class:`Recorder` that keeps a test's exchanges. Made by :class:`modmsg.transport.Transport`; read by the
plugin (test records), the reports and ``--record-requests`` (:mod:`modmsg.recording`, a :class:`RequestWriter`).
"""

from __future__ import annotations

import re
import shlex
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import requests

from modmsg.redaction import Redactor

BODY_CAP = 16_384


class RequestWriter(Protocol):
    """Where every attempt is also written as it is sent (``--record-requests``: a ``modmsg.recording.RequestLog``)."""

    def write(
        self,
        prepared: requests.PreparedRequest,
        response: requests.Response | None,
        elapsed: float,
        error: str | None = None,
    ) -> None: ...


def body_text(body: bytes | str | None, redactor: Redactor) -> tuple[str | None, int]:
    """The body as evidence: decoded, redacted, and only then cut to ``BODY_CAP`` characters (a secret straddling
    the cut is redacted whole); and its size in bytes."""
    if body is None:
        return None, 0
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    text = raw[: 4 * (BODY_CAP + redactor.reach)].decode("utf-8", "replace")
    return redactor.clip(text, BODY_CAP), len(raw)


SKIPPED_IN_CURL = ("content-length", "user-agent", "accept-encoding", "connection", "accept")


def shell_word(text: str, variables: Sequence[str] = ()) -> str:
    """``text`` as one shell word in which ``$NAME`` / ``${NAME}`` for each of ``variables`` expands (the evidence
    shows a secret as such a reference) and nothing else does: double quotes with ``\\``, ``"``, ``$`` and
    backtick escaped (or single quotes around the literal parts when a ``!`` could trigger history expansion)."""
    names = "|".join(re.escape(v) for v in sorted(variables, key=len, reverse=True))
    pieces = re.split(rf"(\$\{{(?:{names})\}}|\$(?:{names})(?![A-Za-z0-9_]))", text) if names else [text]
    if len(pieces) == 1:
        return shlex.quote(text)
    literals, references = pieces[::2], pieces[1::2]
    if any("!" in literal for literal in literals):
        return "".join(
            (shlex.quote(literal) if literal else "") + (f'"{reference}"' if reference else "")
            for literal, reference in zip(literals, [*references, ""], strict=True)
        )
    escaped = [re.sub(r'([\\"$`])', r"\\\1", literal) for literal in literals]
    return '"' + "".join(e + r for e, r in zip(escaped, [*references, ""], strict=True)) + '"'


@dataclass(frozen=True)
class Exchange:
    """One request and its answer, as evidence: already redacted and truncated."""

    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: str | None
    status: int | None
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: str | None = None
    response_size: int = 0
    elapsed: float = 0.0
    error: str | None = None
    variables: tuple[str, ...] = field(default=(), repr=False)
    """The shell variables (``MODMSG_API_KEY``...) that stand for secrets in ``request_headers``: not evidence."""

    def curl(self) -> str:
        """A command that runs as pasted: each secret is a shell variable reference (``$MODMSG_API_KEY``), so the
        value never shows and a user who has set the variable gets the same answer, not a 401."""
        parts = ["curl", "-sS", "-X", self.method, shlex.quote(self.url)]
        for name, value in self.request_headers:
            if name.lower() in SKIPPED_IN_CURL:
                continue
            parts += ["-H", shell_word(f"{name}: {value}", self.variables)]
        if self.request_body is not None:
            parts += ["--data-raw", shlex.quote(self.request_body)]
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["variables"]
        data["request_headers"] = [list(h) for h in self.request_headers]
        data["response_headers"] = [list(h) for h in self.response_headers]
        data["curl"] = self.curl()
        return data


@dataclass
class Recorder:
    """Collects the exchanges of one test (thread-safe: concurrency tests share it).

    ``limit`` keeps only the newest exchanges, so a long generated test or the session-wide default recorder
    never grows without bound.
    """

    limit: int = 256
    exchanges: deque[Exchange] = field(default_factory=deque)
    forward: Recorder | None = None
    """Where every exchange goes as well (the test's recorder, while a block of it is captured separately)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)
            while len(self.exchanges) > self.limit:
                self.exchanges.popleft()
        if self.forward is not None:
            self.forward.add(exchange)

    def snapshot(self) -> tuple[Exchange, ...]:
        with self._lock:
            return tuple(self.exchanges)
