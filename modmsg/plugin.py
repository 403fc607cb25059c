"""The pytest plugin (entry point ``pytest11: modmsg``): options, fixtures, requirement marks, result rollup.

It is passive until a test carries ``@pytest.mark.req``: only then is a target opened (the reference server,
or a probed URL) and, at the end of the session, reports written.

Reliability: a test that got no HTTP answer is an ERROR naming the cause; after ``--max-transport-failures``
such tests in a row the run stops with exit 2 and one sentence. Every thread the run creates is tagged with the
run id, written to the ledger (real targets) the moment it exists, and deleted at the end, also after a failure,
Ctrl-C or SIGTERM (both are turned into an orderly pytest interrupt while the run holds threads).
"""

from __future__ import annotations

import _thread
import dataclasses
import difflib
import gc
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modmsg import __version__
from modmsg.api import AssistantsApi
from modmsg.config import OPTIONS, ConfigError, Settings, load_config_file, resolve
from modmsg.failures import Failure
from modmsg.profiles import Profile, ProfileError, load_profile
from modmsg.redaction import Redactor
from modmsg.requirements import Catalogue, CatalogueError, load_catalogue, matches
from modmsg.results import Outcome, RunMeta, RunResult, TestRecord, compare, rollup
from modmsg.spec import spec_info
from modmsg.sweep import RUN_TAG, Ledger, ledger_path
from modmsg.target import Target, open_target, probe
from modmsg.transport import Transport, TransportError
from modmsg.waivers import Overlay, WaiverError, load_overlay

EVIDENCE_ON_FAILURE = 8
EVIDENCE_ON_PASS = 2
CLEANUP_GIVE_UP = 3
"""Consecutive transport failures after which cleanup stops trying; the ledger keeps the rest for a sweep."""


