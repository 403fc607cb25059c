"""The reference server under fuzz and load, at CI size (``make soak`` runs the same code at full size).

* Schemathesis over every operation of the fragment, both generation modes: not one 5xx, not one lost request.
* 16 concurrent clients on one message: no lost update, no error.

Each check is paired with a broken target it must catch, so a check that silently stopped looking would fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modmsg.reference import Behaviour, ReferenceServer, start_server
from proving.faultproxy import Fault, FaultPlan, fault_proxy
from proving.soak import MODES, fuzz, load, operation_labels

KEY = "sk-modmsg-soak-0123456789abcdef"
CI_CASES = 1_000  # make soak: 10,000
CI_SECONDS = 5.0  # make soak: 30
CLIENTS = 16


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with start_server(KEY) as running:
        yield running


def test_every_operation_in_both_modes_never_gets_a_5xx(server: ReferenceServer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the worker processes start
    report = fuzz(server.base_url, KEY, CI_CASES, seed=20_260_501, workers=2)
    assert list(tmp_path.iterdir()) == []  # no .hypothesis: the workers keep Hypothesis' caches private
    assert report.ok, "\n".join((report.summary(), *report.server_errors, *report.failures))
    assert report.requests >= CI_CASES
    pairs = dict(report.per_operation)
    expected = {f"{label} [{mode}]" for label in operation_labels() for mode in MODES}
    assert set(pairs) == expected and len(expected) == 18  # 9 operations x positive/negative
    assert min(pairs.values()) >= CI_CASES // len(expected)
    statuses = dict(report.statuses)
    assert statuses.get(200, 0) > CI_CASES // 10  # pinned to live objects, so the handlers are really reached
    assert statuses.get(400, 0) > 0 and statuses.get(404, 0) > 0


def test_the_fuzzer_reports_a_5xx_when_there_is_one(server: ReferenceServer):
    page = Fault.respond(500, (("Content-Type", "application/json"),), '{"error": {"message": "boom"}}')
    with fault_proxy(server.base_url, FaultPlan(faults=(page,), every=7)) as proxy:
        report = fuzz(proxy.base_url, KEY, 36, seed=7, workers=1)
    assert not report.ok and report.server_error_count == len(proxy.injected) > 0
    assert "-> 500" in report.server_errors[0]


def test_sixteen_concurrent_clients_lose_no_update_and_see_no_error(server: ReferenceServer):
    report = load(server.base_url, KEY, clients=CLIENTS, seconds=CI_SECONDS)
    assert report.ok, "\n".join((report.summary(), *report.errors, *report.lost_updates))
    assert report.modifies >= CLIENTS  # every client got its writes in


def test_the_load_check_catches_a_server_that_loses_updates():
    with start_server(KEY, Behaviour(racy_modify=True)) as racy:
        report = load(racy.base_url, KEY, clients=CLIENTS, seconds=1.0)
    assert report.lost_update_count > 0, report.summary()
