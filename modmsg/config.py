"""Every setting of a run, read in one place: CLI option > MODMSG_* environment > modmsg.toml > default.

``OPTIONS`` is the single source of truth for each option: name, flag, environment variable, default, help, the
parser of its value and its :class:`~modmsg.values.Kind` (its type in modmsg.toml, and whether it repeats). The
pytest plugin, the ``modmsg`` CLI, modmsg.toml and the README table are all derived from it; :func:`resolve` parses
every option with its parser, then applies the rules that tie two options together (the API key).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

from modmsg.values import (
    AUTO,
    HEADER_LINES,
    NUMBER,
    RATE,
    SIZE,
    TEXT,
    TEXTS,
    WHOLE,
    WHOLE_OR_AUTO,
    ConfigError,
    Kind,
    as_given,
    as_text,
    check_header_value,
    optional_base_url,
    output_directory,
    output_file_or_none,
    parse_headers,
    parse_integer,
    parse_latency_ms,
    parse_non_negative_int,
    parse_positive_int,
    parse_positive_int_or_auto,
    parse_rate_limit,
    parse_seconds,
    parse_secret_headers,
    parse_selectors,
    parse_size,
    req_selector,
    text_or_none,
)

__all__ = [
    "OPTIONS",
    "ConfigError",
    "Option",
    "Settings",
    "default_settings",
    "load_config_file",
    "option_default",
    "req_selector",
    "resolve",
]

T = TypeVar("T")

MAX_TIMEOUT = 3600.0
"""--request-timeout bound: past an hour, one exchange is the whole run."""
MAX_DURATION = 7 * 24 * 3600.0
"""--max-duration bound: a week."""
URL_CONCURRENCY = 8
"""``--concurrency auto`` against a URL: the most lanes a stream or a Hypothesis test is drawn in, and about the
connections a browser opens to one host."""
MAX_STEPS = 50
"""--max-steps bound: a sequence's steps also bound its messages, so every listing stays one page of 100."""


def _at_most(number: int, high: int, flag: str) -> int:
    if number > high:
        raise ConfigError(f"{flag} must be at most {high}, not {number}")
    return number


@dataclass(frozen=True)
class Option(Generic[T]):
    """One setting, declared once: the CLI flag and pytest option, its MODMSG_* variable, its modmsg.toml key
    (``name``), its default and help, and ``parse``: the value as given (and the flag, for the sentence) to the
    typed value, or one-sentence :class:`ConfigError`. None (no default, nothing given) stays None."""

    name: str
    flag: str
    env: str
    default: Any
    help: str
    parse: Callable[[Any, str], T]
    kind: Kind = TEXT
    metavar: str = "VALUE"

    @property
    def repeatable(self) -> bool:
        return self.kind.repeatable

    def value(self, given: Any) -> T | None:
        return None if given is None else self.parse(given, self.flag)


