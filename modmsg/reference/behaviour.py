"""Every switch a deliberately broken variant of the reference server may flip.

``Behaviour()`` is the correct ``openai`` profile (behaviour.md §2, §3 and the decision table in §6).
A variant is ``dataclasses.replace(Behaviour(), some_knob=...)``; each knob changes one observable
behaviour and nothing else, so a variant breaks exactly the requirements it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LengthUnit = Literal["codepoints", "bytes", "utf16"]
MetadataMode = Literal["merge", "replace"]
NullMetadata = Literal["unchanged", "clear", "error"]
CheckOrder = Literal["auth_first", "beta_first"]
TimestampUnit = Literal["s", "ms"]
ErrorEnvelope = Literal["openai", "status_failure", "detail", "html"]
StringTransform = Literal["none", "strip", "casefold", "nfc", "nfkc", "ascii"]
ChangedField = Literal["created_at", "status", "role", "content", "assistant_id"]
DeleteMarker = Literal["none", "empty_string", "null"]
IdFormat = Literal["openai", "uuid"]


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    """Knobs of the reference server; the defaults are the correct ``openai`` profile."""

    # --- metadata limits (§6: 16 pairs, keys <= 64, values <= 512, counted in code points) ---
    max_keys: int = 16
    max_key_length: int = 64
    max_value_length: int = 512
    length_unit: LengthUnit = "codepoints"
    allow_empty_key: bool = True
    """False: the empty key ``""`` is rejected (400 invalid_value, param ``metadata``)."""

    # --- metadata semantics on modify ---
    metadata_mode: MetadataMode = "merge"
    """``replace``: the sent object replaces the stored one instead of being merged into it."""
    merged_total_limit: bool = True
    """False: only the request's own key count is limited; a merge may grow past ``max_keys``."""
    merged_limit_counts_overwrites: bool = False
    """True: the merged total is stored + sent keys without de-duplication, so overwriting keys of a full
    message is rejected."""
    null_metadata: NullMetadata = "unchanged"
    """What top-level ``"metadata": null`` does: nothing (§6), wipe the metadata, or 400."""
    coerce_non_string_values: bool = False
    """True: numbers, booleans, objects and arrays are stored as their JSON text instead of rejected."""
    key_transform: StringTransform = "none"
    """Stored keys are altered (e.g. ``casefold``, ``strip``, ``nfc``) instead of kept verbatim."""
    value_transform: StringTransform = "none"
    """Stored values are altered (e.g. ``strip``, ``nfkc``, ``ascii``) instead of kept verbatim."""
    delete_marker: DeleteMarker = "none"
    """A pair whose value is this marker deletes the key instead of being stored (``empty_string``: Stripe-style
    ``""``) or rejected (``null``: JSON Merge Patch, RFC 7396)."""
    repeated_pair_toggles: bool = False
    """True: a sent pair whose key already holds that very value removes the key (a toggle), so sending the same
    modify twice is not idempotent."""
    ignore_non_object_metadata: bool = False
    """True: ``metadata`` that is a string, number, boolean or array is silently ignored (200) instead of 400."""

    # --- request validation ---
    reject_unknown_fields: bool = True
    """False: unknown body keys (``content``, ``role`` ...) are silently ignored."""
    validate_before_write: bool = True
    """False: partial write; valid pairs before the first invalid one are stored, then the 400 is sent."""
    require_metadata: bool = False
    """True: a modify body without a ``metadata`` key gets 400 ``missing_required_parameter``."""
    non_object_body_crashes: bool = False
    """True: a JSON body that is not an object (array, string, number ...) gets the last-resort 500."""
    empty_body_is_empty_object: bool = False
    """True: an empty modify body is treated as ``{}`` (200) instead of the JSON parse error."""
    require_json_content_type: bool = True
    """A body sent with a non-JSON ``Content-Type`` (text/plain, form, multipart) gets the parse error."""
    invalid_json_status: int = 400
    max_body_bytes: int = 4 * 1024 * 1024
    """Larger request bodies get 413 ``request_too_large``."""

    # --- state and storage ---
    persist_modify: bool = True
    """False: the modify response shows the change but the store keeps the old metadata."""
    racy_modify: bool = False
    """True: read-copy-sleep-write without the lock, so concurrent modifies lose updates."""
    modify_returns_previous: bool = False
    """True: the modify response shows the message as it was before the change (the store is updated)."""
    check_thread_exists: bool = True
    """False: message routes never look the thread up (with ``check_message_thread=False`` the path's thread id
    is ignored entirely)."""
    check_message_thread: bool = True
    """False: a message id that belongs to another thread is found through any thread."""
    deleted_message_visible: bool = False
    """True: DELETE answers ``deleted: true`` but the message stays readable and modifiable."""
    modify_changes_other_fields: bool = False
    """True: a modify also changes ``changed_field`` (a field modify must never touch)."""
    changed_field: ChangedField = "created_at"
    not_found_status: int = 404
    """Status for an unknown thread or message (404 in §6)."""
    modify_success_status: int = 200
    """Status of a successful modify; use one that allows a body (e.g. 201 or 202), never 204 or 304."""

    # --- auth and headers (§6 order: auth, then OpenAI-Beta, then thread, message, body) ---
    require_auth: bool = True
    auth_status: int = 401
    accept_any_key: bool = False
    """True: any non-empty bearer token is accepted (only the presence of a key is checked)."""
    require_beta_header: bool = True
    check_order: CheckOrder = "auth_first"
    echo_api_key_in_errors: bool = False
    """True: the full presented key appears in error messages (a credential leak)."""
    json_content_type: bool = True
    """False: responses are labelled ``text/plain; charset=utf-8``."""
    request_id_header: bool = True
    """False: no ``x-request-id`` response header."""
    rate_limit: float | None = None
    """Requests per second (token bucket, burst of one second); over it: 429 + ``Retry-After``."""
    retry_after_header: bool = True
    """False: 429 responses carry no ``Retry-After`` header."""

    # --- response shape ---
    drop_null_fields: bool = False
    """True: null-valued fields (``assistant_id``, ``run_id``, ...) are omitted instead of ``null``."""
    object_name: str = "thread.message"
    timestamp_unit: TimestampUnit = "s"
    id_format: IdFormat = "openai"
    """``uuid``: new ids are ``thread_``/``msg_`` plus the 32 hex digits of a UUID4, not 24 alphanumerics."""
    id_echo_correct: bool = True
    """False: the modify response's ``id`` and ``thread_id`` do not echo the path."""

    # --- errors ---
    error_envelope: ErrorEnvelope = "openai"
    """Shape of error bodies: OpenAI ``{"error": {...}}``, Portkey-style, FastAPI-style or an HTML page."""
    error_codes: bool = True
    """False: ``code`` and ``param`` are always null."""
    server_error_on_edge: bool = False
    """True: 500 on a modify with an empty-string key or any astral (non-BMP) character in metadata."""


DEFAULT_BEHAVIOUR = Behaviour()
"""The correct ``openai`` profile, shared as the default argument (a frozen value, safe to share)."""
