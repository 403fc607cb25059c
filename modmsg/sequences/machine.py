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
import string
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
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
from schemathesis import Case
from schemathesis.core import NOT_SET

from modmsg.checks._common import dump
from modmsg.checks.metadata import rejected
from modmsg.checks.preconditions import finding_for
from modmsg.failures import (
    CrossThreadAccess,
    Failure,
    InvalidRequestAccepted,
    LimitNotEnforced,
    ListingOrderWrong,
    MissingResourceAccepted,
    PartialWrite,
    SequenceDisagrees,
    WrongTypeAccepted,
    WrongValue,
)
from modmsg.generation.judges import rejection_statuses
from modmsg.ids import SIBLINGS_REQ, checked_id
from modmsg.profiles import Profile
from modmsg.sequences import judge
from modmsg.sequences.judge import SEQ_DELETED, SEQ_ORDER, SEQ_READS, SEQ_REJECTED, Judging, Listing
from modmsg.sequences.links import Links, Unresolved, stateful_schema, step_output
from modmsg.sequences.model import MessageState, Model, ThreadState
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


class SequenceRules:
    """The rules of a sequence (mixed into a subclass of Schemathesis' machine, whose rules it hides)."""

    context: Context

    def setup(self) -> None:
        if not self.context.may_send():
            raise ShrinkSpent
        self.model = Model(mode=self.context.profile.settings.metadata_mode)
        self.steps: list[Step] = []
        self.origin: dict[str, Any] = {}
        """Per label, the last 200 answer about the object (a Schemathesis StepOutput): where its links start."""

    def teardown(self) -> None:
        """Threads stay for the run's cleanup, which deletes every thread of the run (and only those)."""

    # -- steps -----------------------------------------------------------------------------------------

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        """One step: its exchanges recorded apart, any failure raised with the whole sequence so far."""
        number = len(self.steps) + 1
        transport = self.context.transport
        with transport.recording(forward=True) as recorder:
            try:
                yield
            except Failure as failure:
                self.steps.append(Step(number, text, recorder.snapshot()))
                raise self.context.on_failure(failure, tuple(self.steps)) from None
            except Exception as exc:
                self.steps.append(Step(number, text, recorder.snapshot()))
                finding = finding_for(exc)
                if finding is None:
                    raise Abort(exc) from exc
                raise self.context.on_failure(finding, tuple(self.steps)) from None
        self.steps.append(Step(number, text, recorder.snapshot()))

    def send(self, operation: str, parameters: Mapping[str, str], *, body: Any = NOT_SET, query: Any = None) -> Any:
        """Send one Schemathesis case of ``operation`` through the run's transport; (case, response)."""
        case = self.context.links.operations[operation].Case(
            path_parameters=dict(parameters),
            body=body,
            query=query,
            media_type="application/json" if body is not NOT_SET else None,
        )
        return case, self._send(case)

    def _send(self, case: Case) -> requests.Response:
        transport = self.context.transport
        kwargs = case.as_transport_kwargs(base_url=self.context.base_url)
        generated = {
            k: v for k, v in (kwargs.get("headers") or {}).items() if not k.lower().startswith("x-schemathesis")
        }
        kwargs["headers"] = {**generated, **transport.default_headers()}
        return transport.send(transport.session.prepare_request(requests.Request(**kwargs)))

    def follow(self, label: str, operation: str, expected: Mapping[str, str]) -> dict[str, str]:
        """The path parameters of ``operation`` for the object ``label``, through the link from its last answer;
        an answer that leads a link to another object than the model knows is that answer's defect."""
        output = self.origin[label]
        source = str(output.case.operation.definition.raw["operationId"])
        try:
            parameters = self.context.links.follow(output, operation)
        except Unresolved as unresolved:
            raise WrongValue(
                req=ECHO_REQ if source == "modifyMessage" else SIBLINGS_REQ,
                expected=f"the {source} answer about {label} to carry what its links read",
                received=str(unresolved),
            ) from None
        wrong = {k: v for k, v in expected.items() if k in parameters and parameters[k] != v}
        if wrong:
            raise WrongValue(
                req=ECHO_REQ if source == "modifyMessage" else SIBLINGS_REQ,
                expected=f"the {source} answer about {label} to name it: {dict(expected)}",
                received=f"its link to {operation} resolves to {parameters}",
            )
        return {name: parameters[name] for name in expected}

    def ids(self, message: MessageState) -> dict[str, str]:
        return {"thread_id": self.model.thread_of(message).id, "message_id": message.id}

    def judges(self, req: str) -> bool:
        return self.context.judging.judges(req)

    # -- reads that judge a step -----------------------------------------------------------------------

    def read_message(self, message: MessageState, *, req: str) -> None:
        _, response = self.send("getMessage", self.follow(message.label, "getMessage", self.ids(message)))
        judge.message_read(response, message, req=req, judging=self.context.judging)

    def read_listing(self, thread: ThreadState, *, order: str = "desc", limit: int = LISTING_LIMIT) -> None:
        """After a step that succeeded: the thread's listing (every page) against the model: content (MM-SEQ-01),
        deleted messages (MM-SEQ-03), order and cursors (MM-SEQ-04)."""
        listing = self.listing(thread, order=order, limit=limit)
        judge.listing_content(listing, self.model, thread, judging=self.context.judging)
        if self.judges(SEQ_ORDER):
            judge.listing_order(listing, self.model, thread, order=order, judging=self.context.judging)

    @contextmanager
    def unchanged_listings(self, *threads: ThreadState) -> Iterator[None]:
        """Around a refused step: each thread's listing before and after it must be the same (MM-SEQ-02)."""
        before = [self.listing(thread) for thread in threads]
        yield
        for thread, earlier in zip(threads, before, strict=True):
            judge.listing_unchanged(earlier, self.listing(thread), self.model, thread, judging=self.context.judging)

    def listing(self, thread: ThreadState, *, order: str = "desc", limit: int = LISTING_LIMIT) -> Listing:
        """Every page of the thread's listing, following ``after`` through the NextPage link."""
        parameters = self.follow(thread.label, "listMessages", {"thread_id": thread.id})
        ids: list[str] = []
        metadata: dict[str, Any] = {}
        pages: list[dict[str, Any]] = []
        query: dict[str, Any] = {"order": order, "limit": limit}
        for _ in range(len(thread.messages) + len(self.model.strangers) + 2):
            case, response = self.send("listMessages", parameters, query=query)
            page = judge.page_of(response, f"listMessages of {thread.label}")
            items = [item for item in page["data"] if isinstance(item.get("id"), str)]
            ids += [item["id"] for item in items]
            metadata.update({item["id"]: item.get("metadata") for item in items})
            page_ids = [item["id"] for item in items]
            pages.append({**{k: page.get(k) for k in ("first_id", "last_id", "has_more")}, "ids": page_ids})
            self._origin_from_listing(thread, case, response, page_ids)
            if page.get("has_more") is not True or not page_ids:
                break
            if not isinstance(page.get("last_id"), str):
                self.context.judging.fail(
                    ListingOrderWrong(
                        req=SEQ_ORDER, expected="has_more with a last_id to go on after", received=dump(pages[-1])
                    )
                )
                break
            parameters = self.context.links.follow(step_output(case, response), "listMessages")
            query = {"order": order, "limit": limit, "after": parameters.pop("after")}
        return Listing(tuple(ids), metadata, tuple(pages))

    def _origin_from_listing(
        self, thread: ThreadState, case: Case, response: requests.Response, ids: list[str]
    ) -> None:
        first = next((m for m in self.model.live(thread) if ids and m.id == ids[0]), None)
        if first is not None:
            self.origin[first.label] = step_output(case, response)

    # -- rules -----------------------------------------------------------------------------------------

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

    @precondition(lambda self: len(self.live_threads()) < MAX_LIVE_THREADS and len(self.model.threads) < MAX_THREADS)
    @rule()
    def create_thread(self) -> None:
        self._new_thread()

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

    def read_listing_of_deleted(self, thread: ThreadState) -> None:
        _, response = self.send("listMessages", self.follow(thread.label, "listMessages", {"thread_id": thread.id}))
        judge.stays_deleted(response, f"listMessages of deleted {thread.label}", self.context.judging)

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

    def unchanged(self, message: MessageState, *, req: str) -> None:
        """getMessage after a rejected modify: the message as the model holds it (``req`` judges that alone)."""
        _, response = self.send("getMessage", self.follow(message.label, "getMessage", self.ids(message)))
        body = judge.sibling_body(response, f"getMessage of {message.label}")
        if judge.metadata_of(body) != message.metadata:
            raise PartialWrite(
                req=req,
                expected=f"{message.label} unchanged: {dump(message.metadata)}",
                received=dump(body.get("metadata")),
            )

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


def _nth(items: list[Any], pick: int) -> Any:
    return items[pick % len(items)]


def _answered(body: Mapping[str, Any]) -> requests.Response:
    """The thread factory's createThread answer as a response again (its links start from it)."""
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(dict(body)).encode()
    response.headers["Content-Type"] = "application/json"
    return response


def machine_class(context: Context) -> type[RuleBasedStateMachine]:
    """A subclass of ``stateful_schema().as_state_machine()`` whose rules are :class:`SequenceRules`'."""
    base = stateful_schema().as_state_machine()
    hidden = {
        name: None
        for name, value in inspect.getmembers(base)
        if getattr(value, RULE_MARKER, None) is not None or getattr(value, INITIALIZE_RULE_MARKER, None) is not None
    }
    return type("ModifyMessageSequences", (SequenceRules, base), {**hidden, "context": context})
