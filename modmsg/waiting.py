"""Waiting on pool threads from pytest's thread without sleeping through a signal.

A Ctrl-C or SIGTERM that a pool thread held back while it created a thread is handed to the main thread when the
creation is recorded (``modmsg.plugin.interrupts``). A real signal interrupts a blocking wait, but one that lands
in the instant between the wait's release of the interpreter lock and the system call that blocks is only
flagged; and where no real signal can be sent (no ``pthread_kill``, the signal ignored) a flag is all there is.
So every wait of the main thread on a pool thread looks at the signals at least every ``WAKE`` seconds: a stop
never waits for a slow request (up to a whole --request-timeout) to end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WAKE = 0.2
"""Seconds between two looks at the signals while the main thread waits for a pool thread."""


def result_of(future: Future[T]) -> T:
    """``future.result()``, looking at the signals every ``WAKE`` seconds while it waits."""
    while True:
        try:
            return future.result(timeout=WAKE)
        except FutureTimeout:
            continue


def mapped(executor: Executor, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``list(executor.map(function, items))``, each result waited for with :func:`result_of`."""
    return [result_of(future) for future in [executor.submit(function, item) for item in items]]
