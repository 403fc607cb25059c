"""The examples and coverage phases of ``modifyMessage``, built when a test runs rather than when pytest collects.

``@schema.parametrize()`` builds every operation's Hypothesis test at collection, and for the coverage phase that
means drawing all its deterministic cases (~2.7 s here) in every process that collects ``suites/test_generated.py``:
also in ``pytest suites -k metadata`` or ``--req MM-ERR-01``, where that test is deselected and its cases are never
sent. ``phases_test`` builds the same test (Schemathesis' own builder, the same configuration and seed, so the same
cases in the same order) only when it is called.
"""

from __future__ import annotations

from collections.abc import Callable

import hypothesis
from hypothesis import HealthCheck
from schemathesis import Case
from schemathesis.schemas import BaseSchema

from modmsg.generation.builtin_checks import modify_operation


def phases_test(schema: BaseSchema, body: Callable[[Case], None]) -> Callable[[], None]:
    """``body`` as a Hypothesis test over the enabled explicit phases (examples, coverage) of modifyMessage; calling
    it sends every case through ``body`` and raises the first failure, as the pytest plugin's item would."""
    from schemathesis.generation.feedback import FeedbackSources
    from schemathesis.pytest._test_builder import build_operation_test
    from schemathesis.python._constants.orchestrator import make_constants_value_source

    @hypothesis.settings(
        database=None,
        deadline=None,
        report_multiple_bugs=False,  # stop at the first failing case, so the evidence ends with it
        suppress_health_check=[HealthCheck.too_slow],
        verbosity=hypothesis.Verbosity.quiet,
    )
    def test(case: Case) -> None:
        body(case)

    return build_operation_test(
        config=schema.config,
        operation=modify_operation(schema),
        test_func=test,
        given_kwargs={},
        feedback=FeedbackSources(constants_value_source=make_constants_value_source(schema)),
    )
