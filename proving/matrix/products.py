"""The products of the matrix: how each is installed (pinned, into ``.matrix/<name>/``) and started on loopback.

Every product fronts a reference server (the ``Upstream``) and yields the ``Endpoint`` the suite talks to. The
Portkey gateway reuses ``scripts/gateway_demo.py`` (``make gateway-demo``) as it is.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
INSTALL_TIMEOUT = 1200.0
STARTUP_TIMEOUT = 90.0
# Proxy variables would send a product's upstream calls elsewhere; none of them may reach a product.
PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy", "trusted_custom_hosts"})


class ProductError(Exception):
    """A product could not be installed or started: one sentence (the matrix records it, or the run stops)."""


@dataclass(frozen=True)
class Upstream:
    """The reference server a product fronts."""

    base_url: str  # http://127.0.0.1:R/v1
    api_key: str


@dataclass(frozen=True)
class Endpoint:
    """What the suite is pointed at: ``--base-url``, extra ``--header`` values, and the key it sends."""

    base_url: str
    api_key: str
    headers: tuple[str, ...] = ()


Starter = Callable[[Path, Upstream, Path], AbstractContextManager[Endpoint]]


@dataclass(frozen=True)
class Product:
    name: str  # the column, and the folder under .matrix/
    title: str
    package: str  # what is installed, as its registry names it
    findings: str  # the doc with this product's findings, relative to docs/
    install: Callable[[Path], None]
    version: Callable[[Path], str | None]
    start: Starter
    folder: str = ""  # under .matrix/ (default: the name); the two Prism modes share one install

    def home(self, root: Path) -> Path:
        return root / (self.folder or self.name)


# ------------------------------------------------------------------------------------------------- processes


def free_port() -> int:
    return int(_demo().free_port())


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES and not k.startswith("MODMSG_")}
    return {**env, **extra}


def wait_for_http(process: subprocess.Popen[bytes], url: str, timeout: float, log: Path, name: str) -> None:
    """Poll ``url`` until it answers any HTTP status (or ``timeout``); ProductError if the process dies first."""
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        if process.poll() is not None:
            raise ProductError(f"{name} exited with {process.returncode} during startup: {tail(log)}")
        try:
            with opener.open(url, timeout=2.0):
                return
        except urllib.error.HTTPError:
            return  # it answers: ready
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise ProductError(f"{name} did not answer {url} within {timeout:g} s: {tail(log)}")
        time.sleep(0.3)


@contextmanager
def serving(
    command: Sequence[str], *, cwd: Path, env: dict[str, str], port: int, ready: str, log: Path, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` in its own session, wait for ``ready``, refuse a non-loopback listener; always stop it."""
    demo = _demo()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_http(process, ready, STARTUP_TIMEOUT, log, name)
        exposed = demo.non_loopback_listeners(port)
        if exposed:
            raise ProductError(f"{name} listens on non-loopback addresses {exposed}")
        yield process
    finally:
        demo.stop(process)


