"""Which collected tests a run judges: the requirement marks, ``--req`` selectors and the profile, then what
pytest's own ``-k``/``-m`` leave (selecting none of the modmsg tests is a wrong setting)."""

from __future__ import annotations

import sys

import pytest

from modmsg.plugin.prepare import refuse
from modmsg.plugin.state import RunState
from modmsg.redaction import inert
from modmsg.requirements import matches
from modmsg.smoke import candidates_of, choose, load_costs


def req_ids(item: pytest.Item) -> tuple[str, ...]:
    """The requirement ids of a test's ``req`` marks, in order, each once."""
    ids: list[str] = []
    for mark in item.iter_markers("req"):
        ids.extend(str(a) for a in mark.args)
    return tuple(dict.fromkeys(ids))


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def select(config: pytest.Config, state: RunState, items: list[pytest.Item]) -> list[pytest.Item]:
    """The tests ``--req`` selects (the others are deselected), marked with their requirement ids and levels as
    keywords and skipped when no requirement of theirs is judged under the profile; an unknown id is refused."""
    selectors = state.settings.requirements
    own_report_dir = None if is_worker(config) else state.settings.report_dir  # a worker never clears it
    keep, drop = [], []
    for item in items:
        ids = req_ids(item)
        unknown = [i for i in ids if i not in state.catalogue]
        if unknown:
            refuse(f"{item.nodeid} names unknown requirement(s) {', '.join(unknown)}", own_report_dir)
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
    return keep


def smoke_key(item: pytest.Item) -> str:
    """A test as ``suites/smoke-costs.json`` names it: its file name and the rest of its node id (the directory
    differs between a checkout and an installed copy)."""
    return f"{item.path.name}::{item.nodeid.split('::', 1)[-1]}"


def mark_smoke(config: pytest.Config, state: RunState, items: list[pytest.Item]) -> None:
    """Mark the tests the smoke rule takes (``modmsg.smoke``) with ``smoke``, when ``-m`` asks for it."""
    if "smoke" not in (config.option.markexpr or ""):
        return
    musts = frozenset(
        r.id for r in state.catalogue.active() if r.level.value == "MUST" and state.profile.base in r.profiles
    )
    by_key = {smoke_key(item): item for item in items}
    judged = {key: req_ids(item) for key, item in by_key.items()}
    shares = {key: _stream(item) for key, item in by_key.items()}
    for candidate in choose(candidates_of(judged, shares, musts, load_costs())):
        by_key[candidate.nodeid].add_marker(pytest.mark.smoke)


def _stream(item: pytest.Item) -> str | None:
    """The drawn stream a test shares with others (its ``xdist_group``), whose cost the first one taken pays."""
    mark = item.get_closest_marker("xdist_group")
    name = (mark.args[0] if mark.args else mark.kwargs.get("name")) if mark is not None else None
    return str(name) if name else None


def expected_counts(items: list[pytest.Item]) -> dict[str, int]:
    """Selected tests per requirement: a stopped run tells from it which requirements saw all their tests."""
    expected: dict[str, int] = {}
    for item in items:
        for req_id in req_ids(item):
            expected[req_id] = expected.get(req_id, 0) + 1
    return expected


def stop_if_nothing_selected(config: pytest.Config, state: RunState, before: int, items: list[pytest.Item]) -> None:
    """``-k`` (or ``-m``) that deselects every modmsg test is a wrong setting: one sentence, exit 2, no report.
    xdist workers leave it to the controller (``modmsg run`` says it once for exit code 5)."""
    if not before or is_worker(config) or any(req_ids(item) for item in items):
        return
    options = (("-k", config.option.keyword), ("-m", config.option.markexpr))
    given = " and ".join(f"{flag} {value!r}" for flag, value in options if value) or "the selection"
    message = f"{given} selects none of the {before} modmsg tests; nothing was run"
    sys.stderr.write(f"modmsg: {inert(message)}\n")  # at collection, pytest shows an exit only as a traceback line
    refuse(message, state.settings.report_dir)
