"""Making target data safe to show: visible control characters, no lone surrogates, bounded length.

Everything a target sends (bodies, headers, echoed values) reaches the reports as text. Markup escaping is the
job of each writer (Jinja2 autoescape, ElementTree, the Markdown escaper); this module makes the text itself
readable and legal in every output format: C0/C1 controls (except newline and tab) become visible ``\\xNN``,
bidirectional overrides become visible ``\\uNNNN``, and lone surrogates become U+FFFD.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from modmsg.redaction import INERT_CLASS
from modmsg.wire import loads as bounded_json

REPLACEMENT = "\ufffd"
BODY_CAP = 8192  # characters of one body shown in the HTML report
FIELD_CAP = 8192  # characters of one Expected/Received/detail/curl text
PRETTY_LIMIT = 262_144  # bodies longer than this are shown as sent, without trying to parse them

# What the terminal may not see either (C0 except \t and \n, DEL, C1, lone surrogates, the bidi marks and the
# embedding/override/isolate controls that can make shown text read differently from what was sent: one list, in
# modmsg.redaction), and the two non-characters XML 1.0 forbids.
_UNSAFE = re.compile(f"[{INERT_CLASS}\ufffe\uffff]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return REPLACEMENT
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: Any) -> str:
    """``value`` as text that is safe in HTML, XML 1.0, Markdown and SVG once markup-escaped."""
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\r\n", "\n")
    return _UNSAFE.sub(_visible, text)


def cap(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to ``limit`` characters, and how many characters were cut."""
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit


def shorten(value: Any, limit: int) -> str:
    """One cleaned line of at most ``limit`` characters (whitespace collapsed, an ellipsis when cut)."""
    text = " ".join(clean(value).split())
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def capped(value: Any, limit: int = FIELD_CAP) -> str:
    """Cleaned multi-line text, cut to ``limit`` characters with a visible note when it was longer."""
    text, cut = cap(clean(value), limit)
    return f"{text}\n… [truncated: {cut:,} more characters not shown]" if cut else text


@dataclass(frozen=True)
class Body:
    """A request or response body, ready to show."""

    text: str
    is_json: bool
    note: str  # empty, or why the reader is not seeing all of it


def body(raw: str | None, *, wire_size: int | None = None, limit: int = BODY_CAP) -> Body | None:
    """Pretty-print JSON bodies, clean everything, cap the length, and say when anything is missing."""
    if raw is None:
        return None
    text, is_json = raw, False
    stripped = raw.strip()
    if stripped[:1] in ("{", "[") and len(raw) <= PRETTY_LIMIT:
        try:
            text = json.dumps(bounded_json(raw), indent=2, ensure_ascii=False)  # deep nesting: shown as it came
            is_json = True
        except ValueError:
            pass
    shown, cut = cap(clean(text), limit)
    notes = []
    if cut:
        notes.append(f"truncated: showing {limit:,} of {len(text):,} characters")
    kept = len(raw.encode("utf-8", "replace"))
    if wire_size is not None and wire_size > kept:
        notes.append(f"the suite kept the first {kept:,} of {wire_size:,} bytes received")
    return Body(text=shown, is_json=is_json, note="; ".join(notes))
