"""Variants whose defect is in the protocol around metadata: the success response, requests, not found, error
bodies and headers."""

from __future__ import annotations

from starlette.middleware import Middleware

from modmsg.reference.variants.defects import (
    RATE_LIMIT_BODY,
    RATE_LIMIT_EVERY,
    DeferredThreadDelete,
    DropOnLoneSurrogate,
    OverrideMethod,
    delete_as_204,
    error_code_is_status,
    html_400_page,
    html_404_page,
    rate_limited_every,
    rewrite,
)
from modmsg.reference.variants.variant import CORRECT, Variant, knobs

PROTOCOL_VARIANTS: tuple[Variant, ...] = (
    # ------------------------------------------------------------------------------- the success response
    Variant(
        "drops_null_fields",
        "Null-valued fields (`assistant_id`, `run_id`, ...) are omitted instead of sent as null, by modify, the "
        "sibling calls (MM-RESP-09) and for generated modifies (MM-GEN-01, MM-GEN-03) alike.",
        ("MM-RESP-02", "MM-RESP-03", "MM-RESP-09", "MM-GEN-01", "MM-GEN-03"),
        knobs(drop_null_fields=True),
    ),
    Variant(
        "wrong_object_name",
        'Messages carry `"object": "message"` instead of "thread.message", in every answer: modify, the sibling '
        "calls (MM-RESP-09) and generated modifies (MM-GEN-01, MM-GEN-03).",
        ("MM-RESP-02", "MM-RESP-04", "MM-RESP-09", "MM-GEN-01", "MM-GEN-03"),
        knobs(object_name="message"),
    ),
    Variant(
        "millisecond_timestamps",
        "`created_at` is in milliseconds (JavaScript `Date.now()`).",
        ("MM-RESP-06",),
        knobs(timestamp_unit="ms"),
    ),
    Variant(
        "new_id_on_modify",
        "A modify writes a new message version and answers with its new `id` and `thread_id`.",
        ("MM-RESP-05", "MM-RESP-07"),
        knobs(id_echo_correct=False),
    ),
    Variant(
        "modify_bumps_created_at",
        "An ORM `auto_now` on save: every modify also moves `created_at`; a listing then reorders whenever a "
        "second has passed since the message was created (MM-SEQ-04, timing-dependent).",
        ("MM-RESP-07",),
        knobs(modify_changes_other_fields=True, changed_field="created_at"),
        generated=("MM-SEQ-04",),
    ),
    Variant(
        "uuid_ids",
        "Ids are `msg_`/`thread_` plus a UUID4's 32 hex digits, not OpenAI's 24 alphanumerics.",
        ("MM-RESP-08",),
        knobs(id_format="uuid"),
    ),
    Variant(
        "returns_201_on_modify",
        "A successful modify answers 201 Created instead of 200 (a REST framework's default for POST): generated "
        "valid modifies get it too (MM-GEN-01), and 201 is not documented (MM-GEN-03); every test that stands on "
        "a successful modify is BLOCKED by MM-RESP-01.",
        ("MM-RESP-01", "MM-GEN-01", "MM-GEN-03"),
        knobs(modify_success_status=201),
    ),
    Variant(
        "delete_returns_204",
        "DELETE of a message or thread answers 204 No Content instead of the deletion object.",
        ("MM-RESP-09",),
        CORRECT,
        rewrite(delete_as_204),
    ),
    # ------------------------------------------------------------------------------- requests
    Variant(
        "ignores_unknown_body_fields",
        "Unknown body keys (`content`, `role`, ...) are silently ignored instead of rejected; the generated "
        "coverage cases send some too (MM-GEN-02).",
        ("MM-REQ-01", "MM-GEN-02"),
        knobs(reject_unknown_fields=False),
    ),
    Variant(
        "malformed_json_gets_422",
        "A body that is not JSON, or no body, gets 422 (FastAPI's default) instead of 400; generated malformed "
        "bodies too (MM-GEN-02), and 422 is not documented (MM-GEN-03); a JSON body sent as text/plain fails the same "
        "parse and gets 422 where HTTP asks for 400 or 415 (MM-REQ-09).",
        ("MM-REQ-02", "MM-REQ-03", "MM-REQ-09", "MM-GEN-02", "MM-GEN-03"),
        knobs(invalid_json_status=422),
    ),
    Variant(
        "empty_body_treated_as_empty_object",
        "A modify with no body at all is treated as `{}` and answered 200; a generated coverage case sends no "
        "body too (MM-GEN-02).",
        ("MM-REQ-03", "MM-GEN-02"),
        knobs(empty_body_is_empty_object=True),
    ),
    Variant(
        "parses_any_content_type_as_json",
        "A handler that parses the body as JSON whatever its Content-Type (Starlette/FastAPI "
        "`json.loads(await request.body())`, Express `express.text({type: '*/*'})` + `JSON.parse`): a JSON body "
        "sent as `text/plain` or as a form is applied.",
        ("MM-REQ-09",),
        knobs(require_json_content_type=False),
    ),
    Variant(
        "non_object_body_crashes",
        "`body.get('metadata')` on a JSON array or string: a non-object body gets 500 instead of 400; a generated "
        "one too, which is neither a 4xx (MM-GEN-02) nor documented (MM-GEN-03).",
        ("MM-REQ-04", "MM-ERR-08"),
        knobs(non_object_body_crashes=True),
        generated=("MM-GEN-02", "MM-GEN-03"),
    ),
    Variant(
        "ignores_openai_beta_header",
        "The `OpenAI-Beta: assistants=v2` header is not required.",
        ("MM-REQ-05",),
        knobs(require_beta_header=False),
    ),
    Variant(
        "accepts_any_api_key",
        "Only the presence of a bearer token is checked, not its value.",
        ("MM-REQ-07",),
        knobs(accept_any_key=True),
    ),
    Variant(
        "answers_403_for_bad_credentials",
        "A missing or wrong API key gets 403 Forbidden instead of 401.",
        ("MM-REQ-06", "MM-REQ-07"),
        knobs(auth_status=403),
    ),
    Variant(
        "accepts_put_and_patch",
        "A router that maps PUT and PATCH to the modify handler as well; the generated coverage cases try both "
        "(MM-GEN-02).",
        ("MM-REQ-08", "MM-GEN-02"),
        CORRECT,
        (Middleware(OverrideMethod, methods=frozenset({"PUT", "PATCH"}), to="POST"),),
    ),
    # ------------------------------------------------------------------------------- not found
    Variant(
        "ignores_thread_id_in_path",
        "The message is looked up by its id alone: any thread id in the path, even an unknown one, works.",
        ("MM-ERR-01", "MM-ERR-03"),
        knobs(check_thread_exists=False, check_message_thread=False),
    ),
    Variant(
        "finds_message_through_any_thread",
        "Cross-thread access: the thread must exist, but the message need not belong to it.",
        ("MM-ERR-03",),
        knobs(check_message_thread=False),
    ),
    Variant(
        "answers_400_for_unknown_ids",
        "Unknown threads and messages get 400 instead of 404.",
        ("MM-ERR-01", "MM-ERR-02", "MM-ERR-03", "MM-ERR-04", "MM-ERR-05"),
        knobs(not_found_status=400),
    ),
    Variant(
        "deleted_message_still_modifiable",
        "Soft delete: DELETE answers `deleted: true` but the message stays readable and modifiable (so a deleted "
        "message reads back, MM-SEQ-03).",
        ("MM-ERR-04", "MM-SEQ-03"),
        knobs(deleted_message_visible=True),
    ),
    Variant(
        "thread_delete_never_applied",
        "Deferred delete: DELETE of a thread is acknowledged, but the thread and its messages stay live (and "
        "readable, MM-SEQ-03).",
        ("MM-ERR-05", "MM-SEQ-03"),
        CORRECT,
        (Middleware(DeferredThreadDelete),),
    ),
    # ------------------------------------------------------------------------------- error bodies
    Variant(
        "errors_in_status_failure_envelope",
        'Errors in a gateway\'s own envelope `{"status": "failure", "message": ...}` (the Portkey gateway\'s), for '
        "generated requests too (MM-GEN-02, MM-GEN-03); the error codes are BLOCKED by MM-ERR-06.",
        ("MM-ERR-06", "MM-GEN-02", "MM-GEN-03"),
        knobs(error_envelope="status_failure"),
    ),
    Variant(
        "errors_in_detail_envelope",
        'Errors in FastAPI\'s envelope `{"detail": ...}`, for generated requests too (MM-GEN-02, MM-GEN-03); '
        "the error codes are BLOCKED by MM-ERR-06.",
        ("MM-ERR-06", "MM-GEN-02", "MM-GEN-03"),
        knobs(error_envelope="detail"),
    ),
    Variant(
        "error_code_is_http_status",
        'The envelope\'s `code` is the HTTP status as an integer (`"code": 400`), not a string or null, for '
        "generated requests too (MM-GEN-02, MM-GEN-03).",
        ("MM-ERR-06", "MM-GEN-02", "MM-GEN-03"),
        CORRECT,
        rewrite(error_code_is_status),
    ),
    Variant(
        "error_codes_always_null",
        "Every error has `code` and `param` null, so clients cannot tell the causes apart.",
        ("MM-ERR-07",),
        knobs(error_codes=False),
    ),
    Variant(
        "crashes_on_edge_metadata",
        "An empty key or an astral character in metadata crashes the handler with 500, so valid modifies carrying "
        "them fail (MM-RESP-01), astral characters at the limits too (MM-META-18); generated bodies with them get "
        "the 500 as well (MM-GEN-01, MM-GEN-02, MM-GEN-03).",
        ("MM-RESP-01", "MM-META-18", "MM-ERR-08"),
        knobs(server_error_on_edge=True),
        generated=("MM-GEN-01", "MM-GEN-02", "MM-GEN-03"),
    ),
    Variant(
        "drops_connection_on_lone_surrogate",
        'A worker whose strict UTF-8 encoder dies on a lone surrogate (`"\\ud800"` in a modify body): the '
        "connection is closed without an answer, while every other request is answered.",
        ("MM-ERR-08",),
        CORRECT,
        (Middleware(DropOnLoneSurrogate),),
    ),
    Variant(
        "echoes_api_key_in_errors",
        "Error messages quote the full API key the request carried.",
        ("MM-ERR-09",),
        knobs(echo_api_key_in_errors=True),
    ),
    # ------------------------------------------------------------------------------- headers
    Variant(
        "json_labelled_text_plain",
        "Every response is labelled `text/plain; charset=utf-8` although the body is JSON, generated ones too "
        "(MM-GEN-01, MM-GEN-03).",
        ("MM-HDR-01", "MM-HDR-02", "MM-GEN-01", "MM-GEN-03"),
        knobs(json_content_type=False),
    ),
    Variant(
        "html_error_page_for_400",
        "A proxy replaces every 400 with its own HTML error page, generated requests' too (MM-GEN-02, "
        "MM-GEN-03); the error codes are BLOCKED by MM-ERR-06.",
        ("MM-HDR-02", "MM-ERR-06", "MM-GEN-02", "MM-GEN-03"),
        CORRECT,
        rewrite(html_400_page),
    ),
    Variant(
        "html_404_pages",
        "An Express-style app: an unknown thread or message falls through to the framework's default not-found "
        "page (404, text/html, `Cannot POST /v1/...`); the error codes of 404s are BLOCKED by MM-ERR-06.",
        ("MM-HDR-02", "MM-ERR-06"),
        CORRECT,
        rewrite(html_404_page),
    ),
    Variant(
        "no_request_id_header",
        "No `x-request-id` header on any response.",
        ("MM-HDR-03",),
        knobs(request_id_header=False),
    ),
    Variant(
        "retry_after_zero",
        f"A rate limiter rounds down: every {RATE_LIMIT_EVERY}th request gets 429 with `Retry-After: 0`.",
        ("MM-HDR-04",),
        CORRECT,
        rate_limited_every(
            RATE_LIMIT_EVERY,
            headers=(("Retry-After", "0"),),
            body=RATE_LIMIT_BODY,
            content_type="application/json",
        ),
    ),
    Variant(
        "rate_limit_without_envelope",
        f"A gateway's rate limiter answers every {RATE_LIMIT_EVERY}th request 429 with a plain-text body.",
        ("MM-HDR-04",),
        CORRECT,
        rate_limited_every(
            RATE_LIMIT_EVERY,
            headers=(("Retry-After", "1"), ("retry-after-ms", "10")),
            body=b"Too Many Requests",
            content_type="text/plain; charset=utf-8",
        ),
    ),
)
