"""Resolve the run's target: the bundled reference server, or a URL where an Assistants API must answer.

The start-up probe decides one thing only: whether an Assistants API answers at the base URL. It asks the
target to create a thread (tagged with the run id, deleted at once). A thread back means an API is there, and
from then on every deviation is judged as a finding (an HTML 404 page, a wrong envelope, a dropped connection).
Anything else (unreachable, the key refused, every path 404, an HTML page, a body that is not a thread) means
the setting is wrong: one sentence, exit 2, no verdict about the target.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from modmsg.config import ConfigError, Settings
from modmsg.ids import is_safe, path
from modmsg.ledger import RUN_TAG
from modmsg.transport import RunBudget, Transport, TransportError


@dataclass(frozen=True)
class Target:
    base_url: str
    api_key: str = field(repr=False)
    reference: Any = None  # the reference server handle when the suite started it

    @property
    def label(self) -> str:
        return f"{self.base_url} (bundled reference server)" if self.reference else self.base_url


def transport_for(
    settings: Settings, base_url: str, api_key: str | None, beta: str | None, budget: RunBudget | None = None
) -> Transport:
    """The run's transport, made from the settings in one place (the tests' fixture, the probe and ``modmsg
    sweep`` share it): deadlines, the size cap, the throttle and the run budget all apply to each of them."""
    return Transport(
        base_url=base_url,
        api_key=api_key,
        headers=settings.headers,
        secret_headers=settings.secret_headers,
        timeout=settings.timeout,
        beta=beta,
        rate_limit=settings.rate_limit,
        max_response_size=settings.max_response_size,
        budget=budget,
    )


def _what(response: requests.Response) -> str:
    """A few words on an answer that is not a thread: status, and HTML / non-JSON / the JSON error code."""
    content_type = response.headers.get("content-type", "").lower()
    try:
        body = response.json()
    except (ValueError, RecursionError):
        looks_html = "html" in content_type or response.text.lstrip()[:1] == "<"
        return f"{response.status_code} with {'an HTML page' if looks_html else 'a non-JSON body'}"
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, str) and code:
        return f"{response.status_code} with a JSON error (code {code[:40]!r})"
    return f"{response.status_code} with JSON that is not a thread"


def _hint(base_url: str, status: int) -> str:
    path = urlsplit(base_url).path.rstrip("/")
    if status in (404, 405) and not path.endswith("/v1"):
        return f"; is the base URL the API root? did you mean {base_url.rstrip('/')}/v1?"
    return "; is the base URL the API root ending in /v1?"


def probe(transport: Transport, base_url: str, run_id: str) -> str | None:
    """Raise ConfigError (one sentence) unless an Assistants API answers at ``base_url``.

    Creates one thread tagged ``modmsg_run: run_id`` and deletes it; returns that thread's id when it could not
    be deleted (the caller records it for ``modmsg sweep``), else None.
    """
    label = transport.redactor.text(base_url)
    try:
        response = transport.request("POST", "threads", json={"metadata": {RUN_TAG: run_id}})
    except TransportError as exc:
        cause = transport.redactor.text(str(exc).rsplit(": ", 1)[-1])
        raise ConfigError(f"target {label} is unreachable ({cause}); check --base-url") from None
    if response.status_code in (401, 403):
        raise ConfigError(
            f"target {label} rejected the API key ({response.status_code}); check MODMSG_API_KEY or --api-key-env"
        )
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    thread_id = body.get("id") if isinstance(body, dict) and 200 <= response.status_code < 300 else None
    if not isinstance(thread_id, str) or not thread_id:
        raise ConfigError(
            f"no Assistants API answers at {label}: createThread (POST /threads) answered {_what(response)}"
            + _hint(base_url, response.status_code)
        )
    if not is_safe(thread_id):
        return None  # an API answers; its unusable ids are a finding of the run, and this one is never touched
    try:
        deleted = transport.request("DELETE", path("threads", thread_id))
    except TransportError:
        return thread_id
    return None if deleted.status_code in (200, 204, 404) else thread_id


@contextmanager
def open_target(settings: Settings, beta: str) -> Iterator[Target]:
    """Yield the target; start (and afterwards stop) the reference server when no base URL is set."""
    if settings.base_url is None:
        from modmsg.reference import start_server

        api_key = settings.api_key or f"sk-modmsg-{secrets.token_hex(12)}"
        server = start_server(api_key=api_key, latency_ms=settings.reference_latency_ms)
        try:
            yield Target(base_url=server.base_url, api_key=api_key, reference=server)
        finally:
            server.stop(wait=False)  # every request of the run is answered: it shuts down while reports are written
        return
    assert settings.api_key is not None  # config.resolve demands a key with a base URL (probed at configure)
    yield Target(base_url=settings.base_url, api_key=settings.api_key)
