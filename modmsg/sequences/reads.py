"""The wire and the reads of a sequence: each step sent as a Schemathesis ``Case`` through the run's transport and
addressed through the overlay's links, its exchanges recorded apart; and the reads that judge a step (the
message, every page of a thread's listing, the listings around a refused step)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests
from schemathesis import Case
from schemathesis.core import NOT_SET

from modmsg.checks._common import dump
from modmsg.checks.preconditions import finding_for
from modmsg.failures import Failure, ListingOrderWrong, PartialWrite, WrongValue
from modmsg.ids import SIBLINGS_REQ
from modmsg.sequences import judge
from modmsg.sequences.judge import SEQ_ORDER, Listing
from modmsg.sequences.links import Unresolved, step_output
from modmsg.sequences.model import MessageState, Model, ThreadState
from modmsg.sequences.steps import ECHO_REQ, LISTING_LIMIT, Abort, Context, Step


class Reads:
    """What every rule stands on: the wire, the links, and the reads that judge a step."""

    context: Context
    model: Model
    steps: list[Step]
    origin: dict[str, Any]
    """Per label, the last 200 answer about the object (a Schemathesis StepOutput): where its links start."""

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
        self.context.check()
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
        except Unresolved:  # e.g. a JSON answer labelled text/plain (MM-HDR-01's): the model knows the object
            return dict(expected)
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
            try:
                parameters = self.context.links.follow(step_output(case, response), "listMessages")
            except Unresolved:  # a JSON answer labelled text/plain: the page itself says where to go on
                parameters = {"thread_id": thread.id, "after": page["last_id"]}
            query = {"order": order, "limit": limit, "after": parameters.pop("after")}
        return Listing(tuple(ids), metadata, tuple(pages))

    def _origin_from_listing(
        self, thread: ThreadState, case: Case, response: requests.Response, ids: list[str]
    ) -> None:
        first = next((m for m in self.model.live(thread) if ids and m.id == ids[0]), None)
        if first is not None:
            self.origin[first.label] = step_output(case, response)

    # -- rules -----------------------------------------------------------------------------------------

    def read_listing_of_deleted(self, thread: ThreadState) -> None:
        _, response = self.send("listMessages", self.follow(thread.label, "listMessages", {"thread_id": thread.id}))
        judge.stays_deleted(response, f"listMessages of deleted {thread.label}", self.context.judging)

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
