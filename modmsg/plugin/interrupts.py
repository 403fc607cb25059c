"""Ctrl-C and SIGTERM: an orderly pytest interrupt while tests run (deferred while a thread is made); once the tests
are over, a note while the cleanup and the reports are finished."""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest


def wake_main_thread(signum: signal.Signals) -> None:
    """Hand ``signum`` to the main thread as a real signal (``pthread_kill``), so a wait it is blocked in (a pool
    thread's future, a lock) is interrupted at once and its handler runs: ``_thread.interrupt_main`` only sets a
    flag the main thread sees once that wait ends, which can be a whole --request-timeout later. Where there is
    no ``pthread_kill``, or no Python handler would take the signal (ignored, or the default action that would
    kill the process), ``interrupt_main`` (which does nothing for an ignored signal: the run then stops at the
    next test boundary, from ``Interrupts.received``)."""
    main = threading.main_thread().ident
    handled = callable(signal.getsignal(signum))
    if hasattr(signal, "pthread_kill") and main is not None and handled:
        signal.pthread_kill(main, signum)
    else:
        _thread.interrupt_main(signum)


class Interrupts:
    """SIGINT and SIGTERM as a pytest interrupt (so fixtures tear down and threads get deleted), deferred while a
    thread is being created so that its id always reaches the cleanup list and the ledger.

    A second signal while one is deferred interrupts at once. A signal once the interrupt is under way (a second
    Ctrl-C during cleanup or the reports) ends the process at once and quietly: one line on stderr, exit 128 +
    the signal number, no traceback; whatever was not yet deleted stays in the ledger for ``modmsg sweep``.
    Installed only from the main thread: while the run's test loop runs, while it holds threads and during the
    upstream pass (:meth:`installed`), and from the start of the last test's teardown (the end of the loop when it
    is cut short) until the reports are written (:meth:`hold`, :meth:`release`). Once the tests are over a first
    signal does not interrupt: every verdict is in, and an exception raised then would land in pytest's session
    end, outside anything that catches it (a traceback, or for SIGTERM the default death, and no reports); it is
    noted in one line, the threads' cleanup and the reports are finished, and a second one ends the process at
    once. The previous handlers come back afterwards, unless the run was interrupted (then a later signal still
    ends the process quietly).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._critical = 0
        self._pending: str | None = None
        self._stopping = False
        self._lock = threading.Lock()
        self._previous: dict[int, Any] = {}
        self._raising = 0
        """Open :meth:`installed` blocks: the handlers stay while one is open."""
        self._holding = False
        """From the start of the last test's teardown (or the end of a loop cut short) until the reports are written
        (:meth:`hold`)."""
        self._after_hold = 0
        """Open :meth:`installed` blocks entered during :meth:`hold` (the upstream pass): only these interrupt there;
        one still open when it began (the threads' cleanup) does not."""
        self.late: str | None = None
        """A first signal noted once the tests were over (:meth:`hold`): the run finishes its reports, its verdict
        stands."""
        self.console_fd = 2
        """Where the one line of a quiet exit goes: the plugin points it at a copy of the real stderr, because
        pytest's capture has replaced file descriptor 2 while a test runs."""
        self._forwarded: str | None = None
        """A signal deferred on another thread, handed to the main thread as SIGINT: its own name is this."""
        self.received: str | None = None
        """The first signal's name. Python drops an exception raised where it cannot propagate (a gc callback,
        a ``__del__``), so the plugin also stops the session at the next test boundary when this is set."""

    def handler(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        with self._lock:
            if self._forwarded is not None:  # a SIGTERM deferred on a pool thread stays a SIGTERM
                name, self._forwarded = self._forwarded, None
                if self._stopping:  # held back until the stop it asks for was already under way: nothing to do
                    return
            late = self._holding and self._after_hold == 0 and not self._stopping
            again = self._stopping
            defer = not late and not again and self._critical > 0 and self._pending is None
            if late:
                self.late = name
            else:
                self.received = self.received or name
            if defer:
                self._pending = name
            self._stopping = not defer
        if late:
            self.say(
                f"\nmodmsg: {name} once the tests were over: cleanup and reports are finished first; another signal "
                "stops at once"
            )
            return
        if again:
            self.exit_now(signum)
        if not defer:
            raise KeyboardInterrupt(f"modmsg: stopped by {name}")

    def stop_under_way(self) -> None:
        """A test is over and pytest stops the session right after it, for the signal received: a signal still held
        back by a thread being created is dropped rather than raised later, when it would land inside pytest's own
        interrupt report, outside anything that catches it (the process then died by SIGINT after writing its
        reports); a new signal ends the process at once."""
        with self._lock:
            self._stopping = True
            self._pending = None

    def exit_now(self, signum: int) -> None:
        """End the process without unwinding: an exception raised now could land anywhere (inside pytest's own
        interrupt report, a gc callback) and print hundreds of lines of traceback instead of stopping."""
        name = signal.Signals(signum).name
        self.say(f"modmsg: stopped at once by a second {name}; cleanup and reports were cut short")
        os._exit(128 + signum)

    def say(self, line: str) -> None:
        """One line on the real stderr, after whatever the streams hold (safe inside a signal handler)."""
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):
                stream.flush()
        with suppress(OSError):
            os.write(self.console_fd, f"{line}\n".encode())

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
        with self._lock:
            self._forwarded = pending
        # Through a signal this object handles (SIGINT is ignored in a background job): the handler then says which
        # signal stopped the run, from _forwarded.
        wake_main_thread(next((s for s in self.SIGNALS if signal.getsignal(s) == self.handler), signal.SIGINT))

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
        """While the block runs a first signal interrupts, also when it is entered during :meth:`hold` (the upstream
        pass). Entered during :meth:`hold` once a signal was noted, it is interrupted at once: the user asked the
        run to end. Blocks nest."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        with self._lock:
            self._raising += 1
            after_hold = self._holding
            self._after_hold += after_hold
            noted = self.late if after_hold else None
        try:
            self._install()
            if noted:
                raise KeyboardInterrupt(f"modmsg: stopped by {noted}")
            yield
        finally:
            with self._lock:
                self._raising -= 1
                self._after_hold -= after_hold
            self._restore()

    def hold(self) -> None:
        """The tests are over: from now until :meth:`release` a first signal is noted, not raised, except in an
        :meth:`installed` block entered after this (the upstream pass, which it must stop)."""
        if threading.current_thread() is threading.main_thread():
            with self._lock:
                self._holding = True
                if self.received is not None:  # the run was interrupted: a signal now is a second one
                    self._stopping, self._pending = True, None
            self._install()

    def release(self) -> None:
        """The reports are written: the previous handlers come back, unless a signal interrupted the run (then a
        later one still ends the process quietly). A signal only noted here was this run's to note: a process that
        goes on (a session inside another) gets its own handlers back."""
        with self._lock:
            keep = self.received is not None or self._raising > 0
        if not keep:
            self._restore_handlers()
        with self._lock:
            self._holding = False
            if self.received is None:
                self._stopping = False

    def _install(self) -> None:
        for sig in self.SIGNALS:
            current = signal.getsignal(sig)
            if current in (signal.default_int_handler, signal.SIG_DFL):  # never override someone's own handler
                self._previous[sig] = signal.signal(sig, self.handler)

    def _restore(self) -> None:
        """Give the previous handlers back once nothing needs this object's any more."""
        with self._lock:
            keep = self._stopping or self._raising > 0 or self._holding
        if not keep:
            self._restore_handlers()

    def _restore_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()


def console_for_interrupts(config: pytest.Config, interrupts: Interrupts) -> None:
    """A copy of the real stderr (pytest's capture is suspended during configure) for a quiet exit's one line."""
    console = os.dup(2)
    interrupts.console_fd = console

    def close() -> None:
        interrupts.console_fd = 2
        os.close(console)

    config.add_cleanup(close)
