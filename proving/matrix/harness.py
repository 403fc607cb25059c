"""Run the suite through one product in front of a fresh reference server, and keep the run as a ``Run``.

    pytest suites --base-url <product> --seed S --max-examples N  -->  product (127.0.0.1:P)  -->  reference (:R)

When the installed suite has ``--upstream-url`` (issue 15, part 1), the run also passes it, pointed at the same
reference server, and each requirement's ``attribution`` comes from results.json; otherwise
``cells.attribute`` computes it against the control column when the matrix is built.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modmsg.reference import start_server
from proving.matrix.cells import Alignment, Run, rows_from_results, run_from_json, run_to_json
from proving.matrix.products import REPO, Product, ProductError, Upstream

UPSTREAM_KEY_ENV = "MODMSG_MATRIX_UPSTREAM_KEY"
SUITE_PATHS = ("modmsg", "suites", "spec", "pyproject.toml")
SUITE_TIMEOUT = 3600.0
# The same for every product: a request a product never answers costs 5 s, not 30, and never stops the run
# early (Prism's proxy leaves malformed JSON unanswered; the suite would otherwise stop after five in a row).
REQUEST_TIMEOUT = 5.0
MAX_TRANSPORT_FAILURES = 0
WATCH_INTERVAL = 0.1
SOCKET_TABLES = ("tcp", "tcp6", "udp", "udp6")


@dataclass(frozen=True)
class Settings:
    """What every run of one matrix shares."""

    seed: int
    max_examples: int
    profile: str
    suite_commit: str
    isolation: str
    upstream_url: bool  # the installed suite supports --upstream-url
    extra: tuple[str, ...] = ()  # further pytest arguments (e.g. a selection), the same for every product
    watch: bool = False  # sample the socket tables for outbound addresses (only meaningful in a namespace of its own)

    @property
    def alignment(self) -> Alignment:
        return Alignment(self.suite_commit, self.seed, self.max_examples, self.profile)


def suite_commit(repo: Path = REPO) -> str:
    """The last commit that changed the suite (modmsg/, suites/, spec/, pyproject.toml), "+dirty" with local edits."""
    try:
        commit = _git(repo, "log", "-1", "--format=%H", "--", *SUITE_PATHS)
        dirty = _git(repo, "status", "--porcelain", "--untracked-files=no", "--", *SUITE_PATHS)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else (commit or "unknown")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


def supports_upstream_url() -> bool:
    """Whether the installed suite has ``--upstream-url`` (part 1 of issue 15): asked of pytest's own --help."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites", "--help", "-p", "no:cacheprovider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return "--upstream-url" in done.stdout


def suite_command(
    endpoint_url: str, headers: Sequence[str], upstream_url: str | None, report_dir: Path, settings: Settings
) -> list[str]:
    """The pytest command line of one cell column: the same seed, examples and profile for every product."""
    command = [sys.executable, "-m", "pytest", "suites", "--base-url", endpoint_url]
    for header in headers:
        command += ["--header", header]
    if upstream_url is not None:
        command += ["--upstream-url", upstream_url, "--upstream-api-key-env", UPSTREAM_KEY_ENV]
    command += ["--seed", str(settings.seed), "--max-examples", str(settings.max_examples)]
    command += ["--request-timeout", f"{REQUEST_TIMEOUT:g}", "--max-transport-failures", str(MAX_TRANSPORT_FAILURES)]
    command += ["--profile", settings.profile, "--report-dir", str(report_dir), "-q", "-p", "no:cacheprovider"]
    return [*command, *settings.extra]


