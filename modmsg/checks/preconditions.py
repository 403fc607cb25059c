"""Findings raised outside a check: a sibling call that answered wrongly, a request the target dropped.

Tests stand on sibling calls (createThread, createMessage, getMessage ...) and on the target answering at all.
When one of those goes wrong with an HTTP answer, or with a dropped connection while the target still answers
others, that is the target's behaviour: it fails the requirement it breaks, and the test's own requirements are
BLOCKED by it (never FAIL, never ERROR). A request with no answer at all stays a transport ERROR.
"""

from __future__ import annotations

from modmsg.api import SetupError
from modmsg.failures import Failure, NoAnswer, SiblingCallFailed
from modmsg.ids import SIBLINGS_REQ
from modmsg.transport import RequestDropped

ANSWERED_REQ = "MM-ERR-08"


def finding_for(exc: BaseException) -> Failure | None:
    """The typed failure ``exc`` stands for, or None when it says nothing about the target."""
    if isinstance(exc, SetupError):
        return SiblingCallFailed(
            req=SIBLINGS_REQ,
            expected="200 with a JSON object from the sibling call the test stands on",
            received=str(exc),
        )
    if isinstance(exc, RequestDropped):
        return NoAnswer(
            req=ANSWERED_REQ,
            expected="an HTTP answer to every request (the target answered the requests around this one)",
            received=str(exc),
        )
    return None
