"""Run the reference server on loopback: in a background thread for tests, or in the foreground for a CLI."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware

from modmsg.reference.app import create_app
from modmsg.reference.behaviour import DEFAULT_BEHAVIOUR, Behaviour
from modmsg.reference.latency import Latency

_POLL_SECONDS = 0.01


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP, and
    # without it every keep-alive response stalls ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"the reference server cannot listen on {host}:{port}: {exc}") from exc
    return sock


class ReferenceServer:
    """Handle on a running reference server; ``stop()`` it or use it as a context manager."""

    def __init__(
        self,
        *,
        app: Starlette,
        server: uvicorn.Server,
        thread: threading.Thread,
        host: str,
        port: int,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server = server
        self._thread = thread

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, the value for ``openai.OpenAI(base_url=...)``."""
        return f"http://{_url_host(self.host)}:{self.port}/v1"

    def thread_ids(self) -> list[str]:
        """Ids of the threads currently in the store (test-only helper, e.g. for cleanup checks)."""
        return self.app.state.store.thread_ids()

    def wait_until_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being answered and no connection is open (test-only helper: a client killed
        mid-request leaves requests the server still completes); False if that takes longer than ``timeout``."""
        state = self._server.server_state
        deadline = time.monotonic() + timeout
        while state.tasks or state.connections:
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL_SECONDS)
        return True

    def stop(self, timeout: float = 10.0, *, wait: bool = True) -> None:
        """Shut down gracefully; force it if in-flight requests do not finish within ``timeout``. ``wait=False``
        only starts the shutdown (uvicorn notices within a tenth of a second, then lets connections close for
        another): for a run whose requests are all answered, that is time spent on its reports instead."""
        self._server.should_exit = True
        if not wait:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> ReferenceServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_server(
    api_key: str,
    behaviour: Behaviour = DEFAULT_BEHAVIOUR,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    middleware: Sequence[Middleware] = (),
    startup_timeout: float = 10.0,
    latency_ms: float = 0.0,
) -> ReferenceServer:
    """Start uvicorn in a daemon thread (port 0 = a free port) and wait until it accepts connections.

    ``middleware`` is passed to :func:`create_app` (outermost, e.g. a variant's response rewriter). ``latency_ms``
    makes it a distant target (:class:`~modmsg.reference.latency.Latency`): each request answered that much
    later, the first of each new connection twice that.
    """
    distant = (Middleware(Latency, round_trip=latency_ms / 1000),) if latency_ms else ()
    app = create_app(api_key, behaviour, middleware=(*distant, *middleware))
    sock = _bind(host, port)
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"modmsg-reference-{actual_port}", daemon=True
    )
    thread.start()
    handle = ReferenceServer(app=app, server=server, thread=thread, host=host, port=actual_port)
    try:
        _wait_until_ready(server, thread, host, actual_port, startup_timeout)
    except BaseException:
        handle.stop(timeout=2.0)
        sock.close()
        raise
    return handle


def _wait_until_ready(
    server: uvicorn.Server,
    thread: threading.Thread,
    host: str,
    port: int,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the reference server on {host}:{port} exited during startup")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the reference server on {host}:{port} did not start within {timeout:g}s")
        time.sleep(_POLL_SECONDS)
    remaining = max(0.1, deadline - time.monotonic())
    try:
        with socket.create_connection((host, port), timeout=remaining):
            pass
    except OSError as exc:
        raise RuntimeError(f"the reference server on {host}:{port} refuses connections: {exc}") from exc


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8080,
    api_key: str = "sk-modmsg-reference",
    behaviour: Behaviour = DEFAULT_BEHAVIOUR,
    *,
    middleware: Sequence[Middleware] = (),
    latency_ms: float = 0.0,
) -> None:
    """Serve until SIGINT or SIGTERM, printing one line with the base URL once listening."""
    stop = threading.Event()
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, lambda _sig, _frame: stop.set()) for sig in handled}
    try:
        with start_server(
            api_key, behaviour, host=host, port=port, middleware=middleware, latency_ms=latency_ms
        ) as server:
            url = f"http://{_url_host(host)}:{server.port}/v1"
            print(f"modmsg reference server listening on {url}", flush=True)
            while not stop.wait(0.2):
                pass
    except KeyboardInterrupt:  # only when signal handlers could not be installed (not the main thread)
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
