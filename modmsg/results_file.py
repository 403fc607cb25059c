"""results.json read back: the file checked against docs/results.schema.json and loaded as a RunResult.

Shared by the plugin (``--baseline``) and the reports (``modmsg report`` re-renders an old run); neither needs the
other for it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from modmsg.paths import docs_dir
from modmsg.results import RESULTS_FORMAT, RunResult

SCHEMA_NAME = "results.schema.json"


class ResultsError(ValueError):
    """A results file cannot be used; the message is one line naming the file and the problem."""


def schema_path() -> Path:
    """docs/results.schema.json of the checkout, or its copy in the installed wheel."""
    path = docs_dir() / SCHEMA_NAME
    if not path.is_file():
        raise ResultsError(f"cannot find {SCHEMA_NAME} (looked in {path.parent})")
    return path


@cache
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _one_line(value: Any, limit: int = 160) -> str:
    line = " ".join(str(value).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def load_results(path: Path) -> RunResult:
    """Read and validate a results.json; ResultsError (one line) when it cannot be used."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != RESULTS_FORMAT:
        raise ResultsError(f"{path}: format {_one_line(repr(data.get('format')), 60)} is not {RESULTS_FORMAT}")
    error = jsonschema.exceptions.best_match(validator().iter_errors(data))
    if error is not None:
        where = "/" + "/".join(str(p) for p in error.absolute_path)
        raise ResultsError(f"{path}: does not match {RESULTS_FORMAT} at {where}: {_one_line(error.message)}")
    try:
        return RunResult.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot be loaded: {_one_line(exc)}") from None
