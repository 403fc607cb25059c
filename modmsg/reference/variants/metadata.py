"""Variants whose defect is in metadata handling: limits, value types, semantics and state."""

from __future__ import annotations

from starlette.middleware import Middleware

from modmsg.reference.variants.defects import STALE_READS, StaleReadCache, list_without_metadata, rewrite
from modmsg.reference.variants.variant import CORRECT, GENERATED_ACCEPT, GENERATED_REJECT, Variant, knobs

METADATA_VARIANTS: tuple[Variant, ...] = (
    # ------------------------------------------------------------------------------- limits (META-05..08, 18)
    Variant(
        "accepts_17_keys",
        "Off-by-one key limit (`> 17` instead of `> 16`): a 17-key metadata object is stored, and so is a merge "
        "that leaves 17 keys (MM-META-11).",
        ("MM-META-06", "MM-META-11"),
        knobs(max_keys=17),
        generated=GENERATED_REJECT,
    ),
    Variant(
        "accepts_65_character_key",
        "Key length checked with `> 65`: a 65-character key is stored, in any script (MM-META-18); the generated "
        "coverage cases send one too (MM-GEN-02), and a stored 65-character key echoed in a 200 breaks the "
        "documented response schema whenever a generated case gets one accepted (MM-GEN-03).",
        ("MM-META-07", "MM-META-18", "MM-GEN-02"),
        knobs(max_key_length=65),
        generated=("MM-GEN-03",),
    ),
    Variant(
        "accepts_513_character_value",
        "Value length checked with `> 513`: a 513-character value is stored, in any script (MM-META-18).",
        ("MM-META-08", "MM-META-18"),
        knobs(max_value_length=513),
        generated=GENERATED_REJECT,
    ),
    Variant(
        "rejects_512_character_value",
        "Value length checked with `>= 512`: a value of exactly 512 characters gets 400, in any script "
        "(MM-META-18); so does generated valid metadata that reaches 512 (MM-RESP-01, MM-GEN-01).",
        ("MM-META-05", "MM-META-18"),
        knobs(max_value_length=511),
        generated=("MM-RESP-01", "MM-GEN-01"),
    ),
    Variant(
        "counts_bytes_not_code_points",
        "Lengths measured in UTF-8 bytes (`len(s.encode())`): 64 'é' or 512 '€' are rejected; generated valid "
        "metadata with such strings gets 400 too (MM-RESP-01, MM-GEN-01).",
        ("MM-META-18",),
        knobs(length_unit="bytes"),
        generated=("MM-RESP-01", "MM-GEN-01"),
    ),
    # ------------------------------------------------------------------------------- value types (META-09, 10)
    Variant(
        "coerces_non_string_values",
        'Non-string metadata values are stored as their JSON text (`2` becomes `"2"`) instead of rejected.',
        ("MM-META-09",),
        knobs(coerce_non_string_values=True),
        generated=GENERATED_REJECT,
    ),
    Variant(
        "null_value_deletes_key",
        "JSON Merge Patch semantics (RFC 7396): a null metadata value deletes the key instead of getting 400.",
        ("MM-META-09",),
        knobs(delete_marker="null"),
        generated=GENERATED_REJECT,
    ),
    Variant(
        "ignores_non_object_metadata",
        "`metadata` that is a string, number, boolean or array is silently ignored (200) instead of rejected; "
        "the generated coverage cases send such bodies too (MM-GEN-02).",
        ("MM-META-10", "MM-GEN-02"),
        knobs(ignore_non_object_metadata=True),
    ),
    # ------------------------------------------------------------------------------- semantics and state
    Variant(
        "replaces_instead_of_merging",
        'The sent metadata replaces the stored map instead of being merged into it, so `{"metadata": {}}` '
        "empties it (MM-META-17); the merged-total and concurrency tests are BLOCKED by MM-META-04.",
        ("MM-META-04", "MM-META-17"),
        knobs(metadata_mode="replace"),
    ),
    Variant(
        "empty_string_deletes_key",
        'Stripe-style semantics: a pair whose value is "" deletes the key instead of storing "", so it is missing '
        "from the answer, the GET and the list.",
        ("MM-META-01", "MM-META-02", "MM-META-03"),
        knobs(delete_marker="empty_string"),
        generated=GENERATED_ACCEPT,
    ),
    Variant(
        "counts_only_sent_keys_toward_limit",
        "The 16-key limit is checked on the request alone, so a merge may grow the message past 16 keys.",
        ("MM-META-11",),
        knobs(merged_total_limit=False),
    ),
    Variant(
        "counts_overwritten_keys_twice",
        "The merged total is stored + sent keys without de-duplication: overwriting all 16 keys of a full message "
        "gets 400.",
        ("MM-META-05",),
        knobs(merged_limit_counts_overwrites=True),
        generated=GENERATED_ACCEPT,
    ),
    Variant(
        "partial_write_on_rejection",
        "Pairs are written as they are validated: the valid ones before the bad one stay stored after the 400, "
        "beside an unknown body key too (MM-REQ-01: rejected and not applied).",
        ("MM-META-12", "MM-REQ-01"),
        knobs(validate_before_write=False),
        generated=GENERATED_REJECT,
    ),
    Variant(
        "requires_metadata_key",
        "The request schema makes `metadata` required, so a modify with body `{}` gets 400; the generated "
        "coverage cases send `{}` too (MM-GEN-01).",
        ("MM-META-13", "MM-GEN-01"),
        knobs(require_metadata=True),
    ),
    Variant(
        "null_metadata_clears",
        '`{"metadata": null}` wipes the stored metadata instead of leaving it unchanged.',
        ("MM-META-14",),
        knobs(null_metadata="clear"),
    ),
    Variant(
        "rejects_null_metadata",
        '`{"metadata": null}`, which the schema allows, gets 400; the generated coverage cases send it too '
        "(MM-GEN-01).",
        ("MM-META-14", "MM-GEN-01"),
        knobs(null_metadata="error"),
    ),
    Variant(
        "modify_not_persisted",
        "The modify response shows the change, but the store keeps the old metadata: GET and list show the old "
        "pairs; everything judged on stored state is BLOCKED by MM-META-02, and every read after a modify "
        "disagrees with the model of a sequence (MM-SEQ-01).",
        ("MM-META-02", "MM-META-03", "MM-SEQ-01"),
        knobs(persist_modify=False),
    ),
    Variant(
        "returns_message_before_modify",
        "The response is the row read before the UPDATE: the change is stored but not shown, to handwritten and "
        "generated modifies alike (MM-GEN-01).",
        ("MM-META-01", "MM-GEN-01"),
        knobs(modify_returns_previous=True),
    ),
    Variant(
        "repeated_pair_toggles",
        "A sent pair whose key already holds that value removes the key (a tag UI's toggle), so the same modify "
        "sent twice leaves the message without the pairs it sent.",
        ("MM-META-15",),
        knobs(repeated_pair_toggles=True),
        generated=GENERATED_ACCEPT,
    ),
    Variant(
        "loses_concurrent_updates",
        "Read-modify-write without a lock: concurrent modifies of distinct keys overwrite each other.",
        ("MM-META-16",),
        knobs(racy_modify=True),
    ),
    Variant(
        "list_shows_no_metadata",
        "listMessages returns summary items whose metadata is always `{}` (so does every listing of a sequence, "
        "MM-SEQ-01).",
        ("MM-META-03", "MM-SEQ-01"),
        CORRECT,
        rewrite(list_without_metadata),
    ),
    Variant(
        "stale_read_cache",
        f"A read-through message cache that a modify does not invalidate (a Redis cache in front of the store): "
        f"the next {STALE_READS} reads after a modify (getMessage, or listMessages) serve the copy from before it "
        "(the reads after a modify in a sequence too, MM-SEQ-01).",
        ("MM-META-02", "MM-META-03", "MM-SEQ-01"),
        CORRECT,
        (Middleware(StaleReadCache, stale_reads=STALE_READS),),
    ),
    Variant(
        "strips_metadata_values",
        "Values are whitespace-trimmed before they are stored.",
        ("MM-META-01", "MM-META-02", "MM-META-03"),
        knobs(value_transform="strip"),
        generated=GENERATED_ACCEPT,
    ),
    Variant(
        "normalizes_values_to_nfc",
        "Values are Unicode-normalised (NFC) before they are stored, so a decomposed 'é' comes back composed.",
        ("MM-META-01", "MM-META-02", "MM-META-03"),
        knobs(value_transform="nfc"),
        generated=GENERATED_ACCEPT,
    ),
    Variant(
        "lowercases_metadata_keys",
        "Keys are case-folded before they are stored (a case-insensitive column).",
        ("MM-META-01", "MM-META-02", "MM-META-03"),
        knobs(key_transform="casefold"),
        generated=GENERATED_ACCEPT,
    ),
)
