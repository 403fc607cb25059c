"""The judge of a sequence: every answer and every read path compared with the model, as typed failures.

Which requirement a disagreement fails is decided here, once:

* a single request answered wrongly is the finding of the requirement that judges that request on its own (a
  sibling call: MM-RESP-09; a valid modify not 200: MM-RESP-01; a sent pair not echoed: MM-META-01, or
  MM-META-15 when it was sent again as stored; replace
  where merge was due: MM-META-04; an unknown, foreign or deleted message not refused with 404: MM-ERR-02..05; an
  invalid body accepted: MM-META-06..09; a 5xx: MM-ERR-08), so the sequence requirements are BLOCKED by it;
* what only a sequence shows is MM-SEQ's: a read after the step disagrees with the model (MM-SEQ-01, or the
  requirement of the step: MM-SEQ-02 after a rejected step, MM-SEQ-03 after a step on a deleted object), a
  deleted object still visible on any path (MM-SEQ-03), the listing's order or cursors (MM-SEQ-04).

``Judging.reqs`` names the MM-SEQ requirements still judged: one that failed already is not judged again (its
steps are not drawn either), so one defect fails the requirements that see it and no other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from modmsg.checks._common import dump, excerpt
from modmsg.checks.response import ok_json
from modmsg.failures import (
    DeletedObjectLives,
    Failure,
    ListingOrderWrong,
    PartialWrite,
    SequenceDisagrees,
    ServerError,
    SiblingCallFailed,
    WrongMetadataSemantics,
)
from modmsg.ids import SIBLINGS_REQ
from modmsg.sequences.model import MessageState, Model, ThreadState

SEQ_READS = "MM-SEQ-01"
SEQ_REJECTED = "MM-SEQ-02"
SEQ_DELETED = "MM-SEQ-03"
SEQ_ORDER = "MM-SEQ-04"
SEQ_REQS = (SEQ_READS, SEQ_REJECTED, SEQ_DELETED, SEQ_ORDER)
ECHO_REQ = "MM-META-01"
IDEMPOTENT_REQ = "MM-META-15"
MODE_REQ = "MM-META-04"
SUCCESS_REQ = "MM-RESP-01"
NO_5XX_REQ = "MM-ERR-08"


@dataclass(frozen=True)
class Judging:
    """The MM-SEQ requirements a round still judges."""

    reqs: frozenset[str]

    def judges(self, req: str) -> bool:
        return req in self.reqs

    def fail(self, failure: Failure) -> None:
        """Raise ``failure`` unless it belongs to an MM-SEQ requirement this round does not judge."""
        if failure.req not in SEQ_REQS or failure.req in self.reqs:
            raise failure


def sibling_body(response: requests.Response, what: str) -> dict[str, Any]:
    """A sibling call's 200 JSON object (MM-RESP-09 otherwise; a 5xx is MM-ERR-08's)."""
    no_server_error(response, what)
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        raise SiblingCallFailed(
            req=SIBLINGS_REQ, expected=f"200 with a JSON object for {what}", received=excerpt(response)
        )
    return body


def no_server_error(response: requests.Response, what: str) -> None:
    if response.status_code >= 500:
        raise ServerError(req=NO_5XX_REQ, expected=f"no 5xx for {what}", received=excerpt(response))


def metadata_of(body: Mapping[str, Any]) -> dict[str, Any]:
    value = body.get("metadata")
    return value if isinstance(value, dict) else {}


def modify_answer(
    response: requests.Response, model: Model, message: MessageState, sent: Mapping[str, str], judging: Judging
) -> dict[str, Any]:
    """A valid modify of a live message: 200, the sent pairs echoed, the whole metadata as the model predicts.
    Returns the stored metadata the answer shows."""
    body = ok_json(response, req=SUCCESS_REQ)
    stored = metadata_of(body)
    missing = {k: v for k, v in sent.items() if stored.get(k) != v}
    if missing:
        repeated = all(message.metadata.get(k) == v for k, v in missing.items())  # sent again as stored
        raise WrongMetadataSemantics(
            req=IDEMPOTENT_REQ if repeated else ECHO_REQ,
            expected=f"the modify answer to contain {dump(dict(sent))}"
            + (f" (already stored: {dump(missing)})" if repeated else ""),
            received=dump(stored),
        )
    expected = model.expected(message, sent)
    if stored in expected:
        return stored
    wrong_mode = next((mode for mode, outcome in _all_outcomes(message, sent).items() if outcome == stored), None)
    if wrong_mode is not None and model.mode != "any":
        raise WrongMetadataSemantics(
            req=MODE_REQ,
            expected=f"{model.mode} semantics: {dump(expected[0])}",
            received=f"{wrong_mode} semantics: {dump(stored)}",
        )
    judging.fail(
        SequenceDisagrees(
            req=SEQ_READS,
            expected=f"the modify answer for {message.label} to hold {_either(expected)}",
            received=dump(stored),
        )
    )
    return stored


def _all_outcomes(message: MessageState, sent: Mapping[str, str]) -> dict[str, dict[str, str]]:
    return {"merge": {**message.metadata, **sent}, "replace": dict(sent)}


def _either(values: Sequence[Mapping[str, str]]) -> str:
    return " or ".join(dump(dict(value)) for value in values)


def message_read(response: requests.Response, message: MessageState, *, req: str, judging: Judging) -> None:
    """getMessage of a live message shows the model's metadata (``req``: the requirement of the step)."""
    if response.status_code == 404:
        judging.fail(SequenceDisagrees(req=req, expected=f"{message.label} readable", received=excerpt(response)))
        return
    body = sibling_body(response, f"getMessage of {message.label}")
    stored = metadata_of(body)
    if stored != message.metadata:
        judging.fail(
            SequenceDisagrees(
                req=req,
                expected=f"getMessage of {message.label} to show {dump(message.metadata)}",
                received=dump(stored),
            )
        )


