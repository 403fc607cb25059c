"""``make gateway-demo``: the conformance suite through the Portkey open-source gateway, all on loopback.

    pytest suites --> Portkey gateway (node, 127.0.0.1:G) --> reference server (in this process, 127.0.0.1:R)

1. Installs the gateway pinned in ``recipes/portkey/`` (package.json + package-lock.json) into ``.gateway/`` with
   ``npm ci --ignore-scripts`` (skipped when ``.gateway/`` already holds exactly that lock).
2. Starts the reference server on a free loopback port, and the gateway on another with
   ``node --require recipes/portkey/loopback.cjs .../build/start-server.js --port=G --headless`` (the gateway has
   no host option; the preload makes it bind 127.0.0.1, and the demo refuses to go on if it listens elsewhere).
3. Runs ``python -m pytest suites --base-url http://127.0.0.1:G/v1`` with the headers ``x-portkey-provider: openai``
   and ``x-portkey-custom-host: http://127.0.0.1:R/v1`` (always both), reports in ``reports/gateway/``. Any
   further arguments go to pytest (``make gateway-demo ARGS="--req MM-REQ --max-examples 20"``); everything not
   set here comes from the environment and modmsg.toml like in any run.
4. Prints every requirement's state, stops both servers (also on Ctrl-C or an error).

Exit status: 0 when the suite ran through the gateway and wrote its reports, whatever the gateway's conformance
(that is the finding, in the reports); 2 when the demo itself broke (no node/npm, install failed, a server did
not start, the suite could not run); 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modmsg.reference import start_server
from modmsg.report import ARTEFACTS

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes" / "portkey"
PACKAGE = "@portkey-ai/gateway"
PROVIDER_HEADER = "x-portkey-provider"
CUSTOM_HOST_HEADER = "x-portkey-custom-host"
INSTALL_TIMEOUT = 600.0
STOP_TIMEOUT = 5.0
EXIT_OK, EXIT_BROKEN, EXIT_INTERRUPTED = 0, 2, 130


class DemoError(Exception):
    """The demo itself broke (not the gateway's conformance): one sentence, exit 2."""


def pinned_version() -> str:
    """The exact gateway version pinned in recipes/portkey/package.json."""
    manifest = json.loads((RECIPE / "package.json").read_text(encoding="utf-8"))
    return str(manifest["dependencies"][PACKAGE])


def entry_point(gateway_dir: Path) -> Path:
    return gateway_dir / "node_modules" / PACKAGE / "build" / "start-server.js"


def installed_version(gateway_dir: Path) -> str | None:
    manifest = gateway_dir / "node_modules" / PACKAGE / "package.json"
    try:
        return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DemoError(f"`{name}` is not on PATH; the gateway demo needs Node.js 18+ and npm")
    return path


def install(gateway_dir: Path) -> Path:
    """``npm ci`` the pinned gateway into ``gateway_dir`` unless it already holds exactly the committed lock."""
    lock = (RECIPE / "package-lock.json").read_bytes()
    installed_lock = gateway_dir / "package-lock.json"
    current = installed_lock.is_file() and installed_lock.read_bytes() == lock
    if current and entry_point(gateway_dir).is_file() and installed_version(gateway_dir) == pinned_version():
        return entry_point(gateway_dir)
    npm = _tool("npm")
    gateway_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RECIPE / "package.json", gateway_dir / "package.json")
    shutil.copyfile(RECIPE / "package-lock.json", installed_lock)
    print(f"gateway-demo: installing {PACKAGE}@{pinned_version()} into {_show(gateway_dir)} (npm ci)", flush=True)
    command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        done = subprocess.run(
            command, cwd=gateway_dir, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise DemoError(f"npm ci did not finish within {INSTALL_TIMEOUT:.0f} s (npm registry unreachable?)") from None
    if done.returncode != 0:
        installed_lock.unlink(missing_ok=True)  # never mistake a half install for a good one next time
        raise DemoError(f"npm ci failed (exit {done.returncode}): {_last_line(done.stderr or done.stdout)}")
    if installed_version(gateway_dir) != pinned_version():
        raise DemoError(f"npm ci installed {PACKAGE} {installed_version(gateway_dir)}, not {pinned_version()}")
    return entry_point(gateway_dir)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gateway(entry: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the gateway in its own session (so a terminal Ctrl-C reaches only us; we stop it)."""
    node = _tool("node")
    command = [node, "--require", str(RECIPE / "loopback.cjs"), str(entry), f"--port={port}", "--headless"]
    # No proxy settings (the gateway would send its upstream calls through them) and no TRUSTED_CUSTOM_HOSTS (it
    # would replace the default trust in 127.0.0.1 that lets x-portkey-custom-host point at the reference server).
    dropped = {"http_proxy", "https_proxy", "all_proxy", "trusted_custom_hosts"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in dropped}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command,
            cwd=entry.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_ready(process: subprocess.Popen[bytes], url: str, timeout: float, log_path: Path) -> None:
    """Poll ``GET url`` (the gateway answers 200 "AI Gateway says hey!") until it answers, for at most ``timeout``."""
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    while True:
        if process.poll() is not None:
            raise DemoError(f"the gateway exited with {process.returncode} during startup: {_tail(log_path)}")
        try:
            with opener.open(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise DemoError(f"the gateway did not answer {url} within {timeout:g} s: {_tail(log_path)}")
        time.sleep(0.2)


def non_loopback_listeners(port: int) -> list[str] | None:
    """Local addresses listening on ``port`` that are not loopback (Linux /proc); None when it cannot tell."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not any(t.is_file() for t in tables):
        return None
    loopback = {"0100007F", "00000000000000000000000001000000"}
    found: list[str] = []
    for table in tables:
        if not table.is_file():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port and address not in loopback:  # 0A: LISTEN
                found.append(address)
    return found


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the gateway's process group, SIGKILL it after a bounded wait."""
    if process.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def gateway(entry: Path, log_path: Path, startup_timeout: float) -> Iterator[str]:
    """Yield the gateway's base URL; it always stops on the way out."""
    port = free_port()
    process = start_gateway(entry, port, log_path)
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}/", startup_timeout, log_path)
        exposed = non_loopback_listeners(port)
        if exposed:
            raise DemoError(f"the gateway listens on non-loopback addresses {exposed} despite loopback.cjs")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(process)


def suite_command(gateway_url: str, upstream_url: str, report_dir: Path, extra: Sequence[str]) -> list[str]:
    """The pytest command line the demo runs: both Portkey headers, always."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "suites",
        "--base-url",
        gateway_url,
        "--header",
        f"{PROVIDER_HEADER}: openai",
        "--header",
        f"{CUSTOM_HOST_HEADER}: {upstream_url}",
        "--report-dir",
        str(report_dir),
        "-q",
        "-p",
        "no:cacheprovider",
        *extra,
    ]


def run_suite(command: Sequence[str], api_key: str, report_dir: Path) -> dict[str, Any]:
    """Run the suite; return its results.json, or raise DemoError if the run did not judge the gateway."""
    results_path = report_dir / "results.json"
    results_path.unlink(missing_ok=True)
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    env = {**os.environ, "MODMSG_API_KEY": api_key, "NO_PROXY": no_proxy, "no_proxy": no_proxy}
    env.pop("MODMSG_BASE_URL", None)  # --base-url wins anyway; keep the demo's target unambiguous
    print("gateway-demo: python " + " ".join(_quote(c) for c in command[1:]), flush=True)
    code = subprocess.run(command, cwd=REPO, env=env, check=False).returncode
    if code not in (0, 1):
        raise DemoError(f"the suite did not run through the gateway (pytest exit {code}); see its output above")
    try:
        return json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DemoError(f"the suite wrote no usable {results_path}: {exc}") from None


def summary_lines(results: dict[str, Any]) -> list[str]:
    """One line per requirement (state, id, level, title) and, for FAIL/ERROR, what the gateway answered."""
    lines = []
    for requirement in results["requirements"]:
        outcome = requirement["outcome"]
        lines.append(f"{outcome:<6} {requirement['id']:<11} {requirement['level']:<6} {requirement['title']}")
        if outcome in ("FAIL", "ERROR"):
            lines.append(f"{'':<7}{_evidence(requirement)}")
    counts = ", ".join(f"{n} {state}" for state, n in results["counts"].items() if n)
    lines.append(f"{counts}; claim: {results['claim']['text']}")
    return lines


def _evidence(requirement: dict[str, Any]) -> str:
    for test in requirement.get("tests", []):
        failure = test.get("failure")
        if test.get("outcome") in ("FAIL", "ERROR") and failure:
            text = f"expected {failure.get('expected')}; got {failure.get('received')}"
            return _one_line(text, 200)
        if test.get("outcome") in ("FAIL", "ERROR") and test.get("reason"):
            return _one_line(test["reason"], 200)
    return _one_line(requirement.get("reason") or "", 200)


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return _one_line(lines[-1], 300) if lines else "no output"


def _tail(log_path: Path) -> str:
    try:
        return _last_line(log_path.read_text(encoding="utf-8", errors="replace")) + f" (log: {_show(log_path)})"
    except OSError:
        return f"no log at {_show(log_path)}"


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in " \"'") else arg


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway_demo.py",
        description="Run the modmsg suite through the pinned Portkey gateway in front of the reference server.",
        epilog="Arguments it does not know go to pytest, e.g. --req MM-REQ --max-examples 20. "
        "Exit 0: the suite ran (the gateway's conformance is in the reports); 2: the demo broke; 130: interrupted.",
    )
    parser.add_argument("--report-dir", type=Path, default=REPO / "reports" / "gateway", help="default reports/gateway")
    parser.add_argument(
        "--gateway-dir", type=Path, default=REPO / ".gateway", help="where the gateway is installed (default .gateway)"
    )
    parser.add_argument(
        "--no-install", action="store_true", help="use the gateway already in --gateway-dir as it is (no npm ci)"
    )
    parser.add_argument("--startup-timeout", type=float, default=60.0, metavar="SECONDS")
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (a cancelled CI job) cleans up like Ctrl-C


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = _parser().parse_known_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    report_dir = args.report_dir.resolve()
    gateway_dir = args.gateway_dir.resolve()
    try:
        entry = entry_point(gateway_dir) if args.no_install else install(gateway_dir)
        if not entry.is_file():
            raise DemoError(f"no gateway at {entry}; run without --no-install")
        version = installed_version(gateway_dir)
        api_key = f"sk-modmsg-gateway-{secrets.token_hex(8)}"
        with start_server(api_key=api_key, host="127.0.0.1", port=0) as upstream:
            log_path = gateway_dir / "gateway.log"
            with gateway(entry, log_path, args.startup_timeout) as gateway_url:
                print(f"gateway-demo: {PACKAGE} {version} on {gateway_url} (log: {_show(log_path)})", flush=True)
                print(f"gateway-demo: reference server on {upstream.base_url}", flush=True)
                command = suite_command(gateway_url, upstream.base_url, report_dir, extra)
                results = run_suite(command, api_key, report_dir)
    except DemoError as exc:
        print(f"gateway-demo: {exc}", file=sys.stderr)
        return EXIT_BROKEN
    except RuntimeError as exc:  # the reference server could not start
        print(f"gateway-demo: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_BROKEN
    except KeyboardInterrupt:
        print("gateway-demo: interrupted; both servers stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"\n{PACKAGE} {version} in front of the modmsg reference server:")
    for line in summary_lines(results):
        print(line)
    print(f"reports: {_show(report_dir)}/ ({', '.join(ARTEFACTS)})")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
