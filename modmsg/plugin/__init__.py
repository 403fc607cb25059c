"""The pytest plugin (entry point ``pytest11: modmsg``): its hooks and fixtures; each job lives in a module here.

It is passive until a test carries ``@pytest.mark.req``: only then is a target opened (the reference server,
or a probed URL) and, at the end of the session, reports written.

Reliability: a test that got no HTTP answer is an ERROR naming the cause; after ``--max-transport-failures``
such tests in a row the run stops with exit 2 and one sentence. Every thread the run creates is tagged with the
run id, written to the ledger (real targets) the moment it exists, and deleted at the end, also after a failure,
Ctrl-C or SIGTERM (both are turned into an orderly pytest interrupt while tests run; once the last test has run a
first one is noted and the cleanup and reports are finished).

The jobs: :mod:`.prepare` (settings and the files they name, checked before pytest starts), :mod:`.state` (the
session's state), :mod:`.interrupts` (signals), :mod:`.home` (a private Hypothesis home), :mod:`.selection`
(which tests a run judges), :mod:`.console` (the console's shape), :mod:`.threads` (the run's threads),
:mod:`.ahead` (fresh objects, and the tests that can, run ahead on a pool), :mod:`.outcomes` (a test's outcome and
record) and :mod:`.collector` (rollup, reports, terminal summary).
pytest finds hooks and fixtures only in this module (and in the registered :class:`~.collector.Collector`).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import secrets
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import pytest

from modmsg.api import AssistantsApi
from modmsg.config import OPTIONS, ConfigError, Settings
from modmsg.evidence import Recorder
from modmsg.plugin import upstream
from modmsg.plugin.ahead import ALONE, Ahead, message_fixture, plan, shared_names, thread_fixture
from modmsg.plugin.collector import Collector
from modmsg.plugin.console import quiet_console
from modmsg.plugin.draws import without_local_constants
from modmsg.plugin.home import private_hypothesis_home
from modmsg.plugin.interrupts import console_for_interrupts
from modmsg.plugin.logs import redacted_log_records
from modmsg.plugin.outcomes import clean_report, record_for
from modmsg.plugin.prepare import (
    SETUP_ERRORS,
    Prepared,
    clear_reports,
    prepare,
    probe_target,
    probe_upstream,
    refuse,
    report_dir_hint,
)
from modmsg.plugin.selection import (
    expected_counts,
    is_worker,
    mark_smoke,
    req_ids,
    select,
    stop_if_nothing_selected,
)
from modmsg.plugin.state import RunState
from modmsg.plugin.threads import ThreadFactory
from modmsg.profiles import Profile
from modmsg.redaction import Redactor, inert
from modmsg.target import Target, open_target, transport_for
from modmsg.transport import Transport

STATE = pytest.StashKey[RunState]()
RECORDER = pytest.StashKey[Recorder]()
PREPARED = pytest.StashKey[Prepared]()
AHEAD = pytest.StashKey[Ahead]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("modmsg", "modmsg conformance suite")
    for option in OPTIONS:
        group.addoption(
            option.flag,
            action="append" if option.repeatable else "store",
            dest=f"modmsg_{option.name}",
            default=None,
            metavar=option.metavar,
            help=f"{option.help} [env {option.env}]",
        )
    upstream.addoption(group)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Judge the settings before pytest starts a session: a wrong one is one line on stderr and exit 2, with
    nothing collected, started, sent or written (pytest.exit from pytest_configure would print "Exit: …")."""
    if config.option.help or config.option.version:
        return None
    try:
        prepared = config.stash[PREPARED] = prepare(config)
        settings = prepared.settings
        if settings.base_url and settings.api_key and not config.option.collectonly:
            probe_target(prepared)  # fail fast, before collection: one sentence, not a wall of failed tests
        if settings.upstream_url and not config.option.collectonly:
            probe_upstream(prepared)  # the upstream too: the run judges every requirement against it
    except SETUP_ERRORS as exc:
        clear_reports(report_dir_hint(config))  # no earlier run's green report may stand in for this one
        sys.stderr.write(f"modmsg: {inert(str(exc))}\n")
        return 2
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "req(*ids): the requirement ids (MM-AREA-NN) this test checks")
    config.addinivalue_line("markers", "modmsg_last: run after every other test (judges the whole run)")
    config.addinivalue_line(
        "markers", f"{ALONE}: never run ahead on a pool thread (the test starts threads of its own, or times itself)"
    )
    config.addinivalue_line(
        "markers", "smoke: the high-yield selection for request-budgeted targets (-m smoke --max-examples 3)"
    )
    # pytest-xdist registers it too when installed; without xdist the suites' marks must not warn.
    config.addinivalue_line("markers", "xdist_group(name): tests that share one xdist worker under --dist loadgroup")
    if config.option.help:  # pytest --help configures the plugins and runs nothing: a wrong setting must not hide it
        return
    try:
        prepared = config.stash.get(PREPARED, None) or prepare(config)  # xdist workers prepare their own
    except SETUP_ERRORS as exc:
        refuse(str(exc), None)  # refuse makes it inert
    settings, profile = prepared.settings, prepared.profile
    private_hypothesis_home(config)
    worker_input = getattr(config, "workerinput", None) or {}
    if settings.seed is None:
        # One seed for the whole run (xdist workers get the controller's), recorded in every report, so any run
        # can be replayed with --seed even when none was given.
        settings = dataclasses.replace(settings, seed=worker_input.get("modmsg_seed", secrets.randbelow(2**31)))
    state = RunState(
        settings=settings,
        profile=profile,
        catalogue=prepared.catalogue,
        overlay=prepared.overlay,
        baseline=prepared.baseline,
        upstream_pass=prepared.upstream_pass,
    )
    state.run_id = worker_input.get("modmsg_run_id") or prepared.run_id  # xdist: one run id for the whole run
    config.stash[STATE] = state
    redacted_log_records(config, state.redact)  # live log lines and --log-file never reach a report's cleaning
    console_for_interrupts(config, state.interrupts)
    if not is_worker(config):  # xdist workers only forward their reports
        config.pluginmanager.register(Collector(state, config), "modmsg-collector")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the run id and seed to every worker (one thread tag and one seed per run)."""
    state = node.config.stash.get(STATE, None)
    if state is not None:
        node.workerinput["modmsg_run_id"] = state.run_id
        node.workerinput["modmsg_seed"] = state.settings.seed


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Any:
    state = config.stash[STATE]
    keep = select(config, state, items)
    mark_smoke(config, state, keep)
    items[:] = keep
    result = yield  # pytest's -k and -m, and other plugins, select from here
    stop_if_nothing_selected(config, state, sum(1 for item in keep if req_ids(item)), items)
    # An xdist controller (--workers) never gets here (it does not collect): the collector sets it up from its
    # first record; without the tests it cannot know each requirement's count (a stopped run then judges less).
    state.judging = any(req_ids(item) for item in items)
    if state.judging and not is_worker(config):
        quiet_console(config)
        state.expected = expected_counts(items)
    # Tests marked modmsg_last judge what the whole run observed (e.g. every 429), so they run at the end.
    items[:] = sorted(items, key=lambda item: item.get_closest_marker("modmsg_last") is not None)
    return result


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Once a suite is collected, move what exists now (imported modules, the loaded spec, the collected coverage
    cases: never garbage) out of the collector's reach, so every full collection during the run scans only what
    the tests allocate; and make a seed draw the same cases however modmsg is installed (:mod:`.draws`). Only in a
    process that runs modmsg tests: another suite's Hypothesis tests in the same environment keep their draws."""
    if any(req_ids(item) for item in session.items):
        without_local_constants(session.config)
        gc.collect()
        gc.freeze()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    """A signal while tests run interrupts the loop (:mod:`.interrupts`); once the tests are over (:func:`
    pytest_runtest_teardown`, or here when the loop ends early), until the reports are written, a first one is only
    noted. Not in xdist workers, which write no reports; an xdist controller (--workers) never collects, so it does
    not know it judges (and has no handlers while its workers run) until records arrive."""
    state = session.config.stash.get(STATE, None)
    if state is None or is_worker(session.config):
        return (yield)
    with state.interrupts.installed() if state.judging else nullcontext():
        try:
            return (yield)
        except KeyboardInterrupt as exc:
            if type(exc) is KeyboardInterrupt:  # a Ctrl-C no handler of ours took: the next signal is a second one
                state.interrupts.stop_under_way()
            raise
        finally:
            if state.judging:  # an xdist controller knows once records arrived
                state.interrupts.hold()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """The last test's teardown deletes the run's threads: every verdict is in, so a first signal from here on lets
    the cleanup and the reports finish."""
    state = item.config.stash.get(STATE, None)
    if nextitem is None and state is not None and state.judging and not is_worker(item.config):
        state.interrupts.hold()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> Any:
    """The outermost: the reports and pytest's summary are written before the signals are given back."""
    try:
        return (yield)
    finally:
        state = session.config.stash.get(STATE, None)
        if state is not None:
            state.interrupts.release()


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def modmsg_state(pytestconfig: pytest.Config) -> RunState:
    return pytestconfig.stash[STATE]


