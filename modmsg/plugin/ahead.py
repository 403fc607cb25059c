"""Fresh threads and messages made ahead of the tests that take them (``--concurrency`` above 1).

A handwritten test gets its thread (the ``thread`` fixture) and its messages (``message``, or any fixture made by
:func:`message_fixture`) fresh. Against a distant target each creation is a round trip the test waits for, so once
the tests are selected the plugin plans one *unit* per selected test that uses ``thread``: a fresh thread and, in
it, the messages of that test's message fixtures, in the order pytest sets them up. Units are made in the tests'
order by ``--concurrency - 1`` pool threads (the test on the main thread is the remaining sender), at most
``ahead_for`` units past the running test, and handed to their own test only. Each unit's exchanges are captured on
its pool thread and added to its test's evidence when its fixture hands the object out, thread first: the evidence
is what creating them on demand records, in the same order. A creation that failed raises, when its fixture is
set up, the exception creating it on demand would have raised, so its test is BLOCKED or ERROR as before.

Every thread is made by the run's :class:`~.threads.ThreadFactory`: tagged, in the ledger the moment it exists,
deleted at the end with the rest, whether a test took it or not (the pool is stopped first, on an interrupt too).
At ``--concurrency 1``, in an xdist worker (which does not know its tests in advance) and for tests outside the
plan, objects are made on demand, as they always were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from modmsg.api import PROBE_CONTENT, AssistantsApi
from modmsg.evidence import Exchange
from modmsg.plugin.threads import ThreadFactory
from modmsg.transport import Transport

RECIPE = "modmsg_message_recipe"
"""The attribute naming a fixture function as one that hands out a fresh message in the test's ``thread``."""
THREAD = "modmsg_thread_fixture"
"""The attribute naming the plugin's own ``thread`` fixture (a conftest may override it: then nothing is planned)."""


def ahead_for(workers: int) -> int:
    """How many units past the running test's are made at most: enough to keep ``workers`` busy, no more (the
    target holds few objects no test has taken yet, and an early stop wastes few creations)."""
    return 2 * workers


@dataclass(frozen=True)
class MessageRecipe:
    """What a message fixture sends to createMessage."""

    content: str = PROBE_CONTENT
    metadata: tuple[tuple[str, str], ...] | None = None

    def create(self, api: AssistantsApi, thread_id: str) -> dict[str, Any]:
        metadata = None if self.metadata is None else dict(self.metadata)
        return api.create_message(thread_id, content=self.content, metadata=metadata)


@dataclass(frozen=True)
class Unit:
    """What one selected test takes: a fresh thread and its message fixtures' messages, in setup order."""

    nodeid: str
    messages: tuple[tuple[str, MessageRecipe], ...] = ()


@dataclass(frozen=True)
class Made:
    """One created object (or the exception creating it raised) and the exchanges creating it made."""

    value: Any
    exchanges: tuple[Exchange, ...]

    def hand_out(self, transport: Transport) -> Any:
        for exchange in self.exchanges:
            transport.recorder.add(exchange)
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


def _fixture_func(item: pytest.Item, name: str) -> Any:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get(name) if info is not None else None
    return defs[-1].func if defs else None


def plan(items: Sequence[pytest.Item], wanted: Callable[[pytest.Item], bool]) -> tuple[Unit, ...]:
    """One unit per wanted item that uses the plugin's ``thread`` fixture, in the items' order."""
    units = []
    for item in items:
        names = getattr(item, "fixturenames", ())
        if not wanted(item) or "thread" not in names or not hasattr(_fixture_func(item, "thread"), THREAD):
            continue
        recipes = ((name, getattr(_fixture_func(item, name), RECIPE, None)) for name in names)
        units.append(Unit(item.nodeid, tuple((name, recipe) for name, recipe in recipes if recipe is not None)))
    return tuple(units)


