"""Outcomes: one per test, rolled up into one per requirement (worst wins), plus the run's claim.

Data flows one way: the pytest plugin turns test reports into ``TestRecord``s, ``rollup`` turns those into a
``RunResult``, and the report writers only read a ``RunResult`` (or its JSON form).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    PASS = "PASS"  # the target met the requirement
    FAIL = "FAIL"  # the target is non-conformant
    BLOCKED = "BLOCKED"  # not judged: a requirement it depends on failed first (named in blocked_by)
    ERROR = "ERROR"  # the suite or the network broke; nothing is known about the target
    SKIP = "SKIP"  # not applicable or not run, with a reason
    WAIVED = "WAIVED"  # a declared deviation of the product; never counts as PASS


# Among the tests of one requirement, the worst outcome wins. BLOCKED outranks PASS (one test that could not
# judge because a precondition failed leaves the requirement unjudged) and stays below ERROR and FAIL. ERROR
# stays below FAIL: one test that proves the target broken outweighs one that could not judge.
_RANK = {Outcome.SKIP: 0, Outcome.PASS: 1, Outcome.BLOCKED: 2, Outcome.ERROR: 3, Outcome.FAIL: 4}


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
        """What this test says about each requirement it touches.

        A typed failure fails its own requirement, which may be a precondition outside the test's marks (the
        modify step of a metadata test failing MM-RESP-01): then the test's other requirements were never
        judged, so they are BLOCKED by it, neither failed nor passed.
        """
        if self.outcome is Outcome.FAIL and self.failed_req:
            blocked = dict.fromkeys((r for r in self.reqs if r != self.failed_req), Outcome.BLOCKED)
            return {**blocked, self.failed_req: Outcome.FAIL}
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


class Attribution(StrEnum):
    """Where a requirement's verdict comes from, when the run also judged the upstream a gateway fronts
    (``--upstream-url``): compare the target's outcome with the upstream's (see :mod:`modmsg.attribution`)."""

    INTRODUCED = "introduced"  # fails through the target, passes upstream: the gateway broke it
    INHERITED = "inherited"  # fails on both: the gateway passes the upstream's defect on
    MASKED = "masked"  # fails upstream, passes through the target: the gateway repairs or hides it
    NONE = "none"  # passes on both
    UNKNOWN = "unknown"  # either side was not judged (BLOCKED, ERROR, SKIP)


@dataclass(frozen=True)
class UpstreamResult:
    """The upstream's verdict on one requirement, judged straight against it with the same selection and seed."""

    outcome: Outcome
    reason: str = ""
    tests: tuple[TestRecord, ...] = ()
    """The upstream's tests of the requirement, with their evidence; left out when both sides pass."""

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "reason": self.reason, "tests": [t.as_dict() for t in self.tests]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UpstreamResult:
        return cls(
            outcome=Outcome(data["outcome"]),
            reason=data.get("reason", ""),
            tests=tuple(TestRecord.from_dict(t) for t in data.get("tests", ())),
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
    blocked_by: tuple[str, ...] = ()  # BLOCKED: the failed requirements that kept this one from being judged
    attribution: Attribution | None = None  # with --upstream-url only, like ``upstream``
    upstream: UpstreamResult | None = None

    def as_dict(self) -> dict[str, Any]:
        attributed: dict[str, Any] = {} if self.attribution is None else {"attribution": self.attribution.value}
        if self.upstream is not None:
            attributed["upstream"] = self.upstream.as_dict()
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
            "blocked_by": list(self.blocked_by),
            "tests": [t.as_dict() for t in self.tests],
            **attributed,
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
            blocked_by=tuple(data.get("blocked_by", ())),
            attribution=Attribution(data["attribution"]) if data.get("attribution") else None,
            upstream=UpstreamResult.from_dict(data["upstream"]) if data.get("upstream") else None,
        )


