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
import contextlib
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
from typing import Any, NoReturn

import pytest

from modmsg import __version__
from modmsg.api import AssistantsApi
from modmsg.checks.preconditions import finding_for
from modmsg.config import OPTIONS, ConfigError, Settings, load_config_file, resolve
from modmsg.failures import Failure, UntaggedThread
from modmsg.ids import SIBLINGS_REQ
from modmsg.profiles import Profile, ProfileError, load_profile
from modmsg.redaction import Redactor, inert
from modmsg.requirements import Catalogue, CatalogueError, load_catalogue, matches
from modmsg.results import BUNDLED, Outcome, RunMeta, RunResult, TestRecord, compare, rollup
from modmsg.spec import spec_info
from modmsg.sweep import RUN_TAG, Ledger, ledger_path
from modmsg.target import Target, open_target, probe, transport_for
from modmsg.transport import RunBudget, RunBudgetSpent, Transport, TransportError
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
    run_id: str = field(default_factory=lambda: new_run_id())
    interrupts: Interrupts = field(default_factory=Interrupts)
    transport_streak: int = 0
    """Tests in a row (in this process) that got no HTTP answer; any answered test resets it."""
    stopped_early: str | None = None
    leftovers: tuple[str, ...] = ()
    """Threads this process could not delete at the end (they stay in the ledger for ``modmsg sweep``)."""
    judging: bool = False
    """This session runs modmsg tests (not e.g. the project's own tests): it owns the report directory."""
    expected: dict[str, int] | None = None
    """Selected tests per requirement, where this process collected them (None on an xdist controller): a
    stopped run tells from it which requirements saw all their tests."""

    def __post_init__(self) -> None:
        if self.redactor is None:  # the transport fixture adds the bundled server's key once it is made
            self.redactor = Redactor.from_settings(self.settings)

    @property
    def ledger(self) -> Ledger | None:
        """Only runs against a real target keep a ledger: the bundled server's threads die with the process."""
        if not self.settings.base_url:
            return None
        return Ledger(ledger_path(self.settings.report_dir), redact=self.redact)

    def budget(self) -> RunBudget:
        """``--max-duration``, counted from the start of this process's run."""
        return RunBudget.since(self.settings.max_duration, elapsed=time.time() - self.started)

    def redact(self, text: str) -> str:
        assert self.redactor is not None
        return self.redactor.text(text)

    def console(self, text: str) -> str:
        """Redacted and inert: fit for the terminal."""
        return inert(self.redact(text))


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
    run_id: str = field(default_factory=lambda: new_run_id())
    """The tag of every thread this run creates, the probe's included."""


def new_run_id() -> str:
    return f"modmsg-{secrets.token_hex(6)}"


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
        prepared = config.stash[PREPARED] = _prepare(config)
        settings = prepared.settings
        if settings.base_url and settings.api_key and not config.option.collectonly:
            _probe(prepared)  # fail fast, before collection: one sentence, not a wall of failed tests
    except SETUP_ERRORS as exc:
        _clear_reports(_report_dir_hint(config))  # no earlier run's green report may stand in for this one
        sys.stderr.write(f"modmsg: {inert(str(exc))}\n")
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
    controller = not hasattr(config, "workerinput")
    try:
        prepared = config.stash.get(PREPARED, None) or _prepare(config)  # xdist workers prepare their own
    except SETUP_ERRORS as exc:
        refuse(inert(str(exc)), None)
    settings, profile = prepared.settings, prepared.profile
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
    state.run_id = worker_input.get("modmsg_run_id") or prepared.run_id  # xdist: one run id for the whole run
    config.stash[STATE] = state
    _console_for_interrupts(config, state.interrupts)
    if controller:  # xdist workers only forward their reports
        config.pluginmanager.register(Collector(state), "modmsg-collector")


def refuse(message: str, report_dir: Path | None) -> NoReturn:
    """A wrong setting: one sentence, exit 2, no verdict, and no earlier run's reports left to publish.
    ``message`` is made inert here; a caller that knows the run's secrets redacts it first."""
    if report_dir is not None:
        _clear_reports(report_dir)
    pytest.exit(f"modmsg: {inert(message)}", returncode=2)


def _clear_reports(report_dir: Path) -> None:
    """Best effort: a report directory that cannot be cleared is reported by the writer that needs it."""
    from modmsg.report import clear_reports

    with contextlib.suppress(OSError):
        clear_reports(report_dir)


def _report_dir_hint(config: pytest.Config) -> Path:
    """Where the reports of this run would go, when the settings as a whole could not be read."""
    raw = config.getoption("modmsg_report_dir") or os.environ.get("MODMSG_REPORT_DIR") or "reports"
    return Path(str(raw))


def _probe(prepared: Prepared) -> None:
    """Raise ConfigError (one sentence, already redacted) when no Assistants API answers at the base URL."""
    settings = prepared.settings
    assert settings.base_url is not None
    transport = transport_for(
        settings,
        settings.base_url,
        settings.api_key,
        prepared.profile.settings.beta_header,
        RunBudget.since(settings.max_duration),
    )
    try:
        left = probe(transport, settings.base_url, prepared.run_id)
    except ConfigError as exc:
        raise ConfigError(transport.redactor.console(str(exc))) from None
    if left:  # could not delete the probe's thread: the ledger names it for `modmsg sweep`
        Ledger(ledger_path(settings.report_dir), redact=transport.redactor.text).created(
            prepared.run_id, left, settings.base_url
        )


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


