"""The one HTTP client every test uses: timeouts, bounded retries, 429 back-off, the run budget, one resend of a
dropped request, and evidence of every attempt (:mod:`modmsg.evidence`); the session under it is
:mod:`modmsg.session`, the bounded wire :mod:`modmsg.wire`."""

from __future__ import annotations

import copy
import email.utils
import json as jsonlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

from modmsg.config import option_default
from modmsg.evidence import BODY_CAP, Exchange, Recorder, RequestWriter, body_text
from modmsg.redaction import Redactor, inert
from modmsg.session import GatewayError, Throttle, WireSession
from modmsg.wire import BodyTooLarge, ExchangeTimeout

UNSET: Any = object()
"""``json=`` not given (``None`` is a JSON body of its own)."""


class TransportError(Exception):
    """The request never got an HTTP answer (refused, DNS, timeout, reset): an ERROR, never a FAIL."""


class RateLimitedError(TransportError):
    """The target kept answering 429 past the retry budget: it could not be asked, so nothing is judged."""


class RequestDropped(TransportError):
    """The target closed the connection without an answer to this request, again when it was sent once more,
    while it answered a check request right after: the target cannot handle this input. A finding about the
    target (every input must get an HTTP answer), never a network fault."""

    def __init__(self, message: str, exchange: Exchange | None = None) -> None:
        super().__init__(message)
        self.exchange = exchange


class ResponseTooLarge(TransportError):
    """The answer was larger than ``--max-response-size`` (counted after decompression): not read further."""


class RunBudgetSpent(TransportError):
    """``--max-duration`` is spent: no further request is sent, and what is not judged yet is ERROR."""


def retry_delay(response: requests.Response, attempt: int, now: Callable[[], float] = time.time) -> float:
    """Seconds to wait before retrying a 429: retry-after-ms, then Retry-After (seconds or HTTP date).

    Without a usable header: exponential back-off from 0.5 s, capped at 8 s. ``now`` (wall-clock seconds) is
    injectable for testing the HTTP-date form.
    """
    millis = response.headers.get("retry-after-ms")
    if millis:
        try:
            return _finite(float(millis) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value:
        try:
            return _finite(float(value))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value) if value.strip() else None
            except (TypeError, ValueError):
                parsed = None
            if parsed is not None and parsed.tzinfo is not None:
                return _finite(parsed.timestamp() - now())
    return min(8.0, 0.5 * 2**attempt)


def _finite(seconds: float) -> float:
    """Negative means 'now'; NaN and infinity are treated as 'longer than any budget'."""
    if seconds != seconds or seconds == float("inf"):
        return float("inf")
    return max(0.0, seconds)


@dataclass(frozen=True)
class RunBudget:
    """``--max-duration``: when the run ends, on the monotonic clock."""

    seconds: float
    ends: float

    @classmethod
    def since(cls, seconds: float, elapsed: float = 0.0, clock: Callable[[], float] = time.monotonic) -> RunBudget:
        """The budget of a run that started ``elapsed`` seconds ago."""
        return cls(seconds=seconds, ends=clock() + seconds - max(0.0, elapsed))

    def spent(self, what: str) -> RunBudgetSpent:
        return RunBudgetSpent(f"the run budget of {self.seconds:g} s (--max-duration) is spent; {what}")


ALIVE_THREAD_ID = "thread_modmsgalive000000000000000"
"""A well-formed thread id that no target holds: after a request was dropped twice, ``GET threads/<it>`` asks
whether the target still answers (any HTTP answer counts)."""


