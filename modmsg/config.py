"""Every setting of a run, read in one place: CLI option > MODMSG_* environment > modmsg.toml > default.

``OPTIONS`` is the single source of truth for option names, environment variables, defaults and help; the
pytest plugin, the ``modmsg`` CLI and the README table are all derived from it.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SECRET_HEADERS = ("authorization", "api-key", "x-api-key", "x-portkey-api-key", "proxy-authorization")


class ConfigError(ValueError):
    """A setting is wrong; the message is one sentence naming the setting and the fix."""


@dataclass(frozen=True)
class Option:
    name: str
    flag: str
    env: str
    default: Any
    help: str
    repeatable: bool = False
    metavar: str = "VALUE"


OPTIONS: tuple[Option, ...] = (
    Option(
        "base_url",
        "--base-url",
        "MODMSG_BASE_URL",
        None,
        "Target API root, e.g. https://staging.example/v1. Unset: start the bundled reference server.",
        metavar="URL",
    ),
    Option(
        "api_key",
        "--api-key",
        "MODMSG_API_KEY",
        None,
        "Bearer key for the target (prefer the environment variable: arguments show in `ps`).",
        metavar="KEY",
    ),
    Option(
        "api_key_env",
        "--api-key-env",
        "MODMSG_API_KEY_ENV",
        None,
        "Name of an environment variable that holds the key (e.g. OPENAI_API_KEY).",
        metavar="VAR",
    ),
    Option(
        "headers",
        "--header",
        "MODMSG_HEADERS",
        (),
        "Extra request header 'Name: value' (repeatable; in the env var, one per line).",
        repeatable=True,
        metavar="'NAME: VALUE'",
    ),
    Option(
        "secret_headers",
        "--secret-header",
        "MODMSG_SECRET_HEADERS",
        (),
        "Header name whose value is redacted from all evidence, besides Authorization, api-key, "
        "x-api-key and x-portkey-api-key (repeatable; comma-separated in the env var).",
        repeatable=True,
        metavar="NAME",
    ),
    Option(
        "profile",
        "--profile",
        "MODMSG_PROFILE",
        "openai",
        "Profile: openai, spec, or the path of a vendor profile file.",
        metavar="PROFILE",
    ),
    Option(
        "overlay",
        "--overlay",
        "MODMSG_OVERLAY",
        None,
        "YAML file of known deviations (waivers) of the product under test.",
        metavar="PATH",
    ),
    Option(
        "requirements",
        "--req",
        "MODMSG_REQ",
        (),
        "Run only these requirements: an id (MM-META-03) or an area (MM-META); repeatable, "
        "comma-separated in the env var.",
        repeatable=True,
        metavar="ID",
    ),
    Option(
        "timeout",
        "--request-timeout",
        "MODMSG_TIMEOUT",
        30.0,
        "Deadline in seconds for each whole exchange: connecting, sending and reading the complete answer.",
        metavar="SECONDS",
    ),
    Option(
        "max_response_size",
        "--max-response-size",
        "MODMSG_MAX_RESPONSE_SIZE",
        8 * 1024 * 1024,
        "Most bytes read from one response, after decompression (e.g. 8388608, 512KiB or 8MiB); a larger answer "
        "is an ERROR of the exchange with that cause.",
        metavar="BYTES",
    ),
    Option(
        "max_duration",
        "--max-duration",
        "MODMSG_MAX_DURATION",
        3600.0,
        "Budget in seconds for the whole run; once spent, the requirements not yet judged are ERROR with that "
        "cause, the reports are written and the run exits 2.",
        metavar="SECONDS",
    ),
    Option(
        "rate_limit",
        "--rate-limit",
        "MODMSG_RATE_LIMIT",
        None,
        "Send at most N requests per second (e.g. 5 or 5/s; at least one an hour, 0.00028), to spare a shared "
        "target's budget; its 429s are retried after Retry-After either way.",
        metavar="N",
    ),
    Option(
        "max_transport_failures",
        "--max-transport-failures",
        "MODMSG_MAX_TRANSPORT_FAILURES",
        5,
        "Stop the run (exit 2) after N tests in a row got no HTTP answer (refused, DNS, timeout, reset, gateway "
        "page); 0 never stops early.",
        metavar="N",
    ),
    Option(
        "max_examples",
        "--max-examples",
        "MODMSG_MAX_EXAMPLES",
        100,
        "Generated modify requests per generation mode (positive and negative).",
        metavar="N",
    ),
    Option(
        "seed",
        "--seed",
        "MODMSG_SEED",
        None,
        "Seed for generated requests; the same seed replays the same requests.",
        metavar="N",
    ),
    Option(
        "baseline",
        "--baseline",
        "MODMSG_BASELINE",
        None,
        "A previous results.json: the run then fails only on requirements that passed there and fail now.",
        metavar="PATH",
    ),
    Option(
        "record_requests",
        "--record-requests",
        "MODMSG_RECORD_REQUESTS",
        None,
        "Write every request the suite sends to this file as JSON lines, secrets redacted (for `make bench`'s "
        "replay; under xdist one file per worker).",
        metavar="PATH",
    ),
    Option(
        "report_dir",
        "--report-dir",
        "MODMSG_REPORT_DIR",
        "reports",
        "Directory the reports are written to.",
        metavar="DIR",
    ),
)


@dataclass(frozen=True)
class Settings:
    base_url: str | None = None
    api_key: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    secret_headers: tuple[str, ...] = DEFAULT_SECRET_HEADERS
    profile: str = "openai"
    overlay: str | None = None
    requirements: tuple[str, ...] = ()
    timeout: float = 30.0
    max_response_size: int = 8 * 1024 * 1024
    max_duration: float = 3600.0
    rate_limit: float | None = None
    max_transport_failures: int = 5
    max_examples: int = 100
    seed: int | None = None
    report_dir: Path = field(default_factory=lambda: Path("reports"))
    baseline: str | None = None
    record_requests: Path | None = None
    api_key_env: str | None = None
    """The variable the key was read from (``--api-key-env``); reproducers reference it. None: MODMSG_API_KEY."""

    def __repr__(self) -> str:  # the dataclass repr would show the key and every secret header's value
        shown = dict(vars(self))
        shown["api_key"] = "[REDACTED]" if self.api_key else None
        shown["headers"] = tuple((k, "[REDACTED]" if k.lower() in self.secret_headers else v) for k, v in self.headers)
        return "Settings(" + ", ".join(f"{name}={value!r}" for name, value in shown.items()) + ")"

    @property
    def uses_reference_server(self) -> bool:
        return self.base_url is None

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in any artefact."""
        values = [self.api_key] if self.api_key else []
        values += [v for k, v in self.headers if k.lower() in self.secret_headers]
        return tuple(v for v in values if v)


