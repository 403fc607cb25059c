"""Attribution (``--upstream-url``): each requirement's verdict through the target compared with the upstream's.

The merge is tested as a pure function; the whole path (``pytest suites`` judging the target, then its upstream
pass, then one set of reports) against reference servers and variants on loopback, a few requirements each.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modmsg.attribution import attribute, attribution_of
from modmsg.config import ConfigError, resolve
from modmsg.plugin.upstream import PassOrder, pass_command
from modmsg.redaction import Redactor
from modmsg.reference import start_server
from modmsg.reference.variants import get_variant
from modmsg.report import write_reports
from modmsg.results import Attribution, Claim, Outcome, RequirementResult, RunMeta, RunResult, TestRecord
from tests.helpers import late_signal_plugin, run_cli, run_suite

KEY = "sk-attrib-target-0123456789abcdef"
UPSTREAM_KEY = "sk-attrib-upstream-fedcba9876543210"
VARIANT = "accepts_17_keys"
SELECTION = ("--req", "MM-META-06", "--req", "MM-META-11", "--req", "MM-META-01")
SELECTED = ("MM-META-06", "MM-META-11", "MM-META-01")  # the variant breaks the first two

# ------------------------------------------------------------------------------------------------ the merge

PASS, FAIL, BLOCKED, ERROR, SKIP, WAIVED = (
    Outcome.PASS,
    Outcome.FAIL,
    Outcome.BLOCKED,
    Outcome.ERROR,
    Outcome.SKIP,
    Outcome.WAIVED,
)


@pytest.mark.parametrize(
    ("target", "upstream", "expected"),
    [
        (FAIL, PASS, Attribution.INTRODUCED),
        (FAIL, FAIL, Attribution.INHERITED),
        (PASS, FAIL, Attribution.MASKED),
        (PASS, PASS, Attribution.NONE),
        *((FAIL, other, Attribution.UNKNOWN) for other in (BLOCKED, ERROR, SKIP)),
        *((PASS, other, Attribution.UNKNOWN) for other in (BLOCKED, ERROR, SKIP)),
        *((other, PASS, Attribution.UNKNOWN) for other in (BLOCKED, ERROR, SKIP)),
        *((other, FAIL, Attribution.UNKNOWN) for other in (BLOCKED, ERROR, SKIP)),
        (SKIP, SKIP, Attribution.UNKNOWN),
    ],
)
def test_attribution_table(target, upstream, expected):
    assert attribution_of(target, upstream) is expected


def _test(req: str, outcome: Outcome, nodeid: str = "suites/t.py::t") -> TestRecord:
    return TestRecord(nodeid=nodeid, reqs=(req,), outcome=outcome, evidence=({"method": "POST", "url": "u"},))


def _requirement(req: str, outcome: Outcome, observed: Outcome | None = None) -> RequirementResult:
    shown = observed or outcome
    return RequirementResult(
        id=req,
        title="t",
        level="MUST",
        area="META",
        statement="s",
        source="spec",
        outcome=outcome,
        observed=observed,
        reason=f"{req} {outcome.value}",
        tests=(_test(req, shown),),
    )


def _run(*requirements: RequirementResult) -> RunResult:
    meta = RunMeta(
        suite_version="0",
        spec_version="2.3.0",
        spec_commit="c",
        spec_sha256="s",
        profile="openai",
        product=None,
        target="http://gateway/v1",
        seed=7,
        max_examples=1,
        started="2026-01-01T00:00:00+00:00",
        finished="2026-01-01T00:00:01+00:00",
        duration=1.0,
    )
    return RunResult(meta=meta, requirements=requirements, claim=Claim(None, True, 0, "c", "not-conformant"))


def test_attribute_merges_the_two_rollups_per_requirement():
    target = _run(
        _requirement("MM-META-01", FAIL),
        _requirement("MM-META-02", FAIL),
        _requirement("MM-META-03", PASS),
        _requirement("MM-META-04", PASS),
        _requirement("MM-META-05", WAIVED, observed=FAIL),  # a waiver counts as what was observed
        _requirement("MM-META-06", BLOCKED),
        _requirement("MM-META-07", PASS),  # the upstream pass has no verdict on it
    )
    upstream = _run(
        _requirement("MM-META-01", PASS),
        _requirement("MM-META-02", FAIL),
        _requirement("MM-META-03", FAIL),
        _requirement("MM-META-04", PASS),
        _requirement("MM-META-05", PASS),
        _requirement("MM-META-06", PASS),
    )
    merged = attribute(target, upstream, "http://upstream/v1")
    got = {r.id: r.attribution for r in merged.requirements}
    assert got == {
        "MM-META-01": Attribution.INTRODUCED,
        "MM-META-02": Attribution.INHERITED,
        "MM-META-03": Attribution.MASKED,
        "MM-META-04": Attribution.NONE,
        "MM-META-05": Attribution.INTRODUCED,
        "MM-META-06": Attribution.UNKNOWN,
        "MM-META-07": Attribution.UNKNOWN,
    }
    by_id = {r.id: r for r in merged.requirements}
    assert merged.meta.upstream == "http://upstream/v1"
    # the target's verdicts and claim are untouched: attribution only says where a verdict comes from
    assert [r.outcome for r in merged.requirements] == [r.outcome for r in target.requirements]
    assert merged.claim == target.claim
    # the upstream's evidence is kept beside every verdict worth comparing, dropped where both pass
    assert by_id["MM-META-01"].upstream.tests == upstream.requirements[0].tests
    assert by_id["MM-META-01"].upstream.reason == "MM-META-01 PASS"
    assert by_id["MM-META-04"].upstream.tests == ()
    assert by_id["MM-META-07"].upstream.outcome is ERROR


def test_no_upstream_result_makes_every_attribution_unknown_saying_why():
    target = _run(_requirement("MM-META-01", FAIL), _requirement("MM-META-02", PASS))
    merged = attribute(target, None, "http://upstream/v1", "the upstream pass was interrupted")
    assert {r.attribution for r in merged.requirements} == {Attribution.UNKNOWN}
    assert all(
        r.upstream.reason == "not judged upstream: the upstream pass was interrupted" for r in merged.requirements
    )


def test_reports_show_attribution_and_a_run_without_an_upstream_shows_none(tmp_path):
    introduced = _requirement("MM-META-01", FAIL)
    run = attribute(_run(introduced, _requirement("MM-META-02", PASS)), _run(_requirement("MM-META-01", PASS)), "U")
    write_reports(run, tmp_path / "with")
    summary = (tmp_path / "with" / "summary.md").read_text(encoding="utf-8")
    assert "introduced by the target (1): MM-META-01" in summary
    assert "upstream PASS" in summary
    junit = (tmp_path / "with" / "junit.xml").read_text(encoding="utf-8")
    assert '<property name="attribution" value="introduced" />' in junit
    html = (tmp_path / "with" / "report.html").read_text(encoding="utf-8")
    assert "Straight to the upstream" in html and "Through the target" in html
    assert json.loads((tmp_path / "with" / "results.json").read_text())["requirements"][0]["attribution"] == (
        "introduced"
    )
    plain = _run(introduced)
    write_reports(plain, tmp_path / "without")
    for name in ("summary.md", "junit.xml", "report.html", "results.json"):
        text = (tmp_path / "without" / name).read_text(encoding="utf-8")
        assert "attribution" not in text.lower() and "upstream" not in text.lower(), name


# ------------------------------------------------------------------------------------------------ settings


def test_upstream_url_needs_a_key_from_a_named_variable_and_keeps_it_secret():
    with pytest.raises(ConfigError, match="no API key for the upstream"):
        resolve({"upstream_url": "http://127.0.0.1:9/v1"}, env={})
    with pytest.raises(ConfigError, match="UP_KEY named for the upstream's API key is unset"):
        resolve({"upstream_url": "http://127.0.0.1:9/v1", "upstream_api_key_env": "UP_KEY"}, env={})
    settings = resolve(
        {"upstream_url": "http://127.0.0.1:9/v1", "headers": ["x-gateway: g"]},
        env={"MODMSG_UPSTREAM_API_KEY_ENV": "UP_KEY", "UP_KEY": UPSTREAM_KEY},
    )
    assert settings.upstream_api_key == UPSTREAM_KEY
    assert UPSTREAM_KEY in settings.secrets()
    assert UPSTREAM_KEY not in repr(settings)
    redactor = Redactor.from_settings(settings)
    assert UPSTREAM_KEY not in redactor.text(f"echo {UPSTREAM_KEY} and {json.dumps(UPSTREAM_KEY)}")
    assert ("UP_KEY", "the upstream's API key (sent to the upstream as Authorization: Bearer …)") in (
        redactor.variables
    )
    passed = settings.upstream_pass(report_dir=Path("r/upstream"), seed=5, max_duration=10.0)
    assert (passed.base_url, passed.api_key, passed.api_key_env) == ("http://127.0.0.1:9/v1", UPSTREAM_KEY, "UP_KEY")
    assert passed.headers == () and passed.upstream_url is None and passed.seed == 5  # the gateway's headers stay


def test_upstream_headers_go_to_the_upstream_pass_alone_and_secret_ones_stay_secret(tmp_path):
    secret = "org-secret-7f3a9c1e5b2d"
    settings = resolve(
        {
            "upstream_url": "http://127.0.0.1:9/v1",
            "headers": ["x-gateway: g"],
            "upstream_headers": ["X-Upstream-Org: " + secret, "X-Plain: p"],
            "secret_headers": ["x-upstream-org"],
        },
        env={"MODMSG_UPSTREAM_API_KEY_ENV": "UP_KEY", "UP_KEY": UPSTREAM_KEY},
    )
    assert secret in settings.secrets() and secret not in repr(settings)
    assert secret not in Redactor.from_settings(settings).text(f"the target echoed {secret}")  # the run's redactor
    passed = settings.upstream_pass(report_dir=Path("r/upstream"), seed=5, max_duration=10.0)
    assert passed.headers == (("X-Upstream-Org", secret), ("X-Plain", "p")) and passed.upstream_headers == ()
    assert secret not in Redactor.from_settings(passed).text(f"the upstream echoed {secret}")  # the pass's
    # A header secret on both sides, with one name: each side's reproducers use a variable of their own.
    both = dataclasses.replace(settings, headers=(("X-Upstream-Org", "target-org-secret-91ab"),))
    run_side, pass_side = Redactor.from_settings(both), Redactor.from_settings(both.upstream_pass(
        report_dir=Path("r/upstream"), seed=5, max_duration=10.0))  # fmt: skip
    target_side = run_side.reference("X-Upstream-Org: target-org-secret-91ab")
    assert target_side == "X-Upstream-Org: $MODMSG_SECRET_X_UPSTREAM_ORG"
    assert run_side.reference(f"X-Upstream-Org: {secret}") == "X-Upstream-Org: $MODMSG_UPSTREAM_SECRET_X_UPSTREAM_ORG"
    assert pass_side.reference(f"X-Upstream-Org: {secret}") == "X-Upstream-Org: $MODMSG_UPSTREAM_SECRET_X_UPSTREAM_ORG"
    assert ("MODMSG_UPSTREAM_SECRET_X_UPSTREAM_ORG", "the value of the upstream's X-Upstream-Org header (sent to the "
            "upstream)") in run_side.variables  # fmt: skip
    # Alone, an upstream header is no setting of a sweep (which resolves the same settings) but a wrong one of a run.
    assert resolve({"upstream_headers": ["X-Plain: p"]}, env={}).upstream_headers == (("X-Plain", "p"),)
    done = run_cli("run", "--upstream-header", "X-Plain: p", "--report-dir", str(tmp_path / "r"))
    said = "--upstream-header (MODMSG_UPSTREAM_HEADERS, upstream_headers in modmsg.toml) is set without --upstream-url"
    assert done.returncode == 2 and said in done.stderr, done.stderr
    with pytest.raises(ConfigError):
        resolve(
            {"upstream_url": "http://127.0.0.1:9/v1", "upstream_headers": ["no colon"]},
            env={"MODMSG_UPSTREAM_API_KEY_ENV": "UP_KEY", "UP_KEY": UPSTREAM_KEY},
        )


def test_the_upstream_pass_runs_the_runs_arguments_without_its_junit_file():
    order = PassOrder(run_id="modmsg-abc", seed=3, report_dir="r/upstream", max_duration=60.0)
    command = pass_command(["suites", "--junitxml", "j.xml", "--junit-xml=k.xml", "-k", "META"], order)
    assert command[:3] == [sys.executable, "-m", "pytest"]
    assert command[3:-2] == ["suites", "-k", "META"]
    assert PassOrder.decode(command[-1]) == order


# ------------------------------------------------------------------------------------------------ whole runs


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, object]]:
    """A correct reference server and the variant, each twice (one as target, one as upstream), on loopback."""
    variant = get_variant(VARIANT)
    started = {
        "correct": start_server(KEY),
        "correct_upstream": start_server(UPSTREAM_KEY),
        "broken": variant.start(KEY),
        "broken_upstream": variant.start(UPSTREAM_KEY),
    }
    try:
        yield started
    finally:
        for server in started.values():
            server.stop()  # type: ignore[attr-defined]


def _attributed(tmp_path: Path, target: object, upstream: object, *extra: str) -> tuple[dict[str, str], object]:
    run = run_suite(
        tmp_path,
        "--base-url",
        target.base_url,  # type: ignore[attr-defined]
        "--upstream-url",
        upstream.base_url,  # type: ignore[attr-defined]
        "--max-examples",
        "2",
        *SELECTION,
        *extra,
        env={
            "MODMSG_API_KEY": KEY,
            "MODMSG_UPSTREAM_API_KEY_ENV": "ATTRIB_UPSTREAM_KEY",
            "ATTRIB_UPSTREAM_KEY": UPSTREAM_KEY,
        },
        timeout=300,
    )
    assert run.exit_code in (0, 1), run.output
    attributed = {r["id"]: r.get("attribution") for r in run.results["requirements"]}
    assert set(attributed.values()) <= {a.value for a in Attribution}  # every requirement has one
    return {req: attributed[req] for req in SELECTED}, run


def _no_secret_anywhere(run: object, directory: Path) -> None:
    assert UPSTREAM_KEY not in run.output and KEY not in run.output  # type: ignore[attr-defined]
    for path in directory.rglob("*"):
        if path.is_file():
            content = path.read_text(encoding="utf-8", errors="replace")
            assert UPSTREAM_KEY not in content and KEY not in content, path


def test_a_variant_in_front_of_a_correct_upstream_introduces_its_requirements(tmp_path, servers):
    judged, run = _attributed(tmp_path, servers["broken"], servers["correct_upstream"])
    assert judged == {"MM-META-06": "introduced", "MM-META-11": "introduced", "MM-META-01": "none"}, run.output
    assert run.exit_code == 1  # the target's verdict, not the upstream's
    results = run.results
    assert results["meta"]["upstream"] == servers["correct_upstream"].base_url
    introduced = next(r for r in results["requirements"] if r["id"] == "MM-META-06")
    assert introduced["upstream"]["outcome"] == "PASS" and introduced["upstream"]["tests"]
    assert "attribution against the upstream" in run.output and "introduced by the target" in run.output
    assert (tmp_path / "upstream" / "results.json").is_file()  # the pass's own reports, in a private sub-directory
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Straight to the upstream" in html
    claim = json.loads((tmp_path / "claim.json").read_text(encoding="utf-8"))["predicate"]["modmsg"]
    assert claim["upstream"] == servers["correct_upstream"].base_url
    assert claim["attribution"]["MM-META-06"] == "introduced"
    verified = run_cli("verify", str(tmp_path))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    _no_secret_anywhere(run, tmp_path)
    # cleanup on both sides: no thread of the run is left on either, and nothing is left for the sweep
    assert servers["broken"].thread_ids() == [] and servers["correct_upstream"].thread_ids() == []
    assert not (tmp_path / ".modmsg-threads.jsonl").exists()
    assert not (tmp_path / "upstream" / ".modmsg-threads.jsonl").exists()


def test_the_same_variant_on_both_sides_is_inherited(tmp_path, servers):
    judged, _ = _attributed(tmp_path, servers["broken"], servers["broken_upstream"])
    assert judged == {"MM-META-06": "inherited", "MM-META-11": "inherited", "MM-META-01": "none"}


def test_a_correct_target_over_a_broken_upstream_masks_its_defects(tmp_path, servers):
    judged, run = _attributed(tmp_path, servers["correct"], servers["broken_upstream"])
    assert judged == {"MM-META-06": "masked", "MM-META-11": "masked", "MM-META-01": "none"}
    assert run.exit_code == 0  # the target passes: attribution never changes a verdict


def test_a_forwarding_gateway_in_front_of_a_broken_upstream_inherits_its_defects(tmp_path, servers):
    """A real proxy as the gateway (it forwards every request untouched) over the variant: nothing introduced."""
    from proving.faultproxy import start_fault_proxy

    gateway = start_fault_proxy(servers["broken"].base_url)  # type: ignore[attr-defined]
    try:
        judged, run = _attributed(tmp_path, gateway, servers["broken_upstream"])
    finally:
        gateway.stop()
    assert judged == {"MM-META-06": "inherited", "MM-META-11": "inherited", "MM-META-01": "none"}
    assert gateway.seen and run.exit_code == 1


def test_an_unreachable_upstream_is_a_wrong_setting(tmp_path, servers):
    run = run_suite(
        tmp_path,
        "--base-url",
        servers["correct"].base_url,  # type: ignore[attr-defined]
        "--upstream-url",
        "http://127.0.0.1:9/v1",
        *SELECTION,
        env={
            "MODMSG_API_KEY": KEY,
            "MODMSG_UPSTREAM_API_KEY_ENV": "ATTRIB_UPSTREAM_KEY",
            "ATTRIB_UPSTREAM_KEY": UPSTREAM_KEY,
        },
        timeout=120,
    )
    assert run.exit_code == 2, run.output
    lines = [line for line in run.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("modmsg: upstream http://127.0.0.1:9/v1 is unreachable"), lines
    assert "--upstream-url" in lines[0]
    assert not (tmp_path / "results.json").exists()


def test_without_an_upstream_nothing_is_attributed(tmp_path, servers):
    run = run_suite(
        tmp_path,
        "--base-url",
        servers["broken"].base_url,  # type: ignore[attr-defined]
        *SELECTION,
        env={"MODMSG_API_KEY": KEY},
        timeout=120,
    )
    assert run.exit_code == 1
    assert "upstream" not in run.results["meta"]
    assert not any("attribution" in r or "upstream" in r for r in run.results["requirements"])
    assert not (tmp_path / "upstream").exists()


def test_modmsg_run_takes_the_upstream_from_the_command_line_too(tmp_path, servers):
    from tests.helpers import run_cli

    done = run_cli(
        "run",
        "--base-url",
        servers["broken"].base_url,  # type: ignore[attr-defined]
        "--upstream-url",
        servers["correct_upstream"].base_url,  # type: ignore[attr-defined]
        "--req",
        "MM-META-06",
        "--max-examples",
        "2",
        "--report-dir",
        str(tmp_path),
        env={
            "MODMSG_API_KEY": KEY,
            "ATTRIB_UPSTREAM_KEY": UPSTREAM_KEY,
            "MODMSG_UPSTREAM_API_KEY_ENV": "ATTRIB_UPSTREAM_KEY",
        },
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert {r["id"]: r["attribution"] for r in results["requirements"]}["MM-META-06"] == "introduced"


def test_the_upstream_options_come_from_modmsg_toml_too(tmp_path):
    from modmsg.config import load_config_file

    (tmp_path / "modmsg.toml").write_text(
        'upstream_url = "http://127.0.0.1:9/v1"\nupstream_api_key_env = "UP_KEY"\n', encoding="utf-8"
    )
    settings = resolve(file=load_config_file(tmp_path), env={"UP_KEY": UPSTREAM_KEY})
    assert (settings.upstream_url, settings.upstream_api_key) == ("http://127.0.0.1:9/v1", UPSTREAM_KEY)


def test_a_pass_without_results_says_why_in_its_own_words():
    from modmsg.plugin.upstream import why_no_results

    said = "progress\nmodmsg: upstream http://127.0.0.1:9/v1 is unreachable (refused); check --upstream-url\n"
    assert why_no_results(2, said) == (
        "the upstream pass ended without results: upstream http://127.0.0.1:9/v1 is unreachable (refused); "
        "check --upstream-url"
    )
    assert why_no_results(None, "nothing said") == "the upstream pass ended without results (exit None)"


def test_a_signal_during_the_upstream_pass_lets_it_clean_up_and_leaves_the_targets_verdict(tmp_path, servers):
    """SIGTERM to the run while its upstream pass holds threads: the pass is stopped as by Ctrl-C, deletes its
    threads, and the run still writes the target's verdict, attribution unknown where the pass judged nothing."""
    import os
    import signal
    import subprocess
    import time

    from modmsg.ledger import LEDGER_NAME, Ledger
    from proving.faultproxy import FaultPlan, start_fault_proxy
    from tests.helpers import REPO, finished_run

    slow = start_fault_proxy(servers["correct_upstream"].base_url, FaultPlan(latency=0.2))  # type: ignore[attr-defined]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}
    env = {**clean, "MODMSG_API_KEY": KEY, "ATTRIB_UPSTREAM_KEY": UPSTREAM_KEY}
    command = [sys.executable, "-m", "pytest", str(REPO / "suites"), "-q", "-p", "no:cacheprovider"]
    command += ["--report-dir", str(tmp_path), "--base-url", servers["broken"].base_url]  # type: ignore[attr-defined]
    command += ["--upstream-url", slow.base_url, "--upstream-api-key-env", "ATTRIB_UPSTREAM_KEY", *SELECTION]
    try:
        with (tmp_path / "output.txt").open("wb") as output:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=output)
        ledger = Ledger(tmp_path / "upstream" / LEDGER_NAME)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and not ledger.pending():
            time.sleep(0.02)
        assert process.poll() is None, "the run ended before its upstream pass held a thread"
        process.send_signal(signal.SIGTERM)
        run = finished_run(process, tmp_path, "the interrupted attribution run", 120)
    finally:
        slow.stop()
    assert run.exit_code == 1, run.output  # the target's verdict: its pass was complete
    attributions = {r["id"]: r["attribution"] for r in run.results["requirements"]}
    assert attributions["MM-META-11"] == "unknown" or attributions["MM-META-06"] == "unknown"
    assert servers["correct_upstream"].thread_ids() == []  # the pass deleted what it created
    assert not ledger.path.exists() or not ledger.pending()
    assert UPSTREAM_KEY not in run.output