OPTIONS: tuple[Option[Any], ...] = (
    Option(
        "base_url",
        "--base-url",
        "MODMSG_BASE_URL",
        None,
        "Target API root, e.g. https://staging.example/v1. Unset: start the bundled reference server.",
        parse=optional_base_url,
        metavar="URL",
    ),
    Option(
        "api_key",
        "--api-key",
        "MODMSG_API_KEY",
        None,
        "Bearer key for the target (prefer the environment variable: arguments show in `ps`).",
        parse=as_given,
        metavar="KEY",
    ),
    Option(
        "api_key_env",
        "--api-key-env",
        "MODMSG_API_KEY_ENV",
        None,
        "Name of an environment variable that holds the key (e.g. OPENAI_API_KEY).",
        parse=text_or_none,
        metavar="VAR",
    ),
    Option(
        "upstream_url",
        "--upstream-url",
        "MODMSG_UPSTREAM_URL",
        None,
        "API root of the upstream the target (a gateway) fronts: every selected requirement is also judged "
        "directly against it, with the same seed, and each gets an attribution (introduced, inherited, masked).",
        parse=optional_base_url,
        metavar="URL",
    ),
    Option(
        "upstream_api_key_env",
        "--upstream-api-key-env",
        "MODMSG_UPSTREAM_API_KEY_ENV",
        None,
        "Name of an environment variable that holds the upstream's key (required with --upstream-url).",
        parse=text_or_none,
        metavar="VAR",
    ),
    Option(
        "headers",
        "--header",
        "MODMSG_HEADERS",
        (),
        "Extra request header 'Name: value' (repeatable; in the env var, one per line).",
        parse=parse_headers,
        kind=HEADER_LINES,
        metavar="'NAME: VALUE'",
    ),
    Option(
        "secret_headers",
        "--secret-header",
        "MODMSG_SECRET_HEADERS",
        (),
        "Header name whose value is redacted from all evidence, besides Authorization, api-key, "
        "x-api-key and x-portkey-api-key (repeatable; comma-separated in the env var).",
        parse=parse_secret_headers,
        kind=TEXTS,
        metavar="NAME",
    ),
    Option(
        "upstream_headers",
        "--upstream-header",
        "MODMSG_UPSTREAM_HEADERS",
        (),
        "Extra request header 'Name: value' of the upstream pass (--upstream-url), in place of the target's "
        "--header ones; redacted like them by --secret-header (repeatable; in the env var, one per line).",
        parse=parse_headers,
        kind=HEADER_LINES,
        metavar="'NAME: VALUE'",
    ),
    Option(
        "profile",
        "--profile",
        "MODMSG_PROFILE",
        "openai",
        "Profile: openai, spec, or the path of a vendor profile file.",
        parse=as_text,
        metavar="PROFILE",
    ),
    Option(
        "overlay",
        "--overlay",
        "MODMSG_OVERLAY",
        None,
        "YAML file of known deviations (waivers) of the product under test.",
        parse=as_given,
        metavar="PATH",
    ),
    Option(
        "requirements",
        "--req",
        "MODMSG_REQ",
        (),
        "Run only these requirements: an id (MM-META-03) or an area (MM-META); repeatable, "
        "comma-separated in the env var.",
        parse=parse_selectors,
        kind=TEXTS,
        metavar="ID",
    ),
    Option(
        "timeout",
        "--request-timeout",
        "MODMSG_TIMEOUT",
        30.0,
        "Deadline in seconds for each whole exchange: connecting, sending and reading the complete answer.",
        parse=partial(parse_seconds, high=MAX_TIMEOUT),
        kind=NUMBER,
        metavar="SECONDS",
    ),
    Option(
        "max_response_size",
        "--max-response-size",
        "MODMSG_MAX_RESPONSE_SIZE",
        8 * 1024 * 1024,
        "Most bytes read from one response, after decompression (e.g. 8388608, 512KiB or 8MiB); a larger answer "
        "is an ERROR of the exchange with that cause.",
        parse=parse_size,
        kind=SIZE,
        metavar="BYTES",
    ),
    Option(
        "max_duration",
        "--max-duration",
        "MODMSG_MAX_DURATION",
        3600.0,
        "Budget in seconds for the whole run; once spent, the requirements not yet judged are ERROR with that "
        "cause, the reports are written and the run exits 2.",
        parse=partial(parse_seconds, high=MAX_DURATION),
        kind=NUMBER,
        metavar="SECONDS",
    ),
    Option(
        "rate_limit",
        "--rate-limit",
        "MODMSG_RATE_LIMIT",
        None,
        "Send at most N requests per second (e.g. 5 or 5/s; at least one an hour, 0.00028), to spare a shared "
        "target's budget; its 429s are retried after Retry-After either way.",
        parse=parse_rate_limit,
        kind=RATE,
        metavar="N",
    ),
    Option(
        "max_transport_failures",
        "--max-transport-failures",
        "MODMSG_MAX_TRANSPORT_FAILURES",
        5,
        "Stop the run (exit 2) after N tests in a row got no HTTP answer (refused, DNS, timeout, reset, gateway "
        "page); 0 never stops early.",
        parse=parse_non_negative_int,
        kind=WHOLE,
        metavar="N",
    ),
    Option(
        "concurrency",
        "--concurrency",
        "MODMSG_CONCURRENCY",
        AUTO,
        "Send N requests at once within each of: a generated stream's cases, the lanes of the sequences and "
        "metadata tests (at most 8), the error scenarios, handwritten tests run ahead on N - 1 threads, the "
        "cleanup; the verdicts, the first failing case and the evidence are those of --concurrency 1. auto: "
        f"{URL_CONCURRENCY} against --base-url or a distant bundled server, 1 against the bundled server (it runs "
        "in the suite's own process: no wire to wait on, one interpreter lock to share).",
        parse=parse_positive_int_or_auto,
        kind=WHOLE_OR_AUTO,
        metavar="N",
    ),
    Option(
        "reference_latency_ms",
        "--reference-latency-ms",
        "MODMSG_REFERENCE_LATENCY_MS",
        0.0,
        "Make the bundled reference server a distant target: each request answered MS ms late, the first of each "
        "new connection 2*MS ms late (for measuring; no effect with --base-url).",
        parse=parse_latency_ms,
        kind=NUMBER,
        metavar="MS",
    ),
    Option(
        "max_examples",
        "--max-examples",
        "MODMSG_MAX_EXAMPLES",
        100,
        "Generated modify requests per generation mode (positive and negative).",
        parse=parse_positive_int,
        kind=WHOLE,
        metavar="N",
    ),
    Option(
        "max_sequences",
        "--max-sequences",
        "MODMSG_MAX_SEQUENCES",
        40,
        "Generated sequences of sibling calls judged against the model (MM-SEQ), per round; 0 draws none and "
        "leaves MM-SEQ unjudged.",
        parse=parse_non_negative_int,
        kind=WHOLE,
        metavar="N",
    ),
    Option(
        "max_steps",
        "--max-steps",
        "MODMSG_MAX_STEPS",
        10,
        f"Most steps in one generated sequence (1 to {MAX_STEPS}); each step sends its call and at most a few reads.",
        parse=lambda value, flag: _at_most(parse_positive_int(value, flag), MAX_STEPS, flag),
        kind=WHOLE,
        metavar="N",
    ),
    Option(
        "seed",
        "--seed",
        "MODMSG_SEED",
        None,
        "Seed for generated requests; the same seed replays the same requests.",
        parse=parse_integer,
        kind=WHOLE,
        metavar="N",
    ),
    Option(
        "baseline",
        "--baseline",
        "MODMSG_BASELINE",
        None,
        "A previous results.json: the run then fails only on requirements that passed there and fail now.",
        parse=as_given,
        metavar="PATH",
    ),
    Option(
        "record_requests",
        "--record-requests",
        "MODMSG_RECORD_REQUESTS",
        None,
        "Write every request the suite sends to this file as JSON lines, secrets redacted (for `make bench`'s "
        "replay; under xdist one file per worker).",
        parse=output_file_or_none,
        metavar="PATH",
    ),
    Option(
        "report_dir",
        "--report-dir",
        "MODMSG_REPORT_DIR",
        "reports",
        "Directory the reports are written to.",
        parse=output_directory,
        metavar="DIR",
    ),
    Option(
        "sign_key",
        "--sign-key",
        "MODMSG_SIGN_KEY",
        None,
        "Ed25519 private key (PEM, unencrypted) that signs the run's claim record: claim.json.sig beside the "
        "reports, checked by `modmsg verify DIR --public-key PATH`.",
        parse=text_or_none,
        metavar="PATH",
    ),
)


