"""Headless Chromium for report.html: a screenshot for the docs, the rendered DOM and console log for tests.

Only the standard library is used; ``find_chromium()`` returns None when no browser is installed (the Debian
package is ``chromium``), and callers decide whether that is a skip or an error.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
)
# Chromium logs page console messages as "...:INFO:CONSOLE:12] "text", source: ..." (older: "CONSOLE(12)").
_CONSOLE = re.compile(r"CONSOLE[(:]\d+|Uncaught|Refused to|Content Security Policy", re.IGNORECASE)


class BrowserError(RuntimeError):
    """Chromium is missing, did not finish in time, or produced no output."""


@dataclass(frozen=True)
class RenderedPage:
    dom: str  # the serialised DOM after loading
    console: tuple[str, ...]  # browser log lines that report page console messages or blocked content


def find_chromium() -> str | None:
    override = os.environ.get("MODMSG_CHROMIUM")
    if override:
        return shutil.which(override) or (override if Path(override).is_file() else None)
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def _run(args: list[str], timeout: float) -> tuple[str, str]:
    binary = find_chromium()
    if binary is None:
        raise BrowserError("no Chromium found (install the Debian package 'chromium' or set MODMSG_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="modmsg-chromium-") as profile:
        command = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the browser's own helper processes share its session
            process.communicate()
            raise BrowserError(f"Chromium did not finish within {timeout:.0f} s") from None
    if process.returncode != 0:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        raise BrowserError(f"Chromium exited with status {process.returncode}: {tail}")
    return stdout, stderr


def render_screenshot(
    html_path: Path, png_path: Path, *, width: int = 1280, height: int = 2000, timeout: float = 90.0
) -> Path:
    """Save a PNG of the top ``width`` x ``height`` pixels of ``html_path`` as Chromium renders it."""
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.unlink(missing_ok=True)
    _run(
        [
            f"--screenshot={png_path.resolve()}",
            f"--window-size={width},{height}",
            html_path.resolve().as_uri(),
        ],
        timeout,
    )
    if not png_path.is_file() or png_path.stat().st_size == 0:
        raise BrowserError(f"Chromium wrote no screenshot to {png_path}")
    return png_path


def render_pdf(html_path: Path, pdf_path: Path, *, timeout: float = 90.0) -> Path:
    """Print ``html_path`` to PDF as a reader's browser would (the print stylesheet expands every section)."""
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    pdf_path.unlink(missing_ok=True)
    _run(
        [f"--print-to-pdf={pdf_path.resolve()}", "--no-pdf-header-footer", html_path.resolve().as_uri()],
        timeout,
    )
    if not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        raise BrowserError(f"Chromium wrote no PDF to {pdf_path}")
    return pdf_path


def dump_dom(html_path: Path, *, timeout: float = 90.0) -> RenderedPage:
    """Load ``html_path`` and return the resulting DOM and any console or security messages."""
    stdout, stderr = _run(["--enable-logging=stderr", "--v=0", "--dump-dom", html_path.resolve().as_uri()], timeout)
    console = tuple(line for line in stderr.splitlines() if _CONSOLE.search(line))
    return RenderedPage(dom=stdout, console=console)


def main() -> None:
    """``python -m modmsg.report.browser REPORT.html OUT.png``: the screenshot for docs/ (a make target)."""
    import sys

    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m modmsg.report.browser REPORT.html OUT.png")
    try:
        print(render_screenshot(Path(sys.argv[1]), Path(sys.argv[2])))
    except BrowserError as exc:
        raise SystemExit(f"modmsg: {exc}") from None


if __name__ == "__main__":
    main()
