"""The terminal summary: one line per failing requirement, the area table, then the claim.

Everything here reads a RunResult; target text is cleaned (controls made visible) and cut to one line.
"""

from __future__ import annotations

from modmsg.report import text, view
from modmsg.requirements import AREA_TITLES
from modmsg.results import Outcome, RequirementResult, RunResult

LINE_CAP = 220
_COLOURS = {
    "conformant": "green",
    "not-conformant": "red",
    "waived": "blue",
    "no-claim": "yellow",
    "partial": "yellow",
    "interrupted": "yellow",
}


def failing_line(result: RequirementResult) -> str:
    """``FAIL  MM-X [MUST] title: expected … / received … · first evidence line`` as one bounded line."""
    head = f"{result.outcome.value:<7} {result.id} [{result.level}] {result.title}{view.attribution_of(result)}"
    test = next(iter(view.bad_tests(result)), None)
    failure = (test.failure or {}) if test is not None else {}
    if result.outcome is Outcome.FAIL and failure.get("expected"):
        detail = f"expected {failure['expected']}; received {failure.get('received', '')}"
    else:
        detail = result.reason
    evidence = ""
    if test is not None and test.evidence:
        exchange = test.evidence[-1]
        answer = exchange.get("status") if exchange.get("status") is not None else exchange.get("error") or "no answer"
        evidence = f" [{exchange.get('method', '')} {_path(exchange.get('url', ''))} -> {answer}]"
    return text.shorten(f"{head}: {detail}{evidence}", LINE_CAP)


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1] if "://" in url else url


def summary_lines(run: RunResult) -> list[str]:
    states = [o.value for o in view.STATES]
    lines = [f"{'area':<28}" + "".join(f"{s:>8}" for s in states)]
    for area, results in run.by_area().items():
        counts = view.state_counts(results)
        title = f"{area} {AREA_TITLES.get(area, '')}"
        lines.append(f"{title:<28}" + "".join(f"{counts[s]:>8}" for s in states))
    lines += [failing_line(result) for result in view.failing(run)]
    product = view.product(run)
    on = f", product {product}" if product else ""
    lines.append(
        text.shorten(f"claim: {run.claim.text} (profile {run.meta.profile}{on}, spec {run.meta.spec_version})", 400)
    )
    attribution = view.attribution_line(run)
    lines += [text.shorten(attribution, 400)] if attribution else []
    lines.append(text.shorten(f"replay: {view.replay(run)}", 400))
    lines += comparison_lines(run)
    return lines


def requirement_stats_line(run: RunResult) -> tuple[list[tuple[str, dict[str, bool]]], str]:
    """pytest's closing line, counted in requirements: ``30 FAIL, 12 BLOCKED, 9 PASS requirements``."""
    counts = view.state_counts(run.requirements)
    colour = _COLOURS.get(run.claim.status, "yellow")
    parts = [(f"{counts[s.value]} {s.value}", {colour: True}) for s in view.STATES if counts[s.value]]
    if parts:
        last_text, markup = parts[-1]
        parts[-1] = (f"{last_text} requirements", markup)
    return parts, colour


def comparison_lines(run: RunResult) -> list[str]:
    comparison = run.comparison
    if comparison is None:
        return []
    return [
        f"against baseline {comparison.baseline}:",
        f"  regressions ({len(comparison.regressions)}): {', '.join(comparison.regressions) or 'none'}",
        f"  fixes ({len(comparison.fixes)}): {', '.join(comparison.fixes) or 'none'}",
        f"  unchanged failures ({len(comparison.unchanged_failures)}): "
        f"{', '.join(comparison.unchanged_failures) or 'none'}",
    ]
