"""The suite's ``requests.Session``: a client-side throttle, bounded exchanges, and gateway pages turned into failures.

The bounded reading itself (deadline of the whole exchange, size cap, JSON depth) is :mod:`modmsg.wire`; the
retries, back-off and evidence around each request are :class:`modmsg.transport.Transport`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

from modmsg.wire import (
    BodyTooLarge,
    BoundedResponse,
    Deadline,
    ExchangeTimeout,
    Watchdog,
    WireAdapter,
    read_body,
)
from modmsg.wire import current as wire_deadline

GATEWAY_STATUSES = frozenset({502, 503, 504})


class GatewayError(requests.RequestException):
    """A 502/503/504 whose body is not JSON: a proxy or load balancer answered, not the API under test.

    Raised by :class:`WireSession` (so every sender of the session, generated cases included, sees it as a
    ``requests`` failure); the response is kept as evidence.
    """


class Throttle:
    """At most ``rate`` request starts per second across all threads (``--rate-limit``); no burst.

    ``clock`` and ``sleep`` are injectable so the schedule can be tested without waiting.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("a throttle needs a positive number of requests per second")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until this caller may start a request; return how long it waited."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        delay = start - now
        if delay > 0:
            self._sleep(delay)
        return delay


MAX_COOKIES = 50
"""Cookies a run keeps from its target (RFC 6265 section 6.1 asks a client for at least 50 per domain); a new one
past that is refused, so a target that sets a fresh cookie on every answer cannot make every request carry them
all (each request's Cookie header, and the time to build it, would grow with the run)."""
MAX_COOKIE_BYTES = 4096
"""A cookie's name and value together, at most (RFC 6265 section 6.1's minimum a client supports); longer: refused."""
MAX_COOKIES_BYTES = 8192
"""All kept cookies' names and values together, at most: the Cookie header stays within what servers accept."""


def _size(cookie: Cookie) -> int:
    return len(cookie.name) + len(cookie.value or "")


class BoundedCookies(DefaultCookiePolicy):
    """Accepts cookies as usual, but at most ``MAX_COOKIES`` unexpired ones, of at most ``MAX_COOKIE_BYTES`` each and
    ``MAX_COOKIES_BYTES`` together (a cookie replacing one already kept counts instead of it)."""

    def __init__(self, jar: CookieJar) -> None:
        super().__init__()
        self.jar = jar

    def set_ok(self, cookie: Cookie, request: Any) -> bool:
        if _size(cookie) > MAX_COOKIE_BYTES:
            return False
        self.jar.clear_expired_cookies()  # requests never purges the session's jar: expired ones would fill it
        key = (cookie.domain, cookie.path, cookie.name)
        others = [c for c in self.jar if (c.domain, c.path, c.name) != key]
        if len(others) >= MAX_COOKIES or sum(map(_size, others)) + _size(cookie) > MAX_COOKIES_BYTES:
            return False
        return bool(super().set_ok(cookie, request))


class WireSession(requests.Session):
    """The suite's ``requests.Session``: client-side throttle, bounded exchanges, gateway pages turned into failures.

    Every exchange is bounded (see :mod:`modmsg.wire`): a numeric ``timeout`` is the deadline of the whole exchange
    (connect, send, the complete answer), at most ``max_response_size`` bytes of a body are read after
    decompression, redirects are never followed, and the response's ``.json()`` refuses JSON nested deeper than
    :data:`modmsg.wire.MAX_JSON_DEPTH`. Cookies are kept as a client keeps them, up to :class:`BoundedCookies`.
    """

    def __init__(self, throttle: Throttle | None = None, max_response_size: int | None = None) -> None:
        super().__init__()
        self.cookies.set_policy(BoundedCookies(self.cookies))
        self.throttle = throttle
        self.max_response_size = max_response_size
        self.watchdog = Watchdog()
        adapter = WireAdapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self._environment: dict[tuple[str, str], tuple[dict[str, str], str | None]] = {}

    def environment_for(self, url: str) -> tuple[dict[str, str], str | None]:
        """What requests takes from the environment for ``url``: the proxies (``no_proxy`` applied) and the CA
        bundle (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``), read once per origin. Reading them means iterating
        over ``os.environ``, which fails with a KeyError when another thread changes it meanwhile (pytest sets and
        deletes ``PYTEST_CURRENT_TEST`` around every test while pool threads send), and costs ~0.2 ms a request:
        the transport reads its target's on the thread that makes it (:meth:`Transport.__post_init__`)."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        found = self._environment.get(origin)
        if found is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
            found = (get_environ_proxies(url, no_proxy=None), bundle)
            self._environment[origin] = found
        return found

    def proxies_for(self, url: str) -> dict[str, str]:
        """The proxies of one request as requests' ``resolve_proxies`` finds them (the session's, and the
        environment's proxy for the URL's scheme unless ``no_proxy`` bypasses it), from :meth:`environment_for`."""
        found, _ = self.environment_for(url)
        proxies = dict(self.proxies)
        scheme = urlsplit(url).scheme
        proxy = found.get(scheme, found.get("all"))
        if proxy:
            proxies.setdefault(scheme, proxy)
        return proxies

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        """requests' own merge, with the environment read once per origin (:meth:`environment_for`)."""
        if not self.trust_env or not isinstance(url, str) or (proxies or {}).get("no_proxy"):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        env_proxies, bundle = self.environment_for(url)
        given = dict(proxies or {})
        for scheme, proxy in env_proxies.items():
            given.setdefault(scheme, proxy)
        if verify is True or verify is None:
            verify = bundle or verify
        return {
            "proxies": merge_setting(given, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.trust_env and kwargs.get("proxies") is None and not self.proxies.get("no_proxy"):
            # requests would resolve the proxies from the environment here, for every request, on any thread; the
            # CA bundle of the environment applies as it does to requests' own Session.request
            kwargs["proxies"] = self.proxies_for(request.url or "")
            if kwargs.get("verify") in (None, True):
                kwargs["verify"] = self.environment_for(request.url or "")[1] or self.verify
        if self.throttle is not None:
            self.throttle.wait()
        timeout = kwargs.get("timeout")
        deadline = Deadline.after(timeout) if isinstance(timeout, int | float) and timeout > 0 else None
        kwargs.update(stream=True, allow_redirects=False)  # the body is read here, bounded; redirects never followed
        if deadline is not None:
            self.watchdog.watch(deadline)
        try:
            with wire_deadline(deadline):
                response = super().send(request, **kwargs)
                read_body(response, self.max_response_size)
        except BodyTooLarge:
            raise
        except Exception as exc:
            if deadline is not None and deadline.expired:
                partial = getattr(exc, "response", None)
                raise ExchangeTimeout(deadline.seconds, response=partial, request=request) from exc
            raise
        finally:
            if deadline is not None:
                deadline.finish()
        if deadline is not None and deadline.expired:  # cut off, yet the parts read looked like a whole answer
            raise ExchangeTimeout(deadline.seconds, response=response, request=request)
        response.__class__ = BoundedResponse
        if response.status_code in GATEWAY_STATUSES and not _is_json(response):
            status = f"{response.status_code} {response.reason}" if response.reason else str(response.status_code)
            kind = "an HTML page" if _looks_like_html(response) else "a non-JSON body"
            raise GatewayError(
                f"{status} with {kind}: a proxy or gateway answered, not the API under test",
                response=response,
                request=request,
            )
        return response


def _is_json(response: requests.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return False
    return True


def _looks_like_html(response: requests.Response) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    return "html" in content_type or response.text.lstrip()[:1] == "<"
