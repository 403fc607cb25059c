"""Every setting of a run, read in one place: CLI option > MODMSG_* environment > modmsg.toml > default.

``OPTIONS`` is the single source of truth for option names, environment variables, defaults and help; the
pytest plugin, the ``modmsg`` CLI and the README table are all derived from it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
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
        "Send at most N requests per second (e.g. 5 or 5/s), to spare a shared target's budget; its 429s are "
        "retried after Retry-After either way.",
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


def parse_base_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL {value!r} is not an http(s) URL with a host; use e.g. https://staging.example/v1")
    try:
        parts.port  # noqa: B018 - validates the port number
    except ValueError:
        raise ConfigError(f"base URL {value!r} has an invalid port") from None
    return value.strip().rstrip("/")


def parse_header(value: str) -> tuple[str, str]:
    name, sep, header_value = value.partition(":")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name) or "\n" in header_value:
        raise ConfigError(f"header {value!r} is malformed; write it as 'Name: value'")
    return name, header_value.strip()


def _positive(kind: Callable[[Any], Any], option: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{option} must be a positive number, not {value!r}") from None
        if number <= 0:
            raise ConfigError(f"{option} must be a positive number, not {value!r}")
        return number

    return convert


_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def parse_size(value: Any) -> int:
    """``8388608``, ``512KiB``, ``8MiB`` or ``1MB`` bytes; at least 1 KiB; one sentence on anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", str(value).lower())
    if match is None or match.group(2) not in _SIZE_UNITS:
        raise ConfigError(f"--max-response-size must be a number of bytes (e.g. 8MiB), not {value!r}")
    size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if size < 1024:
        raise ConfigError(f"--max-response-size must be at least 1KiB, not {value!r}")
    return size


def parse_rate_limit(value: Any) -> float:
    """``5``, ``5/s`` or ``2.5/s`` requests per second; one sentence on anything else."""
    text = str(value).strip().lower().replace(" ", "")
    text = text.removesuffix("/s")
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not rate > 0 or rate == float("inf"):
        raise ConfigError(f"--rate-limit must be a positive number of requests per second (e.g. 5/s), not {value!r}")
    return rate


def _non_negative_int(value: Any, option: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigError(f"{option} must be a whole number, 0 or more, not {value!r}")
    return number


def _seed(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--seed must be an integer, not {value!r}") from None


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


def _check_file_values(data: Mapping[str, Any], origin: str) -> dict[str, Any]:
    names = {o.name: o for o in OPTIONS}
    if "api_key" in data:
        raise ConfigError(f"{origin}: keep the API key out of files; set api_key_env to the variable that holds it")
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "headers" and isinstance(value, dict):
            value = [f"{k}: {v}" for k, v in value.items()]
        if names[key].repeatable:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{origin}: {key} must be a list of strings")
            value = tuple(value)
        values[key] = value
    return values


def resolve(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    file: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the run's settings: CLI > environment > config file > default; raise ConfigError on bad input."""
    values = _raw_values(cli or {}, os.environ if env is None else env, file or {})
    environment = os.environ if env is None else env
    api_key = values["api_key"]
    if values["api_key_env"]:
        api_key = environment.get(values["api_key_env"])
        if not api_key:
            raise ConfigError(f"the environment variable {values['api_key_env']} named for the API key is unset")
    base_url = parse_base_url(values["base_url"]) if values["base_url"] else None
    if base_url and not api_key:
        raise ConfigError(
            "no API key for the target: set MODMSG_API_KEY (or --api-key-env VAR naming a variable that holds it)"
        )
    headers = tuple(parse_header(h) for h in values["headers"])
    secret_headers = DEFAULT_SECRET_HEADERS + tuple(h.strip().lower() for h in values["secret_headers"])
    return Settings(
        base_url=base_url,
        api_key=api_key,
        headers=headers,
        secret_headers=secret_headers,
        profile=str(values["profile"]),
        overlay=values["overlay"],
        requirements=tuple(r.upper() for r in values["requirements"]),
        timeout=float(_positive(float, "--request-timeout")(values["timeout"])),
        max_response_size=parse_size(values["max_response_size"]),
        max_duration=float(_positive(float, "--max-duration")(values["max_duration"])),
        rate_limit=None if values["rate_limit"] is None else parse_rate_limit(values["rate_limit"]),
        max_transport_failures=_non_negative_int(values["max_transport_failures"], "--max-transport-failures"),
        max_examples=int(_positive(int, "--max-examples")(values["max_examples"])),
        seed=None if values["seed"] is None else _seed(values["seed"]),
        report_dir=Path(values["report_dir"]),
        baseline=values["baseline"],
        record_requests=Path(values["record_requests"]) if values["record_requests"] else None,
        api_key_env=values["api_key_env"] or None,
    )