@dataclass(frozen=True)
class Settings:
    """The run's parsed settings, one field per option of ``OPTIONS`` (and no default of its own: the defaults are
    the options'; :func:`default_settings` builds a run's settings from them)."""

    base_url: str | None
    api_key: str | None
    api_key_env: str | None
    """The variable the key was read from (``--api-key-env``); reproducers reference it. None: MODMSG_API_KEY."""
    headers: tuple[tuple[str, str], ...]
    secret_headers: tuple[str, ...]
    profile: str
    overlay: str | None
    requirements: tuple[str, ...]
    timeout: float
    max_response_size: int
    max_duration: float
    rate_limit: float | None
    max_transport_failures: int
    concurrency: int
    reference_latency_ms: float
    max_examples: int
    max_sequences: int
    max_steps: int
    seed: int | None
    baseline: str | None
    record_requests: Path | None
    report_dir: Path
    sign_key: str | None
    """The private key file that signs the claim record; neither the key nor its path goes into any artefact."""
    upstream_url: str | None
    """The upstream the target fronts (``--upstream-url``): the run judges every requirement against it too."""
    upstream_api_key_env: str | None
    upstream_api_key: str | None
    """The upstream's key, read from the variable ``upstream_api_key_env`` names; a secret like the target's."""
    upstream_headers: tuple[tuple[str, str], ...]
    """The upstream pass's ``headers`` (``--upstream-header``): the target's stay with the target."""
    concurrency_auto: bool = False
    """``--concurrency`` was ``auto`` (``concurrency`` is what it gave this target): the upstream pass decides anew."""
    upstream_side: bool = False
    """These are the upstream pass's settings (:meth:`upstream_pass`): its secret headers are the upstream's."""

    def __repr__(self) -> str:  # the dataclass repr would show the key and every secret header's value
        shown = dict(vars(self))
        shown["api_key"] = "[REDACTED]" if self.api_key else None
        shown["upstream_api_key"] = "[REDACTED]" if self.upstream_api_key else None
        for name in ("headers", "upstream_headers"):
            shown[name] = tuple((k, "[REDACTED]" if k.lower() in self.secret_headers else v) for k, v in shown[name])
        return "Settings(" + ", ".join(f"{name}={value!r}" for name, value in shown.items()) + ")"

    @property
    def uses_reference_server(self) -> bool:
        return self.base_url is None

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in any artefact."""
        values = [key for key in (self.api_key, self.upstream_api_key) if key]
        values += [v for k, v in (*self.headers, *self.upstream_headers) if k.lower() in self.secret_headers]
        return tuple(v for v in values if v)

    def upstream_pass(self, *, report_dir: Path, seed: int | None, max_duration: float) -> Settings:
        """The settings of the pass straight against the upstream: the same selection, profile, overlay and seed,
        the upstream's URL, key and headers (the target's stay with the target), and no baseline or recording."""
        return dataclasses.replace(
            self,
            base_url=self.upstream_url,
            api_key=self.upstream_api_key,
            api_key_env=self.upstream_api_key_env,
            headers=self.upstream_headers,
            upstream_headers=(),
            upstream_side=True,
            upstream_url=None,
            upstream_api_key=None,
            upstream_api_key_env=None,
            baseline=None,
            record_requests=None,
            report_dir=report_dir,
            seed=seed,
            max_duration=max_duration,
            concurrency=auto_concurrency(self.upstream_url, 0.0) if self.concurrency_auto else self.concurrency,
        )


def _raw_values(cli: Mapping[str, Any], env: Mapping[str, str], file: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for option in OPTIONS:
        given = cli.get(option.name)
        if given not in (None, (), []):
            values[option.name] = tuple(given) if option.repeatable else given
        elif env.get(option.env):
            raw = env[option.env]
            values[option.name] = _split(raw, option.kind.separator) if option.repeatable else raw
        elif option.name in file:
            values[option.name] = file[option.name]
        else:
            values[option.name] = option.default
    return values


def _split(raw: str, separator: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(separator) if item.strip())


CONFIG_FILE = "modmsg.toml"


def load_config_file(directory: Path) -> dict[str, Any]:
    """Settings a vendor commits: ``modmsg.toml``, else ``[tool.modmsg]`` in ``pyproject.toml``; {} when neither."""
    for name, table in ((CONFIG_FILE, None), ("pyproject.toml", "modmsg")):
        path = directory / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        if table is not None:
            data = data.get("tool", {}).get(table)
            if data is None:
                continue
        return _check_file_values(data, f"{path}" + (f" [tool.{table}]" if table else ""))
    return {}


def _check_file_values(data: Mapping[str, Any], origin: str) -> dict[str, Any]:
    names = {o.name: o for o in OPTIONS}
    if "api_key" in data:
        raise ConfigError(f"{origin}: keep the API key out of files; set api_key_env to the variable that holds it")
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}")
    return {key: names[key].kind.from_file(key, value, origin) for key, value in data.items()}


def _api_key(values: Mapping[str, Any], environment: Mapping[str, str]) -> str | None:
    """The key from --api-key/MODMSG_API_KEY or the variable --api-key-env names; checked, never echoed."""
    variable = values["api_key_env"]
    if not variable:
        api_key, where = values["api_key"], "the API key (--api-key or MODMSG_API_KEY)"
    else:
        api_key, where = environment.get(variable), f"the API key in {variable}"
        if not api_key:
            raise ConfigError(f"the environment variable {variable} named for the API key is unset")
    if api_key:
        check_header_value(api_key, where)
    return api_key


def _upstream_api_key(values: Mapping[str, Any], environment: Mapping[str, str]) -> str | None:
    """The upstream's key, from the variable --upstream-api-key-env names: never a command-line value."""
    if not values["upstream_url"]:
        return None
    variable = values["upstream_api_key_env"]
    if not variable:
        raise ConfigError(
            "no API key for the upstream: set --upstream-api-key-env (or MODMSG_UPSTREAM_API_KEY_ENV) to the "
            "name of the environment variable that holds it"
        )
    api_key = environment.get(variable)
    if not api_key:
        raise ConfigError(f"the environment variable {variable} named for the upstream's API key is unset")
    check_header_value(api_key, f"the upstream's API key in {variable}")
    return api_key