@dataclass
class Ahead:
    """The units of a run, made ahead by ``workers`` pool threads and handed out to their tests."""

    threads: ThreadFactory
    transport: Transport
    units: tuple[Unit, ...] = ()
    workers: int = 0
    """Pool threads (``--concurrency - 1``); 0 makes everything on demand."""
    _index: dict[str, int] = field(init=False, default_factory=dict)
    _futures: list[Future[dict[str, Made]] | None] = field(init=False, default_factory=list)
    _made: dict[str, dict[str, Made]] = field(init=False, default_factory=dict)
    _pool: ThreadPoolExecutor | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._index = {unit.nodeid: number for number, unit in enumerate(self.units)}
        if self.workers > 0 and self.units:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="modmsg-ahead")

    def __repr__(self) -> str:
        return f"Ahead({len(self.units)} unit(s), {self.workers} worker(s))"

    def thread(self, nodeid: str) -> dict[str, Any]:
        """The test's fresh thread: its unit's, or one made now."""
        made = self._take(nodeid)
        if made is None:
            return self.threads.create()
        return made["thread"].hand_out(self.transport)

    def message(self, nodeid: str, name: str, recipe: MessageRecipe, thread: Mapping[str, Any]) -> dict[str, Any]:
        """The fresh message of the test's fixture ``name``: its unit's, or one made now in ``thread``."""
        made = self._made.get(nodeid, {}).pop(name, None)
        if made is None:
            return recipe.create(self.threads.api, thread["id"])
        return made.hand_out(self.transport)

    def close(self) -> None:
        """Stop making units: the queued ones are dropped, the ones in flight end (their threads are in the
        factory's list, so the run's cleanup deletes them)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._made.clear()

    def _take(self, nodeid: str) -> dict[str, Made] | None:
        number = self._index.pop(nodeid, None)
        if number is None or self._pool is None:
            return None
        self._submit_through(number + ahead_for(self.workers))
        future = self._futures[number]
        assert future is not None
        made = future.result()
        self._futures[number] = None  # let the unit go once handed out
        self._made[nodeid] = made
        return made

    def _submit_through(self, last: int) -> None:
        assert self._pool is not None
        while len(self._futures) <= min(last, len(self.units) - 1):
            self._futures.append(self._pool.submit(self._make, self.units[len(self._futures)]))

    def _make(self, unit: Unit) -> dict[str, Made]:
        """Create one unit on a pool thread; never raises (a failure is the value of the object it failed, and the
        unit's later objects are not made: on demand, the test would have stopped there)."""
        made = {"thread": self._attempt(self.threads.create)}
        for name, recipe in unit.messages:
            thread = made["thread"].value
            if any(isinstance(each.value, BaseException) for each in made.values()):
                break
            made[name] = self._attempt(
                lambda recipe=recipe, thread=thread: recipe.create(self.threads.api, thread["id"])
            )
        return made

    def _attempt(self, create: Callable[[], Any]) -> Made:
        with self.transport.capturing() as exchanges:
            try:
                value = create()
            except Exception as exc:  # handed to the test that takes it, which raises it as on demand
                value = exc
        return Made(value, tuple(exchanges))


def thread_fixture() -> Any:
    """The ``thread`` fixture: a fresh thread of this run, its unit's when the test has one."""

    def thread(modmsg_ahead: Ahead, request: pytest.FixtureRequest) -> dict[str, Any]:
        return modmsg_ahead.thread(request.node.nodeid)

    setattr(thread, THREAD, True)
    thread.__doc__ = "A fresh thread of this run."
    return pytest.fixture(name="thread")(thread)


def message_fixture(name: str, *, content: str = PROBE_CONTENT, metadata: Mapping[str, str] | None = None) -> Any:
    """A function-scoped fixture called ``name`` handing out a fresh message with this content and metadata in the
    test's ``thread``, made ahead like the plugin's own ``message`` (bind it to a module-level name)."""
    recipe = MessageRecipe(content, None if metadata is None else tuple(metadata.items()))

    def fixture(modmsg_ahead: Ahead, thread: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
        return modmsg_ahead.message(request.node.nodeid, name, recipe, thread)

    setattr(fixture, RECIPE, recipe)
    fixture.__name__ = name
    fixture.__doc__ = f"A fresh user message {recipe} in a fresh thread, as createMessage returned it."
    return pytest.fixture(name=name)(fixture)
