"""Handwritten tests run ahead, with their fresh threads and messages, on ``--concurrency - 1`` pool threads.

A handwritten test gets its thread (the ``thread`` fixture) and its messages (``message``, or any fixture made by
:func:`message_fixture`) fresh, and shares them with no other test. Against a distant target every request is a
round trip the test waits for, so once the tests are selected the plugin plans one *unit* per selected test that
uses the plugin's ``thread``: the thread, the messages of the test's message fixtures in the order pytest sets them
up, and, when the test can run off the main thread (:func:`runs_ahead`), the test function itself. Units are run
in the tests' order by the pool, at most :func:`ahead_for` units past the test pytest is running, each on one pool
thread, one request after another, exactly as the test would run on demand; each step's exchanges are captured on
that thread. When pytest reaches the test, its fixtures hand out the unit's objects and their creation exchanges,
and the call hands out the test's outcome (returned, or the exception it raised: a failure, a skip, a transport
error) after adding its exchanges to the test's evidence. Verdicts, failures and evidence order are therefore those
of ``--concurrency 1``, which runs everything on demand, as an xdist worker does (it does not know its tests in
advance), and as every test outside the plan does.

Every thread is made by the run's :class:`~.threads.ThreadFactory`: tagged, in the ledger the moment it exists,
deleted at the end with the rest, whether its test ran or not (the pool is stopped first, on an interrupt too).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest

from modmsg.api import PROBE_CONTENT, AssistantsApi
from modmsg.evidence import Exchange
from modmsg.plugin.threads import ThreadFactory
from modmsg.recording import sent_for
from modmsg.transport import Transport
from modmsg.waiting import result_of

RECIPE = "modmsg_message_recipe"
"""The attribute naming a fixture function as one that hands out a fresh message in the test's ``thread``."""
THREAD = "modmsg_thread_fixture"
"""The attribute naming the plugin's own ``thread`` fixture (a conftest may override it: then nothing is planned)."""
ALONE = "modmsg_alone"
"""The mark of a test that must run on pytest's own thread (it starts threads of its own, whose requests could not
be told apart from another test's, or it depends on when it runs)."""
CALL = "(call)"
"""The key of a unit's test call among its made objects."""
OURS = frozenset({"_modmsg_evidence", "request"})
"""Function-scoped fixtures a test run ahead may have besides its unit's: the evidence (whose recorder gets the
exchanges when the test is reached) and pytest's own request."""


def ahead_for(workers: int) -> int:
    """How many units past the running test's are run at most: enough to keep ``workers`` busy, no more (the
    target holds few objects no test has taken yet, and an early stop wastes few requests)."""
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
    """What one selected test takes: a fresh thread, its message fixtures' messages in setup order and, when it
    runs ahead, the test function with its arguments' names and its parameters."""

    nodeid: str
    messages: tuple[tuple[str, MessageRecipe], ...] = ()
    test: Callable[..., Any] | None = None
    args: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Made:
    """One step of a unit: what it gave (or the exception it raised) and the exchanges it made."""

    value: Any
    exchanges: tuple[Exchange, ...]

    def hand_out(self, transport: Transport) -> Any:
        for exchange in self.exchanges:
            transport.recorder.add(exchange)
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


# ------------------------------------------------------------------------------------------------ the plan


def _fixture_def(item: pytest.Item, name: str) -> Any:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get(name) if info is not None else None
    return defs[-1] if defs else None


def _func(item: pytest.Item, name: str) -> Any:
    return getattr(_fixture_def(item, name), "func", None)


def _setup_order(item: pytest.Item) -> Iterator[str]:
    """The item's fixtures in the order pytest sets them up: each one's own arguments before it."""
    seen: set[str] = set()

    def visit(name: str) -> Iterator[str]:
        if name in seen:
            return
        seen.add(name)
        for arg in getattr(_fixture_def(item, name), "argnames", ()):
            yield from visit(arg)
        yield name

    for name in getattr(item, "fixturenames", ()):
        yield from visit(name)


def runs_ahead(item: Any, unit: Unit) -> bool:
    """A test runs ahead when nothing of it needs pytest's thread: it is a plain function, not marked
    ``modmsg_alone``, ``modmsg_last``, skip or xfail; each argument is its unit's, a parameter or a session-scoped
    fixture (one value for the whole run), and so is each fixture under it but the evidence's."""
    obj = getattr(item, "obj", None)
    if not callable(obj) or not hasattr(item, "_fixtureinfo"):
        return False
    if inspect.iscoroutinefunction(obj) or getattr(obj, "is_hypothesis_test", False):
        return False  # a coroutine needs pytest's runner; Hypothesis beside the lanes needs their lock
    if any(item.get_closest_marker(mark) for mark in (ALONE, "modmsg_last", "skip", "skipif", "xfail")):
        return False
    params = getattr(getattr(item, "callspec", None), "params", {})
    given = {"thread", *(name for name, _ in unit.messages), *params}

    def session(name: str) -> bool:
        return getattr(_fixture_def(item, name), "scope", None) == "session"

    return all(name in given or session(name) for name in item._fixtureinfo.argnames) and all(
        name in given or name in OURS or session(name) for name in item.fixturenames
    )


def plan(items: Sequence[Any], wanted: Callable[[Any], bool]) -> tuple[Unit, ...]:
    """One unit per wanted item (a collected :class:`pytest.Function`) that uses the plugin's ``thread`` fixture,
    in the items' order."""
    units = []
    for item in items:
        uses_thread = "thread" in getattr(item, "fixturenames", ()) and hasattr(_func(item, "thread"), THREAD)
        if not wanted(item) or not uses_thread:
            continue
        recipes = ((name, getattr(_func(item, name), RECIPE, None)) for name in _setup_order(item))
        unit = Unit(item.nodeid, tuple((name, recipe) for name, recipe in recipes if recipe is not None))
        if runs_ahead(item, unit):
            params = dict(getattr(getattr(item, "callspec", None), "params", {}))
            unit = Unit(unit.nodeid, unit.messages, item.obj, tuple(item._fixtureinfo.argnames), params)
        units.append(unit)
    return tuple(units)


