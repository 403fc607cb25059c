"""The parsers of setting values: each takes a value as given (CLI, environment or modmsg.toml) and the flag of its
option, and returns the typed value or raises :class:`ConfigError` with one sentence naming the flag and the fix.

``modmsg.config.OPTIONS`` names one parser per option; :class:`Kind` is what modmsg.toml may hold for it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SECRET_HEADERS = ("authorization", "api-key", "x-api-key", "x-portkey-api-key", "proxy-authorization")


class ConfigError(ValueError):
    """A setting is wrong; the message is one sentence naming the setting and the fix."""


def quote(value: Any, limit: int = 80) -> str:
    """A value as it can be shown in one line: its repr (control characters escaped), cut to ``limit``."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _unprintable(text: str) -> bool:
    """Whitespace, control, format (bidi, zero-width) or separator characters."""
    return any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Zs") for c in text)


def _shown_url(url: str) -> str:
    """The URL as a message may show it: no user:password@ (whatever its characters), no query, no fragment."""
    scheme, sep, rest = url.partition("://")
    return quote(f"{scheme}{sep}{rest.rpartition('@')[2]}".split("?", 1)[0].split("#", 1)[0])


def parse_base_url(value: Any) -> str:
    """An http(s) API root with a host and nothing the suite cannot append paths to; one sentence otherwise.

    Credentials in the URL are refused (requests would turn them into Basic auth that replaces the Bearer key and
    the password would reach every artefact), and no message repeats them."""
    if not isinstance(value, str):
        raise ConfigError(f"base URL must be a string such as https://staging.example/v1, not {quote(value)}")
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


def optional_base_url(value: Any, flag: str) -> str | None:
    """``--base-url``: an empty value is none (the bundled reference server)."""
    return parse_base_url(value) if value else None


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def check_header_value(value: str, what: str) -> None:
    """A value HTTP can carry in a header line: Latin-1, no line break or control character (never echoed)."""
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        raise ConfigError(f"{what} contains a line break or control character; remove it")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError(f"{what} has characters outside Latin-1, which an HTTP header cannot carry") from None


def parse_header(value: str, index: int = 1, flag: str = "--header") -> tuple[str, str]:
    """``Name: value``; the sentence on a bad one names the header, never its value (it may be a secret)."""
    name, sep, header_value = value.partition(":")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"{flag} #{index} is malformed; write it as 'Name: value'")
    if not _TOKEN.fullmatch(name):
        raise ConfigError(
            f"{flag} name {quote(name, 40)} is not a valid HTTP header name; write it as 'Name: value' with "
            "letters, digits and !#$%&'*+-.^_`|~ in the name"
        )
    header_value = header_value.strip(" \t")
    check_header_value(header_value, f"the value of header {name}")
    return name, header_value


def parse_headers(values: tuple[str, ...], flag: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_header(value, index, flag) for index, value in enumerate(values, start=1))


def parse_secret_headers(names: tuple[str, ...], flag: str) -> tuple[str, ...]:
    """The header names whose values are secrets: the default ones, then these (lower case)."""
    lowered = tuple(name.strip().lower() for name in names)
    for name in lowered:
        if not _TOKEN.fullmatch(name):
            raise ConfigError(f"{flag} {quote(name, 40)} is not a valid HTTP header name")
    return DEFAULT_SECRET_HEADERS + lowered


def _number(value: Any, flag: str) -> float:
    """A finite number from the CLI, the environment or a TOML number; one sentence otherwise."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ConfigError(f"{flag} must be a finite number, not {quote(value)}")
    return number


def parse_seconds(value: Any, flag: str, high: float) -> float:
    """A finite number of seconds, more than 0 and at most ``high``."""
    seconds = _number(value, flag)
    if not 0 < seconds <= high:
        raise ConfigError(f"{flag} must be more than 0 and at most {high:g} seconds, not {quote(value)}")
    return seconds


def parse_latency_ms(value: Any, flag: str) -> float:
    """Milliseconds of one round trip, 0 (none) to 60000."""
    millis = _number(value, flag)
    if not 0 <= millis <= 60_000:
        raise ConfigError(f"{flag} must be between 0 and 60000 milliseconds, not {quote(value)}")
    return millis


def _whole(value: Any, invalid: int) -> int:
    """``value`` as an integer (text with surrounding space allowed); ``invalid`` for a bool, float or non-number."""
    try:
        return int(str(value).strip()) if not isinstance(value, bool | float) else invalid
    except ValueError:
        return invalid


def parse_positive_int(value: Any, flag: str) -> int:
    number = _whole(value, 0)
    if number <= 0:
        raise ConfigError(f"{flag} must be a whole number, 1 or more, not {quote(value)}")
    return number


AUTO = "auto"
"""The value of an option whose default depends on another (``--concurrency``): resolved by ``config.resolve``."""


def parse_positive_int_or_auto(value: Any, flag: str) -> int | None:
    """A whole number, 1 or more; ``auto`` (any case) gives None: the caller's rule decides."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return None
    try:
        return parse_positive_int(value, flag)
    except ConfigError:
        raise ConfigError(f"{flag} must be a whole number, 1 or more, or {AUTO}, not {quote(value)}") from None


