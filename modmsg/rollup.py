"""The rollup: test records to one outcome per requirement (worst wins), waivers, stopped runs, and the claim.

``modmsg.results`` holds the value types; this module is the computation over them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from modmsg.requirements import Catalogue, Level, Requirement
from modmsg.results import Claim, Outcome, RequirementResult, RunMeta, RunResult, TestRecord, worst


def _judge(
    requirement: Requirement,
    contributions: list[tuple[Outcome, TestRecord]],
    applicable: bool,
    profile_name: str,
) -> tuple[Outcome, str, tuple[str, ...]]:
    if not applicable:
        return Outcome.SKIP, f"not judged under the {profile_name} profile", ()
    outcome = worst(o for o, _ in contributions)
    if outcome is None:
        if requirement.conditional:
            return Outcome.SKIP, f"never triggered: judged only when {requirement.when}", ()
        return Outcome.SKIP, "not run (deselected)", ()
    if outcome is Outcome.SKIP:
        reasons = sorted({t.reason for o, t in contributions if t.reason})
        return outcome, "; ".join(reasons) or "skipped", ()
    if outcome is Outcome.BLOCKED:
        blockers = tuple(dict.fromkeys(t.failed_req for o, t in contributions if o is outcome and t.failed_req))
        first = next(t for o, t in contributions if o is outcome)
        title = (first.failure or {}).get("title", "failed")
        return outcome, f"not judged: {', '.join(blockers)} failed first ({title})", blockers
    if outcome in (Outcome.FAIL, Outcome.ERROR):
        bad = next(t for o, t in contributions if o is outcome)
        title = (bad.failure or {}).get("title") or bad.reason
        return outcome, title, ()
    return outcome, "", ()


def _unfinished(
    outcome: Outcome, reason: str, seen: int, expected: int | None, stop: str, interrupted: bool
) -> tuple[Outcome, str]:
    """A stopped run's verdict on one requirement: a FAIL stands (it was proven), and so does any verdict whose
    tests all ran; the rest is not judged: ERROR naming the cause, or SKIP after a deliberate interrupt."""
    if outcome is Outcome.FAIL or (expected is not None and seen >= expected):
        return outcome, reason
    return (Outcome.SKIP if interrupted else Outcome.ERROR), f"not judged: {stop}"


def rollup(
    catalogue: Catalogue,
    records: Iterable[TestRecord],
    *,
    profile_name: str,
    profile_base: str,
    waivers: Mapping[str, str],
    meta: RunMeta,
    expected: Mapping[str, int] | None = None,
) -> RunResult:
    """One outcome per requirement, worst wins; waivers replace an outcome with WAIVED (keeping what was
    observed). In a stopped run (``meta.stopped``), requirements whose tests did not all run are not judged;
    ``expected`` (tests collected per requirement, when known) tells which did."""
    per_req: dict[str, list[tuple[Outcome, TestRecord]]] = {}
    for record in records:
        for req_id, outcome in record.contributions().items():
            per_req.setdefault(req_id, []).append((outcome, record))
    results = []
    for requirement in catalogue.active():
        contributions = per_req.get(requirement.id, [])
        applicable = profile_base in requirement.profiles
        outcome, reason, blocked_by = _judge(requirement, contributions, applicable, profile_name)
        if meta.stopped and applicable:
            seen = len({id(t) for _, t in contributions})
            wanted = None if expected is None else expected.get(requirement.id, 0)
            outcome, reason = _unfinished(outcome, reason, seen, wanted, meta.stopped, meta.interrupted)
        observed = None
        if applicable and requirement.id in waivers:
            observed, outcome, reason = outcome, Outcome.WAIVED, waivers[requirement.id]
        results.append(
            RequirementResult(
                id=requirement.id,
                title=requirement.title,
                level=requirement.level.value,
                area=requirement.area,
                statement=requirement.statement,
                source=str(requirement.source),
                outcome=outcome,
                reason=reason,
                observed=observed,
                tests=tuple({id(t): t for _, t in contributions}.values()),
                blocked_by=blocked_by if outcome is Outcome.BLOCKED else (),
            )
        )
    counts = {o.value: sum(r.outcome is o for r in results) for o in Outcome}
    claim = make_claim(catalogue, results, profile_name, profile_base, meta)
    return RunResult(meta=meta, requirements=tuple(results), claim=claim, counts=counts)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def make_claim(
    catalogue: Catalogue,
    results: Iterable[RequirementResult],
    profile_name: str,
    profile_base: str,
    meta: RunMeta | None = None,
) -> Claim:
    """The claim, in this order: interrupted or stopped runs claim nothing; a failing MUST is not conformant;
    a MUST not judged (ERROR, BLOCKED) gives no claim; a selection that left requirements out is partial; a
    waived MUST gives no claim (the gate may stay green, the claim never); otherwise conformant at MUST level,
    or at MUST+SHOULD when every SHOULD is met without a waiver."""
    applicable = [r for r in results if profile_base in catalogue.get(r.id).profiles]
    waived = [r for r in applicable if r.outcome is Outcome.WAIVED]
    unjudged = [r for r in applicable if r.outcome is Outcome.SKIP and not catalogue.get(r.id).conditional]
    must = [r for r in applicable if r.level == Level.MUST.value]
    should = [r for r in applicable if r.level == Level.SHOULD.value]
    failing = [r for r in applicable if r.outcome is Outcome.FAIL]
    errored = [r for r in applicable if r.outcome is Outcome.ERROR]
    blocked = [r for r in applicable if r.outcome is Outcome.BLOCKED]
    complete = not unjudged and not errored and not blocked
    count = len(waived)
    if meta is not None and meta.stopped:
        judged = len(applicable) - len(unjudged) - len(errored)
        status = "interrupted" if meta.interrupted else "no-claim"
        head = "interrupted" if meta.interrupted else "no claim: the run stopped early"
        text = f"{head} ({meta.stopped}): {judged} of {len(applicable)} requirements judged, so no claim"
        if failing:
            text += f"; {_n(len(failing), 'requirement')} failing"
        return Claim(None, False, count, text, status)
    notes = ", ".join(
        part
        for part in (
            f"{len(errored)} could not be judged (ERROR)" if errored else "",
            f"{len(blocked)} blocked by a failed precondition (BLOCKED)" if blocked else "",
            f"{count} waived" if count else "",
        )
        if part
    )
    extra = f", {notes}" if notes else ""
    if any(r.outcome is Outcome.FAIL for r in must):
        text = f"not conformant to the {profile_name} profile: {_n(len(failing), 'requirement')} failing{extra}"
        return Claim(None, complete, count, text, "not-conformant")
    unjudged_must = [r for r in must if r.outcome in (Outcome.ERROR, Outcome.BLOCKED)]
    if unjudged_must:
        text = f"no claim: {_n(len(unjudged_must), 'MUST requirement')} could not be judged{extra}"
        return Claim(None, False, count, text, "no-claim")
    if unjudged:
        text = f"partial run: {len(unjudged)} applicable requirement(s) not judged, so no conformance claim"
        return Claim(None, False, count, text, "partial")
    waived_must = [r for r in waived if r.level == Level.MUST.value]
    if waived_must:
        text = (
            f"not conformant to the {profile_name} profile: {_n(count, 'requirement')} waived "
            f"({len(waived_must)} MUST); a waiver keeps a CI gate green but never makes a claim"
        )
        return Claim(None, complete, count, text, "waived")

    def met(result: RequirementResult) -> bool:
        return result.outcome is Outcome.PASS or (
            result.outcome is Outcome.SKIP and catalogue.get(result.id).conditional
        )

    if all(met(r) for r in should):
        return Claim("MUST+SHOULD", True, 0, f"conformant to the {profile_name} profile at MUST+SHOULD level")
    waived_should = [r for r in should if r.outcome is Outcome.WAIVED]
    why = f"; not at MUST+SHOULD: {_n(len(waived_should), 'SHOULD requirement')} waived" if waived_should else ""
    return Claim("MUST", True, count, f"conformant to the {profile_name} profile at MUST level{why}")
