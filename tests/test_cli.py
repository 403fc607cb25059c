"""The `modmsg` command and the suite's entry: exit codes 0/1/2 and one-line errors, never a traceback."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import SuiteRun, run_cli, run_suite

from modmsg.reference import Behaviour, start_server


class _HtmlHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!doctype html><html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def html_target():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _one_line_error(done) -> str:
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "modmsg:" in line]
    assert len(lines) == 1, done.stdout + done.stderr
    return lines[0]


def test_unreachable_target_exits_2_quickly_naming_the_url(tmp_path):
    started = time.monotonic()
    done = run_suite(tmp_path, "--base-url", "http://127.0.0.1:9/v1", env={"MODMSG_API_KEY": "sk-x"})
    assert done.exit_code == 2
    assert time.monotonic() - started < 10
    assert "http://127.0.0.1:9/v1" in _one_line_error_from(done.output)


def _one_line_error_from(output: str) -> str:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "modmsg:" in line]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--base-url", "not-a-url"], {"MODMSG_API_KEY": "k"}, "not an http(s) URL"),
        (["--base-url", "http://127.0.0.1:9/v1"], {}, "no API key"),
        (["--profile", "no-such-profile"], {}, "neither a bundled profile"),
        (["--header", "broken"], {}, "'Name: value'"),
        (["--req", "MM-NOPE"], {}, "matches no requirement"),
        (["--overlay", "/nonexistent/overlay.yaml"], {}, "cannot read overlay"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(tmp_path, args, env, needle):
    done = run_suite(tmp_path, *args, env=env)
    assert done.exit_code == 2
    assert needle in _one_line_error_from(done.output)


def test_malformed_profile_file_exits_2(tmp_path):
    profile = tmp_path / "vendor.yaml"
    profile.write_text("name: acme\nextends: openai\nsettings:\n  merge_please: true\n")
    done = run_suite(tmp_path, "--profile", str(profile))
    assert done.exit_code == 2 and "unknown setting" in _one_line_error_from(done.output)


def test_target_answering_html_exits_2(tmp_path, html_target):
    done = run_suite(tmp_path, "--base-url", html_target, env={"MODMSG_API_KEY": "k"})
    assert done.exit_code == 2
    assert "answered 501 with an HTML page" in _one_line_error_from(done.output)


def test_wrong_api_key_exits_2(tmp_path):
    with start_server(api_key="sk-right") as server:
        done = run_suite(tmp_path, "--base-url", server.base_url, env={"MODMSG_API_KEY": "sk-wrong"})
    assert done.exit_code == 2 and "rejected the API key" in _one_line_error_from(done.output)


def test_conformant_target_exits_0_and_broken_target_exits_1(tmp_path):
    with start_server(api_key="sk-ok") as good:
        ok = run_suite(
            tmp_path / "good", "--base-url", good.base_url, "--req", "MM-META-06", env={"MODMSG_API_KEY": "sk-ok"}
        )
    assert ok.exit_code == 0, ok.output
    with start_server(api_key="sk-ok", behaviour=Behaviour(max_keys=17)) as bad:
        broken = run_suite(
            tmp_path / "bad", "--base-url", bad.base_url, "--req", "MM-META-06", env={"MODMSG_API_KEY": "sk-ok"}
        )
    assert broken.exit_code == 1
    assert broken.outcomes()["MM-META-06"] == "FAIL"


def test_cli_run_maps_exit_codes(tmp_path):
    done = run_cli("run", "--req", "MM-RESP-04", "--report-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    unreachable = run_cli("run", "--base-url", "http://127.0.0.1:9/v1", env={"MODMSG_API_KEY": "k"})
    assert unreachable.returncode == 2


def test_cli_lists_requirements_and_rejects_a_missing_results_file():
    listing = run_cli("requirements", "--level", "SHOULD")
    assert listing.returncode == 0 and "MM-REQ-05" in listing.stdout and "MM-META-06" not in listing.stdout
    missing = run_cli("report", "/nonexistent/results.json")
    assert missing.returncode == 2 and _one_line_error(missing).startswith("modmsg: no results file")


def test_cli_serve_rejects_an_unknown_variant():
    done = run_cli("serve", "--variant", "no_such_defect")
    assert done.returncode == 2
    assert "no_such_defect" in _one_line_error(done)


def test_every_command_has_help_with_examples():
    for command in ("run", "serve", "requirements", "variants", "report"):
        done = run_cli(command, "--help")
        assert done.returncode == 0 and "examples:" in done.stdout, command


def _generated_requests(recordings: list[Path]) -> int:
    """Requests the generated-test module sent, over every worker's recording."""
    return sum(
        "test_generated.py" in json.loads(line)["test"]
        for path in recordings
        for line in path.read_text(encoding="utf-8").split("\n")  # not splitlines(): bodies may hold U+2028
        if line
    )


