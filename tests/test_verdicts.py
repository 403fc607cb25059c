"""Honest verdicts (issue: setup vs finding, stale evidence, the console): a wrong setting is exit 2 with one
sentence and no report; an API with defects is judged; the console counts requirements."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_suite
from starlette.middleware import Middleware

from modmsg.reference import start_server
from modmsg.reference.variants import Reply, RewriteResponses
from modmsg.report import ARTEFACTS

KEY = "sk-modmsg-verdicts-0123456789"


def _html_404(scope, reply: Reply) -> Reply:
    """A framework's default not-found page in front of a correct API."""
    if reply.status != 404:
        return reply
    return reply.with_body(b"<!doctype html><h1>404 Not Found</h1>", content_type=b"text/html; charset=utf-8")


def _publishable(report_dir: Path) -> list[str]:
    return sorted(name for name in ARTEFACTS if (report_dir / name).exists())


def test_api_root_without_v1_is_a_wrong_setting_with_a_hint_and_no_report(tmp_path: Path) -> None:
    with start_server(api_key=KEY) as server:
        root = server.base_url.removesuffix("/v1")
        done = run_suite(tmp_path, "--base-url", root, env={"MODMSG_API_KEY": KEY})
    assert done.exit_code == 2, done.output[-2000:]
    lines = [line for line in done.output.splitlines() if "modmsg:" in line]
    assert len(lines) == 1 and "Traceback" not in done.output, done.output[-2000:]
    assert "no Assistants API answers" in lines[0] and f"did you mean {root}/v1?" in lines[0]
    assert len(done.output.splitlines()) < 10
    assert _publishable(tmp_path) == []


def test_a_failed_start_leaves_no_earlier_green_report_to_publish(tmp_path: Path) -> None:
    green = run_suite(tmp_path, "--req", "MM-RESP-04")
    assert green.exit_code == 0 and _publishable(tmp_path) == sorted(ARTEFACTS)
    (tmp_path / ".modmsg-threads.jsonl").write_text("", encoding="utf-8")  # not an artefact: it stays
    refused = run_suite(tmp_path, "--base-url", "http://127.0.0.1:9/v1", env={"MODMSG_API_KEY": KEY})
    assert refused.exit_code == 2
    assert _publishable(tmp_path) == []
    assert (tmp_path / ".modmsg-threads.jsonl").exists()


def test_an_api_whose_404_pages_are_html_is_judged_not_refused(tmp_path: Path) -> None:
    middleware = (Middleware(RewriteResponses, rewrite=_html_404),)
    with start_server(api_key=KEY, middleware=middleware) as server:
        done = run_suite(
            tmp_path, "--base-url", server.base_url, "--req", "MM-ERR", "--req", "MM-HDR", env={"MODMSG_API_KEY": KEY}
        )
    assert done.exit_code == 1, done.output[-3000:]
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    outcomes = {r["id"]: r["outcome"] for r in results["requirements"]}
    assert outcomes["MM-HDR-02"] == "FAIL"  # error responses must be application/json
    assert outcomes["MM-ERR-01"] == "PASS"  # still a 404, and nothing changed
    assert "ERROR" not in outcomes.values()


def test_the_console_shows_one_line_per_failing_requirement_and_counts_requirements(tmp_path: Path) -> None:
    middleware = (Middleware(RewriteResponses, rewrite=_html_404),)
    with start_server(api_key=KEY, middleware=middleware) as server:
        done = run_suite(tmp_path, "--base-url", server.base_url, "--req", "MM-HDR", env={"MODMSG_API_KEY": KEY})
    lines = done.output.splitlines()
    assert "Traceback" not in done.output and not any(line.startswith("E   ") for line in lines), done.output
    assert not any(line.startswith("FAILED ") for line in lines), done.output  # no per-test short summary
    failing = [line for line in lines if line.startswith("FAIL ")]
    assert len(failing) == 1 and failing[0].startswith("FAIL MM-HDR-02 [MUST]"), done.output
    assert "expected" in failing[0] and "text/html" in failing[0]
    assert any(line.startswith("claim: ") for line in lines)
    assert any(line.startswith("reports: ") for line in lines)
    closing = lines[-1]
    assert "requirements" in closing and "FAIL" in closing and " failed" not in closing, closing


def test_a_waiver_keeps_the_gate_green_but_never_makes_a_claim(tmp_path: Path) -> None:
    overlay = tmp_path / "private" / "acme-deviations.yaml"
    overlay.parent.mkdir()
    overlay.write_text(
        "product: Acme Gateway\nversion: '2.1'\nwaivers:\n  - id: MM-RESP-04\n    reason: tracked as ACME-1\n",
        encoding="utf-8",
    )
    reports = tmp_path / "reports"
    done = run_suite(reports, "--overlay", str(overlay))
    assert done.exit_code == 0, done.output[-3000:]  # the gate stays green: that is what a waiver is for
    results = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    assert results["claim"]["status"] == "waived" and results["claim"]["level"] is None
    assert results["claim"]["text"].startswith("not conformant to the openai profile: 1 requirement waived (1 MUST)")
    assert results["meta"]["product"] == "Acme Gateway" and results["meta"]["product_version"] == "2.1"
    badge = (reports / "badge.svg").read_text(encoding="utf-8")
    assert "not conformant, 1 waived" in badge and "Acme Gateway 2.1" in badge
    assert "#2e8540" not in badge and "#b08800" not in badge  # never the pass colours
    junit = (reports / "junit.xml").read_text(encoding="utf-8")
    assert "not conformant" in junit
    summary = (reports / "summary.md").read_text(encoding="utf-8")
    assert "NOT CONFORMANT: 1 WAIVED" in summary and "Acme Gateway 2.1" in summary
    assert "✔" not in summary.splitlines()[0]
    for name in ARTEFACTS:  # the product's name, never the overlay's local path
        assert "acme-deviations" not in (reports / name).read_text(encoding="utf-8"), name
    assert "claim: not conformant" in done.output


def test_a_skip_reason_stays_a_sentence_when_a_key_is_set(tmp_path: Path) -> None:
    done = run_suite(tmp_path, "--req", "MM-HDR-04", env={"MODMSG_API_KEY": KEY})
    assert done.exit_code == 0, done.output[-2000:]
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    reasons = [t["reason"] for r in results["requirements"] if r["id"] == "MM-HDR-04" for t in r["tests"]]
    assert reasons and all(not reason.startswith("(") and "suites/" not in reason for reason in reasons), reasons


def test_reports_name_the_command_that_replays_the_run(tmp_path: Path) -> None:
    done = run_suite(tmp_path, "--req", "MM-RESP-04", "--seed", "77", "--max-examples", "3")
    assert done.exit_code == 0, done.output[-2000:]
    replay = "modmsg run --profile openai --seed 77 --max-examples 3 --req MM-RESP-04"
    assert f"replay: {replay}" in done.output
    assert replay in (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert replay in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_a_wrong_setting_clears_the_report_directory_that_modmsg_toml_names(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from helpers import REPO

    TARGET = "http://127.0.0.1:9/v1"  # nothing listens: a wrong setting
    (tmp_path / "modmsg.toml").write_text('report_dir = "published"\n', encoding="utf-8")
    published = tmp_path / "published"
    published.mkdir()
    for name in ARTEFACTS:
        (published / name).write_text("an earlier green run\n", encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "suites"), "-q", "-p", "no:cacheprovider", "--base-url", TARGET],
        cwd=tmp_path,
        env={**clean, "MODMSG_API_KEY": KEY},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert _publishable(published) == []
