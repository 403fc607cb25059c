"""report.html as a real browser renders it: headless Chromium loads it without console errors, shows the
claim, prints with every section expanded, and produces the screenshot in docs/.

Skipped when no Chromium is installed (Debian: ``apt-get install chromium``; or set MODMSG_CHROMIUM).
``MODMSG_UPDATE_SCREENSHOT=1`` also rewrites docs/report-screenshot.png from the sample run below.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import pytest

from modmsg.evidence import Exchange
from modmsg.paths import REPO_DIR
from modmsg.report import write_reports
from modmsg.report.browser import dump_dom, find_chromium, render_pdf, render_screenshot
from modmsg.requirements import load_catalogue
from modmsg.results import Outcome, RunMeta, RunResult
from modmsg.results import TestRecord as Record  # aliased so pytest does not try to collect it
from modmsg.rollup import rollup

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no chromium binary (apt-get install chromium, or set MODMSG_CHROMIUM): rendering not checked",
)

SCREENSHOT = REPO_DIR / "docs" / "report-screenshot.png"
URL = "http://127.0.0.1:8080/v1/threads/thread_abc123/messages/msg_abc123"


def _exchange(status: int, response: str, request: str, headers: tuple[tuple[str, str], ...] = ()) -> dict:
    return Exchange(
        method="POST",
        url=URL,
        request_headers=(
            ("Authorization", "[REDACTED]"),
            ("OpenAI-Beta", "assistants=v2"),
            ("Content-Type", "application/json"),
        ),
        request_body=request,
        status=status,
        response_headers=(("content-type", "application/json"), *headers),
        response_body=response,
        response_size=len(response.encode("utf-8", "replace")),
        elapsed=0.0184,
    ).as_dict()


def sample_run(*, hostile: bool = False) -> RunResult:
    """A plausible failing run: 17 metadata keys accepted (MUST), no x-request-id (SHOULD), one waiver."""
    catalogue = load_catalogue()
    seventeen = "{" + ", ".join(f'"k{i}": "v"' for i in range(17)) + "}"
    ok = (
        '{"id": "msg_abc123", "object": "thread.message", "created_at": 1767225600, '
        '"thread_id": "thread_abc123", "metadata": {"colour": "blue"}}'
    )
    accepted = ok.replace('{"colour": "blue"}', seventeen)
    if hostile:
        accepted = "<script>alert(1)</script></textarea>\x1b[31m\udcff" + "z" * 50_000
    failures = {
        "MM-META-06": Record(
            "suites/test_metadata.py::test_17_keys_are_rejected_with_400",
            ("MM-META-06",),
            Outcome.FAIL,
            failed_req="MM-META-06",
            duration=0.21,
            failure={
                "req": "MM-META-06",
                "title": "Unexpected HTTP status",
                "expected": "400 (invalid_request_error)",
                "received": "200",
                "detail": "metadata with 17 keys was accepted and stored",
            },
            evidence=(_exchange(200, accepted, f'{{"metadata": {seventeen}}}'),),
        ),
        "MM-HDR-03": Record(
            "suites/test_headers.py::test_x_request_id_is_present",
            ("MM-HDR-03",),
            Outcome.FAIL,
            failed_req="MM-HDR-03",
            duration=0.05,
            failure={
                "req": "MM-HDR-03",
                "title": "Header missing",
                "expected": "an x-request-id header",
                "received": "no x-request-id",
                "detail": "",
            },
            evidence=(_exchange(200, ok, '{"metadata": {"colour": "blue"}}'),),
        ),
    }
    records = []
    for requirement in catalogue.for_profile("openai"):
        if requirement.conditional:
            continue  # never triggered: SKIP, as in a real run against a target that never answered 429
        records.append(
            failures.get(requirement.id)
            or Record(
                f"suites/test_{requirement.area.lower()}.py::test_{requirement.id.lower().replace('-', '_')}",
                (requirement.id,),
                Outcome.PASS,
                duration=0.04,
                evidence=(_exchange(200, ok, '{"metadata": {"colour": "blue"}}', (("x-request-id", "req_1"),)),),
            )
        )
    meta = RunMeta(
        suite_version="0.1.0",
        spec_version="2.3.0",
        spec_commit="0" * 40,
        spec_sha256="0" * 64,
        profile="openai",
        product="Acme Gateway",
        target="http://127.0.0.1:8080/v1",
        seed=20260101,
        max_examples=50,
        started="2026-01-01T12:00:00+00:00",
        finished="2026-01-01T12:01:12+00:00",
        duration=72.4,
    )
    return rollup(
        catalogue,
        records,
        profile_name="openai",
        profile_base="openai",
        waivers={"MM-ERR-07": "our error codes predate the OpenAI set; tracked as VENDOR-123"},
        meta=meta,
    )


@pytest.fixture
def report(tmp_path: Path) -> tuple[RunResult, Path]:
    run = sample_run(hostile=True)
    write_reports(run, tmp_path)
    return run, tmp_path / "report.html"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _pages(pdf: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf.read_bytes()))


def test_chromium_renders_the_claim_without_console_errors(report: tuple[RunResult, Path]) -> None:
    run, html = report
    page = dump_dom(html)
    assert page.console == ()
    assert run.claim.text in page.dom
    assert "Claim: NOT CONFORMANT" in page.dom
    assert "<script" not in page.dom.lower()  # the target's script stayed text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.dom
    for result in run.requirements:
        assert f'id="req-{result.id}"' in page.dom


def test_console_check_is_not_vacuous(tmp_path: Path) -> None:
    noisy = tmp_path / "noisy.html"
    script = '<script>console.error("boom"); nope();</script>'
    noisy.write_text(f'<!DOCTYPE html><html lang="en"><body>{script}</body></html>', encoding="utf-8")
    console = dump_dom(noisy).console
    assert any("boom" in line for line in console) and any("Uncaught" in line for line in console)


def test_print_expands_collapsed_sections(tmp_path: Path, report: tuple[RunResult, Path]) -> None:
    _, html = report
    collapsed = tmp_path / "collapsed.html"
    source = html.read_text(encoding="utf-8")
    assert "details::details-content" in source
    without_print_rule = source.replace("details::details-content", "details::x-not-a-thing")
    collapsed.write_text(without_print_rule, encoding="utf-8")
    expanded_pages = _pages(render_pdf(html, tmp_path / "expanded.pdf"))
    collapsed_pages = _pages(render_pdf(collapsed, tmp_path / "collapsed.pdf"))
    assert expanded_pages > collapsed_pages >= 1


def test_screenshot(tmp_path: Path) -> None:
    run = sample_run()
    write_reports(run, tmp_path)
    png = render_screenshot(tmp_path / "report.html", tmp_path / "shot.png")
    assert _png_size(png) == (1280, 2000)
    assert png.stat().st_size > 20_000  # a rendered page, not a blank canvas
    if os.environ.get("MODMSG_UPDATE_SCREENSHOT") == "1":
        render_screenshot(tmp_path / "report.html", SCREENSHOT)
        assert _png_size(SCREENSHOT) == (1280, 2000)
