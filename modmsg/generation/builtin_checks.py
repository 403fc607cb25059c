"""The Schemathesis configuration of the generated suite and its built-in check table.

``BUILTIN_CHECKS`` says which built-in check is on, off or tuned, for which requirement, and why;
``schemathesis_config()`` and ``load_schema()`` build the explicit configuration from it (no ``schemathesis.toml``
discovery) and the overlaid fragment narrowed to ``modifyMessage``; ``checks_for`` picks the checks whose findings
count against one requirement, and ``translate`` turns their ``FailureGroup`` (a ``BaseExceptionGroup``, so
``except Exception`` would miss it) into one typed failure carrying the requirement id, Expected/Received and every
Schemathesis finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from schemathesis import APIOperation, BaseSchema
from schemathesis.core.result import Err
from schemathesis.errors import FailureGroup

from modmsg.checks._common import excerpt
from modmsg.failures import (
    Failure,
    GeneratedCaseFailed,
    SchemaViolation,
    ServerError,
    WrongContentType,
    WrongStatus,
)
from modmsg.spec import load_overlaid

OPERATION_ID = "modifyMessage"
# The requirements the generated suite judges.
ACCEPTED_REQ = "MM-GEN-01"
REJECTED_REQ = "MM-GEN-02"
DOCUMENTED_REQ = "MM-GEN-03"
NO_5XX_REQ = "MM-ERR-08"


@dataclass(frozen=True)
class BuiltinCheck:
    """One Schemathesis built-in check: the requirements its findings count against (none: off) and why."""

    name: str
    reqs: tuple[str, ...]
    why: str
    tuning: Mapping[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.reqs)


BUILTIN_CHECKS: tuple[BuiltinCheck, ...] = (
    BuiltinCheck(
        "not_a_server_error",
        (NO_5XX_REQ,),
        "ON. A 5xx is never a correct answer, whatever was sent; judged for every case, the coverage phase's "
        "method and Content-Type probes included (Schemathesis skips every other check for those).",
    ),
    BuiltinCheck(
        "status_code_conformance",
        (DOCUMENTED_REQ,),
        "ON. The overlay documents 200, 400, 401, 404 and 429 on modifyMessage, so a correct 400/401/404 is "
        "never flagged; 405, 415, 422 or 500 on a POST are undocumented and are. Probes are skipped by "
        "Schemathesis itself (a method the operation lacks cannot have documented statuses).",
    ),
    BuiltinCheck(
        "content_type_conformance",
        (ACCEPTED_REQ, DOCUMENTED_REQ),
        "ON. Every documented response (200 and the ErrorResponse ones) is application/json; for a positive "
        "case this is also part of 'accepted with a JSON body' (MM-GEN-01).",
    ),
    BuiltinCheck(
        "response_headers_conformance",
        (DOCUMENTED_REQ,),
        "ON. The only documented response header is the 429's optional Retry-After: it is validated when "
        "present (integer >= 1) and never demanded, so it cannot fire on a 200 or 4xx.",
    ),
    BuiltinCheck(
        "response_schema_conformance",
        (ACCEPTED_REQ, DOCUMENTED_REQ),
        "ON. 200 must be a MessageObject, 400/401/404/429 an ErrorResponse. The overlay puts the metadata "
        "limits on Metadata, so a server that stores and echoes 17 keys also fails here.",
    ),
    BuiltinCheck(
        "positive_data_acceptance",
        (ACCEPTED_REQ,),
        "TUNED to [200]. The default also takes 401, 403, 404, 409, 429 and 5xx as 'accepted' because it "
        "assumes random ids and no credentials; we send valid credentials to a live message with room for the "
        "keys, so anything but 200 rejects a valid request.",
        {"expected-statuses": [200]},
    ),
    BuiltinCheck(
        "negative_data_rejection",
        (REJECTED_REQ,),
        "TUNED to [400, 413, 415, 422] (the widest set any profile allows; the openai profile narrows it to 400 "
        "in our own check). The default also counts 401/403/404/405/406/409/429 and 5xx as 'rejected', each of "
        "which would hide a bug here (valid key, existing message; a 5xx is a crash). It exempts negations "
        "that only add an unknown property; our own check does not (MM-REQ-01: unknown keys MUST get 400).",
        {"expected-statuses": [400, 413, 415, 422]},
    ),
    BuiltinCheck(
        "missing_required_header",
        (),
        "OFF. Authorization and OpenAI-Beta are pinned to valid values on every case, so header defects are "
        "never generated; they are judged by MM-REQ-05/06/07 with profile-specific expectations (under the "
        "spec profile OpenAI-Beta is not required, so the overlay's required: true would be a false alarm).",
    ),
    BuiltinCheck(
        "unsupported_method",
        (),
        "OFF. It demands 405 + Allow, but OpenAI answers an unknown method with 404 unknown_url. MM-REQ-08 "
        "owns methods (404 or 405); here a method probe is judged for no 5xx (MM-ERR-08), no 2xx and no state "
        "change (MM-GEN-02).",
    ),
    BuiltinCheck(
        "allow_header_conformance",
        (),
        "OFF. It only compares an OPTIONS answer's Allow header with the path's methods: method semantics, "
        "owned by MM-REQ-08; proxies and CORS layers answer OPTIONS themselves.",
    ),
    BuiltinCheck(
        "ignored_auth",
        (),
        "OFF. It re-sends every case without and with wrong credentials (two more requests per case, "
        "doubling the run); authentication is judged by MM-REQ-06/07.",
    ),
    BuiltinCheck(
        "use_after_free",
        (),
        "OFF. Stateful-phase check (a request after a DELETE of the same resource); the stateful phase is off "
        "and deleted messages are MM-ERR's.",
    ),
    BuiltinCheck(
        "ensure_resource_availability",
        (),
        "OFF. Stateful-phase check (a created resource must be readable); there is no create link to follow.",
    ),
    BuiltinCheck(
        "object_level_authorization",
        (),
        "OFF. Needs a second identity; the suite has one key.",
    ),
    BuiltinCheck(
        "max_response_time",
        (),
        "OFF (no limit set). Latency is no requirement; a slow CI machine must not fail conformance.",
    ),
)

_EXPECTED_BY_CHECK = {
    "not_a_server_error": "a 2xx or 4xx answer",
    "status_code_conformance": "a status documented for modifyMessage (200, 400, 401, 404, 429)",
    "content_type_conformance": "a documented content type (application/json)",
    "response_headers_conformance": "the documented response headers",
    "response_schema_conformance": "a body valid against the schema documented for that status",
    "positive_data_acceptance": "200 for a schema-valid request",
    "negative_data_rejection": "a 4xx rejection of a schema-violating request",
}
_FAILURE_BY_CHECK: dict[str, type[Failure]] = {
    "not_a_server_error": ServerError,
    "status_code_conformance": WrongStatus,
    "content_type_conformance": WrongContentType,
    "response_schema_conformance": SchemaViolation,
}


def schemathesis_config() -> schemathesis.Config:
    """The explicit configuration (no schemathesis.toml discovery, so a stray file cannot change the suite)."""
    checks: dict[str, Any] = {
        check.name: {"enabled": check.enabled, **check.tuning}
        for check in BUILTIN_CHECKS
        if check.name != "max_response_time"  # configured by a bare limit, and unset here
    }
    return schemathesis.Config.from_dict(
        {
            # Fuzzing is driven by GeneratedRun with the run's --max-examples/--seed, which only exist at run
            # time; @schema.parametrize() is used for the deterministic examples and coverage phases.
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": False},
                "stateful": {"enabled": False},
            },
            "generation": {"database": "none"},
            "checks": checks,
        }
    )


def load_schema() -> BaseSchema:
    """The overlaid spec narrowed to modifyMessage."""
    schema = schemathesis.openapi.from_dict(load_overlaid(), config=schemathesis_config())
    return schema.include(operation_id=OPERATION_ID)


def modify_operation(schema: BaseSchema) -> APIOperation:
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    if len(operations) != 1:
        raise RuntimeError(f"expected exactly one {OPERATION_ID} operation, found {len(operations)}")
    return operations[0]


def checks_for(req: str) -> tuple[Any, ...]:
    """The built-in check functions whose findings count against ``req``."""
    from schemathesis.checks import load_all_checks

    load_all_checks()
    return tuple(getattr(schemathesis.checks, check.name) for check in BUILTIN_CHECKS if req in check.reqs)


def translate(group: FailureGroup, *, req: str, response: requests.Response) -> Failure:
    """One typed failure for ``req`` from Schemathesis findings (the most severe names the failure type)."""
    findings = sorted(group.exceptions)
    first = findings[0]
    check = first.checks[0] if getattr(first, "checks", ()) else ""
    kind = _FAILURE_BY_CHECK.get(check, GeneratedCaseFailed)
    findings_text = [
        "\n".join(
            filter(
                None,
                (
                    f"Schemathesis {f.code} {f.title}" + (f" [{', '.join(f.checks)}]" if f.checks else ""),
                    str(f.message).strip(),
                ),
            )
        )
        for f in findings
    ]
    return kind(
        req=req,
        expected=_EXPECTED_BY_CHECK.get(check, "no Schemathesis finding"),
        received=f"{first.title}: {excerpt(response)}",
        detail="\n\n".join(findings_text),
    )