def run_product(product: Product, home: Path, report_dir: Path, settings: Settings) -> Run:
    """Start a reference server and ``product`` in front of it, run the suite, return the run (never raises
    ProductError for a product that installed but would not start or be judged: that is recorded)."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    version = product.version(home) or "not installed"
    api_key = f"sk-matrix-{secrets.token_hex(8)}"
    blank = Run(
        product.name, product.title, version, settings.alignment, started, settings.isolation, watched=settings.watch
    )
    contacts: set[str] = set()
    try:
        with (
            watching(contacts, enabled=settings.watch),
            start_server(api_key=api_key, host="127.0.0.1", port=0) as upstream_server,
        ):
            upstream = Upstream(upstream_server.base_url, api_key)
            with product.start(home, upstream, home / f"{product.name}.log") as endpoint:
                use_upstream = settings.upstream_url and product.name != "reference"
                command = suite_command(
                    endpoint.base_url, endpoint.headers, upstream.base_url if use_upstream else None, report_dir,
                    settings,
                )  # fmt: skip
                results, refusal = _run_suite(
                    command, endpoint.api_key, api_key, report_dir, home / f"{product.name}.suite.log"
                )
    except ProductError as exc:
        return replace(blank, contacts=tuple(sorted(contacts)), not_judged=str(exc))
    blank = replace(blank, contacts=tuple(sorted(contacts)))
    if results is None:
        return replace(blank, not_judged=refusal)
    return replace(
        blank,
        rows=rows_from_results(results),
        upstream_url_used=bool(settings.upstream_url and product.name != "reference"),
        claim=str(results.get("claim", {}).get("text", "")),
        note=refusal,
        counts={k: int(v) for k, v in results.get("counts", {}).items()},
    )


def _run_suite(
    command: Sequence[str], api_key: str, upstream_key: str, report_dir: Path, log: Path
) -> tuple[dict[str, Any] | None, str]:
    """Run pytest; (results.json, "") when it judged the target, (None, the sentence why not) otherwise."""
    results_path = report_dir / "results.json"
    results_path.unlink(missing_ok=True)
    no_proxy = "127.0.0.1,localhost"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}
    env.update(MODMSG_API_KEY=api_key, NO_PROXY=no_proxy, no_proxy=no_proxy)
    env[UPSTREAM_KEY_ENV] = upstream_key
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        try:
            code = subprocess.run(
                list(command), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=SUITE_TIMEOUT,
                check=False,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            return None, f"the suite did not finish within {SUITE_TIMEOUT:.0f} s"
    if code in (0, 1) or (code == 2 and results_path.is_file()):  # 2 with results: it stopped early, say why
        try:
            return json.loads(results_path.read_text(encoding="utf-8")), "" if code != 2 else _refusal(log, code)
        except (OSError, ValueError) as exc:
            return None, f"the suite wrote no usable results.json: {exc}"
    return None, _refusal(log, code)


def _refusal(log: Path, code: int) -> str:
    """The suite's own one-sentence reason for not judging the target (exit 2), from its output."""
    lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    reasons = [line for line in lines if line.lower().startswith(("modmsg:", "error:")) or "cannot" in line.lower()]
    text = (reasons or lines or ["no output"])[-1]
    return f"the suite stopped with exit {code}: {' '.join(text.split())[:400]}"


# ------------------------------------------------------------------------------------------ outbound watch


def remote_addresses(proc_net: Path = Path("/proc/net")) -> set[str]:
    """Every socket's remote address that is neither loopback nor unset (``1.1.1.1:443/tcp``), from /proc/net."""
    found = set()
    for table in SOCKET_TABLES:
        try:
            lines = (proc_net / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 2:
                address = _decode(fields[2])
                if address is not None:
                    found.add(f"{address}/{table.rstrip('6')}")
    return found


def _decode(hex_address: str) -> str | None:
    """``0101A8C0:01BB`` -> ``192.168.1.1:443``; None for loopback, the unspecified address or garbage."""
    host, _, port = hex_address.partition(":")
    try:
        raw = bytes.fromhex(host)
        number = int(port, 16)
    except ValueError:
        return None
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word is host-endian
    if len(words) == 16 and words[:12] == bytes(10) + b"\xff\xff":
        words = words[12:]  # IPv4-mapped
    if not any(words) or (len(words) == 4 and words[0] == 127) or words == bytes(15) + b"\x01":
        return None
    if len(words) == 4:
        return f"{'.'.join(str(b) for b in words)}:{number}"
    groups = ":".join(words[i : i + 2].hex() for i in range(0, 16, 2))
    return f"[{groups}]:{number}"


@contextmanager
def watching(seen: set[str], proc_net: Path = Path("/proc/net"), *, enabled: bool = True) -> Iterator[None]:
    """Sample the socket tables every WATCH_INTERVAL while the block runs; add every outbound address to ``seen``.

    Only meaningful in a network namespace of the run's own: on the host network the tables hold every process's
    sockets, so the matrix does not watch there (``enabled=False``) and says so.
    """
    if not enabled:
        yield
        return
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.update(remote_addresses(proc_net))
            stop.wait(WATCH_INTERVAL)

    thread = threading.Thread(target=sample, name="matrix-netwatch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        seen.update(remote_addresses(proc_net))


# ------------------------------------------------------------------------------------------------ the store


def save(run: Run, runs_dir: Path) -> Path:
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = runs_dir / f"{run.product}.json"
    path.write_text(json.dumps(run_to_json(run), indent=1) + "\n", encoding="utf-8")
    return path


def load(runs_dir: Path) -> list[Run]:
    """Every stored run; ValueError (one sentence) for a file that is not one."""
    runs = []
    for path in sorted(runs_dir.glob("*.json")):
        try:
            runs.append(run_from_json(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a matrix run ({exc.__class__.__name__}: {exc})") from None
    return runs
