"""Attribution: which of a gateway's verdicts it introduces, inherits from the upstream it fronts, or masks.

A run with ``--upstream-url`` judges the same selection twice with the same seed, through the target (the gateway)
and straight against the upstream; :func:`attribute` merges the two rolled-up runs per requirement. The target's
verdict, the claim and the exit code stay the target's: attribution only says where a verdict comes from.

=============  ============  =============
target         upstream      attribution
=============  ============  =============
FAIL           PASS          introduced
FAIL           FAIL          inherited
PASS           FAIL          masked
PASS           PASS          none
anything else  (either side  unknown
               BLOCKED,
               ERROR, SKIP)
=============  ============  =============

A WAIVED requirement counts as the outcome observed before the waiver, on either side.
"""

from __future__ import annotations

import dataclasses

from modmsg.results import Attribution, Outcome, RequirementResult, RunResult, UpstreamResult

_TABLE = {
    (Outcome.FAIL, Outcome.PASS): Attribution.INTRODUCED,
    (Outcome.FAIL, Outcome.FAIL): Attribution.INHERITED,
    (Outcome.PASS, Outcome.FAIL): Attribution.MASKED,
    (Outcome.PASS, Outcome.PASS): Attribution.NONE,
}


def observed(result: RequirementResult | UpstreamResult) -> Outcome:
    """What the side showed: a waiver's observed outcome, else the outcome."""
    observed = getattr(result, "observed", None)
    return observed if result.outcome is Outcome.WAIVED and observed is not None else result.outcome


def attribution_of(target: Outcome, upstream: Outcome) -> Attribution:
    """The table above: a FAIL or PASS on both sides is attributed; anything not judged is unknown."""
    return _TABLE.get((target, upstream), Attribution.UNKNOWN)


def _upstream_of(result: RequirementResult | None, why_missing: str) -> UpstreamResult:
    if result is None:
        return UpstreamResult(Outcome.ERROR, f"not judged upstream: {why_missing}")
    return UpstreamResult(observed(result), result.reason, result.tests)


def attribute(run: RunResult, upstream: RunResult | None, upstream_target: str, why_missing: str = "") -> RunResult:
    """``run`` (the target's) with every requirement attributed against ``upstream`` (the same selection and seed
    judged straight against the upstream) and ``meta.upstream`` naming it. ``upstream`` None, or a requirement it
    lacks, is an upstream ERROR saying ``why_missing``, so attribution ``unknown``."""
    theirs = {r.id: r for r in upstream.requirements} if upstream is not None else {}
    why = why_missing or "the upstream pass did not judge it"
    attributed = []
    for result in run.requirements:
        side = _upstream_of(theirs.get(result.id), why)
        verdict = attribution_of(observed(result), side.outcome)
        if verdict is Attribution.NONE:  # nothing to compare: keep results.json lean
            side = dataclasses.replace(side, tests=())
        attributed.append(dataclasses.replace(result, attribution=verdict, upstream=side))
    meta = dataclasses.replace(run.meta, upstream=upstream_target)
    return dataclasses.replace(run, meta=meta, requirements=tuple(attributed))
