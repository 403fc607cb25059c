"""Rollup: one outcome per requirement, worst wins; ERROR is never FAIL; SKIP and WAIVED are never PASS."""

from __future__ import annotations

from modmsg.requirements import load_catalogue
from modmsg.results import Outcome, RunMeta, RunResult, TestRecord, rollup, worst

CATALOGUE = load_catalogue()
META = RunMeta(
    suite_version="t",
    spec_version="2.3.0",
    spec_commit="c",
    spec_sha256="s",
    profile="openai",
    overlay=None,
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


def test_a_typed_failure_fails_only_its_requirement():
    result = run([*all_passing(), record(Outcome.FAIL, "MM-META-06", "MM-META-12", failed_req="MM-META-06")])
    assert outcome(result, "MM-META-06") is Outcome.FAIL
    assert outcome(result, "MM-META-12") is Outcome.PASS


def test_an_untyped_assertion_fails_every_requirement_of_the_test():
    result = run([*all_passing(), record(Outcome.FAIL, "MM-META-06", "MM-META-12")])
    assert outcome(result, "MM-META-06") is outcome(result, "MM-META-12") is Outcome.FAIL


def test_error_is_reported_as_error_not_fail():
    result = run([*all_passing(), record(Outcome.ERROR, "MM-ERR-01")])
    assert outcome(result, "MM-ERR-01") is Outcome.ERROR
    assert result.failed and result.claim.level is None
    assert result.claim.text.startswith("no claim: 1 requirement(s) could not be judged")
    both = run([*all_passing(), record(Outcome.ERROR, "MM-ERR-01"), record(Outcome.FAIL, "MM-ERR-02")])
    assert both.claim.text.endswith("1 requirement(s) failing, 1 could not be judged (ERROR)")


def test_skip_is_never_pass_and_a_deselected_requirement_makes_a_partial_run():
    records = [r for r in all_passing() if r.reqs != ("MM-META-16",)]
    records.append(record(Outcome.SKIP, "MM-META-16"))
    result = run(records)
    assert outcome(result, "MM-META-16") is Outcome.SKIP
    assert result.claim.level is None and result.claim.text.startswith("partial run")
    assert outcome(run(all_passing()[:5]), "MM-META-16") is Outcome.SKIP


def test_waiver_reports_waived_never_pass_and_is_counted_in_the_claim():
    records = [*all_passing(), record(Outcome.FAIL, "MM-REQ-05", failed_req="MM-REQ-05")]
    result = run(records, waivers={"MM-REQ-05": "the gateway injects OpenAI-Beta", "MM-HDR-03": "no request ids"})
    waived = {r.id: r for r in result.requirements if r.outcome is Outcome.WAIVED}
    assert set(waived) == {"MM-REQ-05", "MM-HDR-03"}
    assert waived["MM-REQ-05"].observed is Outcome.FAIL and waived["MM-HDR-03"].observed is Outcome.PASS
    assert result.claim.level == "MUST+SHOULD" and "with 2 waivers" in result.claim.text


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