def tail(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return f"no log at {log}"
    last = " ".join(lines[-1].split())[:300] if lines else "no output"
    return f"{last} (log: {log})"


def _run(command: Sequence[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(
            list(command), cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise ProductError(f"{what} did not finish within {INSTALL_TIMEOUT:.0f} s (registry unreachable?)") from None
    except OSError as exc:
        raise ProductError(f"{what} could not start: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise ProductError(f"{what} failed (exit {done.returncode}): {lines[-1][:300] if lines else 'no output'}")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ProductError(f"`{name}` is not on PATH; the matrix needs Node.js 18+ and npm for this product")
    return path


# --------------------------------------------------------------------------------------------------- control


def _no_install(home: Path) -> None:
    return None


def _reference_version(home: Path) -> str:
    from modmsg import __version__

    return f"modmsg {__version__}"


@contextmanager
def _reference(home: Path, upstream: Upstream, log: Path) -> Iterator[Endpoint]:
    yield Endpoint(upstream.base_url, upstream.api_key)


# --------------------------------------------------------------------------------------------------- portkey


def _demo() -> ModuleType:
    """scripts/gateway_demo.py (``make gateway-demo``), loaded as it is: its install and process helpers."""
    spec = importlib.util.spec_from_file_location("gateway_demo", REPO / "scripts" / "gateway_demo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _portkey_install(home: Path) -> None:
    demo = _demo()
    try:
        demo.install(home)
    except demo.DemoError as exc:
        raise ProductError(str(exc)) from None


def _portkey_version(home: Path) -> str | None:
    """The gateway's version, and that of the @hono/node-server it runs on (the demo's one override)."""
    version = _demo().installed_version(home)
    server = _npm_version(home, "@hono/node-server")
    return None if version is None else f"{version} (@hono/node-server {server})"


def _npm_version(home: Path, package: str) -> str | None:
    try:
        manifest = home / "node_modules" / package / "package.json"
        return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


@contextmanager
def _portkey(home: Path, upstream: Upstream, log: Path) -> Iterator[Endpoint]:
    demo = _demo()
    try:
        with demo.gateway(demo.entry_point(home), log, STARTUP_TIMEOUT) as url:
            headers = (f"{demo.PROVIDER_HEADER}: openai", f"{demo.CUSTOM_HOST_HEADER}: {upstream.base_url}")
            yield Endpoint(url, upstream.api_key, headers)
    except demo.DemoError as exc:
        raise ProductError(str(exc)) from None


# --------------------------------------------------------------------------------------------------- litellm

LITELLM = RECIPES / "litellm"


def _venv_python(home: Path) -> Path:
    return home / "venv" / "bin" / "python"


def _litellm_install(home: Path) -> None:
    """A venv of its own under ``home`` with exactly recipes/litellm/requirements.txt (all pins, no resolution)."""
    wanted = (LITELLM / "requirements.txt").read_bytes()
    stamp = home / "installed-requirements.txt"
    if stamp.is_file() and stamp.read_bytes() == wanted and _litellm_version(home):
        return
    stamp.unlink(missing_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    if not _venv_python(home).is_file():
        _run([sys.executable, "-m", "venv", str(home / "venv")], home, "creating the LiteLLM venv")
    print(f"matrix: installing recipes/litellm/requirements.txt into {home}/venv (pip)", flush=True)
    pip = [str(_venv_python(home)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, "--no-deps", "-r", str(LITELLM / "requirements.txt")], home, "pip install of LiteLLM")
    stamp.write_bytes(wanted)


def _litellm_version(home: Path) -> str | None:
    found = sorted((home / "venv" / "lib").glob("python*/site-packages/litellm-*.dist-info"))
    return found[0].name.removeprefix("litellm-").removesuffix(".dist-info") if found else None


# LiteLLM's own switches for working offline: the bundled model cost map instead of fetching it, no telemetry,
# no update or model-info fetch; no database (no DATABASE_URL), so no Prisma engine download either.
LITELLM_OFFLINE = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
    "LITELLM_LOG": "ERROR",
    "DISABLE_SCHEMA_UPDATE": "True",
    "NO_DOCS": "True",
    "DISABLE_ADMIN_UI": "True",
    "HF_HUB_OFFLINE": "1",
    "TIKTOKEN_CACHE_DIR": "",
}


@contextmanager
def _litellm(home: Path, upstream: Upstream, log: Path) -> Iterator[Endpoint]:
    """``litellm --config`` (no models) with the pass-through ``/openai/{path}`` to the reference server."""
    port = free_port()
    master_key = f"sk-matrix-{secrets.token_hex(8)}"
    config = home / "config.yaml"
    config.write_text((LITELLM / "config.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    base = upstream.base_url.removesuffix("/v1")
    env = clean_env(
        {
            **LITELLM_OFFLINE,
            "LITELLM_MASTER_KEY": master_key,
            "OPENAI_API_BASE": base,
            "OPENAI_API_KEY": upstream.api_key,
            "NO_PROXY": "*",
        }
    )
    litellm = home / "venv" / "bin" / "litellm"
    command = [str(litellm), "--host", "127.0.0.1", "--port", str(port), "--config", str(config), "--num_workers", "1"]
    ready = f"http://127.0.0.1:{port}/health/liveliness"
    with serving(command, cwd=home, env=env, port=port, ready=ready, log=log, name="the LiteLLM proxy"):
        yield Endpoint(f"http://127.0.0.1:{port}/openai/v1", master_key)


# ----------------------------------------------------------------------------------------------------- prism

PRISM = RECIPES / "prism"
PRISM_PACKAGE = "@stoplight/prism-cli"


def _prism_install(home: Path) -> None:
    """``npm ci`` of recipes/prism (package.json + lock) into ``home``, unless it already holds that lock."""
    lock = (PRISM / "package-lock.json").read_bytes()
    installed = home / "package-lock.json"
    if installed.is_file() and installed.read_bytes() == lock and _prism_version(home) == _prism_pinned():
        return
    npm = _tool("npm")
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PRISM / "package.json", home / "package.json")
    shutil.copyfile(PRISM / "package-lock.json", installed)
    print(f"matrix: installing {PRISM_PACKAGE}@{_prism_pinned()} into {home} (npm ci)", flush=True)
    try:
        _run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], home, "npm ci of Prism")
    except ProductError:
        installed.unlink(missing_ok=True)
        raise


def _prism_pinned() -> str:
    return str(json.loads((PRISM / "package.json").read_text(encoding="utf-8"))["dependencies"][PRISM_PACKAGE])


def _prism_version(home: Path) -> str | None:
    return _npm_version(home, PRISM_PACKAGE)


def write_spec(path: Path) -> Path:
    """The vendored spec with the overlay applied (every operation the suite calls), as JSON for Prism."""
    from modmsg.spec import load_overlaid

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(load_overlaid(), indent=1), encoding="utf-8")
    return path


def _prism_command(home: Path, mode: Sequence[str], port: int) -> list[str]:
    entry = home / "node_modules" / PRISM_PACKAGE / "dist" / "index.js"
    return [_tool("node"), str(entry), *mode, "--host", "127.0.0.1", "--port", str(port), "-v", "warn"]


@contextmanager
def _prism_proxy(home: Path, upstream: Upstream, log: Path) -> Iterator[Endpoint]:
    """``prism proxy --errors``: validates each request and response against the spec, forwards to the upstream."""
    port = free_port()
    spec = write_spec(home / "spec.json")
    command = _prism_command(home, ["proxy", str(spec), upstream.base_url, "--errors"], port)
    env = clean_env({})
    with serving(command, cwd=home, env=env, port=port, ready=f"http://127.0.0.1:{port}/", log=log, name="Prism"):
        yield Endpoint(f"http://127.0.0.1:{port}", upstream.api_key)


@contextmanager
def _prism_mock(home: Path, upstream: Upstream, log: Path) -> Iterator[Endpoint]:
    """``prism mock`` (static examples): answers from the spec alone; the upstream is not used."""
    port = free_port()
    spec = write_spec(home / "spec.json")
    command = _prism_command(home, ["mock", str(spec)], port)
    env = clean_env({})
    with serving(command, cwd=home, env=env, port=port, ready=f"http://127.0.0.1:{port}/", log=log, name="Prism"):
        yield Endpoint(f"http://127.0.0.1:{port}", upstream.api_key)


PRODUCTS: tuple[Product, ...] = (
    Product("reference", "reference server (control)", "modmsg", "requirements.md", _no_install,
            _reference_version, _reference),
    Product("portkey", "Portkey gateway", "@portkey-ai/gateway", "recipes/gateway-portkey.md", _portkey_install,
            _portkey_version, _portkey),
    Product("litellm", "LiteLLM proxy (pass-through /openai)", "litellm[proxy]", "recipes/gateway-litellm.md",
            _litellm_install, _litellm_version, _litellm),
    Product("prism-proxy", "Prism validating proxy", PRISM_PACKAGE, "recipes/prism.md", _prism_install,
            _prism_version, _prism_proxy, "prism"),
    Product("prism-mock", "Prism mock (spec only)", PRISM_PACKAGE, "recipes/prism.md", _prism_install,
            _prism_version, _prism_mock, "prism"),
)  # fmt: skip


def product(name: str) -> Product:
    """The product called ``name``; KeyError naming the known ones otherwise."""
    for candidate in PRODUCTS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"unknown product '{name}'; known: {', '.join(p.name for p in PRODUCTS)}")