def parse_non_negative_int(value: Any, flag: str) -> int:
    number = _whole(value, -1)
    if number < 0:
        raise ConfigError(f"{flag} must be a whole number, 0 or more, not {quote(value)}")
    return number


def parse_integer(value: Any, flag: str) -> int:
    try:
        return int(str(value).strip()) if not isinstance(value, bool | float) else int("x")
    except ValueError:
        raise ConfigError(f"{flag} must be an integer, not {quote(value)}") from None


_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def parse_size(value: Any, flag: str) -> int:
    """``8388608``, ``512KiB``, ``8MiB`` or ``1MB`` bytes; at least 1 KiB; one sentence on anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", str(value).lower())
    if isinstance(value, bool) or match is None or match.group(2) not in _SIZE_UNITS:
        raise ConfigError(f"{flag} must be a number of bytes (e.g. 8MiB), not {quote(value)}")
    size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if size < 1024:
        raise ConfigError(f"{flag} must be at least 1KiB, not {quote(value)}")
    return size


MIN_RATE = 1 / 3600
"""Slowest --rate-limit: one request per hour. Below it a run would wait for ever between two requests."""


def parse_rate_limit(value: Any, flag: str) -> float:
    """``5``, ``5/s`` or ``2.5/s`` requests per second, at least one per hour; one sentence on anything else."""
    text = str(value).strip().lower().replace(" ", "")
    text = text.removesuffix("/s")
    try:
        rate = float(text) if not isinstance(value, bool) else 0.0
    except ValueError:
        rate = 0.0
    if not rate > 0 or rate == float("inf"):
        raise ConfigError(f"{flag} must be a positive number of requests per second (e.g. 5/s), not {quote(value)}")
    if rate < MIN_RATE:
        raise ConfigError(f"{flag} must be at least one request per hour ({MIN_RATE:.5f}/s), not {quote(value)}")
    return rate


def req_selector(text: str) -> str:
    """A requirement id or area as the catalogue writes it: upper case, a one-digit number zero-padded."""
    return re.sub(r"-(\d)$", r"-0\1", text.strip().upper())


def parse_selectors(values: tuple[str, ...], flag: str) -> tuple[str, ...]:
    """``--req``: ids and areas as the catalogue writes them; empty ones dropped."""
    return tuple(req_selector(value) for value in values if value.strip())


def as_given(value: Any, flag: str) -> Any:
    """A value used as it was given (a text the run reads later, e.g. a path it opens)."""
    return value


def as_text(value: Any, flag: str) -> str:
    return str(value)


def text_or_none(value: Any, flag: str) -> str | None:
    """An empty value is none."""
    return value or None


def check_output_path(path: Path, flag: str, directory: bool) -> None:
    """``path`` can become the directory (or the file) an option names: nothing in the way, no file above it."""
    if path.exists() and path.is_dir() != directory:
        kind = "a file, not a directory" if directory else "a directory, not a file"
        raise ConfigError(f"{flag} {path} is {kind}")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {path} cannot be created: {parent} is a file")
            break


def output_directory(value: Any, flag: str) -> Path:
    path = Path(value)
    check_output_path(path, flag, directory=True)
    return path


def output_file_or_none(value: Any, flag: str) -> Path | None:
    """A file the run writes; an empty value is none."""
    if not value:
        return None
    path = Path(value)
    check_output_path(path, flag, directory=False)
    return path


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {quote(value, 40)}"
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "a table"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class Kind:
    """What an option's value may be in modmsg.toml, and whether the option repeats.

    A repeatable option is a list of strings in the file (or, where ``toml_types`` allows a dict, a table read as
    ``key: value`` lines), a repeated flag on the command line, and ``separator``-separated text in its environment
    variable."""

    toml_types: tuple[type, ...]
    what: str
    """How a sentence names the TOML type, e.g. "a whole number"."""
    repeatable: bool = False
    separator: str = ","

    def fits(self, value: object) -> bool:
        """``value`` has one of the TOML types (a TOML boolean is none of them)."""
        return not isinstance(value, bool) and isinstance(value, self.toml_types)

    def from_file(self, key: str, value: Any, origin: str) -> Any:
        """The value of ``key`` in the file ``origin``, if its TOML type fits (a tuple for a repeatable option)."""
        if not self.fits(value):
            raise ConfigError(f"{origin}: {key} must be {self.what}, not {_describe(value)}")
        if not self.repeatable:
            return value
        if isinstance(value, dict):  # a table, read as header lines
            value = [f"{k}: {v}" if isinstance(v, str) else v for k, v in value.items()]
        for item in value:
            if not isinstance(item, str):
                raise ConfigError(f"{origin}: {key} must be {self.what}, not one holding {_describe(item)}")
        return tuple(value)


TEXT = Kind((str,), "a string")
WHOLE = Kind((int,), "a whole number")
NUMBER = Kind((int, float), "a number")
RATE = Kind((int, float, str), 'a number or a string such as "5/s"')
WHOLE_OR_AUTO = Kind((int, str), f'a whole number or "{AUTO}"')
SIZE = Kind((int, str), 'a number of bytes or a string such as "8MiB"')
TEXTS = Kind((list,), "a list of strings", repeatable=True)
HEADER_LINES = Kind((list, dict), "a list of strings or a table of strings", repeatable=True, separator="\n")