def _own_report_dir(config: pytest.Config) -> Path | None:
    """The report directory this process may clear: the controller's, never a worker's."""
    return None if hasattr(config, "workerinput") else config.stash[STATE].settings.report_dir


def _xdist_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


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
            refuse(f"{item.nodeid} names unknown requirement(s) {', '.join(unknown)}", _own_report_dir(config))
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
    state.judging = _xdist_controller(config) or any(_req_ids(item) for item in items)
    if state.judging and not hasattr(config, "workerinput"):
        _quiet_console(config)
    if not hasattr(config, "workerinput") and not _xdist_controller(config):
        expected: dict[str, int] = {}
        for item in items:
            for req_id in _req_ids(item):
                expected[req_id] = expected.get(req_id, 0) + 1
        state.expected = expected
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
    _clear_reports(config.stash[STATE].settings.report_dir)
    sys.stderr.write(f"{inert(message)}\n")
    pytest.exit(inert(message), returncode=2)


def _quiet_console(config: pytest.Config) -> None:
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

    def __repr__(self) -> str:  # the dataclass repr would show the transport and the ids the target handed out
        return f"ThreadFactory(run_id={self.run_id!r}, created={len(self.created)} thread(s))"

    def create(self, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        """A thread of this run. Only a thread whose createThread answer shows the run's tag is used and later
        deleted: without the tag it may be anybody's (:class:`UntaggedThread`, and its id is left alone)."""
        with self.interrupts.deferred():
            thread = self.api.create_thread({RUN_TAG: self.run_id, **(metadata or {})})
            tag = thread.get("metadata", {}).get(RUN_TAG) if isinstance(thread.get("metadata"), dict) else None
            if tag != self.run_id:
                raise UntaggedThread(
                    req=SIBLINGS_REQ,
                    expected=f"createThread echoes the metadata sent ({RUN_TAG}: {self.run_id})",
                    received=f"{RUN_TAG}: {tag!r}"[:300],
                    detail="The suite neither uses nor deletes a thread it cannot show to be its own.",
                )
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
        api = AssistantsApi(self.api.transport.final())  # deleted also once --max-duration is spent
        left: list[str] = []
        failures = 0
        for thread_id in todo:
            if failures >= CLEANUP_GIVE_UP:
                left.append(thread_id)
                continue
            try:
                status = api.delete_thread(thread_id).status_code
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
    if typed is None:  # a sibling call that answered wrongly, a request dropped by a live target: findings too
        typed = next((f for f in map(finding_for, leaves) if f is not None), None)
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
    leaves = _leaves(call.excinfo.value) if call.excinfo is not None else []
    spent = next((leaf for leaf in leaves if isinstance(leaf, RunBudgetSpent)), None)
    if spent is not None and not item.session.shouldstop:
        state.stopped_early = (
            f"modmsg: stopped: the run budget of {state.settings.max_duration:g} s (--max-duration) is spent; "
            "the requirements not judged yet were not run"
        )
        item.session.shouldstop = state.stopped_early
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
        reason = state.redact(reason.removeprefix("Skipped: "))
    elif report.passed:
        outcome = Outcome.PASS
    elif call.excinfo is not None:
        outcome, failed_req, failure, reason = _classify(call.excinfo.value, state.redact)
        if report.when == "setup" and outcome is Outcome.FAIL and failed_req is None:
            # an untyped assertion in a fixture is the suite's own trouble; a typed one is a finding (e.g. the
            # message fixture's createMessage answering 500 fails MM-RESP-09 and blocks the test's requirements)
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


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_makereport")
def pytest_modmsg_clean_report(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """pytest's own report of a test, before the terminal, ``--junitxml`` or an xdist controller sees it: its
    traceback (whatever the ``--tb`` style), skip reason and captured sections redacted and made inert. The
    outermost wrapper, so it also sees what the plugin's own ``pytest_runtest_makereport`` adds.

    The traceback keeps its structure (so colours and the short summary stay) when cleaning each of its strings
    leaves nothing to find in the whole; otherwise (a secret cut across two strings) it becomes the cleaned text.
    """
    report = yield
    state = item.config.stash.get(STATE, None)
    redactor = state.redactor if state is not None else None
    if redactor is None:
        return report

    def clean(value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return inert(redactor.text(value))
        if depth > 8 or value is None or isinstance(value, int | float | bool):
            return value
        if isinstance(value, tuple):
            return tuple(clean(v, depth + 1) for v in value)
        if isinstance(value, list):
            return [clean(v, depth + 1) for v in value]
        if type(value).__module__.startswith("_pytest._code"):  # the TerminalRepr family: rewritten in place
            for name, attribute in vars(value).items():
                setattr(value, name, clean(attribute, depth + 1))
        return value

    report.sections = [(title, clean(content)) for title, content in report.sections]
    longrepr = report.longrepr
    if longrepr is None or isinstance(longrepr, tuple | str):
        report.longrepr = clean(longrepr)
        return report
    before = str(longrepr)
    wanted = inert(redactor.text(before))
    if wanted != before:
        clean(longrepr)
        after = str(longrepr)
        if inert(redactor.text(after)) != after:
            report.longrepr = wanted
    return report


def _stop_cause(state: RunState, session: pytest.Session, exitstatus: int) -> tuple[str | None, bool]:
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
            if state.judging:  # nothing judged: no earlier run's reports may stand in for this one
                _clear_reports(state.settings.report_dir)
            return
        stopped, interrupted = _stop_cause(state, session, exitstatus)
        run = build_result(state, stopped, interrupted)
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