def resolve(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    file: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the run's settings: CLI > environment > config file > default; raise ConfigError on bad input."""
    environment = os.environ if env is None else env
    given = _raw_values(cli or {}, environment, file or {})
    values: dict[str, Any] = {option.name: option.value(given[option.name]) for option in OPTIONS}
    values["api_key"] = _api_key(values, environment)
    values["upstream_api_key"] = _upstream_api_key(values, environment)
    values["concurrency_auto"] = values["concurrency"] is None
    if values["concurrency_auto"]:
        values["concurrency"] = auto_concurrency(values["base_url"], values["reference_latency_ms"])
    if values["base_url"] and not values["api_key"]:
        raise ConfigError(
            "no API key for the target: set MODMSG_API_KEY (or --api-key-env VAR naming a variable that holds it)"
        )
    return Settings(**values)


def auto_concurrency(base_url: str | None, reference_latency_ms: float) -> int:
    """``--concurrency auto``: concurrency hides the wire's latency, so a target across a wire (a URL, or the bundled
    server made distant) gets ``URL_CONCURRENCY``; the bundled server itself gets 1: it answers from a thread of
    the suite's own process, so there is no latency to hide and more threads only contend for one interpreter lock
    (measured in bench/RESULTS.md; the verdicts are the same at any concurrency)."""
    return URL_CONCURRENCY if base_url or reference_latency_ms else 1


def option_default(name: str) -> Any:
    """The parsed default of the option ``name``: what a run uses when nothing sets it."""
    option = next(option for option in OPTIONS if option.name == name)
    return option.value(option.default)


def default_settings(**changes: Any) -> Settings:
    """The settings of a run nothing configures (every option's default), with ``changes`` applied as given."""
    return replace(resolve({}, {}, {}), **changes)
