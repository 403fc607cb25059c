"""The terminal summary: one line per area, then the claim."""

from __future__ import annotations

from modmsg.requirements import AREA_TITLES
from modmsg.results import Outcome, RunResult


def summary_lines(run: RunResult) -> list[str]:
    states = [o.value for o in Outcome]
    lines = [f"{'area':<28}" + "".join(f"{s:>8}" for s in states)]
    for area, results in run.by_area().items():
        counts = {s: sum(r.outcome.value == s for r in results) for s in states}
        title = f"{area} {AREA_TITLES.get(area, '')}"
        lines.append(f"{title:<28}" + "".join(f"{counts[s]:>8}" for s in states))
    for result in run.requirements:
        if result.outcome in (Outcome.FAIL, Outcome.ERROR):
            state = f"{result.outcome.value:<5}"
            lines.append(f"  {state} {result.id} [{result.level}] {result.title}: {result.reason}")
    lines.append(f"claim: {run.claim.text} (profile {run.meta.profile}, spec {run.meta.spec_version})")
    lines += comparison_lines(run)
    return lines


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