def test_a_signal_after_the_last_test_skips_the_upstream_pass_and_keeps_the_targets_verdict(tmp_path, servers):
    """A signal once the target's tests are over (a CI runner cancelling the job) must not start a whole second
    pass against the upstream: the pass is skipped, said so, and the target's reports are written with its verdict
    (every attribution unknown)."""
    plugin, env = late_signal_plugin(tmp_path, "the reports", ("SIGTERM",))
    run = run_suite(
        tmp_path / "reports", *plugin, "--base-url", servers["broken"].base_url,  # type: ignore[attr-defined]
        "--upstream-url", servers["correct_upstream"].base_url,  # type: ignore[attr-defined]
        "--upstream-api-key-env", "ATTRIB_UPSTREAM_KEY", *SELECTION,
        env={"MODMSG_API_KEY": KEY, "ATTRIB_UPSTREAM_KEY": UPSTREAM_KEY, **env},
    )  # fmt: skip
    assert run.exit_code == 1, run.output[-3000:]  # the target's verdict: its tests all ran
    assert "no attribution: SIGTERM arrived before the upstream pass" in run.output, run.output[-3000:]
    assert {r["attribution"] for r in run.results["requirements"]} == {"unknown"}
    assert not (tmp_path / "reports" / "upstream" / "results.json").exists()
    assert servers["correct_upstream"].thread_ids() == []  # type: ignore[attr-defined]


