"""Resolve the run's target: the bundled reference server, or a URL that must answer like an OpenAI API."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from modmsg.config import ConfigError, Settings
from modmsg.redaction import Redactor

PROBE_TIMEOUT = 5.0
PROBE_THREAD = "thread_modmsgprobe0000000000000"


@dataclass(frozen=True)
class Target:
    base_url: str
    api_key: str
    reference: Any = None  # the reference server handle when the suite started it

    @property
    def label(self) -> str:
        return f"{self.base_url} (bundled reference server)" if self.reference else self.base_url


def probe(base_url: str, api_key: str, headers: tuple[tuple[str, str], ...], beta: str, timeout: float) -> None:
    """One GET of a thread that cannot exist: the target must answer with JSON (a 404 envelope, typically)."""
    url = f"{base_url}/threads/{PROBE_THREAD}"
    request_headers = {"Authorization": f"Bearer {api_key}", "OpenAI-Beta": beta, **dict(headers)}
    redact = Redactor(frozenset(), (api_key,)).text
    try:
        response = requests.get(
            url, headers=request_headers, timeout=min(timeout, PROBE_TIMEOUT), allow_redirects=False
        )
    except requests.Timeout:
        raise ConfigError(f"target {base_url} did not answer within {min(timeout, PROBE_TIMEOUT):.0f} s") from None
    except requests.RequestException as exc:
        reason = "connection refused" if "refused" in str(exc) else type(exc).__name__
        raise ConfigError(f"target {base_url} is unreachable ({reason}); check --base-url") from None
    content_type = response.headers.get("content-type", "")
    if response.status_code == 401:
        raise ConfigError(f"target {base_url} rejected the API key (401); check MODMSG_API_KEY")
    try:
        response.json()
    except ValueError:
        kind = "HTML" if "html" in content_type or response.text.lstrip().startswith("<") else "a non-JSON body"
        raise ConfigError(
            f"target {base_url} answered {kind} ({response.status_code} {redact(content_type) or 'no content type'}), "
            "not JSON; is the base URL the API root ending in /v1?"
        ) from None


@contextmanager
def open_target(settings: Settings, beta: str) -> Iterator[Target]:
    """Yield a probed target; start (and afterwards stop) the reference server when no base URL is set."""
    if settings.base_url is None:
        from modmsg.reference import start_server

        api_key = settings.api_key or f"sk-modmsg-{secrets.token_hex(12)}"
        server = start_server(api_key=api_key)
        try:
            yield Target(base_url=server.base_url, api_key=api_key, reference=server)
        finally:
            server.stop()
        return
    assert settings.api_key is not None  # config.resolve demands a key with a base URL (probed at configure)
    yield Target(base_url=settings.base_url, api_key=settings.api_key)