class Interrupts:
    """SIGINT and SIGTERM as a pytest interrupt (so fixtures tear down and threads get deleted), deferred while a
    thread is being created so that its id always reaches the cleanup list and the ledger.

    A second signal while one is deferred interrupts at once. A signal once the interrupt is under way (a second
    Ctrl-C during cleanup or the reports) ends the process at once and quietly: one line on stderr, exit 128 +
    the signal number, no traceback; whatever was not yet deleted stays in the ledger for ``modmsg sweep``.
    Installed only while the run holds threads, and only from the main thread; the previous handlers come back
    afterwards, unless an interrupt is under way (then a later signal still ends the process quietly).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._critical = 0
        self._pending: str | None = None
        self._stopping = False
        self._lock = threading.Lock()
        self._previous: dict[int, Any] = {}
        self.console_fd = 2
        """Where the one line of a quiet exit goes: the plugin points it at a copy of the real stderr, because
        pytest's capture has replaced file descriptor 2 while a test runs."""
        self.received: str | None = None
        """The first signal's name. Python drops an exception raised where it cannot propagate (a gc callback,
        a ``__del__``), so the plugin also stops the session at the next test boundary when this is set."""

    def handler(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        with self._lock:
            self.received = self.received or name
            again = self._stopping
            defer = not again and self._critical > 0 and self._pending is None
            if defer:
                self._pending = name
            self._stopping = not defer
        if again:
            self.exit_now(signum)
        if not defer:
            raise KeyboardInterrupt(f"modmsg: stopped by {name}")

    def exit_now(self, signum: int) -> None:
        """End the process without unwinding: an exception raised now could land anywhere (inside pytest's own
        interrupt report, a gc callback) and print hundreds of lines of traceback instead of stopping."""
        name = signal.Signals(signum).name
        line = f"modmsg: stopped at once by a second {name}; cleanup and reports were cut short\n"
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):
                stream.flush()
        with suppress(OSError):
            os.write(self.console_fd, line.encode())
        os._exit(128 + signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        with self._lock:
            self._critical += 1
        try:
            yield
        except KeyboardInterrupt:
            self._leave()  # a second signal is already interrupting: nothing more to raise
            raise
        except BaseException as exc:
            self._interrupt_if(self._leave(), exc)
            raise
        self._interrupt_if(self._leave(), None)

    def _interrupt_if(self, pending: str | None, cause: BaseException | None) -> None:
        if not pending:
            return
        if threading.current_thread() is threading.main_thread():
            with self._lock:
                self._stopping = True
            raise KeyboardInterrupt(f"modmsg: stopped by {pending}") from cause
        _thread.interrupt_main(signal.SIGINT)

    def _leave(self) -> str | None:
        """Leave a critical block; the deferred signal's name once the last block is left."""
        with self._lock:
            self._critical -= 1
            pending = self._pending if self._critical == 0 else None
            if pending:
                self._pending = None
            return pending

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        for sig in self.SIGNALS:
            current = signal.getsignal(sig)
            if current in (signal.default_int_handler, signal.SIG_DFL):  # never override someone's own handler
                self._previous[sig] = signal.signal(sig, self.handler)
        try:
            yield
        finally:
            if not self._stopping:
                for sig, previous in self._previous.items():
                    signal.signal(sig, previous)
            self._previous.clear()


@dataclass
class RunState:
    """Controller-side state of one pytest session (lives in ``config.stash``, never global)."""

    settings: Settings
    profile: Profile
    catalogue: Catalogue
    overlay: Overlay | None
    baseline: RunResult | None = None
    started: float = field(default_factory=time.time)
    records: list[TestRecord] = field(default_factory=list)
    redactor: Redactor | None = None
    result: RunResult | None = None
    written: tuple[Any, ...] = ()
    run_id: str = field(default_factory=lambda: f"modmsg-{secrets.token_hex(6)}")
    interrupts: Interrupts = field(default_factory=Interrupts)
    transport_streak: int = 0
    """Tests in a row (in this process) that got no HTTP answer; any answered test resets it."""
    stopped_early: str | None = None
    leftovers: tuple[str, ...] = ()
    """Threads this process could not delete at the end (they stay in the ledger for ``modmsg sweep``)."""

    @property
    def ledger(self) -> Ledger | None:
        """Only runs against a real target keep a ledger: the bundled server's threads die with the process."""
        if not self.settings.base_url:
            return None
        return Ledger(ledger_path(self.settings.report_dir))

    def redact(self, text: str) -> str:
        secrets_ = tuple(s for s in self.settings.secrets() if s)
        return Redactor(frozenset(), secrets_).text(text) if secrets_ else text


STATE = pytest.StashKey[RunState]()
RECORDER = pytest.StashKey[Any]()


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


SETUP_ERRORS = (ConfigError, ProfileError, CatalogueError, WaiverError)
"""A wrong setting or a wrong file named by one: one sentence and exit 2, never a traceback."""


@dataclass(frozen=True)
class Prepared:
    """The run's settings and the files they name, read and checked before pytest configures anything."""

    settings: Settings
    catalogue: Catalogue
    profile: Profile
    overlay: Overlay | None
    baseline: RunResult | None


PREPARED = pytest.StashKey[Prepared]()


def _prepare(config: pytest.Config) -> Prepared:
    """Check every setting and every file one names; raise one of SETUP_ERRORS (one sentence) at the first wrong one."""
    cli = {option.name: config.getoption(f"modmsg_{option.name}") for option in OPTIONS}
    settings = resolve(cli, file=load_config_file(Path.cwd()))
    catalogue = load_catalogue()
    for selector in settings.requirements:
        if not any(matches(r.id, selector) for r in catalogue.active()):
            close = difflib.get_close_matches(selector, [r.id for r in catalogue.active()], n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]}?" if close else "; `modmsg requirements` lists them"
            raise ConfigError(f"--req {selector} matches no requirement in the catalogue{hint}")
    profile = load_profile(settings.profile)
    overlay = load_overlay(settings.overlay, catalogue) if settings.overlay else None
    baseline = _load_baseline(settings, profile) if settings.baseline else None
    return Prepared(settings, catalogue, profile, overlay, baseline)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Judge the settings before pytest starts a session: a wrong one is one line on stderr and exit 2, with
    nothing collected, started, sent or written (pytest.exit from pytest_configure would print "Exit: …")."""
    if config.option.help or config.option.version:
        return None
    try:
        config.stash[PREPARED] = _prepare(config)
    except SETUP_ERRORS as exc:
        sys.stderr.write(f"modmsg: {exc}\n")
        return 2
    return None


HYPOTHESIS_HOME_PREFIX = "modmsg-hypothesis-"


def _remove_orphaned_hypothesis_homes() -> None:
    """Remove the private Hypothesis directories of this user's runs whose process is gone (killed, or ended at
    once by a second Ctrl-C), so they do not pile up in the temporary directory."""
    for path in Path(tempfile.gettempdir()).glob(f"{HYPOTHESIS_HOME_PREFIX}*-*"):
        pid = path.name.removeprefix(HYPOTHESIS_HOME_PREFIX).split("-", 1)[0]
        with suppress(OSError):
            if pid.isdigit() and path.stat().st_uid == os.getuid() and not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:  # another user's process
        return True
    except (OSError, OverflowError):
        return False
    return True


def _private_hypothesis_home(config: pytest.Config) -> None:
    """Hypothesis writes caches under ``./.hypothesis`` even without an example database (constants, charmap):
    give this process a private directory, removed at the end, so a run leaves nothing in the user's working
    directory. A directory the user chose (HYPOTHESIS_STORAGE_DIRECTORY) is kept."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    from hypothesis.configuration import set_hypothesis_home_dir

    _remove_orphaned_hypothesis_homes()
    home = tempfile.mkdtemp(prefix=f"{HYPOTHESIS_HOME_PREFIX}{os.getpid()}-")
    set_hypothesis_home_dir(home)
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
    config.add_cleanup(lambda: set_hypothesis_home_dir(None))


