"""A distant target on loopback: the reference server answers each request one round trip late, and the first
request of each new connection one more round trip late (the handshake a distant target costs), so a client
that opens connections pays for them as it would across a network. For ``bench/`` and behaviour tests only."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_LATENCY_MS = 60_000.0
"""The most a round trip may be made to last: past a minute, every client deadline has passed."""
_REMEMBERED = 4096
"""Client endpoints remembered as already connected (the oldest are forgotten first): memory stays flat."""


class Latency:
    """Pure ASGI middleware: ``round_trip`` seconds before each request is served, twice that for the first request
    of a connection the server has not seen (its client host and port)."""

    def __init__(
        self, app: ASGIApp, *, round_trip: float, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        if not 0 <= round_trip <= MAX_LATENCY_MS / 1000:
            raise ValueError(f"a latency must be between 0 and {MAX_LATENCY_MS:g} ms")
        self.app = app
        self.round_trip = round_trip
        self._sleep = sleep
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.round_trip > 0:
            await self._sleep(self.round_trip * (1 if self._known(scope) else 2))
        await self.app(scope, receive, send)

    def _known(self, scope: Scope) -> bool:
        """True when this request's connection was seen before; remembers it either way."""
        client = scope.get("client")
        if not client:
            return True
        endpoint = (str(client[0]), int(client[1]))
        if endpoint in self._seen:
            self._seen.move_to_end(endpoint)
            return True
        self._seen[endpoint] = None
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        return False
