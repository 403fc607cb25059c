"""What a test's outcome means for the verdict: a finding (FAIL, with the failing requirement), the suite's or the
network's trouble (ERROR), a skip; and the record each test's report carries to the controller, redacted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from modmsg.checks.preconditions import finding_for
from modmsg.evidence import Exchange
from modmsg.failures import Failure
from modmsg.plugin.state import RunState
from modmsg.redaction import Redactor, inert
from modmsg.results import Outcome, TestRecord
from modmsg.transport import RunBudgetSpent, TransportError

EVIDENCE_ON_FAILURE = 8
EVIDENCE_ON_PASS = 2


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


Verdict = tuple[Outcome, str | None, dict[str, str] | None, str]
"""A test's outcome, the requirement it failed, the failure (title, expected, received, detail), the reason."""


def classify(exc: BaseException, redact: Callable[[str], str]) -> Verdict:
    """What an exception out of a test means: a typed Failure or a finding is a FAIL of its requirement, a bare
    assertion a FAIL of the test, anything else (no HTTP answer first) an ERROR; every text redacted."""
    found = leaves(exc)
    typed = next((e for e in found if isinstance(e, Failure)), None)
    if typed is None:  # a sibling call that answered wrongly, a request dropped by a live target: findings too
        typed = next((f for f in map(finding_for, found) if f is not None), None)
    if typed is not None:
        failure = {k: redact(v) for k, v in typed.as_dict().items()}
        return Outcome.FAIL, typed.req, failure, ""
    if all(isinstance(e, AssertionError) for e in found):
        text = redact(str(found[0]))[:4000]
        title = getattr(found[0], "title", None) or "Assertion failed"
        return Outcome.FAIL, None, {"title": str(title), "expected": "", "received": "", "detail": text}, ""
    first = next((e for e in found if isinstance(e, TransportError)), found[0])
    return Outcome.ERROR, None, None, redact(f"{type(first).__name__}: {first}")[:2000]


def no_answer(exc: BaseException) -> TransportError | None:
    """The transport failure behind an ERROR, if that is what it was."""
    return next((e for e in leaves(exc) if isinstance(e, TransportError)), None)


def count_transport(item: pytest.Item, state: RunState, outcome: Outcome, call: pytest.CallInfo[None]) -> None:
    """Track tests in a row without an HTTP answer; at ``--max-transport-failures`` stop the session."""
    if outcome is Outcome.SKIP:
        return  # says nothing about the target
    found = leaves(call.excinfo.value) if call.excinfo is not None else []
    spent = next((leaf for leaf in found if isinstance(leaf, RunBudgetSpent)), None)
    if spent is not None and not item.session.shouldstop:
        state.stopped_early = (
            f"modmsg: stopped: the run budget of {state.settings.max_duration:g} s (--max-duration) is spent; "
            "the requirements not judged yet were not run"
        )
        item.session.shouldstop = state.stopped_early
    failure = no_answer(call.excinfo.value) if outcome is Outcome.ERROR and call.excinfo is not None else None
    if failure is None:
        state.transport_streak = 0
        return
    state.transport_streak += 1
    limit = state.settings.max_transport_failures
    if limit and state.transport_streak >= limit and not item.session.shouldstop:
        cause = state.redact(str(failure).rsplit(": ", 1)[-1])
        state.stopped_early = (
            f"modmsg: stopped early: {state.transport_streak} tests in a row got no HTTP answer from the target "
            f"(last: {cause}), so the target or the network is down and the remaining tests were not run"
        )
        item.session.shouldstop = state.stopped_early


def record_for(
    item: pytest.Item,
    call: pytest.CallInfo[None],
    report: pytest.TestReport,
    state: RunState,
    ids: tuple[str, ...],
    exchanges: Sequence[Exchange],
) -> TestRecord:
    """The record of one phase of a modmsg test: outcome, failing requirement, redacted failure and evidence.
    Counts the transport streak (and may stop the session); adds the reproduce line to a failing report."""
    failed_req, failure, reason = None, None, ""
    if report.skipped:
        outcome = Outcome.SKIP
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = state.redact(reason.removeprefix("Skipped: "))
    elif report.passed:
        outcome = Outcome.PASS
    elif call.excinfo is not None:
        outcome, failed_req, failure, reason = classify(call.excinfo.value, state.redact)
        if report.when == "setup" and outcome is Outcome.FAIL and failed_req is None:
            # an untyped assertion in a fixture is the suite's own trouble; a typed one is a finding (e.g. the
            # message fixture's createMessage answering 500 fails MM-RESP-09 and blocks the test's requirements)
            outcome, reason = Outcome.ERROR, f"setup failed: {(failure or {}).get('detail', '')}"
            failure = None
    else:
        outcome, reason = Outcome.ERROR, "unknown failure"
    count_transport(item, state, outcome, call)
    if outcome is Outcome.FAIL and failure is not None and exchanges and "Reproduce:" not in failure.get("detail", ""):
        # The request the test sent last, already redacted: the failure message says how to reproduce it.
        reproduce = f"Reproduce: {exchanges[-1].curl()}"
        failure = {**failure, "detail": f"{failure.get('detail', '')}\n{reproduce}".strip()}
        report.sections.append(("modmsg: reproduce the last request", reproduce))
    # A passing test keeps its first exchanges; in the upstream pass its last ones, which an introduced failure's
    # evidence is put beside (the same calls, made straight to the upstream).
    first = outcome is Outcome.PASS and not state.upstream_pass
    keep = EVIDENCE_ON_PASS if first else EVIDENCE_ON_FAILURE
    sample = exchanges[:keep] if first else exchanges[-keep:]
    return TestRecord(
        nodeid=item.nodeid,
        reqs=ids,
        outcome=outcome,
        failed_req=failed_req,
        failure=failure,
        reason=reason,
        duration=report.duration,
        evidence=tuple(e.as_dict() for e in sample),
    )


def clean_report(report: pytest.TestReport, redactor: Redactor) -> None:
    """Redact and make inert pytest's own report of a test in place: its traceback (whatever the ``--tb`` style),
    skip reason and captured sections.

    The traceback keeps its structure (so colours and the short summary stay) when cleaning each of its strings
    leaves nothing to find in the whole; otherwise (a secret cut across two strings) it becomes the cleaned text.
    """

    def clean(value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return inert(redactor.text(value))
        if depth > 8 or value is None or isinstance(value, int | float | bool):
            return value
        if isinstance(value, tuple):
            return tuple(clean(v, depth + 1) for v in value)
        if isinstance(value, list):
            return [clean(v, depth + 1) for v in value]
        if type(value).__module__.startswith("_pytest._code"):  # the TerminalRepr family: rewritten in place
            for name, attribute in vars(value).items():
                setattr(value, name, clean(attribute, depth + 1))
        return value

    report.sections = [(title, clean(content)) for title, content in report.sections]
    longrepr = report.longrepr
    if longrepr is None or isinstance(longrepr, tuple | str):
        report.longrepr = clean(longrepr)
        return
    before = str(longrepr)
    wanted = inert(redactor.text(before))
    if wanted != before:
        clean(longrepr)
        after = str(longrepr)
        if inert(redactor.text(after)) != after:
            report.longrepr = wanted