@pytest.fixture(scope="session")
def settings(modmsg_state: RunState) -> Settings:
    return modmsg_state.settings


@pytest.fixture(scope="session")
def profile(modmsg_state: RunState) -> Profile:
    return modmsg_state.profile


@pytest.fixture(scope="session")
def target(modmsg_state: RunState) -> Iterator[Target]:
    try:
        with open_target(modmsg_state.settings, modmsg_state.profile.settings.beta_header) as opened:
            yield opened
    except ConfigError as exc:
        refuse(str(exc), None)


@pytest.fixture(scope="session")
def transport(target: Target, modmsg_state: RunState, pytestconfig: pytest.Config) -> Iterator[Transport]:
    settings = modmsg_state.settings
    made = transport_for(
        settings, target.base_url, target.api_key, modmsg_state.profile.settings.beta_header, modmsg_state.budget()
    )
    # The run's one redactor, now also knowing the key of the bundled server (made when no key is configured).
    made.redactor = modmsg_state.redactor = Redactor.from_settings(settings, api_key=target.api_key)
    if settings.record_requests is None:
        yield made
        return
    from modmsg.recording import RequestLog, worker_path

    worker = (getattr(pytestconfig, "workerinput", None) or {}).get("workerid")
    log = made.request_log = RequestLog(worker_path(settings.record_requests, worker), made.redactor)
    try:
        yield made
    finally:
        log.close()


