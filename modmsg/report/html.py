"""report.html: one self-contained page (inline CSS, no JavaScript) rendered from a RunResult by Jinja2.

The template lives in ``templates/report.html.jinja2``; autoescape is on, and the environment's ``finalize``
hook passes every printed value through ``text.clean`` so target data can neither inject markup nor smuggle
control characters, bidi overrides or lone surrogates into the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from modmsg.report import text, view
from modmsg.results import Attribution, Outcome, RequirementResult, RunResult, TestRecord

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_TESTS_SHOWN = 20  # failing tests shown in full per requirement
MAX_EXCHANGES_SHOWN = 8  # exchanges shown per test (the last ones: they led to the verdict)


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Markup | int | float):
        return value
    return text.clean(value)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("jinja2", "html", "svg"), default_for_string=True),
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["capped"] = text.capped
    env.filters["shorten"] = text.shorten
    env.filters["duration"] = duration
    env.globals["SYMBOLS"] = view.SYMBOLS
    return env


@dataclass(frozen=True)
class ExchangeView:
    request_line: str
    request_headers: str
    request_body: text.Body | None
    status_line: str
    response_headers: str
    response_body: text.Body | None
    error: str
    curl: str


@dataclass(frozen=True)
class TestView:
    nodeid: str
    outcome: str
    title: str
    expected: str
    received: str
    detail: str
    reason: str
    exchanges: tuple[ExchangeView, ...]
    exchanges_omitted: int


@dataclass(frozen=True)
class PairView:
    """An introduced failure's evidence side by side: the target's last exchange of a failing test and the
    upstream's exchange making the same call in the same test (``--upstream-url``)."""

    nodeid: str
    target: ExchangeView
    upstream: ExchangeView | None
    upstream_outcome: str


@dataclass(frozen=True)
class RequirementView:
    result: RequirementResult
    anchor: str
    bad: tuple[TestView, ...]  # full evidence of the tests behind a FAIL/ERROR (or a waived one)
    bad_omitted: int
    others: tuple[TestRecord, ...]  # the remaining tests, listed by name and outcome
    sample: ExchangeView | None  # one exchange showing what a passing test looked at
    expanded: bool  # FAIL/ERROR: shown open, with full evidence
    standalone: bool  # FAIL/ERROR/WAIVED get a section each; PASS/SKIP share one collapsed section per area
    pairs: tuple[PairView, ...] = ()  # an introduced failure: the target's and the upstream's exchanges


@dataclass(frozen=True)
class AreaView:
    group: view.AreaGroup
    rows: tuple[RequirementView, ...]  # every requirement, failures first

    @property
    def standalone(self) -> tuple[RequirementView, ...]:
        return tuple(r for r in self.rows if r.standalone)

    @property
    def quiet(self) -> tuple[RequirementView, ...]:
        return tuple(r for r in self.rows if not r.standalone)


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {secs} s" if hours else f"{minutes} min {secs} s"


def _headers(pairs: Any) -> str:
    lines = []
    for pair in pairs or ():
        if isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2:
            lines.append(f"{pair[0]}: {pair[1]}")
    return text.capped("\n".join(lines))


def exchange_view(data: Mapping[str, Any]) -> ExchangeView:
    status = data.get("status")
    size = data.get("response_size")
    parts = [f"HTTP {status}" if status is not None else "no HTTP response"]
    if isinstance(data.get("elapsed"), int | float):
        parts.append(f"{data['elapsed']:.3f} s")
    if isinstance(size, int) and status is not None:
        parts.append(f"{size:,} bytes")
    return ExchangeView(
        request_line=text.shorten(f"{data.get('method', '')} {data.get('url', '')}", 2048),
        request_headers=_headers(data.get("request_headers")),
        request_body=text.body(data.get("request_body")),
        status_line=" · ".join(parts),
        response_headers=_headers(data.get("response_headers")),
        response_body=text.body(data.get("response_body"), wire_size=size if isinstance(size, int) else None),
        error=text.capped(data.get("error") or ""),
        curl=text.capped(data.get("curl") or ""),
    )


def test_view(record: TestRecord) -> TestView:
    failure = record.failure or {}
    shown = record.evidence[-MAX_EXCHANGES_SHOWN:]
    return TestView(
        nodeid=record.nodeid,
        outcome=record.outcome.value,
        title=str(failure.get("title", "")),
        expected=str(failure.get("expected", "")),
        received=str(failure.get("received", "")),
        detail=str(failure.get("detail", "")),
        reason=record.reason,
        exchanges=tuple(exchange_view(e) for e in shown),
        exchanges_omitted=len(record.evidence) - len(shown),
    )


def pair_views(result: RequirementResult, bad: tuple[TestRecord, ...]) -> tuple[PairView, ...]:
    """For an introduced failure, each failing test's last exchange beside the upstream's same call."""
    if result.attribution is not Attribution.INTRODUCED:
        return ()
    pairs = []
    for test in bad[:MAX_TESTS_SHOWN]:
        twin = view.upstream_twin(result, test)
        if not test.evidence:
            continue
        theirs = view.matching_exchange(test.evidence[-1], twin.evidence) if twin is not None else None
        pairs.append(
            PairView(
                nodeid=test.nodeid,
                target=exchange_view(test.evidence[-1]),
                upstream=exchange_view(theirs) if theirs is not None else None,
                upstream_outcome=twin.outcome.value if twin is not None else "not run",
            )
        )
    return tuple(pairs)


def requirement_view(result: RequirementResult) -> RequirementView:
    bad = view.bad_tests(result)
    others = view.other_tests(result)
    sample = next((e for t in others for e in t.evidence), None)
    return RequirementView(
        result=result,
        anchor=f"req-{result.id}",
        bad=tuple(test_view(t) for t in bad[:MAX_TESTS_SHOWN]),
        bad_omitted=max(0, len(bad) - MAX_TESTS_SHOWN),
        others=others,
        sample=exchange_view(sample) if sample is not None else None,
        expanded=result.outcome in view.BAD,
        standalone=result.outcome in (*view.BAD, Outcome.WAIVED),
        pairs=pair_views(result, bad),
    )


def render_html(run: RunResult, *, generated: str | None = None) -> str:
    groups = [AreaView(g, tuple(requirement_view(r) for r in g.requirements)) for g in view.groups(run)]
    return (
        environment()
        .get_template("report.html.jinja2")
        .render(
            run=run,
            meta=run.meta,
            claim=run.claim,
            verdict=view.verdict(run),
            product=view.product(run),
            replay=view.replay(run),
            states=[s.value for s in view.STATES],
            counts=view.state_counts(run.requirements),
            levels=view.level_counts(run.requirements),
            groups=groups,
            failing=view.failing(run),
            attribution=view.attribution_counts(run),
            attribution_words={a.value: words for a, words in view.ATTRIBUTION_WORDS.items()},
            generated=generated or datetime.now(UTC).isoformat(timespec="seconds"),
        )
    )


def write_html(run: RunResult, path: Path) -> Path:
    path.write_bytes(render_html(run).encode("utf-8", "replace"))
    return path
