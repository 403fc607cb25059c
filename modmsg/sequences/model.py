"""The model of a sequence: what the target must hold after every step.

Threads (their metadata and their messages in creation order), each message's metadata under the profile's merge
rule, and what was deleted. Pure values and bookkeeping: no requests, no judging. Every object the machine
makes is known by a short label (``T1``, ``M2``) so that a failing sequence reads as a list of steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

MODES = ("merge", "replace")


@dataclass
class ThreadState:
    label: str
    id: str
    metadata: dict[str, str]
    messages: list[str] = field(default_factory=list)
    """Labels of its messages in creation order (deleted ones included: :meth:`Model.live` drops them)."""
    deleted: bool = False


@dataclass
class MessageState:
    label: str
    id: str
    thread: str
    """The label of its thread."""
    metadata: dict[str, str]
    deleted: bool = False


def after_modify(before: Mapping[str, str], sent: Mapping[str, str], mode: str) -> dict[str, str]:
    """The metadata ``mode`` predicts once ``sent`` is applied to ``before`` (``merge``: sent keys overwrite, the
    others stay; ``replace``: exactly ``sent``)."""
    return {**before, **sent} if mode == "merge" else dict(sent)


@dataclass
class Model:
    """What one sequence has done to the target, and so what every read path must show."""

    mode: str
    """The profile's ``metadata_mode``: ``merge``, ``replace`` or ``any`` (settled by the first modify whose
    two outcomes differ, then held for the rest of the sequence)."""
    threads: dict[str, ThreadState] = field(default_factory=dict)
    messages: dict[str, MessageState] = field(default_factory=dict)
    unknown_ids: list[str] = field(default_factory=list)
    """Ids the sequence used for messages that never existed (no upsert may make them exist)."""
    strangers: set[str] = field(default_factory=set)
    """Messages a listing showed that the sequence never created: reported once, then left out of later reads."""

    def add_thread(self, thread_id: str, metadata: Mapping[str, str]) -> ThreadState:
        thread = ThreadState(f"T{len(self.threads) + 1}", thread_id, dict(metadata))
        self.threads[thread.label] = thread
        return thread

    def add_message(self, thread: ThreadState, message_id: str, metadata: Mapping[str, str]) -> MessageState:
        message = MessageState(f"M{len(self.messages) + 1}", message_id, thread.label, dict(metadata))
        self.messages[message.label] = message
        thread.messages.append(message.label)
        return message

    def thread_of(self, message: MessageState) -> ThreadState:
        return self.threads[message.thread]

    def gone(self, message: MessageState) -> bool:
        """Deleted itself, or through its thread."""
        return message.deleted or self.thread_of(message).deleted

    def live(self, thread: ThreadState) -> list[MessageState]:
        """The thread's messages a listing must show, oldest first."""
        return [self.messages[label] for label in thread.messages if not self.messages[label].deleted]

    def deleted_of(self, thread: ThreadState) -> list[MessageState]:
        return [self.messages[label] for label in thread.messages if self.messages[label].deleted]

    def outcomes(self, message: MessageState, sent: Mapping[str, str]) -> dict[str, dict[str, str]]:
        """The metadata each mode still allowed predicts after a modify of ``message`` with ``sent``."""
        modes = MODES if self.mode == "any" else (self.mode,)
        return {mode: after_modify(message.metadata, sent, mode) for mode in modes}

    def settle(self, message: MessageState, sent: Mapping[str, str], stored: Mapping[str, str]) -> None:
        """Apply a successful modify. Under ``any`` the mode the target showed is held from now on, once the
        outcomes of the two modes differ."""
        outcomes = self.outcomes(message, sent)
        if self.mode == "any" and len({tuple(sorted(o.items())) for o in outcomes.values()}) > 1:
            self.mode = next((mode for mode, outcome in outcomes.items() if outcome == dict(stored)), self.mode)
        message.metadata = dict(stored)

    def expected(self, message: MessageState, sent: Mapping[str, str]) -> list[dict[str, str]]:
        """The metadata a successful modify may leave (one value unless the profile leaves the mode open)."""
        unique: list[dict[str, str]] = []
        for outcome in self.outcomes(message, sent).values():
            if outcome not in unique:
                unique.append(outcome)
        return unique
