"""The sequences (MM-SEQ): the overlay's links as Schemathesis resolves them, the model, and the machine."""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis.stateful import RULE_MARKER
from schemathesis.generation.stateful.state_machine import normalize_name

from modmsg.api import AssistantsApi
from modmsg.config import ConfigError, resolve
from modmsg.profiles import load_profile
from modmsg.reference import start_server
from modmsg.reference.variants.sequences import SEQUENCE_VARIANTS
from modmsg.sequences.links import OPERATIONS, LinkError, sequence_links, stateful_schema
from modmsg.sequences.model import Model, after_modify
from modmsg.sequences.run import SequenceRun
from modmsg.spec import load_fragment
from modmsg.transport import Transport
from proving.mutation import REFERENCE, run_many, run_variant

# The chain the issue asks for: createThread -> createMessage -> modifyMessage -> getMessage / listMessages ->
# deleteMessage / deleteThread, and modifyMessage after each.
CHAIN = (
    ("createThread", "createMessage"),
    ("createMessage", "modifyMessage"),
    ("modifyMessage", "getMessage"),
    ("modifyMessage", "listMessages"),
    ("getMessage", "deleteMessage"),
    ("listMessages", "deleteMessage"),
    ("modifyMessage", "deleteMessage"),
    ("modifyMessage", "deleteThread"),
    ("createThread", "deleteThread"),
    *((source, "modifyMessage") for source in ("createMessage", "modifyMessage", "getMessage", "listMessages")),
    ("deleteMessage", "modifyMessage"),
)


