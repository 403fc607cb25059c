"""The `modmsg` command and the suite's entry: exit codes 0/1/2 and one-line errors, never a traceback."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path

import pytest
from helpers import REPO, Cleanups, SuiteRun, late_signal_plugin, run_cli, run_suite

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


def test_unreachable_target_exits_2_before_collection_naming_the_url(tmp_path):
    done = run_suite(tmp_path, "--base-url", "http://127.0.0.1:9/v1", env={"MODMSG_API_KEY": "sk-x"})
    assert done.exit_code == 2
    assert "http://127.0.0.1:9/v1" in _one_line_error_from(done.output)
    assert "collected" not in done.output and not (tmp_path / "results.json").exists()


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
    for command in ("run", "serve", "requirements", "variants", "report", "verify"):
        done = run_cli(command, "--help")
        assert done.returncode == 0 and "examples:" in done.stdout, command


def _generated_requests(recordings: list[Path]) -> int:
    """Requests the generated-test module sent, over every worker's recording; a thread's deletion aside, which
    the pool of tests run ahead sends once its test is over and a worker (which runs nothing ahead) at the end."""
    sent = (
        json.loads(line)
        for path in recordings
        for line in path.read_text(encoding="utf-8").split("\n")  # not splitlines(): bodies may hold U+2028
        if line
    )
    return sum(
        "test_generated.py" in one["test"]
        and not (one["method"] == "DELETE" and one["url"].count("/threads/") == 1 and "/messages" not in one["url"])
        for one in sent
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


def test_two_workers_print_the_console_of_one_run(tmp_path):
    """Against a target with defects, `--workers 2` prints what one process prints: a line per failing requirement and
    the requirement count, not pytest's tracebacks and "2 failed, 61 passed" (the xdist controller never collects, so
    it used to miss that it judges)."""
    from modmsg.reference.variants import get_variant

    key = "sk-modmsg-workers-console-0123"
    with get_variant("accepts_17_keys").start(key) as server:
        args = ("--base-url", server.base_url, "--seed", "7", "--max-examples", "1", "--req", "MM-META")
        one = run_cli("run", *args, "--report-dir", str(tmp_path / "one"), env={"MODMSG_API_KEY": key}, timeout=300)
        two = run_cli(
            "run", *args, "--workers", "2", "--report-dir", str(tmp_path / "two"), env={"MODMSG_API_KEY": key},
            timeout=300,
        )  # fmt: skip
    for done in (one, two):
        assert done.returncode == 1, done.stdout + done.stderr
        last = done.stdout.strip().splitlines()[-1]
        assert " FAIL, " in last and "requirements in" in last, done.stdout[-2000:]
        assert "FAILED suites/" not in done.stdout and "Traceback" not in done.stdout, done.stdout[-3000:]
    assert len(two.stdout.splitlines()) <= len(one.stdout.splitlines()) + 3, two.stdout[-3000:]  # "bringing up nodes"


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


# ------------------------------------------------------------------------------------------------ interrupts


def test_a_second_ctrl_c_ends_the_run_quietly(tmp_path):
    """The first SIGINT starts an orderly stop (cleanup, reports); a second one must end the process without the
    hundreds of lines of traceback a KeyboardInterrupt raised inside pytest's own interrupt handling printed."""
    command = [sys.executable, "-m", "pytest", str(REPO / "suites"), "-q", "-p", "no:cacheprovider"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}
    process = subprocess.Popen(
        [*command, "--report-dir", str(tmp_path / "reports")], cwd=tmp_path, env=clean, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        started = ""
        while (char := process.stdout.read(1)) and char not in ".FEs":  # the first test has run
            started += char
        assert char, started
        process.send_signal(signal.SIGINT)
        time.sleep(0.1)  # pacing only: two signals at once would be handled as one
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode != 0
    assert "Traceback" not in out + err, err[-3000:]
    assert len(err.splitlines()) < 20, err[-3000:]


@pytest.mark.parametrize(
    ("at", "signals", "workers", "exit_code", "said"),
    [
        ("the reports", ["SIGTERM"], (), 0, "modmsg: SIGTERM once the tests were over: cleanup and reports are"),
        ("the final cleanup", ["SIGINT"], (), 0, "modmsg: SIGINT once the tests were over"),
        ("the reports", ["SIGTERM"], ("-n", "2", "--dist", "loadgroup"), 0, "modmsg: SIGTERM once the tests were"),
        ("the reports", ["SIGTERM", "SIGINT"], (), 128 + signal.SIGINT, "modmsg: stopped at once by a second SIGINT"),
    ],
    ids=["during the reports", "during the final cleanup", "--workers 2", "a second one"],
)
def test_a_signal_once_the_tests_are_over_lets_the_run_finish_its_cleanup_and_reports(
    tmp_path, at, signals, workers, exit_code, said
):
    """Once the last test has run every verdict is in: a first signal (a CI runner cancelling the job) is noted in
    one line, and the threads' cleanup and the reports are finished, with the run's verdict. It used to kill the run
    by SIGTERM's default before any report was written (a SIGINT printed a traceback), or during the cleanup turned a
    complete run into an interrupted one. A second signal ends the process at once."""
    from modmsg.reference import start_server

    plugin, env = late_signal_plugin(tmp_path, at, tuple(signals))
    key = "sk-modmsg-late-signal-0123456789"
    with start_server(key) as server:
        run = run_suite(
            tmp_path / "reports", *plugin, "--req", "MM-RESP-01", "--max-examples", "1", *workers,
            "--base-url", server.base_url, env={"MODMSG_API_KEY": key, **env},
        )  # fmt: skip
        left = server.thread_ids()
    assert run.exit_code == exit_code, run.output[-3000:]
    assert said in run.output and "Traceback" not in run.output, run.output[-3000:]
    if exit_code == 0:
        assert left == [], f"{len(left)} thread(s) left on the target"
        assert run.outcomes()["MM-RESP-01"] == "PASS"
        assert run.results["meta"]["interrupted"] is False and run.results["meta"]["stopped"] is None


def test_a_signal_once_the_interrupt_is_under_way_ends_the_process_at_once():
    from modmsg.plugin.interrupts import Interrupts

    interrupts, ended = Interrupts(), []
    interrupts.exit_now = ended.append  # os._exit in a real run
    with pytest.raises(KeyboardInterrupt, match="SIGINT"):
        interrupts.handler(signal.SIGINT, None)  # the first: an orderly stop
    assert ended == []
    with suppress(KeyboardInterrupt):
        interrupts.handler(signal.SIGINT, None)  # the second: no unwinding
    assert ended == [signal.SIGINT]


def test_a_run_leaves_no_hypothesis_or_schemathesis_directory_in_the_working_directory(tmp_path):
    """Hypothesis' caches go to a private temporary directory; one a killed run left behind is removed later. Its
    Unicode tables (~1.5 s to build) are kept in the user's cache directory for the next run, its cache of source
    literals is not."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=60)
    orphan = Path(tempfile.gettempdir()) / f"modmsg-hypothesis-{gone.pid}-test"
    (orphan / "constants").mkdir(parents=True, exist_ok=True)
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODMSG_", "HYPOTHESIS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "suites"), "-q", "-p", "no:cacheprovider", "--req", "MM-GEN-01",
         "--max-examples", "2", "--report-dir", str(work / "reports")],
        cwd=work, env={**env, "XDG_CACHE_HOME": str(cache)}, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert sorted(p.name for p in work.iterdir()) == ["reports"]
    assert not orphan.exists()
    (shared,) = (cache / "modmsg").iterdir()
    assert sorted(p.name for p in shared.iterdir()) == ["unicode_data"]
    assert any(p.name.startswith("codec-") for p in (shared / "unicode_data").rglob("*.json.gz"))


def test_a_session_gives_hypothesis_back_the_home_its_process_had(tmp_path, monkeypatch):
    """A session run inside another (pytester, pytest.main) restores the host's Hypothesis home at its end, instead of
    Hypothesis' default ./.hypothesis (the project's own `make test` left one in the clone that way)."""
    from hypothesis import configuration
    from hypothesis.configuration import set_hypothesis_home_dir, storage_directory

    from modmsg.plugin.home import private_hypothesis_home

    monkeypatch.delenv("HYPOTHESIS_STORAGE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = getattr(configuration, "__hypothesis_home_directory", None)
    host = tmp_path / "host-home"
    set_hypothesis_home_dir(host)
    try:
        config = Cleanups()
        private_hypothesis_home(config)  # type: ignore[arg-type]
        private = storage_directory(intent_to_write=False).home_directory
        assert private != host and private.name.startswith("modmsg-hypothesis-")
        config.run()
        assert storage_directory(intent_to_write=False).home_directory == host
        assert not private.exists()
    finally:
        set_hypothesis_home_dir(before)


# ------------------------------------------------------------------------------------------------ requirements


def test_requirements_explains_one_requirement():
    done = run_cli("requirements", "MM-META-03")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for expected in (
        "MM-META-03  Metadata persisted for list",
        "level:     MUST",
        "statement: After a successful modify, listMessages MUST show",
        "source:    spec: #/paths/~1threads~1{thread_id}~1messages/get",
        "profiles:  openai, spec",
        "condition: always judged",
        "suites/test_metadata.py::test_sent_pairs_persist_in_list",
        "list_shows_no_metadata: ",
    ):
        assert expected in text, text
    parametrized = run_cli("requirements", "mm-err-6")  # case and zero padding forgiven
    assert parametrized.returncode == 0 and "suites/test_errors.py::" in parametrized.stdout
    assert "(parametrized)" in parametrized.stdout


def test_requirements_with_an_unknown_id_is_one_sentence():
    done = run_cli("requirements", "MM-NOPE-99")
    assert done.returncode == 2
    assert (
        _one_line_error(done) == "modmsg: no requirement MM-NOPE-99 in the catalogue; `modmsg requirements` lists them"
    )


COLLECT_REQ_MARKS = """
import json, sys, pytest
class Report:
    def pytest_collection_finish(self, session):
        for item in session.items:
            print("ITEM " + json.dumps([item.nodeid, [str(a) for m in item.iter_markers("req") for a in m.args]]))
