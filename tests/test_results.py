"""Rollup: one outcome per requirement, worst wins; ERROR is never FAIL; SKIP and WAIVED are never PASS."""

from __future__ import annotations

import dataclasses

from modmsg.requirements import load_catalogue
from modmsg.results import Outcome, RunMeta, RunResult, TestRecord, worst
from modmsg.rollup import rollup

CATALOGUE = load_catalogue()
META = RunMeta(
    suite_version="t",
    spec_version="2.3.0",
    spec_commit="c",
    spec_sha256="s",
    profile="openai",
    product=None,
    target="t",
    seed=1,
    max_examples=1,
    started="s",
    finished="f",
    duration=1.0,
)


def record(outcome: Outcome, *reqs: str, failed_req: str | None = None, nodeid: str = "t") -> TestRecord:
    return TestRecord(nodeid=nodeid, reqs=reqs, outcome=outcome, failed_req=failed_req)


def all_passing(profile: str = "openai") -> list[TestRecord]:
    return [record(Outcome.PASS, r.id, nodeid=r.id) for r in CATALOGUE.for_profile(profile) if not r.conditional]


def run(records, profile="openai", waivers=None) -> RunResult:
    return rollup(CATALOGUE, records, profile_name=profile, profile_base=profile, waivers=waivers or {}, meta=META)


def outcome(result: RunResult, req_id: str) -> Outcome:
    return next(r.outcome for r in result.requirements if r.id == req_id)


def test_worst_wins_and_error_ranks_below_fail():
    assert worst([Outcome.PASS, Outcome.SKIP]) is Outcome.PASS
    assert worst([Outcome.PASS, Outcome.ERROR]) is Outcome.ERROR
    assert worst([Outcome.ERROR, Outcome.FAIL, Outcome.PASS]) is Outcome.FAIL
    assert worst([]) is None


def test_everything_passing_claims_must_and_should():
    result = run(all_passing())
    assert result.claim.level == "MUST+SHOULD" and result.claim.complete
    assert outcome(result, "MM-HDR-04") is Outcome.SKIP  # conditional, never triggered: does not block the claim
    assert not result.failed


def test_one_failing_should_drops_the_claim_to_must():
    records = [*all_passing(), record(Outcome.FAIL, "MM-HDR-03", failed_req="MM-HDR-03")]
    result = run(records)
    assert outcome(result, "MM-HDR-03") is Outcome.FAIL
    assert result.claim.level == "MUST" and "MUST level" in result.claim.text


def test_one_failing_must_is_not_conformant():
    result = run([*all_passing(), record(Outcome.FAIL, "MM-META-06", failed_req="MM-META-06")])
    assert result.claim.level is None and result.claim.text.startswith("not conformant")
    assert result.failed


def test_a_typed_failure_fails_its_requirement_and_blocks_the_others_of_its_test():
    result = run([*all_passing(), record(Outcome.FAIL, "MM-META-06", "MM-META-12", failed_req="MM-META-06")])
    assert outcome(result, "MM-META-06") is Outcome.FAIL
    blocked = next(r for r in result.requirements if r.id == "MM-META-12")
    assert blocked.outcome is Outcome.BLOCKED and blocked.blocked_by == ("MM-META-06",)
    assert "MM-META-06" in blocked.reason


def test_a_failed_precondition_fails_its_own_requirement_and_blocks_the_test_requirement():
    """The modify step of a metadata test answering 201 fails MM-RESP-01 and blocks MM-META-01; it is never a
    SKIP 'not run (deselected)' nor a second FAIL."""
    records = [r for r in all_passing() if r.reqs != ("MM-META-01",)]
    records.append(record(Outcome.FAIL, "MM-META-01", failed_req="MM-RESP-01"))
    result = run(records)
    assert outcome(result, "MM-RESP-01") is Outcome.FAIL
    assert outcome(result, "MM-META-01") is Outcome.BLOCKED
    assert result.claim.status == "not-conformant" and "1 blocked" in result.claim.text
    assert result.counts["BLOCKED"] == 1 and result.failed


def test_blocked_ranks_above_pass_and_below_error_and_fail():
    assert worst([Outcome.PASS, Outcome.BLOCKED]) is Outcome.BLOCKED
    assert worst([Outcome.BLOCKED, Outcome.ERROR]) is Outcome.ERROR
    assert worst([Outcome.BLOCKED, Outcome.FAIL]) is Outcome.FAIL


def test_a_must_blocked_by_a_failing_should_gives_no_claim():
    records = [r for r in all_passing() if r.reqs != ("MM-META-01",)]
    records.append(record(Outcome.FAIL, "MM-META-01", failed_req="MM-HDR-03"))  # HDR-03 is SHOULD
    result = run(records)
    assert outcome(result, "MM-META-01") is Outcome.BLOCKED
    assert result.claim.level is None and result.claim.status == "no-claim"