def _quote(value: Any, limit: int = 80) -> str:
    """A value as it can be shown in one line: its repr (control characters escaped), cut to ``limit``."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _unprintable(text: str) -> bool:
    """Whitespace, control, format (bidi, zero-width) or separator characters."""
    return any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Zs") for c in text)


def _shown_url(url: str) -> str:
    """The URL as a message may show it: no user:password@ (whatever its characters), no query, no fragment."""
    scheme, sep, rest = url.partition("://")
    return _quote(f"{scheme}{sep}{rest.rpartition('@')[2]}".split("?", 1)[0].split("#", 1)[0])


def parse_base_url(value: Any) -> str:
    """An http(s) API root with a host and nothing the suite cannot append paths to; one sentence otherwise.

    Credentials in the URL are refused (requests would turn them into Basic auth that replaces the Bearer key and
    the password would reach every artefact), and no message repeats them."""
    if not isinstance(value, str):
        raise ConfigError(f"base URL must be a string such as https://staging.example/v1, not {_quote(value)}")
    text = value.strip()
    shown = _shown_url(text)
    if "@" in text:
        raise ConfigError(
            f"base URL {shown} must not carry credentials (user:password@) or an '@': give the key with "
            "MODMSG_API_KEY, other credentials with --header and --secret-header"
        )
    if _unprintable(text):
        raise ConfigError(f"base URL {shown} contains a space or control character; percent-encode or remove it")
    if "?" in text or "#" in text:
        part = "a query string (?…)" if "?" in text else "a fragment (#…)"
        raise ConfigError(
            f"base URL {shown} has {part}; give the API root alone (paths are appended to it), and send what a "
            "gateway needs with --header"
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - validates the port number
    except ValueError as exc:
        raise ConfigError(f"base URL {shown} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL {shown} is not an http(s) URL with a host; use e.g. https://staging.example/v1")
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        raise ConfigError(f"base URL {shown} has a host name that is not valid") from None
    return text.rstrip("/")


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def check_header_value(value: str, what: str) -> None:
    """A value HTTP can carry in a header line: Latin-1, no line break or control character (never echoed)."""
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        raise ConfigError(f"{what} contains a line break or control character; remove it")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError(f"{what} has characters outside Latin-1, which an HTTP header cannot carry") from None


def parse_header(value: str, index: int = 1) -> tuple[str, str]:
    """``Name: value``; the sentence on a bad one names the header, never its value (it may be a secret)."""
    name, sep, header_value = value.partition(":")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"--header #{index} is malformed; write it as 'Name: value'")
    if not _TOKEN.fullmatch(name):
        raise ConfigError(
            f"--header name {_quote(name, 40)} is not a valid HTTP header name; write it as 'Name: value' with "
            "letters, digits and !#$%&'*+-.^_`|~ in the name"
        )
    header_value = header_value.strip(" \t")
    check_header_value(header_value, f"the value of header {name}")
    return name, header_value


def _number(value: Any, option: str) -> float:
    """A finite number from the CLI, the environment or a TOML number; one sentence otherwise."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ConfigError(f"{option} must be a finite number, not {_quote(value)}")
    return number


