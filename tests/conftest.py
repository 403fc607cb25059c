"""What every process of the project's own tests needs before its first test."""

from __future__ import annotations

import signal

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the runs and servers the tests start, as at a terminal. ``make test`` started as a background
    job of a non-interactive shell (``make test &`` in a CI step) inherits SIGINT ignored, and so would every
    process it starts: the tests that stop a run with Ctrl-C would meet a run that cannot be stopped. Python's own
    handler is put back (a process started from here then begins with SIGINT's default, and Python's handler)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
