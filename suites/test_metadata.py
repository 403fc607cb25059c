"""META: metadata round trip, merge/replace semantics, limits, atomicity, empty modifies, concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hypothesis_settings

from modmsg.api import AssistantsApi
from modmsg.checks.metadata import (
    accepted,
    metadata_contains,
    metadata_follows_mode,
    no_update_lost,
    rejected,
    state_unchanged,
)
from modmsg.checks.response import ok_json
from modmsg.failures import LimitNotEnforced, MetadataNotPersisted, WrongMetadataSemantics, WrongTypeAccepted
from modmsg.generation.lanes import Lane, run_hypothesis_lanes
from modmsg.plugin.ahead import message_fixture
from modmsg.strategies import (
    MAX_KEY_LENGTH,
    MAX_KEYS,
    MAX_VALUE_LENGTH,
    NON_OBJECT_METADATA,
    NON_STRING_VALUES,
    TRICKY_PAIRS,
    WIDE_CHARACTERS,
    keys,
    text_of_length,
    valid_metadata,
)

SEED = {"before": "seeded by createMessage"}
ROUND_TRIP_EXAMPLES = 25


seeded = message_fixture("seeded", metadata=SEED)
"""A fresh message that already carries SEED metadata, so 'unchanged' is observable."""


def modify(api, message, body):
    return api.modify_message(message["thread_id"], message["id"], body)


def fetch(api, message):
    return api.fetch_message(message["thread_id"], message["id"])


def listed(api, message) -> dict:
    body = ok_json(api.list_messages(message["thread_id"], limit=100), req="MM-META-03")
    found = [m for m in body.get("data", []) if m.get("id") == message["id"]]
    if not found:
        raise MetadataNotPersisted(
            req="MM-META-03",
            expected=f"{message['id']} in listMessages",
            received=f"{len(body.get('data', []))} messages without it",
        )
    return found[0]


def assert_rejected_atomically(api, message, body, *, req, what, failure=LimitNotEnforced):
    before = fetch(api, message)
    rejected(modify(api, message, body), req=req, what=what, failure=failure)
    state_unchanged(before, fetch(api, message), req="MM-META-12", what=what)


def read_back(api, message, sent) -> dict:
    """The precondition of every judgement made on stored state: a getMessage after the write shows what was
    sent (MM-META-02). A stale read or a lost write fails that requirement, and BLOCKS the caller's."""
    stored = fetch(api, message)
    metadata_contains(stored, sent, req="MM-META-02", where="a later getMessage", failure=MetadataNotPersisted)
    return stored


# ------------------------------------------------------------------------------------------ round trip


@pytest.mark.req("MM-META-01")
def test_sent_pairs_are_echoed_verbatim(api, message):
    body = ok_json(modify(api, message, {"metadata": TRICKY_PAIRS}), req="MM-RESP-01")
    metadata_contains(body, TRICKY_PAIRS, req="MM-META-01")


@pytest.mark.req("MM-META-02")
def test_sent_pairs_persist_for_get(api, message):
    ok_json(modify(api, message, {"metadata": TRICKY_PAIRS}), req="MM-RESP-01")
    metadata_contains(
        fetch(api, message),
        TRICKY_PAIRS,
        req="MM-META-02",
        where="a later getMessage",
        failure=MetadataNotPersisted,
    )


@pytest.mark.req("MM-META-03")
def test_sent_pairs_persist_in_list(api, message):
    ok_json(modify(api, message, {"metadata": TRICKY_PAIRS}), req="MM-RESP-01")
    metadata_contains(
        listed(api, message),
        TRICKY_PAIRS,
        req="MM-META-03",
        where="listMessages",
        failure=MetadataNotPersisted,
    )