def stays_deleted(response: requests.Response, what: str, judging: Judging) -> None:
    """A read of a deleted object (or through a deleted thread) is refused: any 4xx; a 2xx shows it lives on."""
    no_server_error(response, what)
    if 200 <= response.status_code < 300:
        judging.fail(DeletedObjectLives(req=SEQ_DELETED, expected=f"a 404 for {what}", received=excerpt(response)))


@dataclass(frozen=True)
class Listing:
    """The messages of one thread as the target listed them, in the order it gave."""

    ids: tuple[str, ...]
    metadata: Mapping[str, Any]
    pages: tuple[Mapping[str, Any], ...]
    """Each page's first_id, last_id and has_more, and the ids it held."""


def page_of(response: requests.Response, what: str) -> dict[str, Any]:
    body = sibling_body(response, what)
    if not isinstance(body.get("data"), list) or not all(isinstance(item, dict) for item in body["data"]):
        raise SiblingCallFailed(req=SIBLINGS_REQ, expected=f"a list object for {what}", received=excerpt(response))
    return body


def listing_content(listing: Listing, model: Model, thread: ThreadState, *, judging: Judging) -> None:
    """After a step that succeeded: the listing holds exactly the thread's live messages with the model's
    metadata (MM-SEQ-01); a deleted one is MM-SEQ-03's, one made of an id a refused modify used MM-SEQ-02's."""
    deleted_absent(listing, model, thread, judging=judging)
    strangers = _strangers(listing, model)
    if strangers:
        made = any(mid in model.unknown_ids for mid in strangers)
        judging.fail(
            SequenceDisagrees(
                req=SEQ_REJECTED if made else SEQ_READS,
                expected=f"only the messages the sequence created in {thread.label}",
                received=f"{len(strangers)} more listed: {', '.join(strangers[:3])}",
            )
        )
    live = model.live(thread)
    missing = [message.label for message in live if message.id not in listing.metadata]
    shown = [m for m in live if m.id in listing.metadata]
    wrong = {m.label: listing.metadata[m.id] for m in shown if _md(listing, m) != m.metadata}
    if missing or wrong:
        judging.fail(
            SequenceDisagrees(
                req=SEQ_READS,
                expected=f"the listing of {thread.label} to show "
                + "; ".join(f"{m.label} {dump(m.metadata)}" for m in live),
                received=(f"missing: {', '.join(missing)}; " if missing else "")
                + "; ".join(f"{label} {dump(value)}" for label, value in wrong.items()),
            )
        )


