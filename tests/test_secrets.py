"""No secret reaches any artefact, log line or failure message: a full run with a distinctive key proves it."""

from __future__ import annotations

from pathlib import Path

from helpers import run_suite

from modmsg.reference import Behaviour, start_server

API_KEY = "sk-modmsg-DISTINCTIVE-8c1e5a7f3b"
SECRET_HEADER_VALUE = "pk-portkey-DISTINCTIVE-42f0"
VENDOR_TOKEN = "vt-vendor-DISTINCTIVE-9d3"


def _leaks(root: Path, output: str) -> list[str]:
    found = [f"stdout/stderr: {s}" for s in (API_KEY, SECRET_HEADER_VALUE, VENDOR_TOKEN) if s in output]
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {s}" for s in (API_KEY, SECRET_HEADER_VALUE, VENDOR_TOKEN) if s.encode() in data]
    return found


def test_a_target_that_echoes_the_key_cannot_leak_it_into_any_artefact(tmp_path):
    """The server puts the full key into its error messages; the suite must FAIL MM-ERR-09 and show it redacted."""
    with start_server(api_key=API_KEY, behaviour=Behaviour(echo_api_key_in_errors=True)) as server:
        done = run_suite(
            tmp_path,
            "--base-url",
            server.base_url,
            "--header",
            f"x-portkey-api-key: {SECRET_HEADER_VALUE}",
            "--header",
            f"x-vendor-token: {VENDOR_TOKEN}",
            "--secret-header",
            "x-vendor-token",
            "--req",
            "MM-ERR",
            "--req",
            "MM-META-06",
            "--req",
            "MM-RESP",
            env={"MODMSG_API_KEY": API_KEY},
        )
    assert done.exit_code == 1, done.output
    assert done.outcomes()["MM-ERR-09"] == "FAIL"
    assert {p.name for p in tmp_path.iterdir()} >= {
        "results.json",
        "junit.xml",
        "summary.md",
        "report.html",
        "badge.svg",
    }
    assert _leaks(tmp_path, done.output) == []
    assert "[REDACTED]" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_a_passing_run_on_the_reference_server_leaks_nothing(tmp_path):
    with start_server(api_key=API_KEY) as server:
        done = run_suite(
            tmp_path,
            "--base-url",
            server.base_url,
            "--header",
            f"x-portkey-api-key: {SECRET_HEADER_VALUE}",
            "--req",
            "MM-REQ",
            "--req",
            "MM-META-01",
            env={"MODMSG_API_KEY": API_KEY},
        )
    assert done.exit_code == 0, done.output
    assert _leaks(tmp_path, done.output) == []
