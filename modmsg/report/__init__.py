"""Report writers: each reads a RunResult (never test or check code) and writes one artefact."""

from __future__ import annotations

import json
from pathlib import Path

from modmsg.report.junit import write_junit
from modmsg.results import RunResult


def write_results_json(run: RunResult, path: Path) -> Path:
    path.write_text(json.dumps(run.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_reports(run: RunResult, directory: Path) -> tuple[Path, ...]:
    directory.mkdir(parents=True, exist_ok=True)
    return (
        write_results_json(run, directory / "results.json"),
        write_junit(run, directory / "junit.xml"),
    )