def shared_names(units: Sequence[Unit]) -> set[str]:
    """The session-scoped fixtures the tests run ahead take (their values are fetched once, on pytest's thread)."""
    return {arg for unit in units for arg in unit.args if arg not in {"thread", *dict(unit.messages), *unit.params}}


# ------------------------------------------------------------------------------------------------ the pool


@dataclass
class Ahead:
    """The units of a run, run ahead by ``workers`` pool threads and handed out to their tests."""

    threads: ThreadFactory
    transport: Transport
    units: tuple[Unit, ...] = ()
    workers: int = 0
    """Pool threads (``--concurrency - 1``); 0 makes everything on demand."""
    shared: Mapping[str, Any] = field(default_factory=dict)
    """The session-scoped fixtures' values the tests run ahead take, by name."""
    _index: dict[str, int] = field(init=False, default_factory=dict)
    _futures: list[Future[dict[str, Made]] | None] = field(init=False, default_factory=list)
    _made: dict[str, dict[str, Made]] = field(init=False, default_factory=dict)
    _pool: ThreadPoolExecutor | None = field(init=False, default=None)
    _stopped: threading.Event = field(init=False, default_factory=threading.Event)

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
        return made.pop("thread").hand_out(self.transport)

    def message(self, nodeid: str, name: str, recipe: MessageRecipe, thread: Mapping[str, Any]) -> dict[str, Any]:
        """The fresh message of the test's fixture ``name``: its unit's, or one made now in ``thread``."""
        made = self._made.get(nodeid, {}).pop(name, None)
        if made is None:
            return recipe.create(self.threads.api, thread["id"])
        return made.hand_out(self.transport)

    def call(self, nodeid: str) -> Made | None:
        """The test's run ahead (its outcome and exchanges), or None when it runs now, on pytest's thread."""
        return self._made.pop(nodeid, {}).get(CALL)

    def release(self, thread: Mapping[str, Any], nodeid: str) -> Future[bool] | None:
        """The test that took ``thread`` is over: the pool deletes it soon (its exchanges in no test's evidence),
        rather than the cleanup at the end of the run, which deletes it when this did not happen (no pool, a
        deletion cancelled by :meth:`close`, or failed)."""
        if self._pool is None or not isinstance(thread.get("id"), str):
            return None
        return self._pool.submit(self._release, thread["id"], nodeid)

    def _release(self, thread_id: str, nodeid: str) -> bool:
        with self.transport.capturing(), sent_for(f"{nodeid} (teardown)"):
            return self.threads.release(thread_id)

    def close(self) -> None:
        """Stop: queued units are dropped, the ones under way end (their threads are in the factory's list, so the
        run's cleanup deletes them)."""
        self._stopped.set()  # a unit under way takes no further step
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
        made = result_of(future)
        self._futures[number] = None  # the unit goes once handed out
        self._made[nodeid] = made
        return made

    def _submit_through(self, last: int) -> None:
        assert self._pool is not None
        while len(self._futures) <= min(last, len(self.units) - 1):
            self._futures.append(self._pool.submit(self._run, self.units[len(self._futures)]))

    def _run(self, unit: Unit) -> dict[str, Made]:
        """Run one unit on a pool thread, step by step as on demand: a step that raised ends it (on demand, its
        test would have stopped there). Never raises."""
        with sent_for(f"{unit.nodeid} (setup)"):
            made = self._make(unit)
        values = {name: step.value for name, step in made.items()}
        if unit.test is not None and not _failed(values) and not self._stopped.is_set():
            given = {**self.shared, **unit.params, **values}
            kwargs = {arg: given[arg] for arg in unit.args}
            test = unit.test
            with sent_for(f"{unit.nodeid} (call)"):
                made[CALL] = _attempt(self.transport, lambda: test(**kwargs), every=True)
        return made

    def _make(self, unit: Unit) -> dict[str, Made]:
        """The unit's thread and messages, step by step; a step that raised ends it."""
        made = {"thread": _attempt(self.transport, self.threads.create)}
        values = {"thread": made["thread"].value}
        for name, recipe in unit.messages:
            if _failed(values) or self._stopped.is_set():
                return made
            made[name] = _attempt(self.transport, partial(recipe.create, self.threads.api, values["thread"]["id"]))
            values[name] = made[name].value
        return made


def _failed(values: Mapping[str, Any]) -> bool:
    return any(isinstance(value, BaseException) for value in values.values())


def _attempt(transport: Transport, step: Callable[[], Any], *, every: bool = False) -> Made:
    """One step on this thread, its exchanges captured; what it raised is its value (``every``: also pytest's
    outcomes, a skip or an explicit fail, which are BaseExceptions)."""
    catch = BaseException if every else Exception
    with transport.capturing() as exchanges:
        try:
            value = step()
        except catch as exc:  # handed to the test, which raises it as on demand
            value = exc
    return Made(value, tuple(exchanges))


# ------------------------------------------------------------------------------------------------ the fixtures


def thread_fixture() -> Any:
    """The ``thread`` fixture: a fresh thread of this run, its unit's when the test has one."""

    def thread(modmsg_ahead: Ahead, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
        made = modmsg_ahead.thread(request.node.nodeid)
        yield made
        modmsg_ahead.release(made, request.node.nodeid)

    setattr(thread, THREAD, True)
    thread.__doc__ = "A fresh thread of this run (deleted once the test is over, or at the end of the run)."
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
