"""Schemathesis glue for ``suites/test_generated.py`` (MM-GEN-01, MM-GEN-02, MM-GEN-03, MM-ERR-08).

What lives here, so the test module stays a list of requirements:

* ``load_schema()``: the overlaid fragment narrowed to ``modifyMessage``, with an explicit Schemathesis
  configuration (no ``schemathesis.toml`` discovery) built from ``BUILTIN_CHECKS``, the table that says which
  built-in check is on, off or tuned, for which requirement, and why;
* ``GeneratedRun``: drives generated cases against a live message of the run. It pins the path to that message
  and the headers to the run's credentials, sends each case through the suite's session (evidence recorded with
  ``Transport.record``), snapshots the message around negative cases, and judges the answer;
* ``Streams``: one fuzzing stream per generation mode, drawn and sent once per module, every case judged for
  every requirement of its mode (``STREAM_JUDGES``); each requirement's test then reports its own verdict, the
  first failing case with its exchanges as evidence. Drawing the same distribution again per requirement would
  cost a draw and a request per case for no new input. A requirement's failing case is then shrunk for that
  requirement alone (``GeneratedRun.shrink``, bounded by ``SHRINK_BUDGET``), and a request the target drops
  (``RequestDropped``) is MM-ERR-08's finding (``NoAnswer``);
* the judges, one per requirement, which raise the suite's typed failures. A Schemathesis ``FailureGroup``
  (a ``BaseExceptionGroup``, so ``except Exception`` would miss it) is translated into one typed failure carrying
  the requirement id, Expected/Received, every Schemathesis finding, the curl reproducer and the seed.

Credentials never enter a generated case: cases carry ``Bearer $MODMSG_API_KEY`` (each secret as the shell
variable that stands for it) and the real values are substituted only on the wire, so Hypothesis' "Falsifying
example" output and the evidence cannot show the key, and the curl reproducer (made from the request as sent,
through the run's redactor) runs as pasted once the variables are set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import shlex
import time
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode
from schemathesis.errors import FailureGroup
from schemathesis.generation.meta import REQUEST_SHAPE_PROBES, CoverageScenario, coverage_scenario

from modmsg.api import AssistantsApi
from modmsg.checks._common import excerpt
from modmsg.checks.errors import error_envelope_is_valid
from modmsg.checks.metadata import metadata_contains, state_unchanged
from modmsg.checks.response import ok_json
from modmsg.failures import (
    Failure,
    GeneratedCaseFailed,
    NoAnswer,
    SchemaViolation,
    ServerError,
    WrongContentType,
    WrongStatus,
)
from modmsg.profiles import Profile
from modmsg.redaction import REDACTED, Redactor
from modmsg.spec import load_overlaid
from modmsg.strategies import MAX_KEYS
from modmsg.transport import Exchange, RequestDropped, Transport, TransportError

OPERATION_ID = "modifyMessage"
ACCEPTED_REQ = "MM-GEN-01"
REJECTED_REQ = "MM-GEN-02"
DOCUMENTED_REQ = "MM-GEN-03"
NO_5XX_REQ = "MM-ERR-08"
POSITIVE = GenerationMode.POSITIVE
NEGATIVE = GenerationMode.NEGATIVE

# How a schema-violating body must be rejected. The openai profile settles it (openai-behaviour.md §6: every
# body defect is a 400 with the error envelope); the spec profile asks only for a client-error answer that HTTP
# semantics allow for a bad body. 401/403/404 are never right here: the credentials are valid and the message
# exists, so such an answer would mean the server judged something other than the body.
REJECTION_STATUSES = {"openai": frozenset({400}), "spec": frozenset({400, 413, 415, 422})}


# --------------------------------------------------------------------------------------------- check table


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
    operations = [result.ok() for result in schema.get_all_operations()]
    if len(operations) != 1:
        raise RuntimeError(f"expected exactly one {OPERATION_ID} operation, found {len(operations)}")
    return operations[0]


def checks_for(req: str) -> tuple[Any, ...]:
    """The built-in check functions whose findings count against ``req``."""
    from schemathesis.checks import load_all_checks

    load_all_checks()
    return tuple(getattr(schemathesis.checks, check.name) for check in BUILTIN_CHECKS if req in check.reqs)


# --------------------------------------------------------------------------------------------- cases sent


@dataclass(frozen=True)
class Sent:
    """One generated case and what came back."""

    case: Case
    mode: GenerationMode
    response: requests.Response
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    note: str = ""

    @property
    def is_method_probe(self) -> bool:
        return coverage_scenario(self.case) == CoverageScenario.UNSPECIFIED_HTTP_METHOD

    @property
    def is_request_shape_probe(self) -> bool:
        return coverage_scenario(self.case) in REQUEST_SHAPE_PROBES


def sent_pairs(case: Case) -> dict[str, str]:
    """The metadata pairs a (positive) case sends; empty for ``{}``, ``null`` or no metadata."""
    body = case.body
    metadata = body.get("metadata") if isinstance(body, dict) else None
    return {k: v for k, v in metadata.items() if isinstance(v, str)} if isinstance(metadata, dict) else {}


def effective_mode(case: Case) -> GenerationMode:
    """The mode after pinning: Schemathesis revalidates edited components, so a coverage case whose only
    defect was a header it generated (missing Authorization, wrong OpenAI-Beta) is positive once pinned."""
    meta = case.meta
    return meta.generation.mode if meta is not None else POSITIVE


def describe(case: Case, mode: GenerationMode, note: str = "") -> str:
    meta = case.meta
    if note or meta is None:
        return f"{mode.value} case: {note or 'hand-built'}"
    description = (meta.phase.data.description or "").replace("\n", " ")
    return f"{mode.value} case ({meta.phase.name.value} phase): {description}"


def derive_seed(seed: int, label: str) -> int:
    """A per-test seed: the same --seed replays every test, yet the tests explore different inputs."""
    return zlib.crc32(f"{seed}:{label}".encode()) ^ (seed & 0xFFFFFFFF)


HYPOTHESIS_BATCH = 500
"""The most examples one Hypothesis run draws. Hypothesis keeps every example of a run it tried (its result cache
and tree of choices grow with them, and CPython keeps the high-water mark resident), so ``--max-examples`` above
this is drawn in several runs of at most this size, each with its own seed derived from the run's: memory stays
flat whatever ``--max-examples`` is, and the same seed still replays the same cases."""


def batches(max_examples: int, label: str) -> list[tuple[str, int]]:
    """The (seed label, size) of each Hypothesis run that draws ``max_examples`` cases for ``label``."""
    sizes = [HYPOTHESIS_BATCH] * (max_examples // HYPOTHESIS_BATCH)
    if max_examples % HYPOTHESIS_BATCH:
        sizes.append(max_examples % HYPOTHESIS_BATCH)
    return [(label if index == 0 else f"{label}#{index}", size) for index, size in enumerate(sizes)]


def hypothesis_settings(max_examples: int, *, shrink: bool = True) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=max_examples,
        database=None,  # no .hypothesis replay: a CI run is exactly what the seed says
        deadline=None,  # network round trips, not CPU
        derandomize=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.explicit, Phase.generate),
        suppress_health_check=(
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ),
        verbosity=hypothesis.Verbosity.quiet,
        print_blob=False,
        # One finding per test, replayed last: the plugin reports one failure and the last exchanges as
        # evidence, so they must belong to the same case.
        report_multiple_bugs=False,
    )


# --------------------------------------------------------------------------------------------- judges


@dataclass(frozen=True)
class Judge:
    """What one requirement demands of every generated case (``needs_state``: GET before and after)."""

    req: str
    check: Callable[[Sent, GeneratedRun], None]
    needs_state: bool = False


def _accepted(sent: Sent, run: GeneratedRun) -> None:
    """MM-GEN-01: a positive case gets 200, a JSON MessageObject, and every sent pair back verbatim."""
    if not sent.mode.is_positive:
        return
    run.builtin(sent, ACCEPTED_REQ)
    body = ok_json(sent.response, req=ACCEPTED_REQ)
    metadata_contains(body, sent_pairs(sent.case), req=ACCEPTED_REQ)


def _rejected(sent: Sent, run: GeneratedRun) -> None:
    """MM-GEN-02: a negative case gets a 4xx error envelope and leaves the message as it was."""
    if not sent.mode.is_negative:
        return
    response, method = sent.response, sent.case.method.upper()
    if sent.is_request_shape_probe:
        # Coverage probes (a method the operation lacks, a non-JSON Content-Type) are malformed on purpose, and
        # what exactly answers them is the business of MM-REQ-08 (404 or 405) and of proxies (OPTIONS, CORS):
        # here an unsupported method must merely not be accepted, and no probe may change the message.
        if sent.is_method_probe and method != "OPTIONS" and not 400 <= response.status_code < 500:
            raise GeneratedCaseFailed(
                req=REJECTED_REQ, expected=f"a 4xx for the unsupported method {method}", received=excerpt(response)
            )
    else:
        run.builtin(sent, REJECTED_REQ)
        if response.status_code not in run.rejection_statuses:
            raise GeneratedCaseFailed(
                req=REJECTED_REQ,
                expected=f"{' or '.join(map(str, sorted(run.rejection_statuses)))} for a schema-violating body "
                f"({run.profile.name} profile)",
                received=excerpt(response),
            )
        error_envelope_is_valid(response, req=REJECTED_REQ)
    if sent.before is not None and sent.after is not None:
        state_unchanged(sent.before, sent.after, req=REJECTED_REQ, what=f"a rejected {method}")


def _documented(sent: Sent, run: GeneratedRun) -> None:
    """MM-GEN-03: documented status, content type, headers and response schema."""
    run.builtin(sent, DOCUMENTED_REQ)


def _no_server_error(sent: Sent, run: GeneratedRun) -> None:
    """MM-ERR-08: no 5xx, whatever was generated."""
    run.builtin(sent, NO_5XX_REQ)


ACCEPTED = Judge(ACCEPTED_REQ, _accepted)
REJECTED = Judge(REJECTED_REQ, _rejected, needs_state=True)
DOCUMENTED = Judge(DOCUMENTED_REQ, _documented)
NO_SERVER_ERROR = Judge(NO_5XX_REQ, _no_server_error)
# When one case is judged for every requirement (coverage phase), the most specific finding wins.
ALL_JUDGES = (NO_SERVER_ERROR, ACCEPTED, REJECTED, DOCUMENTED)
# What a fuzzing stream of each mode judges every case for.
STREAM_JUDGES: Mapping[GenerationMode, tuple[Judge, ...]] = {
    POSITIVE: (NO_SERVER_ERROR, ACCEPTED, DOCUMENTED),
    NEGATIVE: (NO_SERVER_ERROR, REJECTED, DOCUMENTED),
}


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


def with_context(failure: Failure, context: str) -> Failure:
    detail = f"{failure.detail}\n\n{context}" if failure.detail else context
    return dataclasses.replace(failure, detail=detail)


# --------------------------------------------------------------------------------------------- streams


def fingerprint(case: Case) -> str:
    """What identifies a drawn case whatever message it goes to (the path is pinned to the live message, so it is
    left out): a replay of the stream must draw the case it failed on before that case is shrunk."""
    parts = (case.method.upper(), case.media_type, case.body, case.query, sorted((case.headers or {}).items()))
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Drawn:
    """Where a stream drew a case: the Hypothesis run (its seed label and size), the call within it (from 1), the
    case's fingerprint and its size on the wire. Enough to draw the same case again, and no case kept."""

    mode: GenerationMode
    batch: str
    size: int
    call: int
    fingerprint: str
    body_bytes: int | None
    """The size of the body on the wire (0: no body; None: unknown)."""

    @property
    def body(self) -> str:
        if self.body_bytes is None:
            return "a body of unknown size"
        return f"a {self.body_bytes}-byte body" if self.body_bytes else "no body"

    def smaller_than(self, other: Drawn) -> bool:
        """Not larger on the wire than ``other`` (Hypothesis' order of cases is not the size of the body)."""
        return other.body_bytes is None or (self.body_bytes is not None and self.body_bytes <= other.body_bytes)


