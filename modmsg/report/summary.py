"""summary.md: a short Markdown summary for a CI job page or a pull-request comment.

It contains no links, and any text that comes from the target (failure titles and reasons) is cleaned, cut
to one short line and escaped, so it cannot add formatting, HTML, mentions or table cells of its own.
"""

from __future__ import annotations

import re
from pathlib import Path

from modmsg.report import text, view
from modmsg.results import Attribution, RunResult

MAX_LISTED = 50  # failing requirements listed; the rest are counted
REASON_CAP = 160
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#!|~@])")
_AUTOLINK = re.compile(r"(?i)(:(?=//)|(?<=www)\.)")  # GFM links bare URLs; an escaped ':' or '.' stops it


def escape(value: object, limit: int = REASON_CAP) -> str:
    """One line of inert Markdown: no emphasis, code, links, HTML, mentions, autolinks or table pipes."""
    line = text.shorten(value, limit)
    line = line.replace("&", "&amp;")
    line = _MD_SPECIAL.sub(r"\\\1", line)
    return _AUTOLINK.sub(r"\\\1", line)


def _code(value: object, limit: int = 200) -> str:
    """An inline code span that no backtick inside ``value`` can close early (never used in a table)."""
    line = text.shorten(value, limit)
    fence = "`" * (max((len(m) for m in re.findall(r"`+", line)), default=0) + 1)
    pad = " " if line.startswith("`") or line.endswith("`") else ""  # CommonMark strips one space each side
    return f"{fence}{pad}{line}{pad}{fence}"


def render_summary(run: RunResult) -> str:
    meta, verdict = run.meta, view.verdict(run)
    states = [s.value for s in view.STATES]
    seed = _code(meta.seed) if meta.seed is not None else "not fixed"
    lines = [
        f"## Modify message conformance: {verdict.symbol} {verdict.label}",
        "",
        f"**Claim:** {escape(run.claim.text, 300)}",
        "",
        f"- Profile: {_code(meta.profile)}, product: {_code(view.product(run)) if view.product(run) else 'not named'}",
        f"- Target: {_code(meta.target)}",
        f"- Suite {_code(meta.suite_version)}, spec {_code(meta.spec_version)} at commit "
        f"{_code(meta.spec_commit[:12])}, seed {seed}",
        f"- Started {_code(meta.started)}, took {meta.duration:.1f} s"
        + (f", stopped before the end: {escape(meta.stopped)}" if meta.stopped else ""),
        f"- Replay: {_code(view.replay(run), 400)}"
        + (f" (draws the same cases with {escape(view.draws_with(run), 200)})" if run.meta.draws_with else ""),
        "",
        "| Level | " + " | ".join(f"{view.SYMBOLS[s]} {s}" for s in states) + " | Total |",
        "|---|" + "---:|" * (len(states) + 1),
    ]
    rows = dict(view.level_counts(run.requirements))
    rows["**All**"] = view.state_counts(run.requirements)
    for level, counts in rows.items():
        cells = [str(counts[s]) for s in states] + [str(sum(counts.values()))]
        lines.append(f"| {level} | " + " | ".join(cells) + " |")
    failing = view.failing(run)
    if failing:
        lines += ["", f"### Failing requirements ({len(failing)})", ""]
        for result in failing[:MAX_LISTED]:
            reason = f": {escape(result.reason)}" if result.reason else ""
            lines.append(
                f"- {view.SYMBOLS[result.outcome.value]} **{result.outcome.value}** {result.id} "
                f"[{result.level}] {escape(result.title, 120)}{reason}{escape(view.attribution_of(result))}"
            )
        if len(failing) > MAX_LISTED:
            lines.append(f"- and {len(failing) - MAX_LISTED} more (see report.html)")
    lines += attribution_lines(run)
    waived = [r for r in run.requirements if r.outcome.value == "WAIVED"]
    if waived:
        lines += ["", f"Waived ({len(waived)}): " + ", ".join(r.id for r in waived[:MAX_LISTED])]
    comparison = run.comparison
    if comparison is not None:
        lines += ["", f"### Against baseline {_code(comparison.baseline)}", ""]
        for label, ids in (
            ("Regressions", comparison.regressions),
            ("Fixes", comparison.fixes),
            ("Unchanged failures", comparison.unchanged_failures),
        ):
            lines.append(f"- {label} ({len(ids)}): {', '.join(ids[:MAX_LISTED]) or 'none'}")
    return "\n".join(lines) + "\n"


def attribution_lines(run: RunResult) -> list[str]:
    """The requirements per attribution, for a run with an upstream (``--upstream-url``); none otherwise."""
    if run.meta.upstream is None:
        return []
    lines = ["", f"### Attribution against the upstream {_code(run.meta.upstream)}", ""]
    for attribution in Attribution:
        ids = [r.id for r in run.requirements if r.attribution is attribution]
        if ids and attribution not in (Attribution.NONE, Attribution.UNKNOWN):
            listed = ", ".join(ids[:MAX_LISTED]) + (
                f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else ""
            )
            lines.append(f"- {escape(view.ATTRIBUTION_WORDS[attribution])} ({len(ids)}): {listed}")
        elif ids:
            lines.append(f"- {escape(view.ATTRIBUTION_WORDS[attribution])}: {len(ids)}")
    return lines


def write_summary(run: RunResult, path: Path) -> Path:
    path.write_bytes(render_summary(run).encode("utf-8", "replace"))
    return path
