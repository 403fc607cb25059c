"""The vendored fragment is byte-for-byte upstream; the overlay adds only what upstream says in prose or omits."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from modmsg.paths import REPO_DIR
from modmsg.spec import SpecError, apply_overlay, load_fragment, load_overlaid, resolve_pointer, spec_info

SHARED_COPY = REPO_DIR.parent / "shared" / "reference" / "openai-assistants-messages.yaml"
METADATA = "#/components/schemas/Metadata/anyOf/0"
MODIFY = "#/paths/~1threads~1{thread_id}~1messages~1{message_id}/post"


def test_vendored_fragment_matches_the_sha256_recorded_in_upstream_md():
    recorded = re.search(
        r"sha256 of the vendored file \| `([0-9a-f]{64})`", (REPO_DIR / "spec/UPSTREAM.md").read_text()
    )
    assert recorded, "spec/UPSTREAM.md must record the sha256"
    actual = hashlib.sha256((REPO_DIR / "spec/modify-message.openapi.yaml").read_bytes()).hexdigest()
    assert actual == recorded.group(1) == spec_info().sha256


@pytest.mark.skipif(not SHARED_COPY.exists(), reason="the shared research copy is not beside this checkout")
def test_vendored_fragment_is_byte_identical_to_the_research_copy():
    assert (REPO_DIR / "spec/modify-message.openapi.yaml").read_bytes() == Path(SHARED_COPY).read_bytes()


def test_provenance_is_read_from_the_fragment():
    info = spec_info()
    assert info.version == "2.3.0"
    assert info.commit == "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"


def test_overlaid_spec_is_a_valid_openapi_document():
    validate(load_overlaid())


def test_limits_exist_only_in_the_overlay():
    upstream, overlaid = resolve_pointer(load_fragment(), METADATA), resolve_pointer(load_overlaid(), METADATA)
    assert "maxProperties" not in upstream and "propertyNames" not in upstream
    assert overlaid["maxProperties"] == 16
    assert overlaid["propertyNames"] == {"maxLength": 64}
    assert overlaid["additionalProperties"] == {"type": "string", "maxLength": 512}


def test_overlay_declares_beta_header_and_error_responses_on_modify():
    operation = resolve_pointer(load_overlaid(), MODIFY)
    assert {"$ref": "#/components/parameters/OpenAIBeta"} in operation["parameters"]
    assert {"200", "400", "401", "404", "429"} <= set(operation["responses"])
    upstream = resolve_pointer(load_fragment(), MODIFY)
    assert set(upstream["responses"]) == {"200", "429"}


def test_overlay_action_with_a_dangling_target_is_a_clear_error():
    with pytest.raises(SpecError, match="does not resolve"):
        apply_overlay({"a": {}}, {"actions": [{"target": "#/b/c", "update": {"x": 1}}]})


def test_overlay_merges_mappings_and_appends_lists():
    merged = apply_overlay({"a": {"x": 1, "l": [1]}}, {"actions": [{"target": "#/a", "update": {"y": 2, "l": [2]}}]})
    assert merged == {"a": {"x": 1, "y": 2, "l": [1, 2]}}


def test_metadata_limits_are_read_from_the_overlay():
    from modmsg import strategies
    from modmsg.spec import metadata_limits

    overlaid = resolve_pointer(load_overlaid(), METADATA)
    limits = metadata_limits()
    assert (limits.keys, limits.key_length, limits.value_length) == (
        overlaid["maxProperties"],
        overlaid["propertyNames"]["maxLength"],
        overlaid["additionalProperties"]["maxLength"],
    )
    assert (
        limits.keys,
        limits.key_length,
        limits.value_length,
    ) == (strategies.MAX_KEYS, strategies.MAX_KEY_LENGTH, strategies.MAX_VALUE_LENGTH)


def test_metadata_limits_follow_an_edited_overlay_and_a_missing_one_is_a_clear_error():
    from modmsg.spec import MetadataLimits, limits_of

    document = load_overlaid()
    schema = resolve_pointer(document, METADATA)
    schema["maxProperties"], schema["propertyNames"]["maxLength"], schema["additionalProperties"]["maxLength"] = (
        8,
        32,
        256,
    )
    assert limits_of(document) == MetadataLimits(keys=8, key_length=32, value_length=256)
    del schema["maxProperties"]
    with pytest.raises(SpecError, match="maxProperties"):
        limits_of(document)


def test_the_suite_writes_the_metadata_limits_nowhere_but_the_overlay():
    written = re.compile(r"^MAX_(?:KEYS|KEY_LENGTH|VALUE_LENGTH)\s*=\s*\d", re.MULTILINE)
    for path in (REPO_DIR / "modmsg").rglob("*.py"):
        if "reference" not in path.parts:
            assert not written.search(path.read_text(encoding="utf-8")), path