@dataclass(frozen=True)
class Finding:
    """The first case of a stream that failed one requirement (shrunk when it could be): the typed failure, that
    case's exchanges, and where the stream drew it (None: it cannot be drawn again)."""

    failure: Failure
    evidence: tuple[Exchange, ...]
    drawn: Drawn | None = None


@dataclass
class Stream:
    """What one fuzzing stream found: cases sent, the first failure per requirement, a sample of exchanges."""

    reqs: tuple[str, ...]
    seed: int
    sent: int = 0
    findings: dict[str, Finding] = field(default_factory=dict)
    sample: tuple[Exchange, ...] = ()
    """The first case's exchanges: the evidence of a pass."""

    @property
    def settled(self) -> bool:
        """Every requirement has failed: further cases cannot change a verdict."""
        return all(req in self.findings for req in self.reqs)


class _StreamSettled(BaseException):
    """Ends a stream early. A BaseException, so Hypothesis passes it through instead of shrinking it."""


@dataclass(frozen=True)
class ShrinkBudget:
    """What shrinking one requirement's failing case may spend. A new attempt starts only while fewer than
    ``requests`` requests (the fresh message, every re-sent case and its snapshot GETs) and ``seconds`` (the
    replay of the stream up to the case included) are spent; then the smallest failing case so far is reported.
    The request cap makes a shrink the same for a seed against a deterministic target; the time cap only guards
    against a slow one."""

    requests: int = 100
    seconds: float = 20.0