def _console_for_interrupts(config: pytest.Config, interrupts: Interrupts) -> None:
    """A copy of the real stderr (pytest's capture is suspended during configure) for a quiet exit's one line."""
    console = os.dup(2)
    interrupts.console_fd = console

    def close() -> None:
        interrupts.console_fd = 2
        os.close(console)

    config.add_cleanup(close)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "req(*ids): the requirement ids (MM-AREA-NN) this test checks")
    config.addinivalue_line("markers", "modmsg_last: run after every other test (judges the whole run)")
    config.addinivalue_line(
        "markers", "smoke: the high-yield selection for request-budgeted targets (-m smoke --max-examples 3)"
    )
    # pytest-xdist registers it too when installed; without xdist the suites' marks must not warn.
    config.addinivalue_line("markers", "xdist_group(name): tests that share one xdist worker under --dist loadgroup")
    if config.option.help:  # pytest --help configures the plugins and runs nothing: a wrong setting must not hide it
        return
    try:
        prepared = config.stash.get(PREPARED, None) or _prepare(config)  # xdist workers prepare their own
        settings, profile = prepared.settings, prepared.profile
        if settings.base_url and settings.api_key and not config.option.collectonly:
            # Fail fast, before collection: one sentence and exit 2 instead of a wall of failed tests.
            probe(settings.base_url, settings.api_key, settings.headers, profile.settings.beta_header, settings.timeout)
    except SETUP_ERRORS as exc:
        pytest.exit(f"modmsg: {exc}", returncode=2)
    _private_hypothesis_home(config)
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
    )
    if worker_input.get("modmsg_run_id"):  # xdist: one run id for the whole run
        state.run_id = worker_input["modmsg_run_id"]
    config.stash[STATE] = state
    _console_for_interrupts(config, state.interrupts)
    if not hasattr(config, "workerinput"):  # xdist workers only forward their reports
        config.pluginmanager.register(Collector(state), "modmsg-collector")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the run id and seed to every worker (one thread tag and one seed per run)."""
    state = node.config.stash.get(STATE, None)
    if state is not None:
        node.workerinput["modmsg_run_id"] = state.run_id
        node.workerinput["modmsg_seed"] = state.settings.seed


def _load_baseline(settings: Settings, profile: Profile) -> RunResult:
    """The --baseline results.json, refused (one sentence) when it is unreadable or from another run's kind: a
    different target, profile or suite version would turn every difference into a false regression or fix."""
    from modmsg.report import ReportError, load_results

    path = settings.baseline
    try:
        baseline = load_results(Path(str(path)))
    except (ReportError, OSError) as exc:
        raise ConfigError(f"baseline {path} cannot be used: {exc}") from None
    except RecursionError:
        raise ConfigError(f"baseline {path} cannot be used: it is nested too deeply to be a results.json") from None
    secrets_ = settings.secrets()
    target = settings.base_url or "bundled reference server"
    this_run = {
        "target": Redactor(frozenset(), secrets_).text(target) if secrets_ else target,
        "profile": profile.name,
        "suite_version": __version__,
    }
    for key, ours in this_run.items():
        theirs = getattr(baseline.meta, key, None)
        if isinstance(theirs, str) and theirs != ours:
            raise ConfigError(
                f"baseline {path} is from another {key.replace('_', ' ')} ({theirs}, this run: {ours}); "
                "compare only runs of the same target, profile and suite version"
            )
    return baseline


def _req_ids(item: pytest.Item) -> tuple[str, ...]:
    ids: list[str] = []
    for mark in item.iter_markers("req"):
        ids.extend(str(a) for a in mark.args)
    return tuple(dict.fromkeys(ids))


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Any:
    state = config.stash[STATE]
    selectors = state.settings.requirements
    keep, drop = [], []
    for item in items:
        ids = _req_ids(item)
        unknown = [i for i in ids if i not in state.catalogue]
        if unknown:
            pytest.exit(f"modmsg: {item.nodeid} names unknown requirement(s) {', '.join(unknown)}", returncode=2)
        if selectors and not any(matches(i, s) for i in ids for s in selectors):
            drop.append(item)
            continue
        keep.append(item)
        if ids:
            requirements = [state.catalogue.get(i) for i in ids]
            item.extra_keyword_matches.update(ids)
            item.extra_keyword_matches.update(r.level.value for r in requirements)
            if not any(state.profile.base in r.profiles for r in requirements):
                item.add_marker(pytest.mark.skip(reason=f"not judged under the {state.profile.name} profile"))
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
    result = yield  # pytest's -k and -m, and other plugins, select from here
    _stop_if_nothing_selected(config, sum(1 for item in keep if _req_ids(item)), items)
    # Tests marked modmsg_last judge what the whole run observed (e.g. every 429), so they run at the end.
    items[:] = sorted(items, key=lambda item: item.get_closest_marker("modmsg_last") is not None)
    return result


def _stop_if_nothing_selected(config: pytest.Config, before: int, items: list[pytest.Item]) -> None:
    """``-k`` (or ``-m``) that deselects every modmsg test is a wrong setting: one sentence, exit 2, no report.
    xdist workers leave it to the controller (``modmsg run`` says it once for exit code 5)."""
    if not before or hasattr(config, "workerinput") or any(_req_ids(item) for item in items):
        return
    options = (("-k", config.option.keyword), ("-m", config.option.markexpr))
    given = " and ".join(f"{flag} {value!r}" for flag, value in options if value) or "the selection"
    message = f"modmsg: {given} selects none of the {before} modmsg tests; nothing was run"
    sys.stderr.write(f"{message}\n")
    pytest.exit(message, returncode=2)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Once a suite is collected, move what exists now (imported modules, the loaded spec, the collected coverage
    cases: never garbage) out of the collector's reach, so every full collection during the run scans only what
    the tests allocate. Only in a process that runs modmsg tests."""
    if any(_req_ids(item) for item in session.items):
        gc.collect()
        gc.freeze()


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
        pytest.exit(f"modmsg: {exc}", returncode=2)


