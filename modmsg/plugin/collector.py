"""The controller's side of a run: gather the test records, roll them up, write the reports, print the summary."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modmsg import __version__
from modmsg.plugin.console import quiet_console
from modmsg.plugin.draws import draw_versions
from modmsg.plugin.prepare import clear_reports
from modmsg.plugin.state import RunState
from modmsg.plugin.upstream import UpstreamPass, attributed, run_pass
from modmsg.results import BUNDLED, RunMeta, RunResult, TestRecord, compare
from modmsg.rollup import rollup
from modmsg.spec import spec_info


def stop_cause(state: RunState, session: pytest.Session, exitstatus: int) -> tuple[str | None, bool]:
    """Why the run ended before every selected test ran, and whether that was a deliberate stop (a signal,
    -x/--maxfail) rather than a fault (the target gone, the run budget spent)."""
    if state.stopped_early:
        return state.stopped_early.removeprefix("modmsg: "), False
    if state.interrupts.received:
        return f"interrupted by {state.interrupts.received}", True
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "interrupted", True
    if session.shouldfail:
        return f"stopped by pytest ({session.shouldfail})", True
    return None, False


class Collector:
    """Controller-side plugin object: gathers test records, rolls them up and writes the reports."""

    def __init__(self, state: RunState, config: pytest.Config) -> None:
        self.state = state
        self.config = config
        self.upstream_why = ""
        """Why the upstream pass gave no attribution (--upstream-url), when it gave none."""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == f"modmsg:{report.when}":
                self.state.records.append(TestRecord.from_dict(json.loads(str(value))))
                if not self.state.judging:  # an xdist controller (--workers) never collects: it learns it here
                    self.state.judging = True
                    quiet_console(self.config)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state = self.state
        ledger = state.ledger
        if ledger is not None:  # every worker has cleaned up by now: drop the settled lines
            ledger.compact()
        if not state.records:
            if state.judging:  # nothing judged: no earlier run's reports may stand in for this one
                clear_reports(state.settings.report_dir)
            return
        stopped, interrupted = stop_cause(state, session, exitstatus)
        upstream = self._upstream_pass(session, stopped) if state.settings.upstream_url else None
        run = build_result(state, stopped, interrupted)
        if upstream is not None:  # --upstream-url: each requirement's attribution
            run = attributed(run, upstream, state.redact(state.settings.upstream_url or ""))
        state.result = run
        from modmsg.report import write_reports

        state.written = write_reports(run, state.settings.report_dir)
        if not self._write_bundle(run):
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if run.failed else pytest.ExitCode.OK

    def _write_bundle(self, run: RunResult) -> bool:
        """The claim record and manifest beside the reports. A signing key that cannot be used any more (it was
        checked at the start) leaves nothing to publish: a claim asked to be signed is never published unsigned."""
        from modmsg.report.bundle import provenance, write_bundle
        from modmsg.report.signing import SigningError

        state = self.state
        sign_key = Path(state.settings.sign_key) if state.settings.sign_key else None
        try:
            origin = provenance(state.profile, state.overlay)
            state.written += write_bundle(run, state.settings.report_dir, origin, sign_key)
        except SigningError as exc:
            clear_reports(state.settings.report_dir)
            state.written, state.result = (), None
            state.stopped_early = f"modmsg: {exc}; no reports were kept"
            return False
        return True

    def _upstream_pass(self, session: pytest.Session, stopped: str | None) -> UpstreamPass:
        """The same selection and seed judged straight against the upstream, unless the run stopped early."""
        state = self.state
        if stopped:
            self.upstream_why = f"the run stopped before the upstream pass ({stopped})"
            return UpstreamPass(None, self.upstream_why)
        if state.interrupts.late:  # the user wants the run to end: not a whole second pass first
            self.upstream_why = f"{state.interrupts.late} arrived before the upstream pass"
            return UpstreamPass(None, self.upstream_why)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")

        def say(line: str) -> None:
            if reporter is not None:
                reporter.write("\n")  # after the progress dots: pytest ends their line only after the session
                reporter.write_line(state.console(line))

        try:
            done = run_pass(
                session.config, state.settings, state.run_id, state.started, say, state.interrupts.installed()
            )
        except KeyboardInterrupt:  # the signal came as the pass started or ended: no pass, the reports still written
            self.upstream_why = f"{state.interrupts.late or state.interrupts.received} stopped the upstream pass"
            return UpstreamPass(None, self.upstream_why)
        state.upstream_ledger = done.ledger
        self.upstream_why = state.redact(done.why)
        return dataclasses.replace(done, why=self.upstream_why)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        run = self.state.result
        if run is None:
            self._reliability_lines(terminalreporter)
            return
        from modmsg.report.console import requirement_stats_line, summary_lines

        terminalreporter.section("modmsg conformance")
        for line in summary_lines(run):
            terminalreporter.write_line(self.state.console(line))
        self._reliability_lines(terminalreporter)
        written = getattr(self.state, "written", ())
        if written:
            terminalreporter.write_line(
                f"reports: {Path(written[0]).parent}/ ({', '.join(Path(p).name for p in written)})"
            )
        if self.state.judging and terminalreporter.verbosity <= 0:
            # One count: requirements, not pytest's "103 failed" tests beside "30 requirements failing".
            terminalreporter.build_summary_stats_line = lambda: requirement_stats_line(run)

    def _reliability_lines(self, terminalreporter: Any) -> None:
        state = self.state
        if state.stopped_early:
            terminalreporter.write_line(state.console(state.stopped_early), red=True, bold=True)
        ledger = state.ledger
        if state.leftovers and ledger is not None:  # the bundled server's threads go with it
            terminalreporter.write_line(
                f"modmsg: {len(state.leftovers)} thread(s) of run {state.run_id} could not be deleted; they are "
                f"listed in {ledger.path}: "
                f"run `modmsg sweep --base-url {state.redact(state.settings.base_url or '')}` once the target "
                "answers again",
                yellow=True,
            )
        if self.upstream_why:
            terminalreporter.write_line(state.console(f"modmsg: no attribution: {self.upstream_why}"), yellow=True)
        if state.upstream_ledger is not None:
            upstream = state.redact(state.settings.upstream_url or "")
            # the upstream's own headers, a secret one as the variable its reproducers use
            assert state.redactor is not None
            headers = "".join(
                f' --header "{state.redactor.reference(f"{k}: {v}")}"' for k, v in state.settings.upstream_headers
            )
            terminalreporter.write_line(
                f"modmsg: thread(s) of the upstream pass could not be deleted; they are listed in "
                f"{state.upstream_ledger}: run `modmsg sweep --base-url {upstream} --api-key-env "
                f"{state.settings.upstream_api_key_env}{headers} --report-dir {state.upstream_ledger.parent}` once "
                "the upstream answers again",
                yellow=True,
            )


def build_result(state: RunState, stopped: str | None = None, interrupted: bool = False) -> RunResult:
    settings, info = state.settings, spec_info()
    finished = time.time()
    target = settings.base_url or BUNDLED
    meta = RunMeta(
        suite_version=__version__,
        spec_version=info.version,
        spec_commit=info.commit,
        spec_sha256=info.sha256,
        profile=state.profile.name,
        product=(state.overlay.product or None) if state.overlay else None,
        product_version=(state.overlay.version or None) if state.overlay else None,
        target=state.redact(target),
        seed=settings.seed,
        max_examples=settings.max_examples,
        started=datetime.fromtimestamp(state.started, UTC).isoformat(timespec="seconds"),
        finished=datetime.fromtimestamp(finished, UTC).isoformat(timespec="seconds"),
        duration=finished - state.started,
        selection=settings.requirements,
        stopped=stopped,
        interrupted=interrupted,
        variables=state.redactor.variables if state.redactor is not None else (),
        draws_with=draw_versions(),
    )
    run = rollup(
        state.catalogue,
        state.records,
        profile_name=state.profile.name,
        profile_base=state.profile.base,
        waivers=state.overlay.waivers if state.overlay else {},
        meta=meta,
        expected=state.expected,
    )
    if state.baseline is None:
        return run
    comparison = compare(state.baseline.as_dict(), run.requirements, str(settings.baseline))
    return dataclasses.replace(run, comparison=comparison)
