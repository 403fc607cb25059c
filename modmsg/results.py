"""Outcomes: one per test, rolled up into one per requirement (worst wins), plus the run's claim.

Data flows one way: the pytest plugin turns test reports into ``TestRecord``s, ``rollup`` turns those into a
``RunResult``, and the report writers only read a ``RunResult`` (or its JSON form).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from modmsg.requirements import Catalogue, Level, Requirement


class Outcome(StrEnum):
    PASS = "PASS"  # the target met the requirement
    FAIL = "FAIL"  # the target is non-conformant
    ERROR = "ERROR"  # the suite or the network broke; nothing is known about the target
    SKIP = "SKIP"  # not applicable or not run, with a reason
    WAIVED = "WAIVED"  # a declared deviation of the product; never counts as PASS


# Among the tests of one requirement, the worst outcome wins. ERROR stays below FAIL: one test that proves
# the target broken outweighs one that could not judge.
_RANK = {Outcome.SKIP: 0, Outcome.PASS: 1, Outcome.ERROR: 2, Outcome.FAIL: 3}


def worst(outcomes: Iterable[Outcome]) -> Outcome | None:
    ranked = sorted(outcomes, key=_RANK.__getitem__)
    return ranked[-1] if ranked else None


@dataclass(frozen=True)
class TestRecord:
    """The outcome of one pytest test, with the requirement ids it checks and its evidence."""

    __test__ = False  # not a pytest test class despite its name

    nodeid: str
    reqs: tuple[str, ...]
    outcome: Outcome
    failed_req: str | None = None
    failure: Mapping[str, str] | None = None
    reason: str = ""
    duration: float = 0.0
    evidence: tuple[Mapping[str, Any], ...] = ()

    def contributions(self) -> dict[str, Outcome]:
        """What this test says about each requirement it touches."""
        if self.outcome is Outcome.FAIL and self.failed_req:
            return {self.failed_req: Outcome.FAIL}
        return dict.fromkeys(self.reqs, self.outcome)

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "reqs": list(self.reqs),
            "outcome": self.outcome.value,
            "failed_req": self.failed_req,
            "failure": dict(self.failure) if self.failure else None,
            "reason": self.reason,
            "duration": round(self.duration, 4),
            "evidence": [dict(e) for e in self.evidence],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestRecord:
        return cls(
            nodeid=data["nodeid"],
            reqs=tuple(data["reqs"]),
            outcome=Outcome(data["outcome"]),
            failed_req=data.get("failed_req"),
            failure=data.get("failure"),
            reason=data.get("reason", ""),
            duration=float(data.get("duration", 0.0)),
            evidence=tuple(data.get("evidence", ())),
        )


@dataclass(frozen=True)
class RequirementResult:
    id: str
    title: str
    level: str
    area: str
    statement: str
    source: str
    outcome: Outcome
    reason: str = ""
    observed: Outcome | None = None  # the outcome before a waiver replaced it
    tests: tuple[TestRecord, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "level": self.level,
            "area": self.area,
            "statement": self.statement,
            "source": self.source,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "observed": self.observed.value if self.observed else None,
            "tests": [t.as_dict() for t in self.tests],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequirementResult:
        return cls(
            id=data["id"],
            title=data["title"],
            level=data["level"],
            area=data["area"],
            statement=data["statement"],
            source=data["source"],
            outcome=Outcome(data["outcome"]),
            reason=data.get("reason", ""),
            observed=Outcome(data["observed"]) if data.get("observed") else None,
            tests=tuple(TestRecord.from_dict(t) for t in data.get("tests", ())),
        )


@dataclass(frozen=True)
class Claim:
    level: str | None  # "MUST+SHOULD", "MUST" or None
    complete: bool  # every applicable requirement was judged
    waivers: int
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "complete": self.complete, "waivers": self.waivers, "text": self.text}


@dataclass(frozen=True)
class RunMeta:
    suite_version: str
    spec_version: str
    spec_commit: str
    spec_sha256: str
    profile: str
    overlay: str | None
    target: str
    seed: int | None
    max_examples: int
    started: str
    finished: str
    duration: float
    selection: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()
    """(shell variable, what it stands for) for each secret the curl reproducers reference, e.g.
    ("MODMSG_API_KEY", "the API key (sent as Authorization: Bearer …)"): to be said once in every report."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite_version": self.suite_version,
            "spec_version": self.spec_version,
            "spec_commit": self.spec_commit,
            "spec_sha256": self.spec_sha256,
            "profile": self.profile,
            "overlay": self.overlay,
            "target": self.target,
            "seed": self.seed,
            "max_examples": self.max_examples,
            "started": self.started,
            "finished": self.finished,
            "duration": round(self.duration, 3),
            "selection": list(self.selection),
            "variables": [{"variable": name, "meaning": meaning} for name, meaning in self.variables],
        }


