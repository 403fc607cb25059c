"""Report writers: each reads a RunResult (never test or check code) and writes one artefact.

``write_reports`` writes all five artefacts of a run; ``rerender`` rebuilds the human-facing ones from an old
results.json (validated against docs/results.schema.json first), so a vendor can re-publish a run with a
newer template.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from modmsg.paths import docs_dir
from modmsg.report.badge import write_badge
from modmsg.report.html import write_html
from modmsg.report.junit import write_junit
from modmsg.report.summary import write_summary
from modmsg.results import RESULTS_FORMAT, RunResult

SCHEMA_NAME = "results.schema.json"
ARTEFACTS = ("results.json", "junit.xml", "summary.md", "report.html", "badge.svg")
"""What a run writes into its report directory; a new run removes exactly these first."""

__all__ = [
    "ARTEFACTS",
    "ReportError",
    "clear_reports",
    "load_results",
    "rerender",
    "write_reports",
    "write_results_json",
]


class ReportError(ValueError):
    """A results file cannot be rendered; the message is one line naming the file and the problem."""


def schema_path() -> Path:
    """docs/results.schema.json of the checkout, or its copy in the installed wheel."""
    path = docs_dir() / SCHEMA_NAME
    if not path.is_file():
        raise ReportError(f"cannot find {SCHEMA_NAME} (looked in {path.parent})")
    return path


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def write_results_json(run: RunResult, path: Path) -> Path:
    # ensure_ascii=False keeps the file readable. A lone surrogate (json.loads accepts "\udcff" from a target)
    # has no UTF-8 form, so it is written as the same JSON escape, which loads back to the same string.
    # Streamed (json.dump), not built as one string: at the end of a long run that string's many pieces would
    # land on a fragmented heap and raise the run's peak memory by tens of MB.
    with path.open("w", encoding="utf-8", errors="backslashreplace", newline="\n") as out:
        json.dump(run.as_dict(), out, indent=2, ensure_ascii=False)
        out.write("\n")
    return path


def _one_line(value: Any, limit: int = 160) -> str:
    line = " ".join(str(value).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def load_results(path: Path) -> RunResult:
    """Read and validate a results.json; ReportError (one line) when it cannot be used."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != RESULTS_FORMAT:
        raise ReportError(f"{path}: format {_one_line(repr(data.get('format')), 60)} is not {RESULTS_FORMAT}")
    error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if error is not None:
        where = "/" + "/".join(str(p) for p in error.absolute_path)
        raise ReportError(f"{path}: does not match {RESULTS_FORMAT} at {where}: {_one_line(error.message)}")
    try:
        return RunResult.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"{path}: cannot be loaded: {_one_line(exc)}") from None


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
    for name in ARTEFACTS:
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
