"""Typed failures: what a check raises when the target breaks a requirement.

A failure is an ``AssertionError`` (pytest shows it as an ordinary assertion) carrying the requirement id, a
fixed human ``title`` per defect, and ``expected``/``received`` text. Reporters read the fields; checks never
format output beyond these strings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(kw_only_default=True, frozen_default=True, eq_default=False)
def failure(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen, kw-only dataclass that still behaves as a raisable exception.

    A plain ``frozen=True`` dataclass refuses the ``__traceback__``/``__notes__`` assignments that
    contextlib, pytest and Hypothesis make on exceptions, so only the declared fields are frozen here.
    ``dataclass_transform`` tells type checkers so: they see each failure's keyword-only constructor.
    """
    cls = dataclass(frozen=True, kw_only=True, eq=False)(cls)
    assert dataclasses.is_dataclass(cls)
    names = frozenset(f.name for f in dataclasses.fields(cls))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    cls.__setattr__ = __setattr__  # type: ignore[method-assign]  # on purpose: see the docstring
    return cls


@failure
class Failure(AssertionError):
    """The target broke a requirement."""

    title: ClassVar[str] = "Requirement not met"
    sample: ClassVar[tuple[str, str, str]]
    """Each failure type's realistic (requirement, expected, received), as a failing run would show it; the
    generated docs/checks.md prints it."""
    req: str
    expected: str
    received: str
    detail: str = ""

    def __post_init__(self) -> None:
        AssertionError.__init__(self, str(self))

    def __str__(self) -> str:
        text = f"[{self.req}] {self.title}\nExpected: {self.expected}\nReceived: {self.received}"
        return f"{text}\n{self.detail}" if self.detail else text

    def as_dict(self) -> dict[str, str]:
        return {
            "req": self.req,
            "title": self.title,
            "expected": self.expected,
            "received": self.received,
            "detail": self.detail,
        }


@failure
class WrongStatus(Failure):
    title: ClassVar[str] = "Unexpected HTTP status"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-REQ-07",
        "401 for Authorization Bearer <wrong>",
        '403 application/json: {"error": {…}}',
    )


@failure
class NotJson(Failure):
    title: ClassVar[str] = "Body is not JSON"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-RESP-01",
        "a JSON body",
        "200 text/html: <html><body>OK</body></html>",
    )


@failure
class SchemaViolation(Failure):
    title: ClassVar[str] = "Body violates the documented schema"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-RESP-02",
        "a body valid against MessageObject",
        "2 violation(s): at (root): 'attachments' is a required property; at object: 'message' is not one of "
        "['thread.message']",
    )


@failure
class MissingField(Failure):
    title: ClassVar[str] = "Required field missing"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-RESP-03",
        "keys incomplete_details, …, metadata present (null when empty)",
        "missing: incomplete_details, completed_at",
    )


@failure
class WrongValue(Failure):
    title: ClassVar[str] = "Field has the wrong value"
    sample: ClassVar[tuple[str, str, str]] = ("MM-RESP-04", 'object = "thread.message"', 'object = "message"')


@failure
class MetadataNotEchoed(Failure):
    title: ClassVar[str] = "Metadata not echoed verbatim"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-META-01",
        "the modify response to contain 16 pair(s) verbatim",
        '1 differ: " leading-space" -> "(absent)"',
    )


@failure
class MetadataNotPersisted(Failure):
    title: ClassVar[str] = "Metadata not persisted"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-META-02",
        "a later getMessage to contain 16 pair(s) verbatim",
        '16 differ: "Case" -> "(absent)"; …',
    )


@failure
class WrongMetadataSemantics(Failure):
    title: ClassVar[str] = "Metadata merged or replaced against the profile"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-META-04",
        'merge semantics: {"blank": "", "keep": "1", "overwrite": "new"}',
        '{"blank": "", "overwrite": "new"}',
    )


@failure
class InvalidRequestAccepted(Failure):
    """The general failure of ``checks.metadata.rejected``: a request that must be refused was accepted."""

    title: ClassVar[str] = "Invalid request accepted"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-REQ-02",
        "400 for a truncated body",
        '200 application/json: {"id": "msg_…", …}',
    )


@failure
class LimitNotEnforced(InvalidRequestAccepted):
    title: ClassVar[str] = "Request past a limit accepted"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-META-06",
        "400 for 17 keys",
        '200 application/json: {"id": "msg_…", …}',
    )


@failure
class WrongTypeAccepted(InvalidRequestAccepted):
    title: ClassVar[str] = "Metadata of the wrong type accepted"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-META-09",
        "400 for the value 2",
        '200 application/json: {"id": "msg_…", …}',
    )


@failure
class UnknownFieldAccepted(InvalidRequestAccepted):
    title: ClassVar[str] = "Unknown body field accepted"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-REQ-01",
        "400 for the unknown key 'content'",
        '200 application/json: {"id": "msg_…", …}',
    )


@failure
class MissingBetaHeaderAccepted(InvalidRequestAccepted):
    title: ClassVar[str] = "Request without OpenAI-Beta: assistants=v2 accepted"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-REQ-05",
        "400 for OpenAI-Beta None",
        '200 application/json: {"id": "msg_…", …}',
    )


@failure
class CredentialsNotChecked(InvalidRequestAccepted):
    title: ClassVar[str] = "Request with missing or wrong credentials accepted"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-REQ-07",
        "401 for Authorization Bearer <wrong>",
        '200 application/json: {"id": "msg_…", …}',
    )