_BAD = (Outcome.FAIL, Outcome.ERROR)


@dataclass(frozen=True)
class Comparison:
    """This run against a baseline run: CI gates on regressions, not on 100% on day one."""

    baseline: str
    regressions: tuple[str, ...]  # PASS in the baseline, FAIL or ERROR now
    fixes: tuple[str, ...]  # FAIL or ERROR in the baseline, PASS now
    unchanged_failures: tuple[str, ...]  # FAIL or ERROR in both

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "regressions": list(self.regressions),
            "fixes": list(self.fixes),
            "unchanged_failures": list(self.unchanged_failures),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        return cls(
            baseline=data["baseline"],
            regressions=tuple(data["regressions"]),
            fixes=tuple(data["fixes"]),
            unchanged_failures=tuple(data["unchanged_failures"]),
        )


def compare(baseline: Mapping[str, Any], current: Iterable[RequirementResult], label: str) -> Comparison:
    """Compare with a baseline results.json (its dict form); requirements absent from it are not regressions."""
    before = {r["id"]: Outcome(r["outcome"]) for r in baseline["requirements"]}
    now = {r.id: r.outcome for r in current}
    common = [i for i in now if i in before]
    return Comparison(
        baseline=label,
        regressions=tuple(i for i in common if before[i] is Outcome.PASS and now[i] in _BAD),
        fixes=tuple(i for i in common if before[i] in _BAD and now[i] is Outcome.PASS),
        unchanged_failures=tuple(i for i in common if before[i] in _BAD and now[i] in _BAD),
    )


@dataclass(frozen=True)
class RunResult:
    meta: RunMeta
    requirements: tuple[RequirementResult, ...]
    claim: Claim
    counts: Mapping[str, int] = field(default_factory=dict)
    comparison: Comparison | None = None

    @property
    def failed(self) -> bool:
        """Whether the run should fail a CI job: any FAIL/ERROR, or with a baseline, any regression."""
        if self.comparison is not None:
            return bool(self.comparison.regressions)
        return any(r.outcome in _BAD for r in self.requirements)

    def by_area(self) -> dict[str, list[RequirementResult]]:
        areas: dict[str, list[RequirementResult]] = {}
        for result in self.requirements:
            areas.setdefault(result.area, []).append(result)
        return areas

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": "modmsg-results/1",
            "meta": self.meta.as_dict(),
            "claim": self.claim.as_dict(),
            "counts": dict(self.counts),
            "requirements": [r.as_dict() for r in self.requirements],
            "comparison": self.comparison.as_dict() if self.comparison else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        meta = dict(data["meta"])
        meta["selection"] = tuple(meta.get("selection", ()))
        meta["variables"] = tuple((v["variable"], v["meaning"]) for v in meta.get("variables", ()))
        return cls(
            meta=RunMeta(**meta),
            requirements=tuple(RequirementResult.from_dict(r) for r in data["requirements"]),
            claim=Claim(**data["claim"]),
            counts=dict(data.get("counts", {})),
            comparison=Comparison.from_dict(data["comparison"]) if data.get("comparison") else None,
        )


