"""Thread-safe in-memory store of threads and messages for the reference server.

Records are frozen dataclasses; an update swaps in a new record under the lock. Every message carries a
monotonic sequence number, so listing order is stable even when ``created_at`` (whole seconds) ties.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 24
_RACY_PAUSE_SECONDS = 0.005

T = TypeVar("T")


def new_id(prefix: str) -> str:
    """``<prefix>_`` followed by 24 random alphanumerics, e.g. ``msg_sst2q6k3SLBjPBTysLeLDG9K``."""
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def uuid_id(prefix: str) -> str:
    """``<prefix>_`` followed by the 32 hex digits of a UUID4 (the ``id_format="uuid"`` defect)."""
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(frozen=True, kw_only=True)
class Thread:
    id: str
    created_at: int
    tool_resources: Mapping[str, Any] | None
    metadata: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class Message:
    id: str
    thread_id: str
    seq: int
    created_at: int
    role: str
    content: tuple[Mapping[str, Any], ...]
    attachments: tuple[Mapping[str, Any], ...] | None
    metadata: Mapping[str, str]
    status: str = "completed"
    assistant_id: str | None = None
    run_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class NewMessage:
    """A validated createMessage request, before it gets an id and a timestamp."""

    role: str
    content: tuple[Mapping[str, Any], ...]
    attachments: tuple[Mapping[str, Any], ...] | None
    metadata: Mapping[str, str]


class Store:
    """Threads and their messages; all access goes through one lock."""

    def __init__(self, id_factory: Callable[[str], str] = new_id) -> None:
        self._new_id = id_factory
        self._lock = threading.Lock()
        self._threads: dict[str, Thread] = {}
        self._messages: dict[str, Message] = {}
        self._thread_messages: dict[str, list[str]] = {}
        self._seq = 0
        self._last_created_at = 0

    # --- helpers (call with the lock held) ---

    def _now(self) -> int:
        self._last_created_at = max(self._last_created_at, int(time.time()))
        return self._last_created_at

    def _add_message(self, thread_id: str, new: NewMessage) -> Message:
        self._seq += 1
        message = Message(
            id=self._new_id("msg"),
            thread_id=thread_id,
            seq=self._seq,
            created_at=self._now(),
            role=new.role,
            content=new.content,
            attachments=new.attachments,
            metadata=dict(new.metadata),
        )
        self._messages[message.id] = message
        self._thread_messages[thread_id].append(message.id)
        return message

    def _find_message(self, thread_id: str, message_id: str, any_thread: bool) -> Message | None:
        message = self._messages.get(message_id)
        if message is None or (not any_thread and message.thread_id != thread_id):
            return None
        return message

    # --- threads ---

    def create_thread(
        self,
        *,
        metadata: Mapping[str, str],
        tool_resources: Mapping[str, Any] | None,
        messages: Sequence[NewMessage] = (),
    ) -> Thread:
        with self._lock:
            thread = Thread(
                id=self._new_id("thread"), created_at=self._now(), tool_resources=tool_resources, metadata=metadata
            )
            self._threads[thread.id] = thread
            self._thread_messages[thread.id] = []
            for new in messages:
                self._add_message(thread.id, new)
            return thread

    def get_thread(self, thread_id: str) -> Thread | None:
        with self._lock:
            return self._threads.get(thread_id)

    def update_thread(self, thread_id: str, change: Callable[[Thread], Thread]) -> Thread | None:
        """Atomically replace a thread by ``change(current)``; ``change`` may raise to abort."""
        with self._lock:
            current = self._threads.get(thread_id)
            if current is None:
                return None
            updated = change(current)
            self._threads[thread_id] = updated
            return updated

    def delete_thread(self, thread_id: str) -> bool:
        with self._lock:
            if self._threads.pop(thread_id, None) is None:
                return False
            for message_id in self._thread_messages.pop(thread_id, []):
                self._messages.pop(message_id, None)
            return True

    def thread_ids(self) -> list[str]:
        with self._lock:
            return list(self._threads)

    # --- messages ---

    def create_message(self, thread_id: str, new: NewMessage) -> Message | None:
        with self._lock:
            if thread_id not in self._threads:
                return None
            return self._add_message(thread_id, new)

    def get_message(self, thread_id: str, message_id: str, *, any_thread: bool = False) -> Message | None:
        with self._lock:
            return self._find_message(thread_id, message_id, any_thread)

    def list_messages(self, thread_id: str) -> list[Message] | None:
        """Messages of a thread in ascending ``(created_at, seq)`` order; None if there is no thread."""
        with self._lock:
            ids = self._thread_messages.get(thread_id)
            if ids is None:
                return None
            messages = [self._messages[message_id] for message_id in ids]
        messages.sort(key=lambda message: (message.created_at, message.seq))
        return messages

    def update_message(
        self,
        thread_id: str,
        message_id: str,
        change: Callable[[Message], tuple[Message, T]],
        *,
        any_thread: bool = False,
        persist: bool = True,
    ) -> tuple[Message, T] | None:
        """Atomically compute ``change(current)`` and store its message (unless ``persist`` is False).

        ``change`` may raise to abort, and then nothing is written. Returns None if the message is gone.
        """
        with self._lock:
            current = self._find_message(thread_id, message_id, any_thread)
            if current is None:
                return None
            updated, extra = change(current)
            if persist:
                self._messages[message_id] = updated
            return updated, extra

    def update_message_racy(
        self,
        thread_id: str,
        message_id: str,
        change: Callable[[Message], tuple[Message, T]],
        *,
        any_thread: bool = False,
        persist: bool = True,
    ) -> tuple[Message, T] | None:
        """The lost-update defect: read, compute, pause, then write back without holding the lock."""
        current = self.get_message(thread_id, message_id, any_thread=any_thread)
        if current is None:
            return None
        updated, extra = change(current)
        time.sleep(_RACY_PAUSE_SECONDS)
        if persist:
            with self._lock:
                if message_id in self._messages:
                    self._messages[message_id] = updated
        return updated, extra

    def delete_message(self, thread_id: str, message_id: str, *, any_thread: bool = False) -> Message | None:
        with self._lock:
            message = self._find_message(thread_id, message_id, any_thread)
            if message is None:
                return None
            del self._messages[message_id]
            self._thread_messages[message.thread_id].remove(message_id)
            return message