@dataclass
class Transport:
    base_url: str
    api_key: str | None
    headers: tuple[tuple[str, str], ...] = ()
    secret_headers: Sequence[str] = ("authorization",)
    timeout: float = 30.0
    beta: str | None = "assistants=v2"
    max_429_retries: int = 4
    max_429_wait: float = 60.0
    connect_retries: int = 2
    rate_limit: float | None = None
    """Client-side throttle (``--rate-limit``): at most this many requests per second, over every sender."""
    session: requests.Session = field(default_factory=WireSession)
    recorder: Recorder = field(default_factory=Recorder)
    rate_limited: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    sleep: Callable[[float], None] = time.sleep
    """How back-off waits (injectable, so tests of the retry schedule do not sleep)."""
    request_log: RequestWriter | None = None
    """``--record-requests``: every attempt is also written, redacted, to this log (for ``bench/``'s replay)."""
    max_response_size: int | None = option_default("max_response_size")
    """``--max-response-size``: most bytes read of one answer, after decompression (None: no cap)."""
    budget: RunBudget | None = None
    """``--max-duration``: no request starts once it is spent, and none runs past it."""
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.redactor = Redactor.build(api_key=self.api_key, headers=self.headers, secret_headers=self.secret_headers)
        self._lock = threading.Lock()
        self._captures = threading.local()
        if self.rate_limit is not None:
            if not isinstance(self.session, WireSession):
                raise ValueError("rate_limit needs the transport's own WireSession")
            self.session.throttle = Throttle(self.rate_limit)
        if isinstance(self.session, WireSession):
            self.session.max_response_size = self.max_response_size
            self.session.environment_for(self.base_url)  # here, before any pool thread sends

    def __repr__(self) -> str:  # the dataclass repr would show the key and every header value
        return f"Transport(base_url={self.redactor.text(self.base_url)!r})"

    @contextmanager
    def recording(self, *, forward: bool = False) -> Iterator[Recorder]:
        """Route evidence to a fresh recorder for the duration of one test (``forward``: of one block of a test,
        whose recorder still gets every exchange)."""
        previous = self.recorder
        self.recorder = Recorder(forward=previous if forward else None)
        try:
            yield self.recorder
        finally:
            self.recorder = previous

    @contextmanager
    def capturing(self) -> Iterator[list[Exchange]]:
        """Route the evidence of this thread's requests to a list of their own (one generated case sent by a pool
        thread, whose exchanges the stream adds to the test's evidence in draw order), for the duration of a block.
        Other threads record as before."""
        previous = getattr(self._captures, "exchanges", None)
        captured: list[Exchange] = []
        self._captures.exchanges = captured
        try:
            yield captured
        finally:
            self._captures.exchanges = previous

    def url(self, path: str) -> str:
        """The base URL joined with ``path``; a ``.`` or ``..`` segment is refused (``urllib3`` would resolve it
        and the request would leave the API: build paths from ids with :func:`modmsg.ids.path`)."""
        if any(part in (".", "..") for part in path.split("?", 1)[0].split("/")):
            raise ValueError(f"a path with a dot segment is never sent: {path[:200]!r}")
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def default_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if self.beta:
            headers["OpenAI-Beta"] = self.beta
        headers.update(dict(self.headers))
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = UNSET,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        without: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        """Send one request; ``without`` drops default headers (e.g. Authorization) for negative tests."""
        merged = {k: v for k, v in self.default_headers().items() if k.lower() not in {w.lower() for w in without}}
        if json is not UNSET:
            data = jsonlib.dumps(json, ensure_ascii=False).encode("utf-8")
            merged.setdefault("Content-Type", "application/json")
        merged.update(headers or {})
        request = requests.Request(method, self.url(path), headers=merged, data=data, params=params)
        prepared = self.session.prepare_request(request)
        return self._send(prepared)

    def send(self, prepared: requests.PreparedRequest) -> requests.Response:
        """Send an already prepared request with the transport's retries, back-off and evidence capture."""
        return self._send(prepared)

    def _send(self, prepared: requests.PreparedRequest) -> requests.Response:
        """One request: connect retries only when it never left, one resend when it was dropped, 429 back-off
        within the budget, else raise.

        Raises :class:`TransportError` when there is no HTTP answer from the API (refused, DNS, timeout, reset,
        a gateway page), :class:`RateLimitedError` when 429s outlast ``max_429_retries``/``max_429_wait``,
        :class:`ResponseTooLarge` past ``max_response_size``, :class:`RunBudgetSpent` once ``budget`` is spent and
        :class:`RequestDropped` when the target dropped the request twice but answered the liveness check after.
        """
        waited, attempt, connect_attempt, dropped = 0.0, 0, 0, 0
        while True:
            timeout, by_budget = self._exchange_timeout(prepared)
            started = time.perf_counter()
            try:
                response = self.session.send(prepared, timeout=timeout, allow_redirects=False)
            except requests.RequestException as exc:
                cause = self.redactor.text(_wire_cause(exc) or describe(exc))  # a 502 reason phrase may echo a key
                self.record(prepared, exc.response, time.perf_counter() - started, error=cause)
                if (
                    isinstance(exc, requests.ConnectionError)
                    and connect_attempt < self.connect_retries
                    and _never_sent(exc)
                ):
                    connect_attempt += 1
                    self.sleep(0.2 * connect_attempt)
                    continue
                where = f"{prepared.method} {self.redactor.text(prepared.url or '')}"
                if isinstance(exc, BodyTooLarge):
                    raise ResponseTooLarge(f"{where}: {cause}") from None
                if isinstance(exc, ExchangeTimeout) and by_budget and self.budget is not None:
                    raise self.budget.spent(f"{where} was cut off") from None
                if _dropped(exc):
                    dropped += 1
                    if dropped == 1:
                        continue  # sent once more: a lost connection is not yet a verdict
                    raise self._dropped_twice(prepared, where, cause) from None
                raise TransportError(f"{where}: {cause}") from None
            self.record(prepared, response, time.perf_counter() - started)
            if response.status_code != 429:
                return response
            with self._lock:
                self.rate_limited.append((429, dict(response.headers), response.text[:BODY_CAP]))
            delay = retry_delay(response, attempt)
            if attempt >= self.max_429_retries or waited + delay > self.max_429_wait:
                raise RateLimitedError(
                    f"{prepared.method} {self.redactor.text(prepared.url or '')}: still rate limited (429) after "
                    f"{attempt} retr{'y' if attempt == 1 else 'ies'} and {waited:.1f} s of back-off"
                    + (f"; the target asks for {delay:.0f} s more" if 0 < delay < float("inf") else "")
                    + " (lower --rate-limit, or run when the target is less busy)"
                )
            if self.budget is not None and self.clock() + delay >= self.budget.ends:
                raise self.budget.spent(f"the retry of {prepared.method} after a 429 was not sent")
            self.sleep(delay)
            waited += delay
            attempt += 1

    def _exchange_timeout(self, prepared: requests.PreparedRequest) -> tuple[float, bool]:
        """The deadline of the next exchange, min(``timeout``, what is left of the budget), and whether the budget
        is what limits it; :class:`RunBudgetSpent` when nothing is left."""
        if self.budget is None:
            return self.timeout, False
        left = self.budget.ends - self.clock()
        if left <= 0:
            raise self.budget.spent(f"{prepared.method} {self.redactor.text(prepared.url or '')} was not sent")
        return min(self.timeout, left), left < self.timeout

    def _dropped_twice(self, prepared: requests.PreparedRequest, where: str, cause: str) -> TransportError:
        """The request went unanswered twice: if the target answers a liveness request, the input is the cause."""
        exchange = self._last_exchange(prepared, cause)
        alive = self.session.prepare_request(
            requests.Request("GET", self.url(f"threads/{ALIVE_THREAD_ID}"), headers=self.default_headers())
        )
        started = time.perf_counter()
        try:
            timeout, _ = self._exchange_timeout(alive)
            answer = self.session.send(alive, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            self.record(alive, exc.response, time.perf_counter() - started, error=_wire_cause(exc) or describe(exc))
            if exc.response is None:  # no HTTP answer to anything: the target or the network is down
                return TransportError(f"{where}: {cause} (sent twice; the target answers nothing)")
        else:
            self.record(alive, answer, time.perf_counter() - started)
        return RequestDropped(
            f"{where}: {cause}, twice (the request was sent once more), while the target answered the request "
            f"sent right after it (GET threads/{ALIVE_THREAD_ID}): the target drops this input",
            exchange,
        )

    def _last_exchange(self, prepared: requests.PreparedRequest, cause: str) -> Exchange | None:
        """The evidence just recorded for ``prepared`` (the newest exchange of that method with that error)."""
        captured = getattr(self._captures, "exchanges", None)
        for exchange in reversed(captured if captured is not None else self.recorder.snapshot()):
            if exchange.method == (prepared.method or "") and exchange.error == cause:
                return exchange
        return None

    def final(self) -> Transport:
        """This transport for the cleanup at the end of a run: the run budget no longer stops a request (each
        still has its own deadline), so the run's threads get deleted even after ``--max-duration``."""
        final = copy.copy(self)
        final.budget = None
        return final

    def record(
        self,
        prepared: requests.PreparedRequest,
        response: requests.Response | None,
        elapsed: float,
        error: str | None = None,
    ) -> None:
        if self.request_log is not None:
            self.request_log.write(prepared, response, elapsed, error)
        exchange = self.evidence(prepared, response, elapsed, error)
        captured = getattr(self._captures, "exchanges", None)
        if captured is not None:
            captured.append(exchange)
        else:
            self.recorder.add(exchange)

    def evidence(
        self,
        prepared: requests.PreparedRequest,
        response: requests.Response | None = None,
        elapsed: float = 0.0,
        error: str | None = None,
    ) -> Exchange:
        """One exchange as evidence: every field redacted (bodies before they are cut), request headers by value
        (secrets as shell variable references, a deliberately wrong key as sent), response headers also by name."""
        redact = self.redactor
        request_body, _ = body_text(prepared.body, redact)
        response_body, size = body_text(response.content if response is not None else None, redact)
        return Exchange(
            method=prepared.method or "",
            url=redact.text(prepared.url or ""),
            request_headers=redact.request_headers(prepared.headers),
            request_body=request_body,
            status=response.status_code if response is not None else None,
            response_headers=redact.headers(response.headers) if response is not None else (),
            response_body=response_body,
            response_size=size,
            elapsed=round(elapsed, 6),
            error=redact.text(error) if error is not None else None,
            variables=tuple(variable for variable, _ in redact.variables),
        )


def _wire_cause(exc: requests.RequestException) -> str | None:
    """The cause of the wire's own limits (size cap, whole-exchange deadline) in a few words; None for others."""
    if isinstance(exc, BodyTooLarge):
        return str(exc)
    if isinstance(exc, ExchangeTimeout):
        return f"{exc} (--request-timeout)"
    return None


def _dropped(exc: requests.RequestException) -> bool:
    """True when the request was sent and the connection ended without a (complete) answer: closed, reset or
    truncated. Never for a timeout, a TLS or proxy failure, or a connection that was never made."""
    if isinstance(exc, requests.Timeout | requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return False
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return True
    return isinstance(exc, requests.ConnectionError) and not _never_sent(exc)


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection failed before the request could reach the server (safe to retry)."""
    text = repr(exc)
    return any(
        marker in text
        for marker in ("NewConnectionError", "NameResolutionError", "ConnectTimeout", "Connection refused")
    )


_DNS_MARKERS = (
    "Name or service not known",
    "nodename nor servname",
    "getaddrinfo",
    "NameResolutionError",
    "Failed to resolve",
    "Temporary failure in name resolution",
    "No address associated with hostname",
)


def describe(exc: requests.RequestException) -> str:
    """The cause of a failed request in a few words (never the URL, so never a credential)."""
    text = str(exc)
    if isinstance(exc, GatewayError):
        return inert(text)  # it holds the target's reason phrase
    if isinstance(exc, requests.ConnectTimeout):
        return "no connection within the timeout"
    if isinstance(exc, requests.Timeout):
        return "no response within the timeout"
    if "Connection refused" in text:
        return "connection refused"
    if any(marker in text for marker in _DNS_MARKERS):
        return "host name could not be resolved"
    if "reset" in text.lower():
        return "connection reset"
    if "without response" in text or "RemoteDisconnected" in text:
        return "connection closed without a response"
    if "IncompleteRead" in text:
        return "connection closed mid-body (response truncated)"
    if "Connection broken" in text or "Connection aborted" in text:
        return "connection broken mid-response"
    return type(exc).__name__