def _judge(
    requirement: Requirement,
    contributions: list[tuple[Outcome, TestRecord]],
    applicable: bool,
    profile_name: str,
) -> tuple[Outcome, str]:
    if not applicable:
        return Outcome.SKIP, f"not judged under the {profile_name} profile"
    outcome = worst(o for o, _ in contributions)
    if outcome is None:
        if requirement.conditional:
            return Outcome.SKIP, f"never triggered: judged only when {requirement.when}"
        return Outcome.SKIP, "not run (deselected)"
    if outcome is Outcome.SKIP:
        reasons = sorted({t.reason for o, t in contributions if t.reason})
        return outcome, "; ".join(reasons) or "skipped"
    if outcome in (Outcome.FAIL, Outcome.ERROR):
        bad = next(t for o, t in contributions if o is outcome)
        title = (bad.failure or {}).get("title") or bad.reason
        return outcome, title
    return outcome, ""


def rollup(
    catalogue: Catalogue,
    records: Iterable[TestRecord],
    *,
    profile_name: str,
    profile_base: str,
    waivers: Mapping[str, str],
    meta: RunMeta,
) -> RunResult:
    per_req: dict[str, list[tuple[Outcome, TestRecord]]] = {}
    for record in records:
        for req_id, outcome in record.contributions().items():
            per_req.setdefault(req_id, []).append((outcome, record))
    results = []
    for requirement in catalogue.active():
        contributions = per_req.get(requirement.id, [])
        applicable = profile_base in requirement.profiles
        outcome, reason = _judge(requirement, contributions, applicable, profile_name)
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
            )
        )
    counts = {o.value: sum(r.outcome is o for r in results) for o in Outcome}
    claim = make_claim(catalogue, results, profile_name, profile_base)
    return RunResult(meta=meta, requirements=tuple(results), claim=claim, counts=counts)


def make_claim(
    catalogue: Catalogue, results: Iterable[RequirementResult], profile_name: str, profile_base: str
) -> Claim:
    applicable = [r for r in results if profile_base in catalogue.get(r.id).profiles]
    waivers = sum(r.outcome is Outcome.WAIVED for r in applicable)

    def met(result: RequirementResult) -> bool:
        if result.outcome in (Outcome.PASS, Outcome.WAIVED):
            return True
        return result.outcome is Outcome.SKIP and catalogue.get(result.id).conditional

    unjudged = [r for r in applicable if r.outcome is Outcome.SKIP and not catalogue.get(r.id).conditional]
    must = [r for r in applicable if r.level == Level.MUST.value]
    should = [r for r in applicable if r.level == Level.SHOULD.value]
    suffix = f" with {waivers} waiver{'s' if waivers != 1 else ''}" if waivers else ""
    failing = [r for r in applicable if r.outcome is Outcome.FAIL]
    errored = [r for r in applicable if r.outcome is Outcome.ERROR]
    errors_note = f", {len(errored)} could not be judged (ERROR)" if errored else ""
    if any(r.outcome is Outcome.FAIL for r in must):
        return Claim(
            None,
            not unjudged,
            waivers,
            f"not conformant to the {profile_name} profile: {len(failing)} requirement(s) failing{errors_note}",
        )
    if errored and any(r.outcome is Outcome.ERROR for r in must):
        return Claim(
            None,
            False,
            waivers,
            f"no claim: {len(errored)} requirement(s) could not be judged (ERROR: the suite or the network broke)",
        )
    if unjudged:
        return Claim(
            None,
            False,
            waivers,
            f"partial run: {len(unjudged)} applicable requirement(s) not judged, so no conformance claim",
        )
    if all(met(r) for r in should):
        return Claim(
            "MUST+SHOULD",
            True,
            waivers,
            f"conformant to the {profile_name} profile at MUST+SHOULD level{suffix}",
        )
    return Claim("MUST", True, waivers, f"conformant to the {profile_name} profile at MUST level{suffix}")