pytest.main([sys.argv[1], "--collect-only", "-q", "-p", "no:cacheprovider"], plugins=[Report()])
"""


def test_the_source_scan_finds_the_tests_pytest_collects_for_each_requirement():
    """`modmsg requirements ID` reads the suites' source instead of running pytest: it must agree with pytest's
    collection (parametrized tests included) for every requirement."""
    from modmsg.paths import suites_dir
    from modmsg.testindex import judging_tests

    done = subprocess.run(
        [sys.executable, "-c", COLLECT_REQ_MARKS, str(suites_dir())], cwd=suites_dir().parent, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    collected: dict[str, set[str]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("ITEM "):
            nodeid, reqs = json.loads(line[5:])
            for req in reqs:
                collected.setdefault(req, set()).add(nodeid.split("[", 1)[0])
    assert len(collected) > 40, done.stdout[-2000:] + done.stderr[-2000:]
    scanned = {req: {test.nodeid for test in tests} for req, tests in judging_tests().items()}
    assert scanned == collected


def test_a_mistyped_option_of_any_command_is_one_sentence_with_the_closest_option():
    done = run_cli("requirements", "--levl", "MUST")
    assert done.returncode == 2
    assert _one_line_error(done) == "modmsg: unknown option --levl for `modmsg requirements`; did you mean --level?"


# ------------------------------------------------------------------------------------------------ make


def _make(venv: Path, target: str) -> str:
    done = subprocess.run(
        ["make", "-n", "-C", str(REPO), f"VENV={venv}", target], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_conformance_installs_runtime_dependencies_and_make_test_adds_the_dev_extra(tmp_path):
    venv = tmp_path / "venv"
    conformance = _make(venv, "conformance")
    assert "pip install -qq -e ." in conformance and ".[dev]" not in conformance
    venv.mkdir()
    (venv / ".installed-runtime").touch()  # as `make conformance` leaves it
    assert "pip install" not in _make(venv, "conformance")
    assert "pip install -qq -e '.[dev]'" in _make(venv, "test")
    (venv / ".installed-dev").touch()
    assert "pip install" not in _make(venv, "test") + _make(venv, "lint")


def test_packaging_metadata_builds_without_setuptools_warnings():
    """setuptools warns (a `!!` block in every install) about a license table and about data directories that are
    importable but not listed as packages."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "MIT"  # an SPDX expression, not a table
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])
    listed = set(project["tool"]["setuptools"]["packages"])
    package_dirs = {
        ".".join(path.relative_to(REPO).parts)
        for path in (REPO / "modmsg").rglob("*")
        if path.is_dir() and path.name != "__pycache__" and "bundled" not in path.parts and any(path.iterdir())
    }
    assert package_dirs <= listed, package_dirs - listed


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`modmsg requirements | head -1`: the pipe closes under the writer."""
    process = subprocess.Popen(
        [sys.executable, "-m", "modmsg.cli", "requirements"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the command writes its first line
    err = process.stderr.read()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in err and "Exception ignored" not in err, err