@dataclass(frozen=True)
class Claim:
    """What a run lets a vendor claim. ``status`` is a word for machines, CSS and colours:

    ``conformant`` (``level`` says at which level) · ``not-conformant`` (a MUST requirement FAILs) · ``waived``
    (only waivers stand between the product and a MUST-level claim: no claim, never the pass colour) ·
    ``no-claim`` (a MUST requirement could not be judged: ERROR or BLOCKED, or the run stopped early) ·
    ``partial`` (a selection left requirements unjudged) · ``interrupted`` (stopped by a signal).
    """

    level: str | None  # "MUST+SHOULD", "MUST" or None
    complete: bool  # every applicable requirement was judged
    waivers: int
    text: str
    status: str = "conformant"

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "status": self.status,
            "complete": self.complete,
            "waivers": self.waivers,
            "text": self.text,
        }


@dataclass(frozen=True)
class RunMeta:
    suite_version: str
    spec_version: str
    spec_commit: str
    spec_sha256: str
    profile: str
    product: str | None  # from the deviations file: the product under test, never its local path
    target: str
    seed: int | None
    max_examples: int
    started: str
    finished: str
    duration: float
    selection: tuple[str, ...] = ()
    product_version: str | None = None
    stopped: str | None = None
    """Why the run ended before every selected test ran (a signal, --max-duration, the target gone), if it did."""
    interrupted: bool = False
    """Stopped by a signal (Ctrl-C, SIGTERM): the reports claim nothing."""
    variables: tuple[tuple[str, str], ...] = ()
    """(shell variable, what it stands for) for each secret the curl reproducers reference, e.g.
    ("MODMSG_API_KEY", "the API key (sent as Authorization: Bearer …)"): to be said once in every report."""
    upstream: str | None = None
    """The upstream the run also judged (``--upstream-url``, credentials redacted); only then written."""
    draws_with: tuple[tuple[str, str], ...] = ()
    """(name, version) of what decides the cases a seed draws besides the suite and the spec: Python, Hypothesis,
    Schemathesis. A replay with other versions may draw other cases. Empty in results written before it existed."""

    def as_dict(self) -> dict[str, Any]:
        upstream = {} if self.upstream is None else {"upstream": self.upstream}
        draws_with = {"draws_with": dict(self.draws_with)} if self.draws_with else {}
        return {
            "suite_version": self.suite_version,
            "spec_version": self.spec_version,
            "spec_commit": self.spec_commit,
            "spec_sha256": self.spec_sha256,
            "profile": self.profile,
            "product": self.product,
            "product_version": self.product_version,
            "target": self.target,
            "seed": self.seed,
            "max_examples": self.max_examples,
            "started": self.started,
            "finished": self.finished,
            "duration": round(self.duration, 3),
            "selection": list(self.selection),
            "stopped": self.stopped,
            "interrupted": self.interrupted,
            "variables": [{"variable": name, "meaning": meaning} for name, meaning in self.variables],
            **draws_with,
            **upstream,
        }


RESULTS_FORMAT = "modmsg-results/2"
BUNDLED = "bundled reference server"
"""``RunMeta.target`` of a run against the reference server the suite started itself."""

_BAD = (Outcome.FAIL, Outcome.ERROR, Outcome.BLOCKED)
_JUDGED_BAD = (Outcome.FAIL, Outcome.ERROR)


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
    # BLOCKED is left out on both sides: it was not judged, and the requirement that blocked it is compared itself.
    return Comparison(
        baseline=label,
        regressions=tuple(i for i in common if before[i] is Outcome.PASS and now[i] in _JUDGED_BAD),
        fixes=tuple(i for i in common if before[i] in _JUDGED_BAD and now[i] is Outcome.PASS),
        unchanged_failures=tuple(i for i in common if before[i] in _JUDGED_BAD and now[i] in _JUDGED_BAD),
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
        """Whether the run should fail a CI job: any FAIL/ERROR/BLOCKED, or with a baseline, any regression.

        A WAIVED requirement never fails the job (that is what a waiver is for), though it never makes a claim.
        """
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
            "format": RESULTS_FORMAT,
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
        meta["draws_with"] = tuple((meta.get("draws_with") or {}).items())
        return cls(
            meta=RunMeta(**meta),
            requirements=tuple(RequirementResult.from_dict(r) for r in data["requirements"]),
            claim=Claim(**data["claim"]),
            counts=dict(data.get("counts", {})),
            comparison=Comparison.from_dict(data["comparison"]) if data.get("comparison") else None,
        )
