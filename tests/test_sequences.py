"""The sequences (MM-SEQ): the overlay's links as Schemathesis resolves them, the model, and the machine."""

from __future__ import annotations

import pytest
from hypothesis.stateful import RULE_MARKER
from schemathesis.generation.stateful.state_machine import normalize_name

from modmsg.sequences.links import OPERATIONS, LinkError, sequence_links, stateful_schema
from modmsg.sequences.model import Model, after_modify
from modmsg.spec import load_fragment

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