@pytest.fixture(scope="session")
def transport(target: Target, modmsg_state: RunState, pytestconfig: pytest.Config) -> Iterator[Transport]:
    settings = modmsg_state.settings
    made = Transport(
        base_url=target.base_url,
        api_key=target.api_key,
        headers=settings.headers,
        secret_headers=settings.secret_headers,
        timeout=settings.timeout,
        beta=modmsg_state.profile.settings.beta_header,
        rate_limit=settings.rate_limit,
    )
    modmsg_state.redactor = made.redactor
    if settings.record_requests is None:
        yield made
        return
    from modmsg.recording import RequestLog, worker_path

    worker = (getattr(pytestconfig, "workerinput", None) or {}).get("workerid")
    made.request_log = RequestLog(worker_path(settings.record_requests, worker), made.redactor)
    try:
        yield made
    finally:
        made.request_log.close()


@pytest.fixture(scope="session")
def api(transport: Transport) -> AssistantsApi:
    return AssistantsApi(transport)


@pytest.fixture(scope="session")
def run_id(modmsg_state: RunState) -> str:
    return modmsg_state.run_id


@dataclass
class ThreadFactory:
    """Creates threads tagged with the run id and deletes every one of them at the end of the session.

    With a ledger (real targets), each id is recorded as soon as the target returns it and each deletion as it
    happens, so whatever a killed run leaves behind can be found by ``modmsg sweep``.
    """

    api: AssistantsApi
    run_id: str
    created: list[str] = field(default_factory=list)
    ledger: Ledger | None = None
    target: str = ""
    interrupts: Interrupts = field(default_factory=Interrupts)

    def create(self, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        with self.interrupts.deferred():
            thread = self.api.create_thread({RUN_TAG: self.run_id, **(metadata or {})})
            self.created.append(thread["id"])
            if self.ledger is not None and isinstance(thread.get("id"), str):
                self.ledger.created(self.run_id, thread["id"], self.target)
        return thread

    def cleanup(self) -> tuple[str, ...]:
        """Delete every thread of the run, newest first; return the ids that could not be deleted.

        After ``CLEANUP_GIVE_UP`` transport failures in a row it stops asking (the target is gone), so a dead
        target cannot stretch the end of a run; the ledger keeps what is left.
        """
        todo = [thread_id for thread_id in reversed(dict.fromkeys(self.created)) if thread_id]
        self.created.clear()
        left: list[str] = []
        failures = 0
        for thread_id in todo:
            if failures >= CLEANUP_GIVE_UP:
                left.append(thread_id)
                continue
            try:
                status = self.api.delete_thread(thread_id).status_code
            except TransportError:
                failures += 1
                left.append(thread_id)
                continue
            failures = 0
            if status not in (200, 404):
                left.append(thread_id)
            elif self.ledger is not None:
                self.ledger.deleted(self.run_id, thread_id, self.target)
        return tuple(left)


@pytest.fixture(scope="session")
def threads(api: AssistantsApi, run_id: str, modmsg_state: RunState) -> Iterator[ThreadFactory]:
    factory = ThreadFactory(
        api=api,
        run_id=run_id,
        ledger=modmsg_state.ledger,
        target=modmsg_state.redact(modmsg_state.settings.base_url or ""),
        interrupts=modmsg_state.interrupts,
    )
    with factory.interrupts.installed():
        try:
            yield factory
        finally:
            modmsg_state.leftovers += factory.cleanup()


@pytest.fixture
def thread(threads: ThreadFactory) -> dict[str, Any]:
    """A fresh thread of this run."""
    return threads.create()


@pytest.fixture
def message(api: AssistantsApi, thread: dict[str, Any]) -> dict[str, Any]:
    """A fresh user message in a fresh thread, as createMessage returned it."""
    return api.create_message(thread["id"])


@pytest.fixture(autouse=True)
def _modmsg_evidence(request: pytest.FixtureRequest) -> Iterator[None]:
    if not _req_ids(request.node):
        yield
        return
    transport: Transport = request.getfixturevalue("transport")
    with transport.recording() as recorder:
        request.node.stash[RECORDER] = recorder
        yield
    # The test's report (and its evidence sample) is made by now: let the exchanges go instead of keeping every
    # test's last 256 reachable from its item until the session ends.
    del request.node.stash[RECORDER]


# ------------------------------------------------------------------------------------------------ outcomes


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _classify(exc: BaseException, redact: Any) -> tuple[Outcome, str | None, dict[str, str] | None, str]:
    leaves = _leaves(exc)
    typed = next((e for e in leaves if isinstance(e, Failure)), None)
    if typed is not None:
        failure = {k: redact(v) for k, v in typed.as_dict().items()}
        return Outcome.FAIL, typed.req, failure, ""
    if all(isinstance(e, AssertionError) for e in leaves):
        text = redact(str(leaves[0]))[:4000]
        title = getattr(leaves[0], "title", None) or "Assertion failed"
        return Outcome.FAIL, None, {"title": str(title), "expected": "", "received": "", "detail": text}, ""
    first = next((e for e in leaves if isinstance(e, TransportError)), leaves[0])
    return Outcome.ERROR, None, None, redact(f"{type(first).__name__}: {first}")[:2000]


def _no_answer(exc: BaseException) -> TransportError | None:
    """The transport failure behind an ERROR, if that is what it was."""
    return next((e for e in _leaves(exc) if isinstance(e, TransportError)), None)


def _count_transport(item: pytest.Item, state: RunState, outcome: Outcome, call: pytest.CallInfo[None]) -> None:
    """Track tests in a row without an HTTP answer; at ``--max-transport-failures`` stop the session."""
    if outcome is Outcome.SKIP:
        return  # says nothing about the target
    failure = _no_answer(call.excinfo.value) if outcome is Outcome.ERROR and call.excinfo is not None else None
    if failure is None:
        state.transport_streak = 0
        return
    state.transport_streak += 1
    limit = state.settings.max_transport_failures
    if limit and state.transport_streak >= limit and not item.session.shouldstop:
        cause = state.redact(str(failure).rsplit(": ", 1)[-1])
        state.stopped_early = (
            f"modmsg: stopped early: {state.transport_streak} tests in a row got no HTTP answer from the target "
            f"(last: {cause}), so the target or the network is down and the remaining tests were not run"
        )
        item.session.shouldstop = state.stopped_early


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    ids = _req_ids(item)
    state = item.config.stash[STATE]
    received = state.interrupts.received
    if received and not item.session.shouldstop:  # in case the signal's KeyboardInterrupt was swallowed
        item.session.shouldstop = f"modmsg: stopped by {received}"
    if report.longrepr is not None and state.settings.secrets():
        report.longrepr = state.redact(str(report.longrepr))
    if not ids or (report.when != "call" and report.passed) or (report.when == "teardown" and report.skipped):
        return report
    if report.when == "teardown" and report.failed:
        return report  # cleanup trouble never changes the verdict of the test body
    recorder = item.stash.get(RECORDER, None)
    exchanges = recorder.snapshot() if recorder is not None else ()
    failed_req, failure, reason = None, None, ""
    if report.skipped:
        outcome = Outcome.SKIP
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
    elif report.passed:
        outcome = Outcome.PASS
    elif call.excinfo is not None:
        outcome, failed_req, failure, reason = _classify(call.excinfo.value, state.redact)
        if report.when == "setup" and outcome is Outcome.FAIL:
            outcome, reason = Outcome.ERROR, f"setup failed: {(failure or {}).get('detail', '')}"
            failure = None
    else:
        outcome, reason = Outcome.ERROR, "unknown failure"
    _count_transport(item, state, outcome, call)
    if outcome is Outcome.FAIL and failure is not None and exchanges and "Reproduce:" not in failure.get("detail", ""):
        # The request the test sent last, already redacted: the failure message says how to reproduce it.
        reproduce = f"Reproduce: {exchanges[-1].curl()}"
        failure = {**failure, "detail": f"{failure.get('detail', '')}\n{reproduce}".strip()}
        report.sections.append(("modmsg: reproduce the last request", reproduce))
    keep = EVIDENCE_ON_PASS if outcome is Outcome.PASS else EVIDENCE_ON_FAILURE
    sample = exchanges[:keep] if outcome is Outcome.PASS else exchanges[-keep:]
    record = TestRecord(
        nodeid=item.nodeid,
        reqs=ids,
        outcome=outcome,
        failed_req=failed_req,
        failure=failure,
        reason=reason,
        duration=report.duration,
        evidence=tuple(e.as_dict() for e in sample),
    )
    report.user_properties.append((f"modmsg:{report.when}", json.dumps(record.as_dict())))
    return report


class Collector:
    """Controller-side plugin object: gathers test records, rolls them up and writes the reports."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == f"modmsg:{report.when}":
                self.state.records.append(TestRecord.from_dict(json.loads(value)))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state = self.state
        ledger = state.ledger
        if ledger is not None:  # every worker has cleaned up by now: drop the settled lines
            ledger.compact()
        if not state.records:
            return
        run = build_result(state)
        state.result = run
        from modmsg.report import write_reports

        state.written = write_reports(run, state.settings.report_dir)
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if run.failed else pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        run = self.state.result
        if run is None:
            self._reliability_lines(terminalreporter)
            return
        from modmsg.report.console import summary_lines

        terminalreporter.section("modmsg conformance")
        for line in summary_lines(run):
            terminalreporter.write_line(line)
        for path in getattr(self.state, "written", ()):
            terminalreporter.write_line(f"report: {path}")
        self._reliability_lines(terminalreporter)

    def _reliability_lines(self, terminalreporter: Any) -> None:
        state = self.state
        if state.stopped_early:
            terminalreporter.write_line(state.stopped_early, red=True, bold=True)
        ledger = state.ledger
        if state.leftovers and ledger is not None:  # the bundled server's threads go with it
            terminalreporter.write_line(
                f"modmsg: {len(state.leftovers)} thread(s) of run {state.run_id} could not be deleted; they are "
                f"listed in {ledger.path}: "
                f"run `modmsg sweep --base-url {state.redact(state.settings.base_url or '')}` once the target "
                "answers again",
                yellow=True,
            )


def build_result(state: RunState) -> RunResult:
    settings, info = state.settings, spec_info()
    finished = time.time()
    target = settings.base_url or "bundled reference server"
    meta = RunMeta(
        suite_version=__version__,
        spec_version=info.version,
        spec_commit=info.commit,
        spec_sha256=info.sha256,
        profile=state.profile.name,
        overlay=state.overlay.source if state.overlay else None,
        target=state.redact(target),
        seed=settings.seed,
        max_examples=settings.max_examples,
        started=datetime.fromtimestamp(state.started, UTC).isoformat(timespec="seconds"),
        finished=datetime.fromtimestamp(finished, UTC).isoformat(timespec="seconds"),
        duration=finished - state.started,
        selection=settings.requirements,
    )
    run = rollup(
        state.catalogue,
        state.records,
        profile_name=state.profile.name,
        profile_base=state.profile.base,
        waivers=state.overlay.waivers if state.overlay else {},
        meta=meta,
    )
    if state.baseline is None:
        return run
    comparison = compare(state.baseline.as_dict(), run.requirements, str(settings.baseline))
    return dataclasses.replace(run, comparison=comparison)
