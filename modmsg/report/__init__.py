"""Report writers: each reads a RunResult (never test or check code) and writes one artefact.

``write_reports`` writes all five artefacts of a run; ``rerender`` rebuilds the human-facing ones from an old
results.json (validated against docs/results.schema.json first by :mod:`modmsg.results_file`), so a vendor can
re-publish a run with a newer template.
"""

from __future__ import annotations

import json
from pathlib import Path

from modmsg.report.badge import write_badge
from modmsg.report.bundle import CLAIM, MANIFEST, SIGNATURE
from modmsg.report.html import write_html
from modmsg.report.junit import write_junit
from modmsg.report.summary import write_summary
from modmsg.results import RunResult
from modmsg.results_file import load_results

ARTEFACTS = ("results.json", "junit.xml", "summary.md", "report.html", "badge.svg", CLAIM, MANIFEST)
"""What every run writes into its report directory: the five reports, then the claim record and the manifest
(:mod:`modmsg.report.bundle`); a new run removes exactly these first, and the signature a signed run adds."""
SIGNED = (SIGNATURE,)
"""Written only with --sign-key; removed with the other artefacts."""

__all__ = [
    "ARTEFACTS",
    "SIGNED",
    "clear_reports",
    "rerender",
    "write_reports",
    "write_results_json",
]


def write_results_json(run: RunResult, path: Path) -> Path:
    # ensure_ascii=False keeps the file readable. A lone surrogate (json.loads accepts "\udcff" from a target)
    # has no UTF-8 form, so it is written as the same JSON escape, which loads back to the same string.
    # Streamed (json.dump), not built as one string: at the end of a long run that string's many pieces would
    # land on a fragmented heap and raise the run's peak memory by tens of MB.
    with path.open("w", encoding="utf-8", errors="backslashreplace", newline="\n") as out:
        json.dump(run.as_dict(), out, indent=2, ensure_ascii=False)
        out.write("\n")
    return path


def rerender(results_json: Path, out_dir: Path) -> tuple[Path, ...]:
    """Re-publish an old run: report.html, summary.md and badge.svg from its results.json."""
    run = load_results(results_json)
    out_dir.mkdir(parents=True, exist_ok=True)
    return (
        write_html(run, out_dir / "report.html"),
        write_summary(run, out_dir / "summary.md"),
        write_badge(run, out_dir / "badge.svg"),
    )


def clear_reports(directory: Path) -> None:
    """Remove the artefacts an earlier run left in ``directory`` (only those: the thread ledger and anything
    else stay), so a run that ends without a verdict leaves nothing stale for CI to publish."""
    for name in (*ARTEFACTS, *SIGNED):
        path = directory / name
        if path.is_file() or path.is_symlink():
            path.unlink()


def write_reports(run: RunResult, directory: Path) -> tuple[Path, ...]:
    directory.mkdir(parents=True, exist_ok=True)
    return (
        write_results_json(run, directory / "results.json"),
        write_junit(run, directory / "junit.xml"),
        write_summary(run, directory / "summary.md"),
        write_html(run, directory / "report.html"),
        write_badge(run, directory / "badge.svg"),
    )