def test_the_vendored_fragment_has_no_links_the_overlay_adds_them():
    fragment = load_fragment()
    assert not any(
        "links" in response
        for item in fragment["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
    )
    assert {f"{s} -> {t}" for s, t in CHAIN} <= set(sequence_links().names())


def test_schemathesis_builds_its_state_machine_from_the_overlay_links():
    machine = stateful_schema().as_state_machine()  # NoLinksFound without links
    rules = {name for name in dir(machine) if getattr(getattr(machine, name, None), RULE_MARKER, None)}
    links = sequence_links()
    for source, target in CHAIN:
        link = links.links[(source, target)]
        assert not link.is_inferred
        assert normalize_name(link.full_name) in rules, (source, target)
    assert "POST /threads -> 200" in machine.bundles
    assert "DELETE /threads/{thread_id}/messages/{message_id} -> 200" in machine.bundles
    assert set(links.operations) == set(OPERATIONS)


def test_a_link_follows_an_answer_to_the_next_step():
    import json

    import requests

    from modmsg.sequences.links import step_output

    links = sequence_links()
    created = links.operations["createMessage"].Case(path_parameters={"thread_id": "thread_a"}, body={})
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps({"id": "msg_b", "thread_id": "thread_a"}).encode()
    output = step_output(created, response)
    assert links.follow(output, "modifyMessage") == {"thread_id": "thread_a", "message_id": "msg_b"}
    with pytest.raises(LinkError, match="no link createMessage -> createThread"):
        links.follow(output, "createThread")


def test_the_model_keeps_creation_order_deletions_and_the_merge_rule():
    model = Model(mode="merge")
    thread = model.add_thread("thread_a", {})
    first = model.add_message(thread, "msg_1", {"k0": "x"})
    second = model.add_message(thread, "msg_2", {})
    assert model.expected(first, {"k1": ""}) == [{"k0": "x", "k1": ""}]
    model.settle(first, {"k1": ""}, {"k0": "x", "k1": ""})
    second.deleted = True
    assert [m.label for m in model.live(thread)] == ["M1"]
    assert model.gone(second) and not model.gone(first)
    thread.deleted = True
    assert model.gone(first)


def test_an_open_mode_is_settled_by_the_first_modify_that_tells_merge_from_replace():
    model = Model(mode="any")
    message = model.add_message(model.add_thread("thread_a", {}), "msg_1", {"k0": "x"})
    assert model.expected(message, {"k1": "y"}) == [{"k0": "x", "k1": "y"}, {"k1": "y"}]
    model.settle(message, {"k1": "y"}, {"k1": "y"})
    assert model.mode == "replace"
    assert after_modify({"k0": "x"}, {"k1": "y"}, "merge") == {"k0": "x", "k1": "y"}


# ---------------------------------------------------------------------------------------------------------
# Proof: `pytest suites --req MM-SEQ` (the user's code path, in a subprocess) fails each variant whose defect
# lives between operations on its MM-SEQ requirement, with a shrunk sequence in the failure; and passes
# against the reference server whatever the seed.
# ---------------------------------------------------------------------------------------------------------

KEY = "sk-modmsg-sequences-test-0000"
PROOF_SEED = "11"
REFERENCE_SEEDS = ("1",)
"""`--req MM-SEQ` alone against the reference; tests/test_variants.py's seeded reference runs (five seeds, every
requirement, the default sequences) prove the sequences pass whatever the seed."""
SMALL = ("--max-sequences", "8", "--max-steps", "8")


def _failure_details(report_dir: Path, req: str) -> list[str]:
    results = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
    requirement = next(r for r in results["requirements"] if r["id"] == req)
    return [test["failure"]["detail"] for test in requirement["tests"] if test.get("failure")]


@pytest.fixture(scope="module")
def proof_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("sequences-proof")
    jobs = [
        (variant.name, partial(run_variant, variant, base / variant.name, "--req", "MM-SEQ", "--seed", PROOF_SEED))
        for variant in SEQUENCE_VARIANTS
    ]
    jobs += [
        (
            f"seed-{seed}",
            partial(run_variant, REFERENCE, base / f"seed-{seed}", "--req", "MM-SEQ", "--seed", seed, *SMALL),
        )
        for seed in REFERENCE_SEEDS
    ]
    return {"base": base, **run_many(jobs)}


@pytest.mark.parametrize("variant", SEQUENCE_VARIANTS, ids=lambda variant: variant.name)
def test_sequences_catch_each_defect_between_operations_with_a_shrunk_sequence(proof_runs, variant):
    outcome = proof_runs[variant.name]
    expected = sorted(req for req in variant.breaks if req.startswith("MM-SEQ-"))
    assert expected, f"{variant.name} must break an MM-SEQ requirement"
    assert sorted(outcome.failed) == expected, outcome.describe()
    assert not outcome.errored, outcome.describe()
    for req in expected:
        details = _failure_details(proof_runs["base"] / variant.name, req)
        assert details and "shrunk by Hypothesis" in details[0], outcome.describe()
        steps = [line for line in details[0].splitlines() if re.match(r"^\d+\. ", line)]
        assert 1 <= len(steps) <= 12 and "curl -sS -X " in details[0], details[0]
        assert "Replay the run: pytest suites --req MM-SEQ" in details[0]


@pytest.mark.parametrize("seed", REFERENCE_SEEDS)
def test_sequences_pass_against_the_reference_server_whatever_the_seed(proof_runs, seed):
    outcome = proof_runs[f"seed-{seed}"]
    seq = {req: value for req, value in outcome.outcomes.items() if req.startswith("MM-SEQ-")}
    assert len(seq) == 4 and set(seq.values()) == {"PASS"}, outcome.describe()


# ---------------------------------------------------------------------------------------------------------
# In process: the same seed draws the same sequences; the options are bounded
# ---------------------------------------------------------------------------------------------------------


def _sequence_run(server: Any, seed: int, **options: int) -> SequenceRun:
    transport = Transport(base_url=server.base_url, api_key=KEY)
    api = AssistantsApi(transport)
    run = SequenceRun(
        transport=transport,
        base_url=server.base_url,
        create_thread=lambda: api.create_thread({"modmsg_run": "modmsg-test"}),
        profile=load_profile("openai"),
        seed=seed,
        max_sequences=options.get("sequences", 20),
        max_steps=options.get("steps", 10),
        replay="pytest suites --req MM-SEQ --seed 3",
    )
    run.run()
    return run


def _steps(run: SequenceRun, req: str) -> list[str]:
    """The failing sequence's step lines, without the ids and ports the server handed out."""
    return [
        re.sub(r"(thread|msg)_[A-Za-z0-9]{24}|127\.0\.0\.1:\d+", "#", step.lines()[0])
        for step in run.findings[req].steps
    ]


def test_the_same_seed_draws_the_same_sequences_and_shrinks_them_alike():
    variant = next(v for v in SEQUENCE_VARIANTS if v.name == "get_or_create_on_modify")
    with variant.start(KEY) as first, variant.start(KEY) as second:
        one, two = _sequence_run(first, 3), _sequence_run(second, 3)
    assert set(one.findings) == set(two.findings) == {"MM-SEQ-02"}
    assert _steps(one, "MM-SEQ-02") == _steps(two, "MM-SEQ-02")
    assert "(must be refused)" in _steps(one, "MM-SEQ-02")[-1]  # the refused modify that left a message behind
    assert (one.sent, one.rounds) == (two.sent, two.rounds)


def test_a_correct_server_leaves_nothing_to_report_and_every_step_is_bounded():
    with start_server(KEY) as server:
        run = _sequence_run(server, 9, sequences=5, steps=6)
    assert not run.findings and run.rounds == 1
    assert 0 < run.sent <= 5 * (3 + 6 * 8)  # the start (3 calls), then at most 8 requests a step at this size
    assert run.sample and all(exchange.status == 200 for exchange in run.sample)


MAX_STEPS_CASES = [
    ("51", "--max-steps must be at most 50, not 51"),
    ("0", "--max-steps must be a whole number, 1 or more"),
]


@pytest.mark.parametrize(("given", "sentence"), MAX_STEPS_CASES)
def test_max_steps_is_bounded(given, sentence):
    with pytest.raises(ConfigError, match=re.escape(sentence)):
        resolve({"max_steps": given}, env={})
    assert resolve({"max_sequences": "0"}, env={}).max_sequences == 0