def listing_unchanged(before: Listing, after: Listing, model: Model, thread: ThreadState, *, judging: Judging) -> None:
    """Around a refused step: the thread's listing after it is the listing before it (MM-SEQ-02): no message
    created, none gone, none changed; a deleted message listed is MM-SEQ-03's."""
    deleted_absent(after, model, thread, judging=judging)
    made = [mid for mid in after.ids if mid not in before.metadata and mid not in model.strangers]
    model.strangers.update(made)  # reported once; later reads are judged without them
    gone = [mid for mid in before.ids if mid not in after.metadata]
    changed = [mid for mid in before.ids if mid in after.metadata and after.metadata[mid] != before.metadata[mid]]
    if made or gone or changed:
        labels = {message.id: message.label for message in model.messages.values()}
        judging.fail(
            PartialWrite(
                req=SEQ_REJECTED,
                expected=f"the listing of {thread.label} unchanged by a refused modify",
                received="; ".join(
                    part
                    for part in (
                        f"{len(made)} message(s) created: {', '.join(made[:3])}" if made else "",
                        f"gone: {', '.join(labels.get(m, m) for m in gone)}" if gone else "",
                        ", ".join(
                            f"{labels.get(m, m)} {dump(before.metadata[m])} -> {dump(after.metadata[m])}"
                            for m in changed
                        ),
                    )
                    if part
                ),
            )
        )


def deleted_absent(listing: Listing, model: Model, thread: ThreadState, *, judging: Judging) -> None:
    """No deleted message of the thread is listed (MM-SEQ-03)."""
    for message in model.deleted_of(thread):
        if message.id in listing.metadata:
            judging.fail(
                DeletedObjectLives(
                    req=SEQ_DELETED,
                    expected=f"deleted {message.label} absent from the listing of {thread.label}",
                    received=f"listed with metadata {dump(listing.metadata[message.id])}",
                )
            )


def _strangers(listing: Listing, model: Model) -> list[str]:
    """Listed ids the sequence did not create (and that were not reported yet); from now on they are known."""
    known = {message.id for message in model.messages.values()}
    strangers = [mid for mid in listing.ids if mid not in known and mid not in model.strangers]
    model.strangers.update(strangers)
    return strangers


def _md(listing: Listing, message: MessageState) -> Any:
    value = listing.metadata[message.id]
    return value if isinstance(value, dict) else {}


def listing_order(listing: Listing, model: Model, thread: ThreadState, *, order: str, judging: Judging) -> None:
    """The live messages in creation order (``desc``: newest first), whatever was modified; each page's first_id,
    last_id and has_more agree with the items it holds."""
    known = {message.id for message in model.live(thread)}
    expected = [message.id for message in model.live(thread)]  # messages it did not create are not ordered
    if order == "desc":
        expected.reverse()
    shown = [mid for mid in listing.ids if mid in known]
    labels = {message.id: message.label for message in model.messages.values()}
    if shown != expected:
        judging.fail(
            ListingOrderWrong(
                req=SEQ_ORDER,
                expected=f"{thread.label} listed {order} by creation: {' '.join(labels[m] for m in expected)}",
                received=" ".join(labels.get(m, m) for m in listing.ids),
            )
        )
    for index, page in enumerate(listing.pages):
        ids, last = page["ids"], index == len(listing.pages) - 1
        first_id, last_id = (ids[0], ids[-1]) if ids else (None, None)
        if page["first_id"] != first_id or page["last_id"] != last_id or page["has_more"] is not (not last):
            judging.fail(
                ListingOrderWrong(
                    req=SEQ_ORDER,
                    expected=f"page {index + 1} of {thread.label}: first_id {first_id}, last_id {last_id}, "
                    f"has_more {not last}",
                    received=f"first_id {page['first_id']}, last_id {page['last_id']}, has_more {page['has_more']}",
                )
            )
