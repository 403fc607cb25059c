"""``--record-requests PATH``: every request the suite sends, as JSON lines, for ``bench/`` to replay.

One line per attempt that went through :class:`modmsg.transport.Transport` (handwritten tests, sibling calls,
generated cases, retries and cleanup alike), written as it is sent. Secrets never reach the file: every field
(the URL, the header values, the body, the answer's ``id`` and the error) goes through the run's
:class:`~modmsg.redaction.Redactor`, which replaces every form of every configured secret value (the API key,
the values of secret headers) by ``[REDACTED]``, so a replay re-adds its own key. As in the evidence, only the
secret *values* are masked in request headers: the wrong keys the negative tests send on
purpose are not secrets and stay as they were, so the replay sends exactly what the suite sent.

A line: ``{"method", "url", "headers": [[name, value], ...], "body" (UTF-8 text) or "body_b64", "status",
"id" (the ``id`` of a JSON object answer, so a replay can map ids its server hands out), "test"
(the test and phase that sent it: ``PYTEST_CURRENT_TEST``, or, for a test run ahead on a pool thread, the one
:func:`sent_for` names), "elapsed"}``. Under pytest-xdist every worker
writes its own file, ``PATH`` with ``.gwN`` before the suffix.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from modmsg.redaction import Redactor

_SENDER: ContextVar[str | None] = ContextVar("modmsg_sender", default=None)


@contextmanager
def sent_for(test: str) -> Iterator[None]:
    """Requests sent in this block (on this thread) are recorded as ``test``'s (``"nodeid (phase)"``), whichever
    test pytest is on: a test run ahead on a pool thread is not the one ``PYTEST_CURRENT_TEST`` names."""
    token = _SENDER.set(test)
    try:
        yield
    finally:
        _SENDER.reset(token)


def worker_path(path: Path, worker: str | None) -> Path:
    """The file one process writes: ``PATH`` itself, or ``PATH`` with ``.gwN`` before the suffix under xdist."""
    if not worker:
        return path
    return path.with_name(f"{path.stem}.{worker}{path.suffix}")


def _response_id(response: requests.Response | None) -> str | None:
    if response is None or "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("id") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


class RequestLog:
    """Appends one redacted JSON line per request; thread-safe (the concurrency tests send from threads)."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.path = path
        self._redactor = redactor
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("w", encoding="utf-8")
        self.count = 0

    def _body(self, body: bytes | str | None) -> dict[str, str]:
        if body is None:
            return {}
        raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        try:
            return {"body": self._redactor.text(raw.decode("utf-8"))}
        except UnicodeDecodeError:  # redacted as text all the same: undecodable bytes pass through unchanged
            text = self._redactor.text(raw.decode("utf-8", "surrogateescape"))
            return {"body_b64": base64.b64encode(text.encode("utf-8", "surrogateescape")).decode("ascii")}

    def write(
        self,
        prepared: requests.PreparedRequest,
        response: requests.Response | None,
        elapsed: float,
        error: str | None = None,
    ) -> None:
        text = self._redactor.text
        line: dict[str, Any] = {
            "method": prepared.method or "",
            "url": text(prepared.url or ""),
            "headers": [[name, text(str(value))] for name, value in prepared.headers.items()],
            **self._body(prepared.body),
            "status": response.status_code if response is not None else None,
            "id": text(found) if (found := _response_id(response)) is not None else None,
            "test": _SENDER.get() or os.environ.get("PYTEST_CURRENT_TEST", ""),
            "elapsed": round(elapsed, 6),
        }
        if error:
            line["error"] = text(error)
        encoded = json.dumps(line, ensure_ascii=False)
        with self._lock:
            self._file.write(encoded + "\n")
            self.count += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()
