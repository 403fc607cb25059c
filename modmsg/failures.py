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


@failure
class NotJson(Failure):
    title: ClassVar[str] = "Body is not JSON"


@failure
class SchemaViolation(Failure):
    title: ClassVar[str] = "Body violates the documented schema"


@failure
class MissingField(Failure):
    title: ClassVar[str] = "Required field missing"


@failure
class WrongValue(Failure):
    title: ClassVar[str] = "Field has the wrong value"


@failure
class MetadataNotEchoed(Failure):
    title: ClassVar[str] = "Metadata not echoed verbatim"


@failure
class MetadataNotPersisted(Failure):
    title: ClassVar[str] = "Metadata not persisted"


@failure
class WrongMetadataSemantics(Failure):
    title: ClassVar[str] = "Metadata merged or replaced against the profile"


@failure
class InvalidRequestAccepted(Failure):
    """The general failure of ``checks.metadata.rejected``: a request that must be refused was accepted."""

    title: ClassVar[str] = "Invalid request accepted"


@failure
class LimitNotEnforced(InvalidRequestAccepted):
    title: ClassVar[str] = "Request past a limit accepted"


@failure
class WrongTypeAccepted(InvalidRequestAccepted):
    title: ClassVar[str] = "Metadata of the wrong type accepted"


@failure
class UnknownFieldAccepted(InvalidRequestAccepted):
    title: ClassVar[str] = "Unknown body field accepted"


@failure
class MissingBetaHeaderAccepted(InvalidRequestAccepted):
    title: ClassVar[str] = "Request without OpenAI-Beta: assistants=v2 accepted"


@failure
class CredentialsNotChecked(InvalidRequestAccepted):
    title: ClassVar[str] = "Request with missing or wrong credentials accepted"


@failure
class MissingResourceAccepted(InvalidRequestAccepted):
    title: ClassVar[str] = "Modify of an unknown or deleted thread or message accepted"


@failure
class CrossThreadAccess(InvalidRequestAccepted):
    title: ClassVar[str] = "Message modified through a thread it does not belong to"


@failure
class BoundaryRejected(Failure):
    title: ClassVar[str] = "Request at a limit rejected"


@failure
class PartialWrite(Failure):
    title: ClassVar[str] = "Rejected request changed state"


@failure
class FieldChanged(Failure):
    title: ClassVar[str] = "Modify changed a field other than metadata"


@failure
class LostUpdate(Failure):
    title: ClassVar[str] = "Concurrent update lost"


@failure
class BadErrorEnvelope(Failure):
    title: ClassVar[str] = "Error body is not the OpenAI envelope"


@failure
class WrongErrorCode(Failure):
    title: ClassVar[str] = "Error type, code or param differs from the documented one"


@failure
class ServerError(Failure):
    title: ClassVar[str] = "Server error (5xx)"


@failure
class SecretEchoed(Failure):
    title: ClassVar[str] = "Credential echoed in a response"


@failure
class WrongContentType(Failure):
    title: ClassVar[str] = "Wrong Content-Type"


@failure
class MissingHeader(Failure):
    title: ClassVar[str] = "Expected header missing"


@failure
class GeneratedCaseFailed(Failure):
    title: ClassVar[str] = "Generated request handled wrongly"


@failure
class SiblingCallFailed(Failure):
    title: ClassVar[str] = "A call the suite relies on answered wrongly"


@failure
class NoAnswer(Failure):
    title: ClassVar[str] = "Request answered with no HTTP response"


@failure
class UnsafeId(Failure):
    title: ClassVar[str] = "Id unsafe to use in a path"


@failure
class UntaggedThread(Failure):
    title: ClassVar[str] = "Created thread does not carry the metadata sent"


@failure
class SequenceDisagrees(Failure):
    title: ClassVar[str] = "A read after a sequence of calls disagrees with the model"


@failure
class DeletedObjectLives(Failure):
    title: ClassVar[str] = "A deleted thread or message is still readable, listed or writable"


@failure
class ListingOrderWrong(Failure):
    title: ClassVar[str] = "Listing out of creation order, or its cursors disagree with its items"
