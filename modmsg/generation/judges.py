"""The judges: what each requirement demands of every generated case, raised as the suite's typed failures.

A judge sees the run only through ``Judging`` (the built-in checks and the profile), so this module imports
neither the run nor the streams.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from schemathesis import GenerationMode

from modmsg.checks._common import excerpt
from modmsg.checks.errors import error_envelope_is_valid
from modmsg.checks.metadata import metadata_contains, state_unchanged
from modmsg.checks.response import ok_json
from modmsg.failures import GeneratedCaseFailed
from modmsg.generation.builtin_checks import ACCEPTED_REQ, DOCUMENTED_REQ, NO_5XX_REQ, REJECTED_REQ
from modmsg.generation.cases import NEGATIVE, POSITIVE, Sent, sent_pairs
from modmsg.profiles import Profile

# How a schema-violating body must be rejected. The openai profile settles it (openai-behaviour.md §6: every
# body defect is a 400 with the error envelope); the spec profile asks only for a client-error answer that HTTP
# semantics allow for a bad body. 401/403/404 are never right here: the credentials are valid and the message
# exists, so such an answer would mean the server judged something other than the body.
REJECTION_STATUSES = {"openai": frozenset({400}), "spec": frozenset({400, 413, 415, 422})}


def rejection_statuses(profile: Profile) -> frozenset[int]:
    """The statuses that reject a schema-violating body under ``profile``."""
    return REJECTION_STATUSES.get(profile.base, REJECTION_STATUSES["spec"])


class Judging(Protocol):
    """What a judge asks of the run: the profile it judges by, and the built-in checks mapped to a requirement."""

    profile: Profile

    def builtin(self, sent: Sent, req: str) -> None: ...


@dataclass(frozen=True)
class Judge:
    """What one requirement demands of every generated case (``needs_state``: GET before and after)."""

    req: str
    check: Callable[[Sent, Judging], None]
    needs_state: bool = False


def _accepted(sent: Sent, run: Judging) -> None:
    """MM-GEN-01: a positive case gets 200, a JSON MessageObject, and every sent pair back verbatim."""
    if not sent.mode.is_positive:
        return
    run.builtin(sent, ACCEPTED_REQ)
    body = ok_json(sent.response, req=ACCEPTED_REQ)
    metadata_contains(body, sent_pairs(sent.case), req=ACCEPTED_REQ)


def _rejected(sent: Sent, run: Judging) -> None:
    """MM-GEN-02: a negative case gets a 4xx error envelope and leaves the message as it was."""
    if not sent.mode.is_negative:
        return
    response, method = sent.response, sent.case.method.upper()
    if sent.is_request_shape_probe:
        # Coverage probes (a method the operation lacks, a non-JSON Content-Type) are malformed on purpose, and
        # what exactly answers them is the business of MM-REQ-08 (404 or 405) and of proxies (OPTIONS, CORS):
        # here an unsupported method must merely not be accepted, and no probe may change the message.
        if sent.is_method_probe and method != "OPTIONS" and not 400 <= response.status_code < 500:
            raise GeneratedCaseFailed(
                req=REJECTED_REQ, expected=f"a 4xx for the unsupported method {method}", received=excerpt(response)
            )
    else:
        run.builtin(sent, REJECTED_REQ)
        statuses = rejection_statuses(run.profile)
        if response.status_code not in statuses:
            raise GeneratedCaseFailed(
                req=REJECTED_REQ,
                expected=f"{' or '.join(map(str, sorted(statuses)))} for a schema-violating body "
                f"({run.profile.name} profile)",
                received=excerpt(response),
            )
        error_envelope_is_valid(response, req=REJECTED_REQ)
    if sent.before is not None and sent.after is not None:
        state_unchanged(sent.before, sent.after, req=REJECTED_REQ, what=f"a rejected {method}")


def _documented(sent: Sent, run: Judging) -> None:
    """MM-GEN-03: documented status, content type, headers and response schema."""
    run.builtin(sent, DOCUMENTED_REQ)


def _no_server_error(sent: Sent, run: Judging) -> None:
    """MM-ERR-08: no 5xx, whatever was generated."""
    run.builtin(sent, NO_5XX_REQ)


ACCEPTED = Judge(ACCEPTED_REQ, _accepted)
REJECTED = Judge(REJECTED_REQ, _rejected, needs_state=True)
DOCUMENTED = Judge(DOCUMENTED_REQ, _documented)
NO_SERVER_ERROR = Judge(NO_5XX_REQ, _no_server_error)
# When one case is judged for every requirement (coverage phase), the most specific finding wins.
ALL_JUDGES = (NO_SERVER_ERROR, ACCEPTED, REJECTED, DOCUMENTED)
# What a fuzzing stream of each mode judges every case for.
STREAM_JUDGES: Mapping[GenerationMode, tuple[Judge, ...]] = {
    POSITIVE: (NO_SERVER_ERROR, ACCEPTED, DOCUMENTED),
    NEGATIVE: (NO_SERVER_ERROR, REJECTED, DOCUMENTED),
}
