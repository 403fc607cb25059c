"""Log records of a run are redacted and made inert when they are made, whoever logs them and wherever they go.

pytest shows log records live (``--log-cli-level``), in a test's captured-log section and in ``--log-file``;
libraries log what the target sent (urllib3 logs every request line, with the target's ids in the path, and why
it retried; Hypothesis and Schemathesis log what they drew). Captured sections go through the report cleaning of
:mod:`.outcomes`, but live lines and log files never reach a report. So the run installs a log record factory:
every record's message is formatted once, redacted with the run's redactor and made inert (no terminal control
from the target reaches a console), before any handler sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from modmsg.redaction import inert

WITHHELD = "[modmsg: log message withheld: it could not be redacted]"


def redacted_log_records(config: pytest.Config, redact: Callable[[str], str]) -> None:
    """Until the session ends, make every log record's message, traceback and stack ``inert(redact(...))``;
    ``redact`` is looked up per record, so a redactor that learns a key later (the bundled server's) applies from
    then on."""
    previous = logging.getLogRecordFactory()

    def clean(text: str) -> str:
        try:
            return inert(redact(text))
        except Exception:  # never break the code that logs; never let unredacted text through either
            return WITHHELD

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not format: the handler would print msg and args raw
            message = f"{record.msg!r} % {record.args!r}"
        cleaned = clean(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info:  # formatters reuse exc_text when it is set: the traceback they print is this one
            record.exc_text = clean(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = clean(record.stack_info)
        return record

    def restore() -> None:
        if logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(previous)

    logging.setLogRecordFactory(factory)
    config.add_cleanup(restore)
