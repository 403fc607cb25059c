"""The physical floor: replay a run's recorded requests (``--record-requests``) with a bare ``requests`` loop.

Everything that is not the request itself happens before the clock starts: the lines are parsed, the key is put
back where the recording says ``[REDACTED]``, and every id the recorded run's server handed out is located in the
later URLs and bodies that use it. The timed loop then only fills in the ids the replay's own server handed out
(the first answer carrying an id defines it), sends, and reads the answer: what any client must do at minimum.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

REDACTED = "[REDACTED]"
SKIPPED_HEADERS = frozenset({"content-length", "host"})
"""Recomputed per request by ``requests`` (a body's length never changes: replay ids have the recorded length)."""


@dataclass(frozen=True)
class Recorded:
    """One line of a ``--record-requests`` file."""

    method: str
    target: str
    """Path and query, without scheme and host (the replay's server listens elsewhere)."""
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    status: int | None
    id: str | None
    test: str = ""


def load(path: Path) -> list[Recorded]:
    """The recorded requests of ``path``, in the order they were sent."""
    records = []
    for line in path.read_text(encoding="utf-8").split("\n"):  # not splitlines(): U+2028 is data here
        if not line.strip():
            continue
        data = json.loads(line)
        parts = urlsplit(data["url"])
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if "body_b64" in data:
            body: bytes | None = base64.b64decode(data["body_b64"])
        elif data.get("body") is not None:
            body = data["body"].encode("utf-8", "surrogatepass")
        else:
            body = None
        records.append(
            Recorded(
                method=data["method"],
                target=target,
                headers=tuple((str(name), str(value)) for name, value in data["headers"]),
                body=body,
                status=data.get("status"),
                id=data.get("id"),
                test=data.get("test", ""),
            )
        )
    return records


Piece = str | int
"""A literal piece of text, or the index of a recorded id to be replaced by the replay's own."""


@dataclass(frozen=True)
class Template:
    """A recorded request with the key restored and its ids located, ready for the timed loop."""

    method: str
    target: tuple[Piece, ...]
    headers: dict[str, str]
    body: tuple[Piece, ...] | None
    body_is_bytes: bool
    defines: int | None
    """Index of the id this request's answer defines (the request that created it), if any."""
    status: int | None


TOKEN = re.compile(r"\w+", re.ASCII)
"""Ids are word tokens (``thread_…``, ``msg_…``): every token that a previous answer defined is an id slot."""


def _pieces(text: str, index: dict[str, int]) -> tuple[Piece, ...]:
    pieces: list[Piece] = []
    last = 0
    for match in TOKEN.finditer(text):
        slot = index.get(match.group(0))
        if slot is None:
            continue
        if match.start() > last:
            pieces.append(text[last : match.start()])
        pieces.append(slot)
        last = match.end()
    if last < len(text):
        pieces.append(text[last:])
    return tuple(pieces)


def compile_templates(records: Sequence[Recorded], api_key: str) -> list[Template]:
    """Restore the key and locate every id a previous answer defined (untimed preparation)."""
    index: dict[str, int] = {}
    templates = []
    for record in records:
        headers = {
            name: value.replace(REDACTED, api_key)
            for name, value in record.headers
            if name.lower() not in SKIPPED_HEADERS
        }
        body_pieces = None
        body_is_bytes = False
        if record.body is not None:
            try:
                text = record.body.decode("utf-8")
            except UnicodeDecodeError:
                body_is_bytes = True
                text = record.body.decode("latin-1")  # ids are ASCII: locating them is safe either way
            body_pieces = _pieces(text.replace(REDACTED, api_key), index)
        defines = None
        if record.id is not None and record.id not in index:
            index[record.id] = len(index)
            defines = index[record.id]
        templates.append(
            Template(
                method=record.method,
                target=_pieces(record.target.replace(REDACTED, api_key), index),
                headers=headers,
                body=body_pieces,
                body_is_bytes=body_is_bytes,
                defines=defines,
                status=record.status,
            )
        )
    return templates


def _fill(pieces: tuple[Piece, ...], ids: list[str | None], recorded: list[str]) -> str:
    return "".join(piece if isinstance(piece, str) else (ids[piece] or recorded[piece]) for piece in pieces)


@dataclass
class ReplayResult:
    requests: int
    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    mismatches: int = 0
    """Answers whose status differs from the recorded one (should be ~0: the replay did the same work)."""

    @property
    def per_request_ms(self) -> float:
        return 1000 * self.seconds / self.requests if self.requests else 0.0


def replay(templates: Sequence[Template], origin: str, recorded_ids: Iterable[str] = ()) -> ReplayResult:
    """Send every template to ``origin`` (``http://host:port``) with one ``requests.Session``; time the loop."""
    recorded = list(recorded_ids)
    count = max((t.defines for t in templates if t.defines is not None), default=-1) + 1
    recorded += [""] * (count - len(recorded))
    ids: list[str | None] = [None] * count
    statuses: list[int] = []
    session = requests.Session()
    started = time.perf_counter()
    for template in templates:
        url = origin + _fill(template.target, ids, recorded)
        body: bytes | None = None
        if template.body is not None:
            text = _fill(template.body, ids, recorded)
            body = text.encode("latin-1") if template.body_is_bytes else text.encode("utf-8", "surrogatepass")
        response = session.request(
            template.method, url, headers=template.headers, data=body, timeout=30, allow_redirects=False
        )
        if template.defines is not None and response.status_code == 200:
            ids[template.defines] = response.json().get("id")
        statuses.append(response.status_code)
    seconds = time.perf_counter() - started
    session.close()
    mismatches = sum(1 for t, s in zip(templates, statuses, strict=True) if t.status is not None and t.status != s)
    return ReplayResult(len(templates), seconds, Counter(statuses), mismatches)


def defined_ids(records: Sequence[Recorded]) -> list[str]:
    """The recorded ids in the order ``compile_templates`` numbers them (fallback text for an unmapped id)."""
    seen: dict[str, None] = {}
    for record in records:
        if record.id is not None and record.id not in seen:
            seen[record.id] = None
    return list(seen)


def replay_file(path: Path, origin: str, api_key: str) -> ReplayResult:
    """Load, prepare (untimed) and replay ``path`` against ``origin``."""
    records = load(path)
    return replay(compile_templates(records, api_key), origin, defined_ids(records))