@failure
class MissingResourceAccepted(InvalidRequestAccepted):
    title: ClassVar[str] = "Modify of an unknown or deleted thread or message accepted"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-ERR-01",
        "404 for an unknown thread",
        '200 application/json: {"id": "msg_…", …}',
    )


@failure
class CrossThreadAccess(InvalidRequestAccepted):
    title: ClassVar[str] = "Message modified through a thread it does not belong to"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-ERR-03",
        "404 for a message addressed through another thread",
        '200 application/json: {"id": "msg_…", …}',
    )


@failure
class BoundaryRejected(Failure):
    title: ClassVar[str] = "Request at a limit rejected"
    sample: ClassVar[tuple[str, str, str]] = ("MM-META-05", "200 for 16 keys", '400 application/json: {"error": {…}}')


@failure
class PartialWrite(Failure):
    title: ClassVar[str] = "Rejected request changed state"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-META-12",
        "the message unchanged after the value 42",
        'metadata: {"before": "seeded"} -> {"before": "seeded", "ok": "applied?"}',
    )


@failure
class FieldChanged(Failure):
    title: ClassVar[str] = "Modify changed a field other than metadata"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-RESP-07",
        "every field except metadata unchanged",
        "created_at: 1763772000 -> 1763772061",
    )


@failure
class LostUpdate(Failure):
    title: ClassVar[str] = "Concurrent update lost"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-META-16",
        "all 16 concurrently written keys stored",
        "9 lost: writer-00, writer-03, …",
    )


@failure
class BadErrorEnvelope(Failure):
    title: ClassVar[str] = "Error body is not the OpenAI envelope"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-ERR-06",
        '{"error": {message: str, type: str, param: str|null, code: str|null}}',
        '\'error\' missing in 400 application/json: {"detail": "invalid metadata"}',
    )


@failure
class WrongErrorCode(Failure):
    title: ClassVar[str] = "Error type, code or param differs from the documented one"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-ERR-07",
        '{"code": "object_above_max_properties", "param": "metadata", …}',
        '{"code": null, "param": null, …}',
    )


@failure
class ServerError(Failure):
    title: ClassVar[str] = "Server error (5xx)"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-ERR-08",
        "a 2xx or 4xx answer to empty key",
        "500 application/json: {…}",
    )


@failure
class SecretEchoed(Failure):
    title: ClassVar[str] = "Credential echoed in a response"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-ERR-09",
        "no credential in the response",
        "the API key appears in the body (shown redacted in the evidence)",
    )


@failure
class WrongContentType(Failure):
    title: ClassVar[str] = "Wrong Content-Type"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-HDR-02",
        "Content-Type: application/json",
        "Content-Type: text/html on 400",
    )


@failure
class MissingHeader(Failure):
    title: ClassVar[str] = "Expected header missing"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-HDR-03",
        "a non-empty x-request-id header",
        "headers: content-length, content-type",
    )


@failure
class GeneratedCaseFailed(Failure):
    title: ClassVar[str] = "Generated request handled wrongly"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-GEN-02",
        "a 4xx error envelope for a schema-violating request",
        '200 for {"metadata": {"k": 0}}',
    )


@failure
class SiblingCallFailed(Failure):
    title: ClassVar[str] = "A call the suite relies on answered wrongly"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-RESP-09",
        "200 with a JSON object from the sibling call the test stands on",
        'createMessage answered 500: {"error": …}',
    )


@failure
class NoAnswer(Failure):
    title: ClassVar[str] = "Request answered with no HTTP response"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-ERR-08",
        "an HTTP answer to every request (the target answered the requests around this one)",
        "POST …/messages/msg_…: connection closed without a response, twice, while GET …/threads/… answered 404",
    )


@failure
class UnsafeId(Failure):
    title: ClassVar[str] = "Id unsafe to use in a path"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-RESP-09",
        "createThread returns 'id' as an id of ASCII letters, digits, '_' and '-' (1 to 128 characters)",
        "id: 'thread_x/../../files/file-victim'",
    )


@failure
class UntaggedThread(Failure):
    title: ClassVar[str] = "Created thread does not carry the metadata sent"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-RESP-09",
        "createThread echoes the metadata sent (modmsg_run: modmsg-4f0c2a9e1b7d)",
        "modmsg_run: None",
    )


@failure
class SequenceDisagrees(Failure):
    title: ClassVar[str] = "A read after a sequence of calls disagrees with the model"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-SEQ-01",
        'getMessage of M1 to show {"k0": "y"}',
        '{"k0": "x"} (then the sequence of steps, each with its curl)',
    )


@failure
class DeletedObjectLives(Failure):
    title: ClassVar[str] = "A deleted thread or message is still readable, listed or writable"
    sample: ClassVar[tuple[str, str, str]] = (
        "MM-SEQ-03",
        "a 404 for getMessage of M1 in deleted T1",
        '200 application/json: {"id": "msg_…", "object": "thread.message", …}',
    )


@failure
class ListingOrderWrong(Failure):
    title: ClassVar[str] = "Listing out of creation order, or its cursors disagree with its items"
    sample: ClassVar[tuple[str, str, str]] = ("MM-SEQ-04", "T1 listed desc by creation: M2 M1", "M1 M2")