def test_an_untyped_assertion_fails_every_requirement_of_the_test():
    result = run([*all_passing(), record(Outcome.FAIL, "MM-META-06", "MM-META-12")])
    assert outcome(result, "MM-META-06") is outcome(result, "MM-META-12") is Outcome.FAIL


def test_error_is_reported_as_error_not_fail():
    result = run([*all_passing(), record(Outcome.ERROR, "MM-ERR-01")])
    assert outcome(result, "MM-ERR-01") is Outcome.ERROR
    assert result.failed and result.claim.level is None
    assert result.claim.text.startswith("no claim: 1 MUST requirement could not be judged")
    both = run([*all_passing(), record(Outcome.ERROR, "MM-ERR-01"), record(Outcome.FAIL, "MM-ERR-02")])
    assert both.claim.text.endswith("1 requirement failing, 1 could not be judged (ERROR)")


def test_skip_is_never_pass_and_a_deselected_requirement_makes_a_partial_run():
    records = [r for r in all_passing() if r.reqs != ("MM-META-16",)]
    records.append(record(Outcome.SKIP, "MM-META-16"))
    result = run(records)
    assert outcome(result, "MM-META-16") is Outcome.SKIP
    assert result.claim.level is None and result.claim.text.startswith("partial run")
    assert outcome(run(all_passing()[:5]), "MM-META-16") is Outcome.SKIP


def test_waiver_reports_waived_never_pass_and_a_waived_must_makes_no_claim():
    records = [*all_passing(), record(Outcome.FAIL, "MM-META-06", failed_req="MM-META-06")]
    result = run(records, waivers={"MM-META-06": "the gateway allows 32 keys", "MM-HDR-03": "no request ids"})
    waived = {r.id: r for r in result.requirements if r.outcome is Outcome.WAIVED}
    assert set(waived) == {"MM-META-06", "MM-HDR-03"}
    assert waived["MM-META-06"].observed is Outcome.FAIL and waived["MM-HDR-03"].observed is Outcome.PASS
    assert result.claim.level is None and result.claim.status == "waived"
    assert result.claim.text.startswith("not conformant to the openai profile: 2 requirements waived (1 MUST)")
    assert not result.failed  # the gate may stay green: that is what a waiver is for


def test_a_waived_should_keeps_the_must_claim_but_not_must_and_should():
    result = run(all_passing(), waivers={"MM-HDR-03": "the gateway strips x-request-id"})
    assert result.claim.level == "MUST" and result.claim.status == "conformant"
    assert "not at MUST+SHOULD: 1 SHOULD requirement waived" in result.claim.text
    assert not result.failed


def test_a_stopped_run_claims_nothing_and_marks_unfinished_requirements():
    stopped = dataclasses.replace(META, stopped="the run budget of 60 s (--max-duration) is spent")
    records = [*all_passing()[:10], record(Outcome.FAIL, "MM-META-06", failed_req="MM-META-06")]
    expected = {r.id: 1 for r in CATALOGUE.for_profile("openai")}
    result = rollup(
        CATALOGUE, records, profile_name="openai", profile_base="openai", waivers={}, meta=stopped, expected=expected
    )
    first = records[0].reqs[0]
    assert outcome(result, first) is Outcome.PASS  # every test of it ran
    assert outcome(result, "MM-META-06") is Outcome.FAIL  # proven, stands
    unfinished = next(r for r in result.requirements if r.id == "MM-META-16")
    assert unfinished.outcome is Outcome.ERROR and "--max-duration" in unfinished.reason
    assert result.claim.level is None and result.claim.status == "no-claim"
    interrupted = dataclasses.replace(stopped, stopped="interrupted by SIGINT", interrupted=True)
    again = rollup(
        CATALOGUE,
        records,
        profile_name="openai",
        profile_base="openai",
        waivers={},
        meta=interrupted,
        expected=expected,
    )
    assert outcome(again, "MM-META-16") is Outcome.SKIP and again.claim.status == "interrupted"
    assert again.claim.text.startswith("interrupted")


def test_requirements_outside_the_profile_are_skipped_with_a_reason():
    result = run(all_passing("spec"), profile="spec")
    skipped = {r.id: r.reason for r in result.requirements if r.outcome is Outcome.SKIP}
    assert "MM-META-04" in skipped and "spec profile" in skipped["MM-META-04"]
    assert result.claim.level == "MUST+SHOULD"


def test_results_round_trip_through_their_dict_form():
    result = run([*all_passing(), record(Outcome.FAIL, "MM-META-06", failed_req="MM-META-06")])
    again = RunResult.from_dict(result.as_dict())
    assert again.as_dict() == result.as_dict()


def test_counts_add_up_to_the_catalogue():
    result = run([*all_passing(), record(Outcome.ERROR, "MM-ERR-01")], waivers={"MM-HDR-03": "x"})
    assert sum(result.counts.values()) == len(CATALOGUE.active())
    assert result.counts["ERROR"] == 1 and result.counts["WAIVED"] == 1 and result.counts["SKIP"] == 1
    assert result.counts["BLOCKED"] == 0
