"""A wheel of the project is a working conformance suite on its own: spec/, suites/ and the results schema ride
along as ``modmsg.bundled`` (pyproject.toml), so ``pip install`` + ``modmsg run`` works outside a checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import REPO


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MODMSG_", "PYTHONPATH"))}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def test_the_wheel_runs_the_suite_from_anywhere(tmp_path: Path) -> None:
    source, dist, site, elsewhere = (tmp_path / name for name in ("source", "dist", "site", "elsewhere"))
    elsewhere.mkdir()
    # pip builds in the source tree (build/, *.egg-info): build from a copy, so the checkout stays as it was.
    junk = shutil.ignore_patterns(".git", ".venv", "build", "dist", "reports", "*.egg-info", "__pycache__", ".gateway")
    shutil.copytree(REPO, source, ignore=junk)
    built = _run("-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(dist), cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(dist.glob("modmsg-*.whl"))
    installed = _run("-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel), cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]

    env = {"PYTHONPATH": str(site)}  # ahead of the checkout's editable install
    where = _run("-c", "from modmsg import paths; print(paths.spec_dir()); print(paths.suites_dir())", cwd=elsewhere,
                 env=env)  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert all(Path(line).is_relative_to(site) for line in where.stdout.split()), where.stdout

    done = _run("-m", "modmsg.cli", "run", "--max-examples", "2", "--report-dir", "reports", cwd=elsewhere, env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    for name in ("results.json", "report.html", "junit.xml", "summary.md", "badge.svg"):
        assert (elsewhere / "reports" / name).is_file(), name
    # The claim bundle of a wheel's run: no git checkout to name a commit (null, never the enclosing repo's), and
    # it verifies with the wheel's own `modmsg verify`.
    claim = json.loads((elsewhere / "reports" / "claim.json").read_text(encoding="utf-8"))
    assert claim["predicate"]["modmsg"]["suite"]["commit"] is None
    verified = _run("-m", "modmsg.cli", "verify", "reports", cwd=elsewhere, env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
