"""The state machine: Schemathesis' ``schema.as_state_machine()`` subclassed with rules that keep a model.

Schemathesis builds its machine from the overlay's links; its own rules draw random bodies with true randomness
(not replayable from a seed) and send through its own client, so they are hidden here, and the rules below take
their place: Hypothesis draws the steps (which object, which metadata from a small alphabet so keys collide,
which invalid body), every step is addressed through the link from the last answer about its object
(``Links.follow``), sent as a Schemathesis ``Case`` through the run's transport (redaction, deadlines, size caps,
429 back-off, evidence), and after every step the answer and each read path it can affect are judged against the
model (``modmsg.sequences.judge``). Threads come from the run's thread factory: tagged with the run id, in the
ledger, deleted at the end; the machine deletes only threads it created.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

import requests
from hypothesis import strategies as st
from hypothesis.stateful import (
    INITIALIZE_RULE_MARKER,
    RULE_MARKER,
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
)

from modmsg.checks._common import dump
from modmsg.checks.metadata import rejected
from modmsg.failures import (
    CrossThreadAccess,
    MissingResourceAccepted,
    SequenceDisagrees,
)
from modmsg.generation.judges import rejection_statuses
from modmsg.ids import checked_id
from modmsg.sequences import judge
from modmsg.sequences.judge import SEQ_DELETED, SEQ_READS, SEQ_REJECTED
from modmsg.sequences.links import stateful_schema, step_output
from modmsg.sequences.model import MessageState, Model, ThreadState
from modmsg.sequences.reads import Reads
from modmsg.sequences.steps import (
    AT_CREATION,
    INVALID,
    MAX_LIVE_THREADS,
    MAX_THREADS,
    PICK,
    SENT,
    UNKNOWN_ID,
    Context,
    Invalid,
    ShrinkSpent,
    Step,
)


class SequenceRules(Reads):
    """The rules of a sequence (mixed into a subclass of Schemathesis' machine, whose rules it hides)."""

    context: Context

    def setup(self) -> None:
        self.context.check()
        if not self.context.may_send():
            raise ShrinkSpent
        # No swarm testing (Hypothesis disabling a random subset of rules per sequence, and Schemathesis
        # re-enabling the valid ones): every valid rule stays drawable in every sequence, so no seed can leave
        # out a kind of step for the whole run.
        self._rules_strategy.enabled_rules_strategy = st.just(_EVERY_RULE)  # type: ignore[attr-defined]
        self.model = Model(mode=self.context.profile.settings.metadata_mode)
        self.steps: list[Step] = []
        self.origin: dict[str, Any] = {}
        """Per label, the last 200 answer about the object (a Schemathesis StepOutput): where its links start."""

    def teardown(self) -> None:
        """Threads stay for the run's cleanup, which deletes every thread of the run (and only those)."""

    # -- steps -----------------------------------------------------------------------------------------

    def _new_thread(self) -> None:
        label = f"T{len(self.model.threads) + 1}"
        with self.step(f"createThread (tagged with the run id) -> {label}"):
            created = self.context.create_thread()
            case = self.context.links.operations["createThread"].Case(
                body={"metadata": created.get("metadata")}, media_type="application/json"
            )
            thread = self.model.add_thread(created["id"], created.get("metadata") or {})
            self.origin[thread.label] = step_output(case, _answered(created))

    # Which objects a rule may pick: the model's, so that Hypothesis only draws steps that send something and
    # shrinks a pick towards the first object.

    def live_threads(self) -> list[ThreadState]:
        return [thread for thread in self.model.threads.values() if not thread.deleted]

    def live_messages(self) -> list[MessageState]:
        return [message for message in self.model.messages.values() if not self.model.gone(message)]

    def gone_messages(self) -> list[MessageState]:
        return [message for message in self.model.messages.values() if self.model.gone(message)]

    def deleted_threads(self) -> list[ThreadState]:
        return [thread for thread in self.model.threads.values() if thread.deleted]

    @initialize(first=AT_CREATION, second=AT_CREATION)
    def start(self, first: dict[str, str], second: dict[str, str]) -> None:
        """Every sequence starts from a thread holding two messages (created one after the other, so in the same
        second as a rule): what most steps need, so the draws go to the steps between operations."""
        self._new_thread()
        thread = self.live_threads()[0]
        self._new_message(thread, first)
        self._new_message(thread, second)

    @precondition(lambda self: self.may_create_thread())
    @rule()
    def create_thread(self) -> None:
        self._new_thread()

    def may_create_thread(self) -> bool:
        """A second live thread, up to ``MAX_THREADS`` per sequence; always one when none is left, so a rule is
        always valid whatever a round does not judge."""
        live = len(self.live_threads())
        return live == 0 or (live < MAX_LIVE_THREADS and len(self.model.threads) < MAX_THREADS)

    @precondition(lambda self: self.live_threads())
    @rule(pick=PICK, metadata=AT_CREATION)
    def create_message(self, pick: int, metadata: dict[str, str]) -> None:
        self._new_message(_nth(self.live_threads(), pick), metadata)

    def _new_message(self, thread: ThreadState, metadata: dict[str, str]) -> None:
        body = {"role": "user", "content": "modmsg sequence step", "metadata": metadata}
        with self.step(f"createMessage in {thread.label} {dump(metadata)}"):
            parameters = self.follow(thread.label, "createMessage", {"thread_id": thread.id})
            case, response = self.send("createMessage", parameters, body=body)
            created = judge.sibling_body(response, f"createMessage in {thread.label}")
            checked_id(created, "createMessage")
            message = self.model.add_message(thread, created["id"], metadata)
            self.origin[message.label] = step_output(case, response)
            if judge.metadata_of(created) != metadata:
                self.context.judging.fail(
                    SequenceDisagrees(
                        req=SEQ_READS,
                        expected=f"createMessage to answer {message.label} with {dump(metadata)}",
                        received=dump(created.get("metadata")),
                    )
                )
            self.read_listing(thread)

    @precondition(lambda self: self.judges(SEQ_DELETED) and self.deleted_threads())
    @rule(pick=PICK, metadata=AT_CREATION)
    def create_message_in_deleted_thread(self, pick: int, metadata: dict[str, str]) -> None:
        thread = _nth(self.deleted_threads(), pick)
        body = {"role": "user", "content": "modmsg sequence step", "metadata": metadata}
        with self.step(f"createMessage in deleted {thread.label} {dump(metadata)} (must be refused)"):
            parameters = self.follow(thread.label, "createMessage", {"thread_id": thread.id})
            _, response = self.send("createMessage", parameters, body=body)
            judge.stays_deleted(response, f"createMessage in deleted {thread.label}", self.context.judging)
            self.read_listing_of_deleted(thread)

    @precondition(lambda self: self.judges(SEQ_READS) and self.live_messages())
    @rule(pick=PICK, sent=SENT)
    def modify(self, pick: int, sent: dict[str, str]) -> None:
        message = _nth(self.live_messages(), pick)
        with self.step(f"modifyMessage {message.label} {dump(sent)}"):
            parameters = self.follow(message.label, "modifyMessage", self.ids(message))
            case, response = self.send("modifyMessage", parameters, body={"metadata": sent})
            stored = judge.modify_answer(response, self.model, message, sent, self.context.judging)
            self.model.settle(message, sent, stored)
            self.origin[message.label] = step_output(case, response)
            self.read_message(message, req=SEQ_READS)
            self.read_listing(self.model.thread_of(message))

    @precondition(lambda self: self.judges(SEQ_DELETED) and self.gone_messages())
    @rule(pick=PICK, sent=SENT)
    def modify_deleted(self, pick: int, sent: dict[str, str]) -> None:
        """A modify of a deleted message, or of one whose thread was deleted: 404, and it stays deleted."""
        message = _nth(self.gone_messages(), pick)
        thread = self.model.thread_of(message)
        req, why = ("MM-ERR-05", "its thread was deleted") if thread.deleted else ("MM-ERR-04", "it was deleted")
        around = () if thread.deleted else (thread,)
        with self.step(f"modifyMessage {message.label} ({why}) {dump(sent)}"), self.unchanged_listings(*around):
            parameters = self.follow(message.label, "modifyMessage", self.ids(message))
            _, response = self.send("modifyMessage", parameters, body={"metadata": sent})
            judge.no_server_error(response, f"a modify of {message.label}")
            rejected(
                response,
                req=req,
                what=f"a modify of {message.label} ({why})",
                statuses=(404,),
                failure=MissingResourceAccepted,
            )
            _, read = self.send("getMessage", parameters)
            judge.stays_deleted(read, f"getMessage of {message.label} ({why})", self.context.judging)
            if thread.deleted:
                self.read_listing_of_deleted(thread)

    @precondition(lambda self: self.judges(SEQ_REJECTED) and self.live_messages())
    @rule(pick=PICK, invalid=st.sampled_from(INVALID))
    def modify_invalid(self, pick: int, invalid: Invalid) -> None:
        message = _nth(self.live_messages(), pick)
        thread = self.model.thread_of(message)
        step = f"modifyMessage {message.label} with {invalid.what} (must be refused)"
        with self.step(step), self.unchanged_listings(thread):
            parameters = self.follow(message.label, "modifyMessage", self.ids(message))
            _, response = self.send("modifyMessage", parameters, body={"metadata": dict(invalid.metadata)})
            judge.no_server_error(response, f"a modify with {invalid.what}")
            statuses = tuple(sorted(rejection_statuses(self.context.profile)))
            rejected(response, req=invalid.req, what=invalid.what, statuses=statuses, failure=invalid.failure)
            self.unchanged(message, req="MM-META-12")

    @precondition(lambda self: self.judges(SEQ_REJECTED) and self.live_messages() and len(self.live_threads()) > 1)
    @rule(pick=PICK, sent=SENT)
    def modify_through_other_thread(self, pick: int, sent: dict[str, str]) -> None:
        message = _nth(self.live_messages(), pick)
        other = next(thread for thread in self.live_threads() if thread.label != message.thread)
        step = f"modifyMessage {message.label} through {other.label}, a thread it does not belong to (must be refused)"
        with self.step(step), self.unchanged_listings(other, self.model.thread_of(message)):
            parameters = self.follow(message.label, "modifyMessage", self.ids(message))
            _, response = self.send("modifyMessage", {**parameters, "thread_id": other.id}, body={"metadata": sent})
            judge.no_server_error(response, "a modify through another thread")
            rejected(
                response,
                req="MM-ERR-03",
                what="a modify through another thread",
                statuses=(404,),
                failure=CrossThreadAccess,
            )
            self.unchanged(message, req="MM-ERR-03")

    @precondition(lambda self: self.judges(SEQ_REJECTED) and self.live_threads())
    @rule(pick=PICK, message_id=UNKNOWN_ID, sent=SENT)
    def modify_unknown(self, pick: int, message_id: str, sent: dict[str, str]) -> None:
        thread = _nth(self.live_threads(), pick)
        self.model.unknown_ids.append(message_id)
        step = f"modifyMessage {message_id} in {thread.label}, an id never created (must be refused)"
        with self.step(step), self.unchanged_listings(thread):
            parameters = {
                **self.follow(thread.label, "listMessages", {"thread_id": thread.id}),
                "message_id": message_id,
            }
            _, response = self.send("modifyMessage", parameters, body={"metadata": sent})
            judge.no_server_error(response, "a modify of an unknown message")
            rejected(
                response,
                req="MM-ERR-02",
                what="a modify of an unknown message",
                statuses=(404,),
                failure=MissingResourceAccepted,
            )

    @precondition(lambda self: self.live_messages())
    @rule(pick=PICK)
    def get_message(self, pick: int) -> None:
        message = _nth(self.live_messages(), pick)
        with self.step(f"getMessage {message.label}"):
            parameters = self.follow(message.label, "getMessage", self.ids(message))
            case, response = self.send("getMessage", parameters)
            judge.message_read(response, message, req=SEQ_READS, judging=self.context.judging)
            self.origin[message.label] = step_output(case, response)

    @precondition(lambda self: self.judges(SEQ_DELETED) and self.gone_messages())
    @rule(pick=PICK)
    def get_deleted_message(self, pick: int) -> None:
        message = _nth(self.gone_messages(), pick)
        with self.step(f"getMessage {message.label} (deleted)"):
            _, response = self.send("getMessage", self.follow(message.label, "getMessage", self.ids(message)))
            judge.stays_deleted(response, f"getMessage of deleted {message.label}", self.context.judging)

    @precondition(lambda self: self.live_threads())
    @rule(pick=PICK, order=st.sampled_from(("desc", "asc")), limit=st.integers(1, 3))
    def list_messages(self, pick: int, order: str, limit: int) -> None:
        thread = _nth(self.live_threads(), pick)
        with self.step(f"listMessages {thread.label} order={order} limit={limit}, every page"):
            self.read_listing(thread, order=order, limit=limit)

    @precondition(lambda self: self.live_messages())
    @rule(pick=PICK)
    def delete_message(self, pick: int) -> None:
        message = _nth(self.live_messages(), pick)
        with self.step(f"deleteMessage {message.label}"):
            parameters = self.follow(message.label, "deleteMessage", self.ids(message))
            case, response = self.send("deleteMessage", parameters)
            judge.sibling_body(response, f"deleteMessage of {message.label}")
            message.deleted = True
            self.origin[message.label] = step_output(case, response)
            if self.judges(SEQ_DELETED):
                _, read = self.send("getMessage", self.follow(message.label, "getMessage", self.ids(message)))
                judge.stays_deleted(read, f"getMessage of deleted {message.label}", self.context.judging)
            self.read_listing(self.model.thread_of(message))

    def threads_with_messages(self) -> list[ThreadState]:
        return [thread for thread in self.live_threads() if self.model.live(thread)]

    @precondition(lambda self: self.threads_with_messages())
    @rule(pick=PICK)
    def delete_thread(self, pick: int) -> None:
        """A thread that holds messages (what a delete must take with it); only a thread of this sequence, made
        by the run's thread factory, is ever deleted."""
        thread = _nth(self.threads_with_messages(), pick)
        with self.step(f"deleteThread {thread.label}"):
            parameters = self.follow(thread.label, "deleteThread", {"thread_id": thread.id})
            case, response = self.send("deleteThread", parameters)
            judge.sibling_body(response, f"deleteThread of {thread.label}")
            held = self.model.live(thread)
            thread.deleted = True
            self.origin[thread.label] = step_output(case, response)
            if self.judges(SEQ_DELETED):
                _, read = self.send("getThread", self.follow(thread.label, "getThread", {"thread_id": thread.id}))
                judge.stays_deleted(read, f"getThread of deleted {thread.label}", self.context.judging)
                self.read_listing_of_deleted(thread)
                for message in held[:1]:
                    _, read = self.send("getMessage", self.follow(message.label, "getMessage", self.ids(message)))
                    what = f"getMessage of {message.label} in deleted {thread.label}"
                    judge.stays_deleted(read, what, self.context.judging)


class _EveryRule:
    """Feature flags that enable every rule."""

    def is_enabled(self, name: str) -> bool:
        return True


_EVERY_RULE = _EveryRule()


def _nth(items: list[Any], pick: int) -> Any:
    return items[pick % len(items)]


def _answered(body: Mapping[str, Any]) -> requests.Response:
    """The thread factory's createThread answer as a response again (its links start from it)."""
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(dict(body)).encode()
    response.headers["Content-Type"] = "application/json"
    return response


def machine_class(context: Context, base: type | None = None) -> type[RuleBasedStateMachine]:
    """A subclass of ``base`` (``stateful_schema().as_state_machine()``; built once per run and shared by its
    lanes, each lane's class its own) whose rules are :class:`SequenceRules`'."""
    base = base or stateful_schema().as_state_machine()
    hidden = {
        name: None
        for name, value in inspect.getmembers(base)
        if getattr(value, RULE_MARKER, None) is not None or getattr(value, INITIALIZE_RULE_MARKER, None) is not None
    }
    return type("ModifyMessageSequences", (SequenceRules, base), {**hidden, "context": context})