SHRINK_BUDGET = ShrinkBudget()


class _Reproduced(Exception):
    """Raised where a case fails the requirement being shrunk the same way: Hypothesis shrinks on it."""


class _ShrinkStopped(BaseException):
    """Ends a shrink (budget spent, the case did not fail again, the target stopped answering): a BaseException,
    so Hypothesis passes it through; the smallest failing case found so far is kept."""


@dataclass
class _Shrink:
    """The state of one shrink: what it started from, what it spent, the smallest failing case so far."""

    original: Finding
    drawn: Drawn
    budget: ShrinkBudget
    deadline: float
    calls: int = 0
    requests: int = 0
    best: Finding | None = None
    stopped: str = ""

    def check_budget(self) -> None:
        if self.requests >= self.budget.requests:
            raise _ShrinkStopped(f"stopped at the cap of {self.budget.requests} requests")
        if time.monotonic() > self.deadline:
            raise _ShrinkStopped(f"stopped at the cap of {self.budget.seconds:g} s")

    def result(self) -> Finding:
        """The smallest case that failed the requirement the same way, or the case as drawn, with a line saying
        which and why. A verdict never changes: only its example does."""
        original, best, req = self.original, self.best, self.original.failure.req
        spent = f"{self.requests} request{'' if self.requests == 1 else 's'}"
        if best is None or best.drawn is None:
            why = self.stopped or f"the case did not fail {req} again on a fresh message"
            return _noted(original, f"Not shrunk ({why}; {spent}): the case as drawn.")
        if best.drawn.fingerprint == self.drawn.fingerprint:
            why = f"; {self.stopped}" if self.stopped else ""
            return _noted(original, f"Not shrunk: no smaller case failed {req} the same way ({spent}{why}).")
        why = f"; {self.stopped}" if self.stopped else ""
        return _noted(
            best,
            f"Shrunk: from {self.drawn.body} (case {self.drawn.call} of Hypothesis run {self.drawn.batch!r}) to "
            f"{best.drawn.body} that fails {req} the same way, sent to a fresh message ({spent}{why}; at most "
            f"{self.budget.requests} requests and {self.budget.seconds:g} s per requirement).",
        )


