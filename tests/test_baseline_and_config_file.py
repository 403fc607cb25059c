"""Gating on regressions with --baseline, and settings committed in modmsg.toml / [tool.modmsg]."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from helpers import run_suite

from modmsg.config import ConfigError, load_config_file, resolve
from modmsg.reference import Behaviour, start_server

SELECTION = ("--req", "MM-META-06", "--req", "MM-META-05", "--req", "MM-RESP-04")
KEY = {"MODMSG_API_KEY": "sk-baseline"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A passing run on the reference server, and a run on a server that accepts 17 keys."""
    root = tmp_path_factory.mktemp("baseline")
    with start_server(api_key="sk-baseline") as good:
        passing = run_suite(root / "good", "--base-url", good.base_url, *SELECTION, env=KEY)
    # The same URL (a baseline from another target is refused): the broken build is served where the good one was.
    with start_server(api_key="sk-baseline", behaviour=Behaviour(max_keys=17), port=good.port) as bad:
        url = bad.base_url
        failing = run_suite(root / "bad", "--base-url", url, *SELECTION, env=KEY)
        regressed = run_suite(
            root / "regressed",
            "--base-url",
            url,
            *SELECTION,
            "--baseline",
            str(root / "good" / "results.json"),
            env=KEY,
        )
        unchanged = run_suite(
            root / "unchanged", "--base-url", url, *SELECTION, "--baseline", str(root / "bad" / "results.json"), env=KEY
        )
    return passing, failing, regressed, unchanged


def test_a_regression_against_the_baseline_fails_the_run(runs):
    passing, failing, regressed, _ = runs
    assert passing.exit_code == 0 and failing.exit_code == 1
    assert regressed.exit_code == 1
    comparison = regressed.results["comparison"]
    assert comparison["regressions"] == ["MM-META-06"] and comparison["unchanged_failures"] == []
    assert "regressions (1): MM-META-06" in regressed.output


def test_an_unchanged_failure_does_not_fail_the_run_but_is_listed(runs):
    unchanged = runs[3]
    assert unchanged.exit_code == 0, unchanged.output
    assert unchanged.results["comparison"]["unchanged_failures"] == ["MM-META-06"]
    summary = (unchanged.report_dir / "summary.md").read_text()
    assert "Unchanged failures (1): MM-META-06" in summary
    assert "Against baseline" in (unchanged.report_dir / "report.html").read_text()


def test_a_fixed_requirement_is_reported_as_a_fix(tmp_path, runs):
    failing = runs[1]
    port = urlsplit(failing.results["meta"]["target"]).port or 0
    with start_server(api_key="sk-baseline", port=port) as good:
        fixed = run_suite(
            tmp_path,
            "--base-url",
            good.base_url,
            *SELECTION,
            "--baseline",
            str(failing.report_dir / "results.json"),
            env=KEY,
        )
    assert fixed.exit_code == 0 and fixed.results["comparison"]["fixes"] == ["MM-META-06"]


def test_an_unusable_baseline_is_a_usage_error(tmp_path):
    bogus = tmp_path / "baseline.json"
    bogus.write_text(json.dumps({"format": "something else"}))
    done = run_suite(tmp_path, "--baseline", str(bogus))
    assert done.exit_code == 2 and "baseline" in done.output and "Traceback" not in done.output


def test_modmsg_toml_is_read_below_environment_and_cli(tmp_path):
    (tmp_path / "modmsg.toml").write_text(
        'base_url = "http://127.0.0.1:1/v1"\napi_key_env = "VENDOR_KEY"\nmax_examples = 12\n'
        'headers = {"x-portkey-provider" = "openai"}\n'
    )
    file = load_config_file(tmp_path)
    settings = resolve({}, {"VENDOR_KEY": "sk-v", "MODMSG_MAX_EXAMPLES": "30"}, file)
    assert settings.base_url == "http://127.0.0.1:1/v1" and settings.api_key == "sk-v"
    assert settings.max_examples == 30 and settings.headers == (("x-portkey-provider", "openai"),)
    assert resolve({"max_examples": "5"}, {"VENDOR_KEY": "sk-v"}, file).max_examples == 5
    assert resolve({}, {"VENDOR_KEY": "sk-v"}, file).max_examples == 12


def test_pyproject_tool_table_is_read_when_there_is_no_modmsg_toml(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.modmsg]\nprofile = "spec"\n')
    assert load_config_file(tmp_path) == {"profile": "spec"}
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config_file(tmp_path) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('api_key = "sk-secret"\n', "keep the API key out of files"),
        ('colour = "red"\n', "unknown key"),
        ('headers = "x: y"\n', "list of strings"),
        ("base_url = \n", "not valid TOML"),
    ],
)
def test_bad_config_file_is_a_clear_error(tmp_path, text, message):
    (tmp_path / "modmsg.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config_file(tmp_path)