def test_two_workers_judge_every_requirement_like_one(tmp_path):
    """`modmsg run --workers 2` (pytest-xdist): records from both workers merge into one report with the same
    outcome per requirement, and each generation stream is still drawn once (its tests share a worker)."""
    env = {"MODMSG_API_KEY": "sk-workers"}
    with start_server(api_key="sk-workers") as server:
        args = ("--base-url", server.base_url, "--seed", "7", "--max-examples", "10")
        one = run_suite(tmp_path / "one", *args, "--record-requests", str(tmp_path / "one.jsonl"), env=env)
        done = run_cli(
            "run", *args, "--workers", "2", "--report-dir", str(tmp_path / "two"),
            "--record-requests", str(tmp_path / "two.jsonl"), env=env, timeout=600,
        )  # fmt: skip
    two = SuiteRun(exit_code=done.returncode, output=done.stdout + done.stderr, report_dir=tmp_path / "two")
    assert one.exit_code == two.exit_code == 0, two.output
    assert one.outcomes() == two.outcomes()
    assert one.results["claim"] == two.results["claim"]
    assert sum(len(r["tests"]) for r in two.results["requirements"]) == sum(
        len(r["tests"]) for r in one.results["requirements"]
    )
    worker_files = sorted(tmp_path.glob("two.gw*.jsonl"))
    assert len(worker_files) == 2
    assert _generated_requests(worker_files) == _generated_requests([tmp_path / "one.jsonl"])


COLLECT_STREAM_TESTS = """
import json, sys, pytest
class Report:
    def pytest_collection_finish(self, session):
        for item in session.items:
            group = item.get_closest_marker("xdist_group")
            params = getattr(item, "callspec", None)
            mode = params.params["mode"].value if params and "mode" in params.params else None
            name = group.args[0] if group else None
            print("ITEM " + json.dumps([item.nodeid, "streams" in item.fixturenames, name, mode]))
pytest.main([sys.argv[1], "--collect-only", "-q", "-p", "no:cacheprovider"], plugins=[Report()])
"""


def test_a_streams_tests_share_one_worker_group_and_run_asks_for_loadgroup():
    """Each generation stream is drawn by the first of its tests that a process runs: under xdist its tests must
    share a worker (an xdist_group per stream, scheduled by --dist loadgroup), or it is drawn once per worker."""
    from modmsg.cli import _parser, _pytest_args
    from modmsg.paths import suites_dir

    argv = _pytest_args(_parser().parse_args(["run", "--workers", "2"]))
    assert argv[argv.index("-n") : argv.index("-n") + 4] == ["-n", "2", "--dist", "loadgroup"]
    done = subprocess.run(
        [sys.executable, "-c", COLLECT_STREAM_TESTS, str(suites_dir() / "test_generated.py")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    items = [json.loads(line[5:]) for line in done.stdout.splitlines() if line.startswith("ITEM ")]
    on_streams = [(nodeid, group, mode) for nodeid, uses, group, mode in items if uses]
    assert len(on_streams) >= 6, done.stdout + done.stderr
    assert all(group for _, group, _ in on_streams), on_streams
    assert len({group for _, group, _ in on_streams}) == 2
    for nodeid, group, mode in on_streams:
        assert mode is None or group.endswith(mode), nodeid
    assert not [nodeid for nodeid, uses, group, _ in items if group and not uses]


@pytest.mark.parametrize("count", ["0", "-2", "two"])
def test_workers_must_be_a_positive_whole_number(count):
    done = run_cli("run", "--workers", count)
    assert done.returncode == 2
    assert f"argument --workers: expected a whole number of workers >= 1, got '{count}'" in done.stderr
    assert "Traceback" not in done.stderr
