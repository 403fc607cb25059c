"""Every wrong setting: one sentence on stderr (``modmsg: …``), exit 2, no traceback, no report, no traffic.

Each row runs through ``modmsg run`` and, where the option exists there, ``pytest suites``, in a fresh working
directory (for modmsg.toml rows). A target, when a row needs one, is a closed loopback port: the setting must be
judged before anything is sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import REPO, run_suite

CLOSED = "http://127.0.0.1:9/v1"
KEY = {"MODMSG_API_KEY": "sk-bad-settings-0123456789abcdef"}
PASSWORD = "pw-0123456789abcdef-never-shown"
NEWLINE_KEY = "sk-newline-0123456789\nabcdef"


@dataclass(frozen=True)
class Row:
    id: str
    args: tuple[str, ...]
    needle: str
    env: dict[str, str] = field(default_factory=dict)
    toml: str | None = None
    pytest_too: bool = True
    secrets: tuple[str, ...] = ()


def _deep_baseline(directory: Path) -> str:
    path = directory / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    return str(path)


def _text_baseline(directory: Path) -> str:
    path = directory / "notes.txt"
    path.write_text("this is not a results.json\n")
    return str(path)


ROWS = (
    Row("header-value-not-latin1", ("--header", "x-note: snow \u2603"), "outside Latin-1"),
    Row("header-name-not-latin1", ("--header", "x-\u2603: v"), "not a valid HTTP header name"),
    Row("header-value-newline", ("--header", "x-token: abc\r\ndef"), "line break", secrets=("abc",)),
    Row("header-name-newline", ("--header", "x-a\nx-b: v"), "not a valid HTTP header name"),
    Row("timeout-nan", ("--request-timeout", "nan"), "--request-timeout must be a finite number"),
    Row("timeout-inf", ("--request-timeout", "inf"), "--request-timeout must be a finite number"),
    Row("timeout-zero", ("--request-timeout", "0"), "--request-timeout must be more than 0"),
    Row("timeout-negative", ("--request-timeout", "-1"), "--request-timeout must be more than 0"),
    Row("rate-limit-forever", ("--rate-limit", "1e-300"), "at least one request per hour"),
    Row("base-url-bad-ipv6", ("--base-url", "http://[::1/v1"), "not a valid URL", env=KEY),
    Row("base-url-query", ("--base-url", f"{CLOSED}?api-version=2"), "query string", env=KEY),
    Row("base-url-fragment", ("--base-url", f"{CLOSED}#top"), "fragment", env=KEY),
    Row("base-url-space", ("--base-url", "http://127.0.0.1:9/v 1"), "space or control character", env=KEY),
    Row(
        "base-url-credentials",
        ("--base-url", f"http://user:{PASSWORD}@127.0.0.1:9/v1"),
        "must not carry credentials",
        env=KEY,
        secrets=(PASSWORD,),
    ),
    Row(
        "key-newline",
        ("--base-url", CLOSED),
        "the API key (--api-key or MODMSG_API_KEY) contains a line break",
        env={"MODMSG_API_KEY": NEWLINE_KEY},
        secrets=tuple(NEWLINE_KEY.split("\n")),
    ),
    Row(
        "key-carriage-return",
        ("--base-url", CLOSED),
        "contains a line break",
        env={"MODMSG_API_KEY": "sk-cr-0123456789\rabcdef"},
        secrets=("sk-cr-0123456789", "abcdef"),
    ),
    Row("toml-base-url-number", (), "base_url must be a string, not the number 5", toml="base_url = 5\n"),
    Row("toml-max-examples-string", (), "max_examples must be a whole number", toml='max_examples = "x"\n'),
    Row("toml-headers-number", (), "headers must be a list of strings", toml="headers = 5\n"),
    Row("report-dir-is-a-file", ("--report-dir", "{file}"), "is a file, not a directory"),
    Row("report-dir-inside-a-file", ("--report-dir", "{file}/reports"), "cannot be created"),
    Row("baseline-deeply-nested", ("--baseline", "{deep}"), "nested too deeply"),
    Row("baseline-not-json", ("--baseline", "{text}"), "not JSON"),
    Row("max-response-size-too-small", ("--max-response-size", "12"), "at least 1KiB"),
    Row("max-response-size-words", ("--max-response-size", "lots"), "must be a number of bytes"),
    Row("max-duration-zero", ("--max-duration", "0"), "--max-duration must be more than 0"),
    Row("max-duration-nan", ("--max-duration", "nan"), "--max-duration must be a finite number"),
    Row("max-examples-zero", ("--max-examples", "0"), "--max-examples must be a whole number, 1 or more"),
    Row("req-unknown", ("--req", "MM-NOPE-99"), "--req MM-NOPE-99 matches no requirement"),
    Row("keyword-selects-nothing", ("-k", "nothing_matches_this"), "selects none of the"),
    Row("mistyped-option", ("--bse-url", "x"), "did you mean --base-url?", pytest_too=False),
)


def _command(kind: str, args: list[str]) -> list[str]:
    if kind == "modmsg run":
        return [sys.executable, "-m", "modmsg.cli", "run", *args]
    return [sys.executable, "-m", "pytest", str(REPO / "suites"), "-q", "-p", "no:cacheprovider", *args]


def _run(kind: str, row: Row, cwd: Path) -> subprocess.CompletedProcess[str]:
    if row.toml is not None:
        (cwd / "modmsg.toml").write_text(row.toml)
    (cwd / "a-file").write_text("not a directory\n")
    paths = {"file": str(cwd / "a-file"), "deep": _deep_baseline(cwd), "text": _text_baseline(cwd)}
    args = [arg.format(**paths) for arg in row.args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}
    return subprocess.run(
        _command(kind, args), cwd=cwd, env={**clean, **row.env}, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def _assert_one_sentence(done: subprocess.CompletedProcess[str], row: Row, cwd: Path) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("modmsg: "), done.stderr
    assert row.needle in lines[0], lines[0]
    for secret in row.secrets:
        assert secret not in output
    assert "claim" not in output and "conformant" not in output.lower()
    assert not list(cwd.rglob("results.json")) and not list(cwd.rglob("report.html")), "a report was written"


@pytest.mark.parametrize("kind", ["modmsg run", "pytest suites"])
@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_a_wrong_setting_is_one_sentence_and_exit_2(row: Row, kind: str, tmp_path: Path) -> None:
    if kind == "pytest suites" and not row.pytest_too:
        pytest.skip("pytest parses its own command line first: a mistyped option is its usage error, exit 4")
    _assert_one_sentence(_run(kind, row, tmp_path), row, tmp_path)


# ---------------------------------------------------------------------------------------- baselines of other runs


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real results.json of the bundled reference server under the openai profile."""
    root = tmp_path_factory.mktemp("baseline")
    done = run_suite(root / "reports", "--req", "MM-RESP-04")
    assert done.exit_code == 0, done.output
    return root / "reports" / "results.json"


