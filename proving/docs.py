"""Generate docs/requirements.md from spec/requirements.yaml (`make docs`); a test fails when it is stale."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from modmsg.paths import REPO_DIR
from modmsg.reference.variants import VARIANTS, Variant
from modmsg.requirements import AREA_TITLES, Catalogue, load_catalogue
from modmsg.testindex import JudgingTest, judging_tests

TARGET = REPO_DIR / "docs" / "requirements.md"
README = REPO_DIR / "README.md"
TABLE_START, TABLE_END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _breakers(req: str, variants: Sequence[Variant]) -> str:
    """The variants that break ``req``: always (``breaks``), or when generated input reaches it (``generated``)."""
    names = [f"`{v.name}`" for v in variants if req in v.breaks]
    names += [f"`{v.name}` (when generated input reaches it)" for v in variants if req in v.generated]
    return ", ".join(names) or "(none)"


def render(
    catalogue: Catalogue,
    tests: Mapping[str, Sequence[JudgingTest]] | None = None,
    variants: Sequence[Variant] = VARIANTS,
) -> str:
    """docs/requirements.md; per requirement, the tests that judge it (``@pytest.mark.req``) and the variants
    that break it (``Variant.breaks`` and ``Variant.generated``)."""
    tests = judging_tests() if tests is None else tests
    active = catalogue.active()
    lines = [
        "# Requirement reference",
        "",
        "<!-- generated from spec/requirements.yaml by `make docs`; do not edit by hand -->",
        "",
        f"{len(active)} requirements: "
        + ", ".join(f"{sum(r.level.value == lvl for r in active)} {lvl}" for lvl in ("MUST", "SHOULD", "MAY"))
        + ". Profiles: `openai` judges "
        + f"{len(catalogue.for_profile('openai'))}, `spec` judges {len(catalogue.for_profile('spec'))}.",
        "",
        "Sources: `spec` is a JSON pointer into `spec/modify-message.openapi.yaml`; `observed` and `decision`",
        "cite `openai-behaviour.md` (the research notes on pre-shutdown OpenAI behaviour, §3 and §6); `http`",
        "names RFC 9110.",
        "A requirement with a *when* condition is judged only once that condition occurs in a run; otherwise it",
        "reports SKIP and does not block a claim.",
        "Per requirement, *judged by* lists the bundled tests marked `@pytest.mark.req` with its id",
        "(`modmsg/testindex.py`) and *broken by* the reference-server variants whose defect breaks it",
        "(`modmsg/reference/variants/`).",
    ]
    for area, title in AREA_TITLES.items():
        entries = [r for r in active if r.area == area]
        lines += ["", f"## {area}: {title}", "", "| id | level | title | profiles |", "|---|---|---|---|"]
        lines += [
            f"| [{r.id}](#{r.id.lower()}) | {r.level.value} | {_cell(r.title)} | {', '.join(r.profiles)} |"
            for r in entries
        ]
        for r in entries:
            lines += [
                "",
                f"### {r.id}",
                "",
                f"**{r.level.value}** · {_cell(r.title)}",
                "",
                r.statement,
                "",
                f"- source ({r.source.kind}): `{r.source.ref}`",
                f"- profiles: {', '.join(r.profiles)}",
            ]
            if r.when:
                lines.append(f"- judged when: {r.when}")
            judged = ", ".join(f"`{t}`" for t in tests.get(r.id, ())) or "(none)"
            lines += [f"- judged by: {judged}", f"- broken by: {_breakers(r.id, variants)}"]
    retired = [r for r in catalogue if r.retired]
    if retired:
        lines += ["", "## Retired", ""] + [f"- {r.id}: {r.retired}" for r in retired]
    return "\n".join(lines) + "\n"


def config_table() -> str:
    """The README's configuration table, from modmsg.config.OPTIONS (the single source of truth)."""
    from modmsg.config import OPTIONS

    rows = ["| option | environment | default | meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
        default = "(none)" if option.default in (None, ()) else f"`{option.default}`"
        flag = f"`{option.flag} {option.metavar}`" + (" (repeatable)" if option.repeatable else "")
        rows.append(f"| {flag} | `{option.env}` | {default} | {_cell(option.help)} |")
    return "\n".join(rows)


def readme_with_current_table(text: str) -> str:
    head, _, rest = text.partition(TABLE_START)
    _, _, tail = rest.partition(TABLE_END)
    return f"{head}{TABLE_START}\n{config_table()}\n{TABLE_END}{tail}"


COUNT = re.compile(r"(<!-- count:(?P<name>[a-z-]+) -->)(?P<text>.*?)(<!-- /count -->)", re.DOTALL)


def readme_counts(catalogue: Catalogue, variants: Sequence[Variant] = VARIANTS) -> dict[str, str]:
    """The README's figures that follow from the data, by the name of their ``<!-- count:NAME -->`` marker."""
    return {
        "requirements": f"{len(catalogue.active())} requirements",
        "variants": f"{len(variants)} variants",
        "guarantee": f"all {len(variants)} variants are caught",
    }


def readme_with_current_counts(text: str, catalogue: Catalogue | None = None) -> str:
    """``text`` with every ``<!-- count:NAME -->…<!-- /count -->`` span rewritten from the data."""
    counts = readme_counts(catalogue or load_catalogue())

    def current(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in counts:
            raise KeyError(f"README marker count:{name} names no figure; known: {', '.join(counts)}")
        return f"{match[1]}{counts[name]}{match[4]}"

    return COUNT.sub(current, text)


CHECKS_DOC = REPO_DIR / "docs" / "checks.md"
CHECK_MODULES = ("response", "metadata", "errors", "headers", "preconditions")
# A realistic sample per failure type: (requirement, expected, received) as a failing run would show it.
FAILURE_SAMPLES: dict[str, tuple[str, str, str]] = {
    "WrongStatus": ("MM-REQ-07", "401 for Authorization Bearer <wrong>", '403 application/json: {"error": {…}}'),
    "NotJson": ("MM-RESP-01", "a JSON body", "200 text/html: <html><body>OK</body></html>"),
    "SchemaViolation": (
        "MM-RESP-02",
        "a body valid against MessageObject",
        "2 violation(s): at (root): 'attachments' is a required property; at object: 'message' is not one of "
        "['thread.message']",
    ),
    "MissingField": (
        "MM-RESP-03",
        "keys incomplete_details, …, metadata present (null when empty)",
        "missing: incomplete_details, completed_at",
    ),
    "WrongValue": ("MM-RESP-04", 'object = "thread.message"', 'object = "message"'),
    "MetadataNotEchoed": (
        "MM-META-01",
        "the modify response to contain 16 pair(s) verbatim",
        '1 differ: " leading-space" -> "(absent)"',
    ),
    "MetadataNotPersisted": (
        "MM-META-02",
        "a later getMessage to contain 16 pair(s) verbatim",
        '16 differ: "Case" -> "(absent)"; …',
    ),
    "WrongMetadataSemantics": (
        "MM-META-04",
        'merge semantics: {"blank": "", "keep": "1", "overwrite": "new"}',
        '{"blank": "", "overwrite": "new"}',
    ),
    "LimitNotEnforced": ("MM-META-06", "400 for 17 keys", '200 application/json: {"id": "msg_…", …}'),
    "InvalidRequestAccepted": ("MM-REQ-02", "400 for a truncated body", '200 application/json: {"id": "msg_…", …}'),
    "WrongTypeAccepted": ("MM-META-09", "400 for the value 2", '200 application/json: {"id": "msg_…", …}'),
    "UnknownFieldAccepted": (
        "MM-REQ-01",
        "400 for the unknown key 'content'",
        '200 application/json: {"id": "msg_…", …}',
    ),
    "MissingBetaHeaderAccepted": ("MM-REQ-05", "400 for OpenAI-Beta None", '200 application/json: {"id": "msg_…", …}'),
    "CredentialsNotChecked": (
        "MM-REQ-07",
        "401 for Authorization Bearer <wrong>",
        '200 application/json: {"id": "msg_…", …}',
    ),
    "MissingResourceAccepted": ("MM-ERR-01", "404 for an unknown thread", '200 application/json: {"id": "msg_…", …}'),
    "CrossThreadAccess": (
        "MM-ERR-03",
        "404 for a message addressed through another thread",
        '200 application/json: {"id": "msg_…", …}',
    ),
    "BoundaryRejected": ("MM-META-05", "200 for 16 keys", '400 application/json: {"error": {…}}'),
    "PartialWrite": (
        "MM-META-12",
        "the message unchanged after the value 42",
        'metadata: {"before": "seeded"} -> {"before": "seeded", "ok": "applied?"}',
    ),
    "FieldChanged": ("MM-RESP-07", "every field except metadata unchanged", "created_at: 1763772000 -> 1763772061"),
    "LostUpdate": ("MM-META-16", "all 16 concurrently written keys stored", "9 lost: writer-00, writer-03, …"),
    "BadErrorEnvelope": (
        "MM-ERR-06",
        '{"error": {message: str, type: str, param: str|null, code: str|null}}',
        '\'error\' missing in 400 application/json: {"detail": "invalid metadata"}',
    ),
    "WrongErrorCode": (
        "MM-ERR-07",
        '{"code": "object_above_max_properties", "param": "metadata", …}',
        '{"code": null, "param": null, …}',
    ),
    "ServerError": ("MM-ERR-08", "a 2xx or 4xx answer to empty key", "500 application/json: {…}"),
    "SecretEchoed": (
        "MM-ERR-09",
        "no credential in the response",
        "the API key appears in the body (shown redacted in the evidence)",
    ),
    "WrongContentType": ("MM-HDR-02", "Content-Type: application/json", "Content-Type: text/html on 400"),
    "MissingHeader": ("MM-HDR-03", "a non-empty x-request-id header", "headers: content-length, content-type"),
    "SiblingCallFailed": (
        "MM-RESP-09",
        "200 with a JSON object from the sibling call the test stands on",
        'createMessage answered 500: {"error": …}',
    ),
    "NoAnswer": (
        "MM-ERR-08",
        "an HTTP answer to every request (the target answered the requests around this one)",
        "POST …/messages/msg_…: connection closed without a response, twice, while GET …/threads/… answered 404",
    ),
    "UnsafeId": (
        "MM-RESP-09",
        "createThread returns 'id' as an id of ASCII letters, digits, '_' and '-' (1 to 128 characters)",
        "id: 'thread_x/../../files/file-victim'",
    ),
    "UntaggedThread": (
        "MM-RESP-09",
        "createThread echoes the metadata sent (modmsg_run: modmsg-4f0c2a9e1b7d)",
        "modmsg_run: None",
    ),
    "GeneratedCaseFailed": (
        "MM-GEN-02",
        "a 4xx error envelope for a schema-violating request",
        '200 for {"metadata": {"k": 0}}',
    ),
    "SequenceDisagrees": (
        "MM-SEQ-01",
        'getMessage of M1 to show {"k0": "y"}',
        '{"k0": "x"} (then the sequence of steps, each with its curl)',
    ),
    "DeletedObjectLives": (
        "MM-SEQ-03",
        "a 404 for getMessage of M1 in deleted T1",
        '200 application/json: {"id": "msg_…", "object": "thread.message", …}',
    ),
    "ListingOrderWrong": ("MM-SEQ-04", "T1 listed desc by creation: M2 M1", "M1 M2"),
}


def render_checks() -> str:
    """docs/checks.md: every check (name, what it catches) and every failure (title, sample output)."""
    import importlib
    import inspect

    from modmsg import failures

    lines = [
        "# Checks and failures reference",
        "",
        "<!-- generated from modmsg/checks and modmsg/failures.py by `make docs`; do not edit by hand -->",
        "",
        "A check is a plain function that raises a typed failure carrying the requirement id it judges.",
        "",
    ]
    for name in CHECK_MODULES:
        module = importlib.import_module(f"modmsg.checks.{name}")
        lines += [f"## `modmsg.checks.{name}`", "", (module.__doc__ or "").strip().splitlines()[0], ""]
        for fname, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not fname.startswith("_"):
                doc = (function.__doc__ or "").strip().splitlines()
                lines.append(f"- `{fname}`: {doc[0] if doc else ''}")
        lines.append("")
    lines += ["## Failures", ""]
    for cname, cls in inspect.getmembers(failures, inspect.isclass):
        if issubclass(cls, failures.Failure) and cls is not failures.Failure:
            req, expected, received = FAILURE_SAMPLES[cname]
            sample = cls(req=req, expected=expected, received=received)
            lines += [f"### {cname}", "", f"{cls.title}.", "", "```text", str(sample), "```", ""]
    return "\n".join(lines)


TUNING_DOC = REPO_DIR / "docs" / "schemathesis-checks.md"


def render_tuning() -> str:
    """docs/schemathesis-checks.md: each built-in Schemathesis check, on/off/tuned, for which requirement, why."""
    from modmsg.generation.builtin_checks import BUILTIN_CHECKS

    lines = [
        "# How the generated suite configures Schemathesis's built-in checks",
        "",
        "<!-- generated from modmsg.generation.builtin_checks.BUILTIN_CHECKS by `make docs`; do not edit by hand -->",
        "",
        "Schemathesis 4.32.5 runs every built-in check by default, and several of them would raise false alarms",
        "against a correct OpenAI-compatible server (a correct 400/401/404, OpenAI's 404 for an unsupported",
        "method) or hide defects (404 counts as 'accepted' and as 'rejected'). Each check is on, off or tuned",
        "deliberately; the reason is kept next to the configuration in `modmsg/generation/builtin_checks.py`.",
        "",
        "| check | judges | setting and why |",
        "|---|---|---|",
    ]
    for check in BUILTIN_CHECKS:
        reqs = ", ".join(check.reqs) or "(none)"
        lines.append(f"| `{check.name}` | {reqs} | {_cell(check.why)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    TUNING_DOC.write_text(render_tuning(), encoding="utf-8")
    CHECKS_DOC.write_text(render_checks(), encoding="utf-8")
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(render(load_catalogue()), encoding="utf-8")
    readme = readme_with_current_counts(readme_with_current_table(README.read_text(encoding="utf-8")))
    README.write_text(readme, encoding="utf-8")
    from proving.mutation import DOCS_PATH, docs_with_table, variant_table

    DOCS_PATH.write_text(docs_with_table(DOCS_PATH.read_text(encoding="utf-8"), variant_table()), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(Path.cwd()) if TARGET.is_relative_to(Path.cwd()) else TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
