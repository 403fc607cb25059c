"""A distant target (``--latency-ms``) and concurrent generated streams whose verdicts equal a sequential run's."""

from __future__ import annotations

import asyncio

import pytest
from helpers import run_cli

from modmsg.config import ConfigError, resolve
from modmsg.reference.latency import Latency


def _serve(latency: Latency, client: tuple[str, int] | None) -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, object]) -> None:
        return None

    scope = {"type": "http", "client": client}
    asyncio.run(latency(scope, receive, send))  # type: ignore[arg-type]


def test_latency_costs_one_round_trip_per_request_and_one_more_per_new_connection() -> None:
    waits: list[float] = []
    served: list[str] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def app(scope: object, receive: object, send: object) -> None:
        served.append("served")

    latency = Latency(app, round_trip=0.04, sleep=sleep)  # type: ignore[arg-type]
    for client in (("127.0.0.1", 5000), ("127.0.0.1", 5000), ("127.0.0.1", 5001), ("127.0.0.1", 5000)):
        _serve(latency, client)
    assert waits == [0.08, 0.04, 0.08, 0.04]
    assert len(served) == 4


def test_latency_is_bounded_and_checked() -> None:
    assert resolve({"reference_latency_ms": "40"}, env={}).reference_latency_ms == 40.0
    assert resolve({}, env={"MODMSG_REFERENCE_LATENCY_MS": "5"}).reference_latency_ms == 5.0
    for bad in ("-1", "nan", "70000", "soon"):
        with pytest.raises(ConfigError, match="--reference-latency-ms"):
            resolve({"reference_latency_ms": bad}, env={})
    with pytest.raises(ValueError):
        Latency(None, round_trip=61)  # type: ignore[arg-type]


def test_serve_refuses_a_bad_latency_in_one_sentence() -> None:
    result = run_cli("serve", "--latency-ms", "-5")
    assert result.returncode == 2
    assert "--latency-ms must be between 0 and 60000" in result.stderr
    assert "Traceback" not in result.stderr