def _with_meta(baseline: Path, directory: Path, **changes: str) -> Path:
    data = json.loads(baseline.read_text(encoding="utf-8"))
    data["meta"].update(changes)
    path = directory / "baseline.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("args", "env", "changes", "needle"),
    [
        (
            ("--base-url", CLOSED),
            KEY,
            {},
            "from another target (bundled reference server, this run: http://127.0.0.1:9",
        ),
        (("--profile", "spec"), {}, {}, "from another profile (openai, this run: spec)"),
        ((), {}, {"suite_version": "0.0.1"}, "from another suite version (0.0.1, this run: "),
    ],
    ids=["target", "profile", "suite-version"],
)
def test_a_baseline_of_another_run_is_refused(baseline, tmp_path, args, env, changes, needle):
    path = _with_meta(baseline, tmp_path, **changes)
    row = Row("baseline", (*args, "--baseline", str(path)), needle, env=env)
    for kind in ("modmsg run", "pytest suites"):
        _assert_one_sentence(_run(kind, row, tmp_path), row, tmp_path)
    if not args:  # once: the unchanged baseline (same target, profile and suite version) is still accepted
        done = run_suite(tmp_path / "again", "--req", "MM-RESP-04", "--baseline", str(baseline))
        assert done.exit_code == 0, done.output
        assert done.results["comparison"]["regressions"] == []


def test_a_wrong_setting_in_the_environment_does_not_hide_the_help(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MODMSG_")}, "MODMSG_TIMEOUT": "nan"}
    for command in (_command("pytest suites", ["--help"]), _command("modmsg run", ["--help"])):
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert "--max-duration" in done.stdout and "Traceback (most recent" not in done.stdout + done.stderr
