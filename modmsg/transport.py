"""The one HTTP client every test uses: timeouts, bounded retries, 429 back-off, evidence capture, redaction."""

from __future__ import annotations

import copy
import email.utils
import json as jsonlib
import re
import shlex
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from modmsg.config import Settings
from modmsg.redaction import Redactor, inert
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

if TYPE_CHECKING:
    from modmsg.recording import RequestLog

BODY_CAP = 16_384
_UNSET: Any = object()


GATEWAY_STATUSES = frozenset({502, 503, 504})


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


class WireSession(requests.Session):
    """The suite's ``requests.Session``: client-side throttle, bounded exchanges, gateway pages turned into failures.

    Every exchange is bounded (see :mod:`modmsg.wire`): a numeric ``timeout`` is the deadline of the whole exchange
    (connect, send, the complete answer), at most ``max_response_size`` bytes of a body are read after
    decompression, redirects are never followed, and the response's ``.json()`` refuses JSON nested deeper than
    :data:`modmsg.wire.MAX_JSON_DEPTH`.
    """

    def __init__(self, throttle: Throttle | None = None, max_response_size: int | None = None) -> None:
        super().__init__()
        self.throttle = throttle
        self.max_response_size = max_response_size
        self.watchdog = Watchdog()
        adapter = WireAdapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
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


def _body_text(body: bytes | str | None, redactor: Redactor) -> tuple[str | None, int]:
    """The body as evidence: decoded, redacted, and only then cut to ``BODY_CAP`` characters (a secret straddling
    the cut is redacted whole); and its size in bytes."""
    if body is None:
        return None, 0
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    text = raw[: 4 * (BODY_CAP + redactor.reach)].decode("utf-8", "replace")
    return redactor.clip(text, BODY_CAP), len(raw)


_SKIPPED_IN_CURL = ("content-length", "user-agent", "accept-encoding", "connection", "accept")


def shell_word(text: str, variables: Sequence[str] = ()) -> str:
    """``text`` as one shell word in which ``$NAME`` / ``${NAME}`` for each of ``variables`` expands (the evidence
    shows a secret as such a reference) and nothing else does: double quotes with ``\\``, ``"``, ``$`` and
    backtick escaped (or single quotes around the literal parts when a ``!`` could trigger history expansion)."""
    names = "|".join(re.escape(v) for v in sorted(variables, key=len, reverse=True))
    pieces = re.split(rf"(\$\{{(?:{names})\}}|\$(?:{names})(?![A-Za-z0-9_]))", text) if names else [text]
    if len(pieces) == 1:
        return shlex.quote(text)
    literals, references = pieces[::2], pieces[1::2]
    if any("!" in literal for literal in literals):
        return "".join(
            (shlex.quote(literal) if literal else "") + (f'"{reference}"' if reference else "")
            for literal, reference in zip(literals, [*references, ""], strict=True)
        )
    escaped = [re.sub(r'([\\"$`])', r"\\\1", literal) for literal in literals]
    return '"' + "".join(e + r for e, r in zip(escaped, [*references, ""], strict=True)) + '"'


@dataclass(frozen=True)
class Exchange:
    """One request and its answer, as evidence: already redacted and truncated."""

    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: str | None
    status: int | None
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: str | None = None
    response_size: int = 0
    elapsed: float = 0.0
    error: str | None = None
    variables: tuple[str, ...] = field(default=(), repr=False)
    """The shell variables (``MODMSG_API_KEY``...) that stand for secrets in ``request_headers``: not evidence."""

    def curl(self) -> str:
        """A command that runs as pasted: each secret is a shell variable reference (``$MODMSG_API_KEY``), so the
        value never shows and a user who has set the variable gets the same answer, not a 401."""
        parts = ["curl", "-sS", "-X", self.method, shlex.quote(self.url)]
        for name, value in self.request_headers:
            if name.lower() in _SKIPPED_IN_CURL:
                continue
            parts += ["-H", shell_word(f"{name}: {value}", self.variables)]
        if self.request_body is not None:
            parts += ["--data-raw", shlex.quote(self.request_body)]
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["variables"]
        data["request_headers"] = [list(h) for h in self.request_headers]
        data["response_headers"] = [list(h) for h in self.response_headers]
        data["curl"] = self.curl()
        return data


@dataclass
class Recorder:
    """Collects the exchanges of one test (thread-safe: concurrency tests share it).

    ``limit`` keeps only the newest exchanges, so a long generated test or the session-wide default recorder
    never grows without bound.
    """

    limit: int = 256
    exchanges: deque[Exchange] = field(default_factory=deque)
    forward: Recorder | None = None
    """Where every exchange goes as well (the test's recorder, while a block of it is captured separately)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)
            while len(self.exchanges) > self.limit:
                self.exchanges.popleft()
        if self.forward is not None:
            self.forward.add(exchange)

    def snapshot(self) -> tuple[Exchange, ...]:
        with self._lock:
            return tuple(self.exchanges)


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
    request_log: RequestLog | None = None
    """``--record-requests``: every attempt is also written, redacted, to this log (for ``bench/``'s replay)."""
    max_response_size: int | None = Settings.max_response_size
    """``--max-response-size``: most bytes read of one answer, after decompression (None: no cap)."""
    budget: RunBudget | None = None
    """``--max-duration``: no request starts once it is spent, and none runs past it."""
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.redactor = Redactor.build(api_key=self.api_key, headers=self.headers, secret_headers=self.secret_headers)
        self._lock = threading.Lock()
        if self.rate_limit is not None:
            if not isinstance(self.session, WireSession):
                raise ValueError("rate_limit needs the transport's own WireSession")
            self.session.throttle = Throttle(self.rate_limit)
        if isinstance(self.session, WireSession):
            self.session.max_response_size = self.max_response_size

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
        json: Any = _UNSET,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        without: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        """Send one request; ``without`` drops default headers (e.g. Authorization) for negative tests."""
        merged = {k: v for k, v in self.default_headers().items() if k.lower() not in {w.lower() for w in without}}
        if json is not _UNSET:
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
        for exchange in reversed(self.recorder.snapshot()):
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
        self.recorder.add(self.evidence(prepared, response, elapsed, error))

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
        request_body, _ = _body_text(prepared.body, redact)
        response_body, size = _body_text(response.content if response is not None else None, redact)
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