@pytest.mark.req("MM-META-01", "MM-META-02")
def test_generated_metadata_round_trips(api, threads, settings, transport):
    """Drawn in lanes (``modmsg.generation.lanes``), --concurrency at once: the first failing lane's example is
    reported, as one lane after the other would."""
    thread = threads.create()

    def round_trips(lane: Lane) -> None:
        lane_api = AssistantsApi(lane.transport)

        @hypothesis_seed(lane.seed)
        @hypothesis_settings(settings_for_round_trip, max_examples=lane.size)
        @given(metadata=valid_metadata())
        def round_trip(metadata):
            lane.check()
            message = lane_api.create_message(thread["id"])
            body = ok_json(modify(lane_api, message, {"metadata": metadata}), req="MM-RESP-01")
            metadata_contains(body, metadata, req="MM-META-01")
            metadata_contains(
                fetch(lane_api, message),
                metadata,
                req="MM-META-02",
                where="a later getMessage",
                failure=MetadataNotPersisted,
            )

        round_trip()

    run_hypothesis_lanes(
        round_trips,
        examples=ROUND_TRIP_EXAMPLES,
        seed=settings.seed,
        label="round-trips",
        concurrency=settings.concurrency,
        transport=transport,
    )


settings_for_round_trip = hypothesis_settings(
    max_examples=ROUND_TRIP_EXAMPLES,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: one failing example is evidence enough, and fast
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# ------------------------------------------------------------------------------------------ semantics


@pytest.mark.req("MM-META-04")
def test_metadata_semantics_follow_the_profile(api, thread, profile):
    message = api.create_message(thread["id"], metadata={"keep": "1", "overwrite": "old"})
    sent = {"overwrite": "new", "blank": ""}
    before = {"keep": "1", "overwrite": "old"}
    mode = profile.settings.metadata_mode
    body = ok_json(modify(api, message, {"metadata": sent}), req="MM-RESP-01")
    metadata_contains(body, sent, req="MM-META-01")  # the answer shows the write at all, before how it merged
    metadata_follows_mode(before, sent, body, mode=mode)
    metadata_follows_mode(before, sent, read_back(api, message, sent), mode=mode)


@pytest.mark.req("MM-META-15")
def test_repeated_modify_is_idempotent(api, seeded):
    sent = {"repeat": "same", "unicode": "ünïcödé 🦄"}
    # Preconditions: the first modify is echoed (MM-META-01) and read back (MM-META-02) as sent.
    first = ok_json(modify(api, seeded, {"metadata": sent}), req="MM-RESP-01")
    metadata_contains(first, sent, req="MM-META-01")
    read_back(api, seeded, sent)
    second = ok_json(modify(api, seeded, {"metadata": sent}), req="MM-RESP-01")
    stored = fetch(api, seeded)
    if not first.get("metadata") == second.get("metadata") == stored.get("metadata"):
        raise WrongMetadataSemantics(
            req="MM-META-15",
            expected="the same metadata after the first and the second identical modify",
            received=f"first {first.get('metadata')!r}, second {second.get('metadata')!r}, "
            f"stored {stored.get('metadata')!r}",
        )


@pytest.mark.req("MM-META-16")
@pytest.mark.modmsg_alone  # its writers' requests are its own evidence only on pytest's thread
def test_concurrent_modifies_lose_no_update(api, seeded, profile):
    if profile.settings.metadata_mode != "merge":
        pytest.skip("concurrent distinct-key writes only add up under merge semantics")
    # Preconditions: one plain modify is read back (MM-META-02) and merged (MM-META-04), so a key missing below
    # is lost to the race, not to a stale read, a lost write or replace semantics.
    plain = {"plain": "write"}
    ok_json(modify(api, seeded, {"metadata": plain}), req="MM-RESP-01")
    metadata_follows_mode(SEED, plain, read_back(api, seeded, plain), mode="merge")
    writers = MAX_KEYS - len(SEED) - len(plain)
    expected = {f"writer-{i:02d}": f"value-{i}" for i in range(writers)}
    start = threading.Barrier(writers)

    def write(key: str):
        start.wait(timeout=30)
        return modify(api, seeded, {"metadata": {key: expected[key]}})

    with ThreadPoolExecutor(max_workers=writers) as pool:
        responses = list(pool.map(write, expected))
    for response in responses:
        accepted(response, req="MM-META-16", what=f"one of {writers} concurrent modifies")
    no_update_lost(fetch(api, seeded), {**SEED, **plain, **expected})


# ------------------------------------------------------------------------------------------ limits

BOUNDARY_CASES = {
    "16 keys": keys(MAX_KEYS),
    "64-character key": {text_of_length(MAX_KEY_LENGTH): "v"},
    "512-character value": {"k": text_of_length(MAX_VALUE_LENGTH)},
    "all limits at once": {
        f"{i:02d}" + text_of_length(MAX_KEY_LENGTH - 2): text_of_length(MAX_VALUE_LENGTH, "v") for i in range(MAX_KEYS)
    },
}


@pytest.mark.req("MM-META-05")
@pytest.mark.parametrize("case", BOUNDARY_CASES, ids=str)
def test_limits_are_accepted_at_the_boundary(api, message, case):
    sent = BOUNDARY_CASES[case]
    response = modify(api, message, {"metadata": sent})
    accepted(response, req="MM-META-05", what=case)
    read_back(api, message, sent)


@pytest.mark.req("MM-META-05")
def test_overwriting_every_key_of_a_full_message_is_accepted(api, thread, profile):
    # 16 stored keys sent again with new values still leave 16: a limit that counts overwritten keys twice is wrong.
    if profile.settings.metadata_mode != "merge":
        pytest.skip("overwriting only keeps the count under merge semantics")
    message = api.create_message(thread["id"], metadata=keys(MAX_KEYS))
    sent = {key: f"new-{value}" for key, value in keys(MAX_KEYS).items()}
    accepted(modify(api, message, {"metadata": sent}), req="MM-META-05", what="16 overwritten keys on a full message")
    read_back(api, message, sent)


@pytest.mark.req("MM-META-06", "MM-META-12")
def test_17_keys_are_rejected_and_change_nothing(api, message):
    # An unseeded message: 17 keys must be refused on their own, not because of a merged total (MM-META-11).
    assert_rejected_atomically(api, message, {"metadata": keys(MAX_KEYS + 1)}, req="MM-META-06", what="17 keys")


@pytest.mark.req("MM-META-07", "MM-META-12")
def test_65_character_key_is_rejected_and_changes_nothing(api, seeded):
    body = {"metadata": {"ok": "v", text_of_length(MAX_KEY_LENGTH + 1): "v"}}
    assert_rejected_atomically(api, seeded, body, req="MM-META-07", what="a 65-character key")


@pytest.mark.req("MM-META-08", "MM-META-12")
def test_513_character_value_is_rejected_and_changes_nothing(api, seeded):
    body = {"metadata": {"ok": "v", "long": text_of_length(MAX_VALUE_LENGTH + 1)}}
    assert_rejected_atomically(api, seeded, body, req="MM-META-08", what="a 513-character value")


@pytest.mark.req("MM-META-09", "MM-META-12")
@pytest.mark.parametrize("value", NON_STRING_VALUES, ids=repr)
def test_non_string_value_is_rejected_and_changes_nothing(api, seeded, value):
    body = {"metadata": {"ok": "applied?", "bad": value}}
    assert_rejected_atomically(
        api, seeded, body, req="MM-META-09", what=f"the value {value!r}", failure=WrongTypeAccepted
    )


@pytest.mark.req("MM-META-10", "MM-META-12")
@pytest.mark.parametrize("value", NON_OBJECT_METADATA, ids=repr)
def test_non_object_metadata_is_rejected_and_changes_nothing(api, seeded, value):
    assert_rejected_atomically(
        api, seeded, {"metadata": value}, req="MM-META-10", what=f"metadata {value!r}", failure=WrongTypeAccepted
    )


@pytest.mark.req("MM-META-11", "MM-META-12")
def test_merged_total_over_16_keys_is_rejected(api, thread, profile):
    if profile.settings.metadata_mode != "merge" or not profile.settings.merged_total_limit:
        pytest.skip("the profile does not count the merged result against the 16-key limit")
    stored, sent = keys(10, prefix="old"), keys(7, prefix="new")
    message = api.create_message(thread["id"], metadata=stored)
    what = "7 new keys on top of 10 stored ones"
    before = fetch(api, message)
    response = modify(api, message, {"metadata": sent})
    if 200 <= response.status_code < 300:
        # Accepted: only a merge makes this a limit defect; a target that replaced the map broke MM-META-04.
        after = fetch(api, message).get("metadata") or {}
        if after == sent:
            metadata_follows_mode(stored, sent, {"metadata": after}, mode="merge")
    rejected(response, req="MM-META-11", what=what, failure=LimitNotEnforced)
    state_unchanged(before, fetch(api, message), req="MM-META-12", what=what)


@pytest.mark.req("MM-META-12")
def test_valid_pairs_of_a_rejected_modify_are_not_applied(api, seeded):
    body = {"metadata": {"valid": "must not be stored", "invalid": 42}}
    assert_rejected_atomically(
        api, seeded, body, req="MM-META-09", what="one valid and one invalid pair", failure=WrongTypeAccepted
    )


COMBINING = "e\u0301"  # one grapheme, two code points: a server counting graphemes sees half the length


def code_points(length: int, character: str) -> str:
    """Exactly ``length`` code points built from ``character`` (which may itself be several code points)."""
    return (character * length)[:length]


@pytest.mark.req("MM-META-18")
@pytest.mark.parametrize(
    "character",
    [*sorted(set(WIDE_CHARACTERS.values()) - {"k"}), COMBINING],
    ids=ascii,
)
@pytest.mark.parametrize("part", ["key", "value"])
def test_lengths_are_counted_in_code_points(api, seeded, character, part):
    limit = MAX_KEY_LENGTH if part == "key" else MAX_VALUE_LENGTH

    def body(length: int) -> dict:
        text = code_points(length, character)
        return {"metadata": {text: "v"} if part == "key" else {"k": text}}

    at_limit = body(limit)
    accepted(modify(api, seeded, at_limit), req="MM-META-18", what=f"a {limit}-code-point {part} of {character!r}")
    read_back(api, seeded, at_limit["metadata"])
    rejected(
        modify(api, seeded, body(limit + 1)),
        req="MM-META-18",
        what=f"a {limit + 1}-code-point {part} of {character!r}",
        failure=LimitNotEnforced,
    )


# ------------------------------------------------------------------------------------------ empty modifies

EMPTY_MODIFIES = {
    "MM-META-13": ({}, "body {}"),
    "MM-META-14": ({"metadata": None}, 'body {"metadata": null}'),
    "MM-META-17": ({"metadata": {}}, 'body {"metadata": {}}'),
}


@pytest.mark.parametrize(
    "req",
    [pytest.param(r, marks=pytest.mark.req(r), id=r) for r in EMPTY_MODIFIES],
)
def test_empty_modify_is_accepted_as_the_profile_says(api, seeded, profile, req):
    body, what = EMPTY_MODIFIES[req]
    response = modify(api, seeded, body)
    accepted(response, req=req, what=what)
    outcome = profile.settings.empty_modify
    allowed = {"unchanged": [SEED], "cleared": [None, {}], "any": [SEED, None, {}]}[outcome]
    for where, state in (
        ("the response", ok_json(response, req=req)),
        ("a later getMessage", fetch(api, seeded)),
    ):
        if state.get("metadata") not in allowed:
            raise WrongMetadataSemantics(
                req=req,
                expected=f"metadata {outcome} in {where} after {what}",
                received=repr(state.get("metadata")),
            )
