"""The console of a conformance run: progress and the modmsg section, not the suite's own tracebacks."""

from __future__ import annotations

import pytest


def quiet_console(config: pytest.Config) -> None:
    """The default console of a conformance run: progress, then one line per failing requirement and the claim
    (the modmsg section), not the suite's own tracebacks and per-test counts. ``--tb`` or ``-v`` bring pytest's
    tracebacks back; ``-r`` its short summary."""
    option = config.option
    if option.verbose > 0:
        return
    if option.tbstyle == "auto":
        option.tbstyle = "no"
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and option.reportchars == "fE":  # pytest's default, not the user's -r
        reporter.reportchars = reporter.reportchars.replace("f", "").replace("E", "")