def _noted(finding: Finding, line: str) -> Finding:
    failure = finding.failure
    detail = f"{failure.detail}\n{line}" if failure.detail else line
    return dataclasses.replace(finding, failure=dataclasses.replace(failure, detail=detail))


# --------------------------------------------------------------------------------------------- the run


@dataclass
class GeneratedRun:
    """Generated cases against one live message (replaced by a fresh one when a valid case needs room)."""

    operation: APIOperation = field(repr=False)
    transport: Transport = field(repr=False)  # its repr holds the API key
    api: AssistantsApi = field(repr=False)
    base_url: str
    profile: Profile = field(repr=False)
    message: dict[str, Any]
    seed: int  # the run's seed: --seed, or the one the plugin drew and recorded in the reports
    max_examples: int
    replay_base_url: str | None
    """The run's --base-url as the user gave it (None: the bundled reference server), for the replay line."""
    replay_profile: str
    """The run's --profile as the user gave it (a bundled name or a profile file), for the replay line."""
    shrink_budget: ShrinkBudget = SHRINK_BUDGET
    stored_keys: set[str] = field(init=False)
    """Keys the current message holds, so a valid case can be sent where it fits."""
    counts: Counter[str] = field(init=False, default_factory=Counter)
    """Cases sent per mode (shrinking replays included)."""
    headers: dict[str, str] = field(init=False)
    """The run's default headers with every secret value masked: what generated cases carry."""
    _real_headers: dict[str, str] = field(init=False, repr=False)
    _secret: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stored_keys = set(self.message.get("metadata") or {})
        real = self.transport.default_headers()
        redactor = self.transport.redactor
        self._real_headers = {name.lower(): value for name, value in real.items()}
        self._secret = frozenset(name.lower() for name in real if name.lower() in redactor.secret_headers)
        self.headers = {
            name: _masked(value, redactor) if name.lower() in self._secret else value for name, value in real.items()
        }

    @property
    def rejection_statuses(self) -> frozenset[int]:
        return REJECTION_STATUSES.get(self.profile.base, REJECTION_STATUSES["spec"])

    @property
    def ids(self) -> dict[str, str]:
        return {"thread_id": self.message["thread_id"], "message_id": self.message["id"]}

    # -- generation ------------------------------------------------------------------------------------

    def strategy(self, mode: GenerationMode) -> st.SearchStrategy[Case]:
        """Cases whose path and headers are fixed, so every defect of a negative case is in the body."""
        return self.operation.as_strategy(generation_mode=mode, headers=dict(self.headers), path_parameters=self.ids)

    def draw(self, strategy: st.SearchStrategy[Any], body: Callable[[Any], None], *, label: str, shrink: bool) -> None:
        """``max_examples`` values of ``strategy`` through ``body``, in Hypothesis runs of at most
        ``HYPOTHESIS_BATCH``; reproducible from the run's seed."""
        for batch_label, size in batches(self.max_examples, label):
            self.run_batch(strategy, body, label=batch_label, size=size, shrink=shrink)

    def run_batch(
        self, strategy: st.SearchStrategy[Any], body: Callable[[Any], None], *, label: str, size: int, shrink: bool
    ) -> None:
        """One Hypothesis run of ``size`` values seeded from the run's seed and ``label``: the same label draws the
        same values in the same order, with or without the shrink phase (which only acts once ``body`` raises)."""

        @hypothesis.seed(derive_seed(self.seed, label))
        @hypothesis_settings(size, shrink=shrink)
        @hypothesis.given(value=strategy)
        def example(value: Any) -> None:
            body(value)

        example()

    def stream(self, mode: GenerationMode, *, label: str, reqs: Collection[str] | None = None) -> Stream:
        """``max_examples`` cases of ``mode``, each judged for every requirement in ``STREAM_JUDGES[mode]`` (only
        those in ``reqs`` when given: a selection that judges fewer spends no request on the others, e.g. no
        snapshot GETs when MM-GEN-02 is not selected).

        Nothing is raised: a requirement's first failing case is kept and the stream goes on judging the others;
        it ends early only once every requirement has failed. A request the target drops (``RequestDropped``) is
        MM-ERR-08's finding, and the stream goes on. Then each finding is shrunk for its requirement alone
        (``shrink``).
        """
        judges = tuple(judge for judge in STREAM_JUDGES[mode] if reqs is None or judge.req in reqs)
        stream = Stream(reqs=tuple(j.req for j in judges), seed=self.seed)
        strategy = self.strategy(mode)
        with contextlib.suppress(_StreamSettled):
            for batch, size in batches(self.max_examples, label):
                self.run_batch(
                    strategy, self._stream_case(stream, judges, mode, batch, size), label=batch, size=size, shrink=False
                )
        for judge in judges:
            finding = stream.findings.get(judge.req)
            if finding is not None:
                stream.findings[judge.req] = self.shrink(finding, judge)
        return stream

    def _stream_case(
        self, stream: Stream, judges: Sequence[Judge], mode: GenerationMode, batch: str, size: int
    ) -> Callable[[Case], None]:
        """What one Hypothesis run of a stream does with each case: send it once, judge it for every requirement
        not failed yet, keep each requirement's first failure with where it was drawn."""
        calls = 0

        def one_case(case: Case) -> None:
            nonlocal calls
            calls += 1
            if stream.settled:
                raise _StreamSettled
            active = [judge for judge in judges if judge.req not in stream.findings]
            with self.transport.recording(forward=True) as case_recorder:
                try:
                    failures = list(self.attempt(case, active))
                except RequestDropped:  # MM-ERR-08 failed already or is not judged: nothing to judge here
                    failures = []
            exchanges = case_recorder.snapshot()
            stream.sent += 1
            stream.sample = stream.sample or exchanges
            drawn = self._drawn(case, mode, batch, size, calls) if failures else None
            for failure in failures:
                stream.findings[failure.req] = Finding(failure, exchanges, drawn)

        return one_case

    def _drawn(self, case: Case, mode: GenerationMode, batch: str, size: int, call: int) -> Drawn:
        return Drawn(mode, batch, size, call, fingerprint(case), self.body_bytes(case))

    def shrink(self, finding: Finding, judge: Judge) -> Finding:
        """The smallest case that fails ``judge``'s requirement the same way (the same failure type) as the
        stream's ``finding``, found by a bounded Hypothesis shrink, or ``finding`` itself with the reason.

        Hypothesis cannot shrink from a given case through a public API, so its run is replayed: the same seed
        label draws the same cases, the ones before the failing case are not sent, the failing one is sent again
        to a fresh message (a live target's state has moved on) and judged for this requirement alone; when it
        fails the same way, Hypothesis' shrink phase sends simpler cases. A case that still fails is kept when
        its body is not larger than the one kept so far (Hypothesis' order of simplicity is not body size); only
        that one is kept, so memory stays flat. Bounded by ``shrink_budget``.
        """
        if finding.drawn is None:
            return finding
        drawn = finding.drawn
        shrink = _Shrink(finding, drawn, self.shrink_budget, time.monotonic() + self.shrink_budget.seconds)
        try:
            with self.transport.recording(forward=True) as recorder:
                self.fresh_message()
            shrink.requests += len(recorder.snapshot())
            self.run_batch(
                self.strategy(drawn.mode),
                lambda case: self._shrink_case(case, judge, shrink),
                label=drawn.batch,
                size=drawn.size,
                shrink=True,
            )
            shrink.stopped = "the replay of the stream ended before the case was drawn"
        except _ShrinkStopped as stop:
            shrink.stopped = str(stop)
        except Exception as exc:  # _Reproduced: the smallest case, replayed last; or Hypothesis found it flaky
            if not isinstance(exc, _Reproduced) and shrink.best is None:
                shrink.stopped = f"stopped: {type(exc).__name__}"
        return shrink.result()

    def _shrink_case(self, case: Case, judge: Judge, shrink: _Shrink) -> None:
        """One call of the shrink's Hypothesis run: raise ``_Reproduced`` when ``case`` fails the same way (from
        this one place: Hypothesis tells failures apart by where they are raised)."""
        shrink.calls += 1
        if shrink.calls < shrink.drawn.call:
            if time.monotonic() > shrink.deadline:
                raise _ShrinkStopped(f"stopped at the cap of {shrink.budget.seconds:g} s before the case was drawn")
            return  # a case the stream drew before the failing one: drawn again, not sent
        if self._fails_the_same_way(case, judge, shrink):
            raise _Reproduced
        if shrink.calls == shrink.drawn.call:
            raise _ShrinkStopped(f"the case did not fail {judge.req} the same way again on a fresh message")

    def _fails_the_same_way(self, case: Case, judge: Judge, shrink: _Shrink) -> bool:
        """Send ``case`` and judge it for ``judge`` alone; a failure of the original's type is the smallest so far."""
        self.pin(case)
        key = fingerprint(case)
        if shrink.calls == shrink.drawn.call and key != shrink.drawn.fingerprint:
            raise _ShrinkStopped("the replay of the stream drew another case")
        if shrink.best is not None and shrink.best.drawn is not None and key == shrink.best.drawn.fingerprint:
            return True  # Hypothesis replays the smallest case once more: it failed, no need to ask again
        shrink.check_budget()
        with self.transport.recording(forward=True) as recorder:
            try:
                failure = next(self.attempt(case, (judge,)), None)
            except RequestDropped:
                failure = None  # a different defect (only MM-ERR-08 judges a dropped request)
            except TransportError as exc:
                raise _ShrinkStopped(f"stopped: {exc}") from None
            except Exception as exc:  # never let a shrink turn into an error of the suite
                raise _ShrinkStopped(f"stopped: {type(exc).__name__}") from None
        exchanges = recorder.snapshot()
        shrink.requests += len(exchanges)
        if failure is None or type(failure) is not type(shrink.original.failure):
            return False
        drawn = dataclasses.replace(shrink.drawn, call=shrink.calls, fingerprint=key, body_bytes=self.body_bytes(case))
        if shrink.best is None or shrink.best.drawn is None or drawn.smaller_than(shrink.best.drawn):
            shrink.best = Finding(failure, exchanges, drawn)
        return True  # Hypothesis shrinks on, also past a case whose body is larger than the smallest so far

    def within_the_limits(self, metadata: st.SearchStrategy[dict[str, str]], *, label: str) -> None:
        """Bodies up to every metadata limit (64-code-point keys, 512-code-point values, 16 pairs, wide and
        astral characters), judged as positive cases: Schemathesis rarely reaches the limits by itself."""
        self._metadata_cases(
            metadata.map(lambda values: ("within every limit", values)), POSITIVE, (ACCEPTED,), label=label
        )

    def one_past_a_limit(self, metadata: st.SearchStrategy[tuple[str, dict[str, object]]], *, label: str) -> None:
        """Bodies whose only defect is one step past a metadata limit, judged as negative cases: Schemathesis
        never generates a body whose only defect is 17 keys."""
        self._metadata_cases(
            metadata.map(lambda limit: (f"one past the {limit[0]} limit", limit[1])), NEGATIVE, (REJECTED,), label=label
        )

    def _metadata_cases(
        self,
        metadata: st.SearchStrategy[tuple[str, Mapping[str, object]]],
        mode: GenerationMode,
        judges: Sequence[Judge],
        *,
        label: str,
    ) -> None:
        def metadata_case(described: tuple[str, Mapping[str, object]]) -> None:
            what, values = described
            case = self.operation.Case(
                body={"metadata": dict(values)},
                media_type="application/json",
                path_parameters=self.ids,
                headers=dict(self.headers),
            )
            self.exercise(case, judges, mode=mode, note=f"metadata {what} (modmsg.strategies)")

        self.draw(metadata, metadata_case, label=label, shrink=True)

    # -- one case --------------------------------------------------------------------------------------

    def pin(self, case: Case) -> None:
        """Point the case at the live message and give it the run's (masked) credentials.

        Coverage cases are built at collection time, before any fixture, so this happens in the test body.
        """
        case.path_parameters = self.ids
        kept = {k: v for k, v in (case.headers or {}).items() if k.lower() not in self._real_headers}
        case.headers = {**kept, **self.headers}

    def exercise(
        self, case: Case, judges: Sequence[Judge], *, mode: GenerationMode | None = None, note: str = ""
    ) -> None:
        """Send one case and raise the first failure of ``judges`` (in their order: the most specific first)."""
        failure = next(self.attempt(case, judges, mode=mode, note=note), None)
        if failure is not None:
            raise failure from None

    def attempt(
        self, case: Case, judges: Sequence[Judge], *, mode: GenerationMode | None = None, note: str = ""
    ) -> Iterator[Failure]:
        """Send one case (on the first ``next``) and yield each judge's failure, lazily. A request the target
        drops while it answers others (``RequestDropped``) is MM-ERR-08's finding when MM-ERR-08 is judged (no
        other judge can judge a case without an answer), and is raised otherwise."""
        try:
            sent = self.send_case(case, judges, mode=mode, note=note)
        except RequestDropped as dropped:
            mode = mode or effective_mode(case)
            self.counts[mode.value] += 1
            if not any(judge.req == NO_5XX_REQ for judge in judges):
                raise
            yield self.no_answer(case, dropped, mode=mode, note=note)
            return
        yield from self.failures(sent, judges)

    def no_answer(self, case: Case, dropped: RequestDropped, *, mode: GenerationMode, note: str = "") -> Failure:
        """MM-ERR-08's failure for a dropped request; the dropped exchange is in the evidence."""
        if dropped.exchange is not None and dropped.exchange not in self.transport.recorder.snapshot():
            self.transport.recorder.add(dropped.exchange)
        failure = NoAnswer(
            req=NO_5XX_REQ,
            expected="an HTTP answer that is not a 5xx",
            received=f"no HTTP response: {self.transport.redactor.text(str(dropped))}",
        )
        return with_context(failure, self.context_of(case, mode, note))

    def send_case(
        self, case: Case, judges: Sequence[Judge], *, mode: GenerationMode | None = None, note: str = ""
    ) -> Sent:
        """Pin and send one case, with the message's state around it when a judge needs it."""
        self.pin(case)
        mode = mode or effective_mode(case)
        if mode.is_positive:
            self._make_room(case)
        snapshot = mode.is_negative and any(judge.needs_state for judge in judges)
        before = self.api.fetch_message(**self.ids) if snapshot else None
        response = self.send(case)
        after = self.api.fetch_message(**self.ids) if snapshot else None
        self._note_stored(response, after)
        self.counts[mode.value] += 1
        return Sent(case=case, mode=mode, response=response, before=before, after=after, note=note)

    def failures(self, sent: Sent, judges: Sequence[Judge]) -> Iterator[Failure]:
        """Each judge's failure for one sent case, in the judges' order, with the case's context (what, curl,
        seed); lazily, so a caller that wants only the first judges no further."""
        for judge in judges:
            try:
                judge.check(sent, self)
            except Failure as failure:
                yield with_context(failure, self.context(sent))

    def builtin(self, sent: Sent, req: str) -> None:
        """Run the built-in checks mapped to ``req`` and translate their FailureGroup."""
        try:
            sent.case.validate_response(sent.response, checks=list(checks_for(req)))
        except FailureGroup as group:
            failure = translate(group, req=req, response=sent.response)
            raise dataclasses.replace(failure, detail=self.transport.redactor.text(failure.detail)) from None

    def context(self, sent: Sent) -> str:
        return self.context_of(sent.case, sent.mode, sent.note)

    def context_of(self, case: Case, mode: GenerationMode, note: str = "") -> str:
        """What was generated, the curl reproducer (credentials masked twice over) and how to replay the run."""
        try:
            # the request as the evidence shows it: secrets as $VARIABLE references, so it runs as pasted
            curl = self.transport.evidence(self.prepare(case)).curl()
        except Exception as exc:  # a body curl cannot express must not hide the finding
            curl = f"(no curl: {type(exc).__name__}; the evidence shows the request)"
        return "\n".join(
            (
                f"Generated: {describe(case, mode, note)}",
                f"Reproduce: {self.transport.redactor.text(curl)}",
                f"Replay the run: {self.transport.redactor.text(self.replay_command())}",
            )
        )

    def replay_command(self) -> str:
        """The command that replays this run's generated cases: the target, profile, example count and seed."""
        target = ("--base-url", self.replay_base_url) if self.replay_base_url else ()
        options = (*target, "--profile", self.replay_profile, "--max-examples", str(self.max_examples))
        command = shlex.join(("pytest", "suites/test_generated.py", *options, "--seed", str(self.seed)))
        return command if self.replay_base_url else f"{command} (bundled reference server)"

    def body_bytes(self, case: Case) -> int | None:
        """The size of the body ``case`` puts on the wire (0: none; None: the client cannot serialise it)."""
        try:
            body = self.prepare(case).body
        except Exception:  # a body the client cannot serialise is still a case
            return None
        if body is None:
            return 0
        return len(body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))

    def fresh_message(self) -> None:
        """Move on to a fresh message of the same thread."""
        self.message = self.api.create_message(self.message["thread_id"])
        self.stored_keys = set(self.message.get("metadata") or {})

    def _make_room(self, case: Case) -> None:
        """A valid case must not fail because earlier cases filled the message (openai: the merged result
        is limited to 16 keys), so it goes to a fresh message of the same thread when it would not fit."""
        if len(self.stored_keys | set(sent_pairs(case))) > MAX_KEYS:
            self.fresh_message()
            case.path_parameters = self.ids

    def _note_stored(self, response: requests.Response, after: Mapping[str, Any] | None) -> None:
        stored: Any = after.get("metadata") if after is not None else None
        if stored is None and response.status_code == 200:
            try:
                body = response.json()
            except ValueError:
                body = None
            stored = body.get("metadata") if isinstance(body, dict) else None
        if isinstance(stored, dict):
            self.stored_keys = set(stored)

    # -- the wire --------------------------------------------------------------------------------------

    def send(self, case: Case) -> requests.Response:
        """Send with the real credentials through the suite's transport; every attempt becomes evidence."""
        # The transport's own loop: the throttle, connect retries, the 429 budget, causes named in ERRORs.
        return self.transport.send(self.prepare(case))

    def prepare(self, case: Case) -> requests.PreparedRequest:
        """The request ``case`` makes, with the real credentials."""
        kwargs = case.as_transport_kwargs(base_url=self.base_url)
        kwargs["headers"] = {
            name: self._real_headers[name.lower()] if name.lower() in self._secret else value
            for name, value in (kwargs.get("headers") or {}).items()
        }
        return self.transport.session.prepare_request(requests.Request(**kwargs))


