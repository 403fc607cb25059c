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


def redacted_log_records(config: pytest.Config, redact: Callable[[str], str]) -> None:
    """Until the session ends, make every log record's message ``inert(redact(message))``; ``redact`` is looked up
    per record, so a redactor that learns a key later (the bundled server's) applies from then on."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format is left for its handler to report
            return record
        cleaned = inert(redact(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(factory)
    config.add_cleanup(lambda: logging.setLogRecordFactory(previous))