@pytest.fixture(scope="session")
def api(transport: Transport) -> AssistantsApi:
    return AssistantsApi(transport)


@pytest.fixture(scope="session")
def run_id(modmsg_state: RunState) -> str:
    return modmsg_state.run_id


@pytest.fixture(scope="session")
def threads(api: AssistantsApi, run_id: str, modmsg_state: RunState) -> Iterator[ThreadFactory]:
    factory = ThreadFactory(
        api=api,
        run_id=run_id,
        ledger=modmsg_state.ledger,
        target=modmsg_state.redact(modmsg_state.settings.base_url or ""),
        interrupts=modmsg_state.interrupts,
        concurrency=modmsg_state.settings.concurrency,
    )
    with factory.interrupts.installed():
        try:
            yield factory
        finally:
            modmsg_state.leftovers += factory.stop_and_clean_up()


@pytest.fixture(scope="session")
def modmsg_ahead(
    threads: ThreadFactory, transport: Transport, modmsg_state: RunState, request: pytest.FixtureRequest
) -> Iterator[Ahead]:
    """The selected tests' fresh threads and messages, and the tests that can, run ahead (:mod:`.ahead`);
    stopped by the ``threads`` fixture's finalizer, right before its cleanup."""
    config = request.config
    workers = 0 if is_worker(config) else modmsg_state.settings.concurrency - 1
    units = plan(request.session.items, lambda item: bool(req_ids(item))) if workers > 0 else ()
    shared = {name: request.getfixturevalue(name) for name in sorted(shared_names(units))}
    ahead = config.stash[AHEAD] = Ahead(
        threads=threads, transport=transport, units=units, workers=workers, shared=shared
    )
    threads.stops_with(ahead.close)  # in the cleanup's own finalizer: a Ctrl-C while it waits skips no deletion
    try:
        yield ahead
    finally:
        del config.stash[AHEAD]


thread = thread_fixture()
"""A fresh thread of this run."""

message = message_fixture("message")
"""A fresh user message in a fresh thread, as createMessage returned it."""


@pytest.fixture(autouse=True)
def _modmsg_evidence(request: pytest.FixtureRequest) -> Iterator[None]:
    if not req_ids(request.node):
        yield
        return
    transport: Transport = request.getfixturevalue("transport")
    with transport.recording() as recorder:
        request.node.stash[RECORDER] = recorder
        yield
    # The test's report (and its evidence sample) is made by now: let the exchanges go instead of keeping every
    # test's last 256 reachable from its item until the session ends.
    del request.node.stash[RECORDER]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A test that ran ahead (:mod:`.ahead`) is not called again: its exchanges join its evidence, and what it
    raised is raised here."""
    ahead = pyfuncitem.config.stash.get(AHEAD, None)
    ran = ahead.call(pyfuncitem.nodeid) if ahead is not None else None
    if ahead is None or ran is None:
        return None
    ran.hand_out(ahead.transport)
    return True


# ------------------------------------------------------------------------------------------------ reports


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    ids = req_ids(item)
    state = item.config.stash[STATE]
    received = state.interrupts.received  # a signal held back, or whose KeyboardInterrupt was swallowed
    if received and report.when == "teardown":
        state.interrupts.stop_under_way()  # pytest stops the session right after this test
    if received and not item.session.shouldstop:
        item.session.shouldstop = f"modmsg: stopped by {received}"
    if not ids or (report.when != "call" and report.passed) or (report.when == "teardown" and report.skipped):
        return report
    if report.when == "teardown" and report.failed:
        return report  # cleanup trouble never changes the verdict of the test body
    recorder = item.stash.get(RECORDER, None)
    exchanges = recorder.snapshot() if recorder is not None else ()
    record = record_for(item, call, report, state, ids, exchanges)
    report.user_properties.append((f"modmsg:{report.when}", json.dumps(record.as_dict())))
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_makereport")
def pytest_modmsg_clean_report(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """pytest's own report of a test, before the terminal, ``--junitxml`` or an xdist controller sees it, cleaned
    (:func:`~.outcomes.clean_report`). The outermost wrapper, so it also sees what the plugin's own
    ``pytest_runtest_makereport`` adds."""
    report = yield
    state = item.config.stash.get(STATE, None)
    redactor = state.redactor if state is not None else None
    if redactor is not None:
        clean_report(report, redactor)
    return report