def _masked(value: str, redactor: Redactor) -> str:
    """A secret header's value as a generated case carries it: each secret as its shell variable reference
    (``Bearer $MODMSG_API_KEY``), and ``[REDACTED]`` should the value hold no secret the redactor knows."""
    shown = redactor.reference(value)
    return shown if shown != value else REDACTED


# --------------------------------------------------------------------------------------------- streams per module


@dataclass
class Streams:
    """The fuzzing streams of one test module, each drawn once, on the first test that asks for its verdict.

    ``new_run`` gives a ``GeneratedRun`` on a fresh message (one per stream, so the modes never share state).
    Under pytest-xdist each worker has its own; ``modmsg run --workers`` groups a mode's tests on one worker.
    """

    new_run: Callable[[], GeneratedRun]
    transport: Transport = field(repr=False)
    reqs: frozenset[str] | None = None
    """The requirements the selected tests ask of the streams (None: every one of ``STREAM_JUDGES``)."""
    _done: dict[GenerationMode, Stream | Exception] = field(default_factory=dict, repr=False)

    def stream(self, mode: GenerationMode) -> Stream:
        done = self._done.get(mode)
        if done is None:
            try:
                done = self.new_run().stream(mode, label=mode.value, reqs=self.reqs)
            except Exception as exc:  # e.g. the target stopped answering: every test of the mode says so
                done = exc
            self._done[mode] = done
        if isinstance(done, Exception):
            raise done
        return done

    def verdict(self, mode: GenerationMode, req: str) -> Stream:
        """Raise ``req``'s first failure in the ``mode`` stream (shrunk when it could be), its case's exchanges in
        this test's evidence."""
        stream = self.stream(mode)
        if req not in stream.reqs:
            raise ValueError(f"the {mode.value} stream does not judge {req} (judges {', '.join(stream.reqs)})")
        finding = stream.findings.get(req)
        for exchange in finding.evidence if finding else stream.sample:
            self.transport.recorder.add(exchange)
        if finding is not None:
            raise finding.failure
        return stream