MAX_TIMEOUT = 3600.0
"""--request-timeout bound: past an hour, one exchange is the whole run."""
MAX_DURATION = 7 * 24 * 3600.0
"""--max-duration bound: a week."""


def _seconds(value: Any, option: str, high: float) -> float:
    """A finite number of seconds, more than 0 and at most ``high``."""
    seconds = _number(value, option)
    if not 0 < seconds <= high:
        raise ConfigError(f"{option} must be more than 0 and at most {high:g} seconds, not {_quote(value)}")
    return seconds


def _positive_int(value: Any, option: str) -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, bool | float) else 0
    except ValueError:
        number = 0
    if number <= 0:
        raise ConfigError(f"{option} must be a whole number, 1 or more, not {_quote(value)}")
    return number


_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def parse_size(value: Any) -> int:
    """``8388608``, ``512KiB``, ``8MiB`` or ``1MB`` bytes; at least 1 KiB; one sentence on anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", str(value).lower())
    if isinstance(value, bool) or match is None or match.group(2) not in _SIZE_UNITS:
        raise ConfigError(f"--max-response-size must be a number of bytes (e.g. 8MiB), not {_quote(value)}")
    size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if size < 1024:
        raise ConfigError(f"--max-response-size must be at least 1KiB, not {_quote(value)}")
    return size


MIN_RATE = 1 / 3600
"""Slowest --rate-limit: one request per hour. Below it a run would wait for ever between two requests."""


def parse_rate_limit(value: Any) -> float:
    """``5``, ``5/s`` or ``2.5/s`` requests per second, at least one per hour; one sentence on anything else."""
    text = str(value).strip().lower().replace(" ", "")
    text = text.removesuffix("/s")
    try:
        rate = float(text) if not isinstance(value, bool) else 0.0
    except ValueError:
        rate = 0.0
    if not rate > 0 or rate == float("inf"):
        raise ConfigError(
            f"--rate-limit must be a positive number of requests per second (e.g. 5/s), not {_quote(value)}"
        )
    if rate < MIN_RATE:
        raise ConfigError(f"--rate-limit must be at least one request per hour ({MIN_RATE:.5f}/s), not {_quote(value)}")
    return rate


def _non_negative_int(value: Any, option: str) -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, bool | float) else -1
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigError(f"{option} must be a whole number, 0 or more, not {_quote(value)}")
    return number


def _seed(value: Any) -> int:
    try:
        return int(str(value).strip()) if not isinstance(value, bool | float) else int("x")
    except ValueError:
        raise ConfigError(f"--seed must be an integer, not {_quote(value)}") from None


def req_selector(text: str) -> str:
    """A requirement id or area as the catalogue writes it: upper case, a one-digit number zero-padded."""
    return re.sub(r"-(\d)$", r"-0\1", text.strip().upper())


def check_output_path(path: Path, option: str, directory: bool) -> None:
    """``path`` can become the directory (or the file) an option names: nothing in the way, no file above it."""
    if path.exists() and path.is_dir() != directory:
        kind = "a file, not a directory" if directory else "a directory, not a file"
        raise ConfigError(f"{option} {path} is {kind}")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {path} cannot be created: {parent} is a file")
            break


def _split_env(option: Option, raw: str) -> tuple[str, ...]:
    separator = "\n" if option.name == "headers" else ","
    return tuple(item.strip() for item in raw.split(separator) if item.strip())


def _raw_values(cli: Mapping[str, Any], env: Mapping[str, str], file: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for option in OPTIONS:
        given = cli.get(option.name)
        if given not in (None, (), []):
            values[option.name] = tuple(given) if option.repeatable else given
        elif env.get(option.env):
            raw = env[option.env]
            values[option.name] = _split_env(option, raw) if option.repeatable else raw
        elif option.name in file:
            values[option.name] = file[option.name]
        else:
            values[option.name] = option.default
    return values


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


_WHOLE = ((int,), "a whole number")
_NUMBER = ((int, float), "a number")
_FILE_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "timeout": _NUMBER,
    "max_duration": _NUMBER,
    "max_examples": _WHOLE,
    "max_transport_failures": _WHOLE,
    "seed": _WHOLE,
    "rate_limit": ((int, float, str), 'a number or a string such as "5/s"'),
    "max_response_size": ((int, str), 'a number of bytes or a string such as "8MiB"'),
}
"""TOML types of the file keys that are not strings (repeatable keys are lists of strings)."""


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_quote(value, 40)}"
    return {list: "a list", dict: "a table"}.get(type(value), f"a {type(value).__name__}")


def _file_list(key: str, value: Any, origin: str) -> tuple[str, ...]:
    what = "a list of strings" + (" or a table of strings" if key == "headers" else "")
    if key == "headers" and isinstance(value, dict):
        items = [f"{k}: {v}" if isinstance(v, str) else v for k, v in value.items()]
    elif isinstance(value, list):
        items = value
    else:
        raise ConfigError(f"{origin}: {key} must be {what}, not {_describe(value)}")
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{origin}: {key} must be {what}, not one holding {_describe(item)}")
    return tuple(items)


def _file_value(key: str, value: Any, repeatable: bool, origin: str) -> Any:
    if repeatable:
        return _file_list(key, value, origin)
    types, what = _FILE_TYPES.get(key, ((str,), "a string"))
    if isinstance(value, bool) or not isinstance(value, types):
        raise ConfigError(f"{origin}: {key} must be {what}, not {_describe(value)}")
    return value


def _check_file_values(data: Mapping[str, Any], origin: str) -> dict[str, Any]:
    names = {o.name: o for o in OPTIONS}
    if "api_key" in data:
        raise ConfigError(f"{origin}: keep the API key out of files; set api_key_env to the variable that holds it")
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}")
    return {key: _file_value(key, value, names[key].repeatable, origin) for key, value in data.items()}


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


def _secret_header(name: str) -> str:
    name = name.strip().lower()
    if not _TOKEN.fullmatch(name):
        raise ConfigError(f"--secret-header {_quote(name, 40)} is not a valid HTTP header name")
    return name


def resolve(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    file: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the run's settings: CLI > environment > config file > default; raise ConfigError on bad input."""
    values = _raw_values(cli or {}, os.environ if env is None else env, file or {})
    environment = os.environ if env is None else env
    base_url = parse_base_url(values["base_url"]) if values["base_url"] else None
    api_key = _api_key(values, environment)
    if base_url and not api_key:
        raise ConfigError(
            "no API key for the target: set MODMSG_API_KEY (or --api-key-env VAR naming a variable that holds it)"
        )
    headers = tuple(parse_header(h, index) for index, h in enumerate(values["headers"], start=1))
    secret_headers = DEFAULT_SECRET_HEADERS + tuple(_secret_header(h) for h in values["secret_headers"])
    report_dir = Path(values["report_dir"])
    check_output_path(report_dir, "--report-dir", directory=True)
    record_requests = Path(values["record_requests"]) if values["record_requests"] else None
    if record_requests is not None:
        check_output_path(record_requests, "--record-requests", directory=False)
    return Settings(
        base_url=base_url,
        api_key=api_key,
        headers=headers,
        secret_headers=secret_headers,
        profile=str(values["profile"]),
        overlay=values["overlay"],
        requirements=tuple(req_selector(r) for r in values["requirements"] if r.strip()),
        timeout=_seconds(values["timeout"], "--request-timeout", MAX_TIMEOUT),
        max_response_size=parse_size(values["max_response_size"]),
        max_duration=_seconds(values["max_duration"], "--max-duration", MAX_DURATION),
        rate_limit=None if values["rate_limit"] is None else parse_rate_limit(values["rate_limit"]),
        max_transport_failures=_non_negative_int(values["max_transport_failures"], "--max-transport-failures"),
        max_examples=_positive_int(values["max_examples"], "--max-examples"),
        seed=None if values["seed"] is None else _seed(values["seed"]),
        report_dir=report_dir,
        baseline=values["baseline"],
        record_requests=record_requests,
        api_key_env=values["api_key_env"] or None,
    )