def _header_gate(to: str, *, needs: tuple[str, str] | None, never: str, wrong: list[str]) -> Any:
    """A loopback relay to ``to`` that answers 401 without the header ``needs`` and notes in ``wrong`` every request
    carrying the header ``never``."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import requests as http

    class Gate(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get(never) is not None:
                wrong.append(f"{never} reached {to}: {self.command} {self.path}")
            if needs is not None and self.headers.get(needs[0]) != needs[1]:
                refused = b'{"error": {"message": "no organisation", "type": "auth", "param": null, "code": null}}'
                answer = (401, refused)
            else:
                sent = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                got = http.request(self.command, to + self.path.removeprefix("/v1"), headers=sent, data=body,
                                   timeout=30)  # fmt: skip
                answer = (got.status_code, got.content)
            self.send_response(answer[0])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer[1])))
            self.end_headers()
            self.wfile.write(answer[1])

        do_GET = do_POST = do_DELETE = _relay

    gate = ThreadingHTTPServer(("127.0.0.1", 0), Gate)
    threading.Thread(target=gate.serve_forever, daemon=True).start()
    return gate


def test_an_upstream_that_needs_its_own_header_gets_it_and_never_the_targets(tmp_path, servers):
    """An upstream that answers only with its own header (an organisation, a project, a gateway's virtual key):
    `--upstream-header` reaches it and never the target, the target's `--header` never reaches the upstream, and a
    secret one is in no report."""
    secret = "org-secret-7f3a9c1e5b2d"
    wrong: list[str] = []
    upstream = _header_gate(servers["correct_upstream"].base_url, needs=("X-Upstream-Org", secret),  # type: ignore[attr-defined]
                            never="X-Target-Only", wrong=wrong)  # fmt: skip
    target = _header_gate(servers["correct"].base_url, needs=None, never="X-Upstream-Org", wrong=wrong)  # type: ignore[attr-defined]
    try:
        run = run_suite(
            tmp_path / "reports", "--base-url", f"http://127.0.0.1:{target.server_address[1]}/v1",
            "--upstream-url", f"http://127.0.0.1:{upstream.server_address[1]}/v1",
            "--upstream-api-key-env", "ATTRIB_UPSTREAM_KEY", "--req", "MM-META-01", "--max-examples", "2",
            "--header", "X-Target-Only: t", "--upstream-header", f"X-Upstream-Org: {secret}",
            "--secret-header", "X-Upstream-Org",
            env={"MODMSG_API_KEY": KEY, "ATTRIB_UPSTREAM_KEY": UPSTREAM_KEY},
        )  # fmt: skip
    finally:
        for gate in (upstream, target):
            gate.shutdown()
            gate.server_close()
    assert run.exit_code == 0, run.output[-3000:]
    assert wrong == []
    assert {r["attribution"] for r in run.results["requirements"] if r["id"] == "MM-META-01"} == {"none"}
    files = [path for path in (tmp_path / "reports").rglob("*") if path.is_file()]
    everything = run.output + "".join(path.read_text(encoding="utf-8", errors="replace") for path in files)
    assert secret not in everything and UPSTREAM_KEY not in everything
