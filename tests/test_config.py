"""Settings: CLI > MODMSG_* environment > default, and one clear sentence for every bad value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modmsg.config import OPTIONS, URL_CONCURRENCY, ConfigError, load_config_file, resolve
from modmsg.deviations import DeviationsError, parse_deviations
from modmsg.profiles import ProfileError, load_profile, parse_profile
from modmsg.requirements import load_catalogue


def test_defaults_start_the_reference_server():
    settings = resolve({}, {})
    assert settings.uses_reference_server
    assert settings.profile == "openai" and settings.max_examples == 100 and settings.report_dir == Path("reports")


def test_cli_beats_environment_beats_default():
    env = {"MODMSG_BASE_URL": "http://127.0.0.1:1/v1", "MODMSG_API_KEY": "env-key", "MODMSG_MAX_EXAMPLES": "7"}
    from_env = resolve({}, env)
    assert from_env.base_url == "http://127.0.0.1:1/v1" and from_env.max_examples == 7 and from_env.api_key == "env-key"
    from_cli = resolve({"base_url": "http://127.0.0.1:2/v1/", "max_examples": "9"}, env)
    assert from_cli.base_url == "http://127.0.0.1:2/v1" and from_cli.max_examples == 9


def test_repeatable_headers_from_cli_and_env():
    assert resolve({"headers": ["x-a: 1", "x-b:  two words "]}, {}).headers == (("x-a", "1"), ("x-b", "two words"))
    assert resolve({}, {"MODMSG_HEADERS": "x-a: 1\nx-b: 2"}).headers == (("x-a", "1"), ("x-b", "2"))


def test_api_key_from_a_named_variable_and_secrets_cover_marked_headers():
    settings = resolve(
        {
            "api_key_env": "VENDOR_KEY",
            "headers": ["x-portkey-api-key: pk-1", "x-vendor-token: vt-2", "x-plain: p"],
            "secret_headers": ["x-vendor-token"],
        },
        {"VENDOR_KEY": "sk-vendor"},
    )
    assert settings.api_key == "sk-vendor"
    assert set(settings.secrets()) == {"sk-vendor", "pk-1", "vt-2"}


@pytest.mark.parametrize(
    ("cli", "env", "message"),
    [
        ({"base_url": "not-a-url"}, {}, "is not an http"),
        ({"base_url": "ftp://example.com/v1"}, {}, "is not an http"),
        ({"base_url": "http://127.0.0.1:99999/v1"}, {"MODMSG_API_KEY": "k"}, "Port out of range"),
        ({"base_url": "http://127.0.0.1:1/v1"}, {}, "no API key"),
        ({"api_key_env": "NOPE"}, {}, "NOPE named for the API key is unset"),
        ({"headers": ["no colon"]}, {}, "'Name: value'"),
        ({"headers": ["bad name: v"]}, {}, "'Name: value'"),
        ({"max_examples": "-3"}, {}, "whole number, 1 or more"),
        ({"timeout": "soon"}, {}, "finite number"),
        ({"seed": "abc"}, {}, "integer"),
    ],
)
def test_bad_settings_are_one_clear_sentence(cli, env, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve(cli, env)
    assert "\n" not in str(info.value)


def test_bundled_profiles_settle_the_open_questions_differently():
    openai, spec = load_profile("openai"), load_profile("spec")
    assert (openai.settings.metadata_mode, spec.settings.metadata_mode) == ("merge", "any")
    assert openai.base == "openai" and spec.base == "spec"


def test_vendor_profile_extends_a_bundled_one(tmp_path):
    path = tmp_path / "vendor.yaml"
    path.write_text("name: acme\nextends: openai\nsettings:\n  metadata_mode: replace\n")
    profile = load_profile(str(path))
    assert profile.name == "acme" and profile.base == "openai"
    assert profile.settings.metadata_mode == "replace" and profile.settings.merged_total_limit is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "extends": "openai", "colour": 1}, "unknown key"),
        ({"name": "x", "extends": "openai", "settings": {"merge": True}}, "unknown setting"),
        ({"name": "x", "extends": "openai", "settings": {"metadata_mode": "sometimes"}}, "must be one of"),
        ({"name": "x", "extends": "openai", "settings": {"check_error_codes": "yes"}}, "must be a bool"),
        ({"name": "x", "extends": "azure"}, "'extends' must name"),
        ({"extends": "openai"}, "'name' is required"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_malformed_profile_is_a_clear_error(data, message):
    with pytest.raises(ProfileError, match=message):
        parse_profile(data, "vendor.yaml")


def test_unknown_profile_name_is_a_clear_error():
    with pytest.raises(ProfileError, match="neither a bundled profile"):
        load_profile("azure")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"waivers": [{"id": "MM-NOPE-01", "reason": "x"}]}, "unknown requirement"),
        ({"waivers": [{"id": "MM-REQ-05", "reason": " "}]}, "needs a reason"),
        ({"waivers": [{"id": "MM-REQ-05"}]}, "exactly 'id' and 'reason'"),
        ({"waivers": "MM-REQ-05"}, "'waivers' list"),
        ({"waivers": [], "extra": 1}, "unknown key"),
    ],
)
def test_malformed_deviations_file_is_a_clear_error(data, message):
    with pytest.raises(DeviationsError, match=message):
        parse_deviations(data, "deviations.yaml", load_catalogue())


def test_requirement_selectors_are_written_as_the_catalogue_writes_them():
    assert resolve({"requirements": ["mm-meta-3", " MM-ERR ", ""]}, {}).requirements == ("MM-META-03", "MM-ERR")


@pytest.mark.parametrize(
    ("cli", "env", "message", "secret"),
    [
        ({"headers": ["x-token: tok-0123456789\nabc"]}, {}, "the value of header x-token", "tok-0123456789"),
        ({"headers": ["Authorization Bearer sk-0123456789"]}, {}, "--header #1 is malformed", "sk-0123456789"),
        ({}, {"MODMSG_API_KEY": "sk-0123456789\r"}, "the API key", "sk-0123456789"),
        ({"api_key_env": "VENDOR"}, {"VENDOR": "sk-\u2603-0123456789"}, "the API key in VENDOR", "0123456789"),
        ({"base_url": "http://me:pw-0123456789@h/v1"}, {"MODMSG_API_KEY": "k"}, "credentials", "pw-0123456789"),
        ({"base_url": "http://h/v1?key=sk-0123456789"}, {"MODMSG_API_KEY": "k"}, "query string", "sk-0123456789"),
    ],
)
def test_a_refused_secret_is_never_repeated(cli, env, message, secret):
    with pytest.raises(ConfigError, match=message) as info:
        resolve(cli, env)
    assert secret not in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timeout = true\n", "timeout must be a number, not true"),
        ("seed = 1.5\n", "seed must be a whole number, not the number 1.5"),
        ('headers = {"x-a" = 5}\n', "headers must be a list of strings or a table of strings, not one holding"),
        ("profile = 3\n", "profile must be a string, not the number 3"),
    ],
)
def test_a_config_file_value_of_the_wrong_type_is_one_sentence(tmp_path, text, message):
    (tmp_path / "modmsg.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config_file(tmp_path)


# Options whose parser refuses a value (--req selectors are judged against the catalogue later, by the plugin).
PARSED = [o for o in OPTIONS if o.kind.what != "a string" and o.name != "requirements"]


@pytest.mark.parametrize("option", PARSED, ids=lambda o: o.name)
def test_an_options_parser_names_the_flag_it_is_declared_with(option):
    with pytest.raises(ConfigError, match=f"^{re.escape(option.flag)} ") as info:
        option.value(["not one value"] if option.repeatable else "nonsense")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.name != "api_key"], ids=lambda o: o.name)
def test_a_config_file_value_is_checked_against_the_kind_its_option_declares(tmp_path, option):
    (tmp_path / "modmsg.toml").write_text(f"{option.name} = true\n")
    with pytest.raises(ConfigError, match=f": {option.name} must be {re.escape(option.kind.what)}, not true$"):
        load_config_file(tmp_path)


def test_settings_have_one_field_per_option_and_take_their_defaults_from_the_options():
    from dataclasses import fields

    from modmsg.config import Settings, default_settings, option_default

    derived = {"upstream_api_key", "concurrency_auto", "upstream_side"}  # upstream_api_key: read from the variable
    # upstream_api_key_env names, never given itself; concurrency_auto: whether --concurrency was auto; upstream_side:
    # the settings are an upstream pass's (Settings.upstream_pass)
    assert {f.name for f in fields(Settings)} == {o.name for o in OPTIONS} | derived
    defaults = default_settings()
    by_rule = {"concurrency": 1}  # "auto", resolved by the rule of the next test (the bundled server: 1)
    for option in OPTIONS:
        expected = by_rule[option.name] if option.name in by_rule else option_default(option.name)
        assert getattr(defaults, option.name) == expected, option.name
    assert option_default("concurrency") is None
    assert default_settings(max_examples=7).max_examples == 7


@pytest.mark.parametrize(
    ("given", "env", "expected"),
    [
        ({}, {}, 1),  # the bundled server, in the suite's own process
        ({"reference_latency_ms": "40"}, {}, URL_CONCURRENCY),  # the bundled server made distant
        ({"base_url": "http://127.0.0.1:9/v1", "api_key": "k"}, {}, URL_CONCURRENCY),
        ({"base_url": "http://127.0.0.1:9/v1", "api_key": "k", "concurrency": "3"}, {}, 3),
        ({"concurrency": "5"}, {}, 5),  # an explicit number wins against the bundled server too
        ({}, {"MODMSG_CONCURRENCY": "AUTO"}, 1),
        ({"base_url": "http://127.0.0.1:9/v1", "api_key": "k"}, {"MODMSG_CONCURRENCY": " auto "}, URL_CONCURRENCY),
    ],
)
def test_concurrency_auto_is_one_against_the_bundled_server_and_more_across_a_wire(given, env, expected):
    assert resolve(given, env, {}).concurrency == expected


@pytest.mark.parametrize(("given", "expected"), [("auto", URL_CONCURRENCY), ("1", 1), ("3", 3)])
def test_the_upstream_pass_decides_auto_concurrency_for_the_upstream(tmp_path, given, expected):
    """The bundled server as target gets 1 from auto; the upstream, across a wire, gets what auto gives a URL. A
    number given stays for both."""
    env = {"UPSTREAM_KEY": "sk-up"}
    settings = resolve(
        {"upstream_url": "http://127.0.0.1:9/v1", "upstream_api_key_env": "UPSTREAM_KEY", "concurrency": given},
        env,
        {},
    )
    assert settings.concurrency == (1 if given == "auto" else expected)
    upstream = settings.upstream_pass(report_dir=tmp_path, seed=1, max_duration=60.0)
    assert upstream.base_url == "http://127.0.0.1:9/v1" and upstream.concurrency == expected


@pytest.mark.parametrize("bad", ["0", "-2", "many", "2.5", "auto8"])
def test_a_bad_concurrency_is_one_sentence_naming_auto(bad):
    with pytest.raises(ConfigError, match=r"^--concurrency must be a whole number, 1 or more, or auto, not '"):
        resolve({"concurrency": bad}, {}, {})


def test_concurrency_in_modmsg_toml_is_a_number_or_auto(tmp_path):
    (tmp_path / "modmsg.toml").write_text('concurrency = "auto"\n', encoding="utf-8")
    assert resolve({}, {}, load_config_file(tmp_path)).concurrency == 1
    (tmp_path / "modmsg.toml").write_text("concurrency = 4\n", encoding="utf-8")
    assert resolve({}, {}, load_config_file(tmp_path)).concurrency == 4
    (tmp_path / "modmsg.toml").write_text("concurrency = 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r'concurrency must be a whole number or "auto", not the number 1\.5$'):
        load_config_file(tmp_path)
