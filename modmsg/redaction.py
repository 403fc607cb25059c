"""Redaction and inert text: the one place that decides what of a secret, and of a target's bytes, may be shown.

:class:`Redactor` is made once per run from the settings (:meth:`Redactor.from_settings`) and every output path
goes through it: evidence, failure messages, pytest's own reports, the console, every report format, the request
recording, the thread ledger and the probe's messages. It finds, in any text:

* a secret's exact value, and any fragment of it of ``MIN_FRAGMENT`` (12) characters or more (so a repr cut
  mid-key, or a secret straddling a truncation boundary, leaks nothing); secrets shorter than that are matched
  exactly only;
* the same in the text's decoded views: JSON escapes (``\\u0073k-…`` in any mix of ``\\uXXXX``, upper or lower
  hex, and ``\\/``), URL encoding (``%XX`` in either case, ``+`` for a space) and HTML numeric character
  references (``&#115;``, ``&#x73;``), and without NULs (a secret's UTF-16 or UTF-32 bytes read as UTF-8);
* base64 (standard and URL-safe, padded or not) of any text that contains the secret (the key alone,
  ``Bearer KEY``, ``user:KEY`` as in Basic auth): base64 of a substring shows in the base64 of the whole only as
  one of three alignments, so each secret's three shifted encodings are searched, without their unstable ends.

Each match is replaced by ``[REDACTED]`` in the original text (a match in a decoded view replaces the whole
escape sequences it came from). Redaction runs on the full decoded text before anything is cut
(:meth:`Redactor.clip`). Matching is linear: every secret form is indexed by its ``GRAM``-character pieces, and
the text is probed every ``STRIDE`` characters, which any fragment of ``MIN_FRAGMENT`` characters cannot slip
between.

Request header values are redacted by value, never by name, so the suite's own deliberate wrong keys show as
sent; a secret's exact value there becomes a shell variable reference (``Bearer $MODMSG_API_KEY``), which is how
a curl reproducer runs as pasted. :attr:`Redactor.variables` says which variable stands for what.

:func:`inert` makes text safe for a terminal: C0/C1 controls (except newline and tab), bidi controls and lone
surrogates are shown as visible escapes (``\\x1b``, ``\\u202e``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

REDACTED = "[REDACTED]"
MIN_FRAGMENT = 12
"""Fragments of a secret this long or longer are redacted; shorter secrets are matched exactly only."""
GRAM = 4
STRIDE = MIN_FRAGMENT - GRAM + 1
"""The text is probed every STRIDE characters: a fragment of MIN_FRAGMENT characters always holds one probe."""
API_KEY_VARIABLE = "MODMSG_API_KEY"
SECRET_HEADER_PREFIX = "MODMSG_SECRET_"
UPSTREAM_SECRET_HEADER_PREFIX = "MODMSG_UPSTREAM_SECRET_"
_MAX_PLACES = 8  # places of one gram in the secrets that are tried
_MIN_DERIVED = 8  # a base64 form of a short secret is searched only when it is at least this long
_WIDEST_ESCAPE = 8  # characters per character of the widest form matched: \u0073, &#x073;, &#0115;, %73

_JSON_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_IDENTIFIER_CHAR = re.compile(r"[A-Za-z0-9_]")

# C0 except tab and newline, DEL, C1, the bidi marks, embeddings, overrides and isolates, and lone surrogates.
INERT_CLASS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_NOT_INERT = re.compile(f"[{INERT_CLASS}]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """``text`` safe to print on a terminal: every control a target could use (ESC sequences, OSC-8 links, CR,
    NUL, BEL, bidi overrides) and every lone surrogate shown as a visible ``\\xNN`` / ``\\uNNNN`` escape."""
    return _NOT_INERT.sub(_visible, text)


@dataclass(frozen=True)
class Secret:
    """A secret value, the shell variable that stands for it in reproducers, and what it is (for the report)."""

    value: str = field(repr=False)
    variable: str
    meaning: str


def _upstream_secrets(settings: Any) -> tuple[Secret, ...]:
    """The upstream's key (``--upstream-url``), shown in its reproducers as the variable it was read from, and
    its secret ``--upstream-header`` values, each as its own variable (:func:`header_variable`)."""
    found = []
    key = getattr(settings, "upstream_api_key", None)
    if key:
        variable = getattr(settings, "upstream_api_key_env", None) or "MODMSG_UPSTREAM_API_KEY"
        found.append(Secret(key, variable, "the upstream's API key (sent to the upstream as Authorization: Bearer …)"))
    names = {h.lower() for h in getattr(settings, "secret_headers", ())}
    for name, value in getattr(settings, "upstream_headers", ()):
        if name.lower() in names and value:
            found.append(Secret(value, header_variable(name, upstream=True), _header_meaning(name, upstream=True)))
    return tuple(found)


def header_variable(name: str, *, upstream: bool = False) -> str:
    """``X-Secret`` -> ``MODMSG_SECRET_X_SECRET`` (an upstream's: ``MODMSG_UPSTREAM_SECRET_X_SECRET``): the
    variable a secret header's value is shown as. The upstream's are apart, so that pasting both reproducers of
    an attributed failure never sends one side's value to the other."""
    prefix = UPSTREAM_SECRET_HEADER_PREFIX if upstream else SECRET_HEADER_PREFIX
    return prefix + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _header_meaning(name: str, *, upstream: bool) -> str:
    if upstream:
        return f"the value of the upstream's {name} header (sent to the upstream)"
    return f"the value of the {name} header"


def base64_forms(secret: str) -> tuple[str, ...]:
    """The parts of base64 (standard and URL-safe) that any text containing ``secret`` encodes to, one per
    alignment of ``secret`` within 3-byte groups: the encoding without the groups it shares with its neighbours."""
    raw = secret.encode("utf-8", "surrogatepass")
    forms: list[str] = []
    for shift in range(3):
        skip = (3 - shift) % 3  # bytes of the secret in the group it shares with what precedes it
        whole = (len(raw) - skip) // 3 * 3
        if whole <= 0:
            continue
        inner = base64.b64encode(raw[skip : skip + whole]).decode("ascii")
        forms += [inner, inner.replace("+", "-").replace("/", "_")]
    return tuple(dict.fromkeys(forms))


def credential_parts(value: str) -> tuple[str, ...]:
    """The secrets inside a header value: the credentials after an auth scheme (``Bearer K`` -> ``K``), and a
    Basic pair's password (``Basic dXNlcjpwYXNz`` -> ``pass``; a user name is no secret, and a short one such as
    ``user`` would blot out every "user" of the evidence)."""
    scheme, _, credentials = value.strip().partition(" ")
    if not credentials or not scheme.isalpha():
        return ()
    parts = [credentials.strip()]
    if scheme.lower() == "basic":
        try:
            password = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return tuple(parts)
        parts.append(password)
    return tuple(p for p in parts if p)


def _starts(text: str, pattern: re.Pattern[str], convert: Any) -> list[int]:
    """Where each character of ``pattern.sub(convert, text)`` starts in ``text``, and finally ``len(text)``."""
    starts: list[int] = []
    last = 0
    for match in pattern.finditer(text):
        begin = match.start()
        starts.extend(range(last, begin))
        starts.extend([begin] * len(convert(match)))
        last = match.end()
    starts.extend(range(last, len(text) + 1))
    return starts


def _json_escapes(chars: set[str]) -> tuple[str, Any, str]:
    """The JSON escapes (``\\uXXXX`` in either case, ``\\/`` and the like) of ``chars`` (of every printable ASCII
    character, which is quicker to match than a list): a pattern, its decoder and the character it starts with."""
    codes = "|".join(["00[2-7][0-9a-fA-F]"] + [_any_case(f"{ord(c):04x}") for c in sorted(chars) if ord(c) > 0x7F])
    simple = "".join(re.escape(k) for k, v in _JSON_SIMPLE.items() if v in chars)
    parts = ([f"\\\\u(?:{codes})"] if chars else []) + ([f"\\\\[{simple}]"] if simple else [])
    return "|".join(parts), _json_char, "\\"


def _url_escapes(chars: set[str]) -> tuple[str, Any, str]:
    """Percent-escapes of ``chars`` (of every printable ASCII character; either case), and ``+`` when a secret
    holds a space."""
    codes = "|".join(
        ["[2-7][0-9a-fA-F]"] + [_any_case(f"{ord(c):02x}") for c in sorted(chars) if 0x7F < ord(c) < 0x100]
    )
    parts = ([f"%(?:{codes})"] if chars else []) + (["\\+"] if " " in chars else [])
    return "|".join(parts), _url_char, "%+"


def _html_escapes(chars: set[str]) -> tuple[str, Any, str]:
    """Numeric character references of ``chars`` (``&#115;``, ``&#x73;``, leading zeros, either case)."""
    decimal = "|".join(str(ord(c)) for c in sorted(chars))
    hexadecimal = "|".join(_any_case(f"{ord(c):x}") for c in sorted(chars))
    if not decimal:
        return "", _html_char, "&"
    return f"&#(?:0*(?:{decimal})|[xX]0*(?:{hexadecimal}));", _html_char, "&"


def _nul_padding(chars: set[str]) -> tuple[str, Any, str]:
    """NULs, dropped, raw or as shown by ``repr`` (``\\x00``), JSON (``\\u0000``) or a URL (``%00``): a secret's
    UTF-16 or UTF-32 bytes read as UTF-8 (or Latin-1) are its characters with NULs between them, the way a target
    that answers in another encoding than it declares echoes it."""
    return (r"(?:\x00|\\x00|\\u0000|%00)+", _dropped, "\x00\\%") if chars else ("", _dropped, "\x00")


def _dropped(match: re.Match[str]) -> str:
    return ""


def _html_char(match: re.Match[str]) -> str:
    number = match.group()[2:-1]
    return chr(int(number[1:], 16) if number[:1] in "xX" else int(number))


def _any_case(hex_digits: str) -> str:
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in hex_digits)


def _json_char(match: re.Match[str]) -> str:
    text = match.group()
    return chr(int(text[2:], 16)) if text[1] == "u" else _JSON_SIMPLE[text[1]]


def _url_char(match: re.Match[str]) -> str:
    text = match.group()
    return " " if text == "+" else chr(int(text[1:], 16))


class Redactor:
    """Finds every configured secret in text (exact, fragment, JSON-escaped, URL-encoded, HTML references, base64,
    NUL-padded) and replaces it; immutable once made. Its repr names no secret."""

    def __init__(
        self,
        secret_headers: Iterable[str] = (),
        secret_values: Iterable[str] = (),
        named: Iterable[Secret] = (),
    ) -> None:
        self.secret_headers = frozenset(h.lower() for h in secret_headers)
        self.named = tuple(s for s in named if s.value)
        values = [s.value for s in self.named] + [v for v in secret_values if v]
        self.secret_values = tuple(dict.fromkeys(values))
        self.variables: tuple[tuple[str, str], ...] = tuple(dict.fromkeys((s.variable, s.meaning) for s in self.named))
        """(variable, what it stands for) for every secret a reproducer may reference."""
        self._references = sorted(self.named, key=lambda s: -len(s.value))
        long_needles: list[str] = []
        self._short: list[str] = []
        for value in self.secret_values:
            (long_needles if len(value) >= MIN_FRAGMENT else self._short).append(value)
            for form in base64_forms(value):
                if len(form) >= MIN_FRAGMENT and len(value) >= MIN_FRAGMENT:
                    long_needles.append(form)
                elif len(form) >= _MIN_DERIVED:
                    self._short.append(form)
        self._short = sorted(set(self._short), key=len, reverse=True)
        self.reach = _WIDEST_ESCAPE * max([len(n) for n in [*long_needles, *self._short]], default=0)
        """How far past a cut a secret's longest encoded form can reach."""
        self._grams: dict[str, list[tuple[str, int]]] = {}
        for needle in dict.fromkeys(long_needles):
            for offset in range(len(needle) - GRAM + 1):
                places = self._grams.setdefault(needle[offset : offset + GRAM], [])
                if len(places) < _MAX_PLACES:  # a repetitive secret: a few places find every stretch of it
                    places.append((needle, offset))
        self._shortest = min([MIN_FRAGMENT, *(len(n) for n in self._short)]) if self.secret_values else 1 << 62
        chars = {c for needle in [*long_needles, *self._short] for c in needle}
        # In a decoded view only escapes of characters some secret form holds can be part of a match, so only
        # those are decoded.
        self._views = tuple(
            (re.compile(pattern), convert, marker)
            for pattern, convert, marker in (
                _json_escapes(chars),
                _url_escapes(chars),
                _html_escapes(chars),
                _nul_padding(chars),
            )
            if pattern
        )

    # -- construction ------------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        *,
        api_key: str | None,
        headers: Iterable[tuple[str, str]] = (),
        secret_headers: Iterable[str] = (),
        api_key_variable: str | None = None,
        base_url: str | None = None,
        others: Iterable[Secret] = (),
        upstream: bool = False,
    ) -> Redactor:
        """The redactor for a key, extra headers (those named in ``secret_headers`` are secret; ``upstream``: they
        are an upstream's), a base URL (a password in it is secret too) and ``others`` (the upstream's secrets)."""
        names = frozenset(h.lower() for h in secret_headers)
        named = []
        if api_key:
            variable = api_key_variable or API_KEY_VARIABLE
            named.append(Secret(api_key, variable, "the API key (sent as Authorization: Bearer …)"))
        for name, value in headers:
            if name.lower() in names and value:
                named.append(
                    Secret(value, header_variable(name, upstream=upstream), _header_meaning(name, upstream=upstream))
                )
        named += others  # after the target's: a key both share is shown as the target's variable
        extra = [part for secret in named for part in credential_parts(secret.value)]
        if base_url:
            try:
                parts = urlsplit(base_url)
                extra += [parts.password] if parts.password else []
            except ValueError:
                pass
        return cls(names, extra, named)

    @classmethod
    def from_settings(cls, settings: Any, *, api_key: str | None = None) -> Redactor:
        """THE redactor of a run: the key (``api_key`` when the run uses another one, e.g. the bundled server's),
        every secret header, the upstream's included (and the credentials inside its value) and a password in the
        base URL. The upstream pass's (``settings.upstream_side``) names its headers' variables as the upstream's."""
        return cls.build(
            api_key=api_key or settings.api_key,
            headers=settings.headers,
            secret_headers=settings.secret_headers,
            api_key_variable=getattr(settings, "api_key_env", None),
            base_url=settings.base_url,
            others=_upstream_secrets(settings),
            upstream=getattr(settings, "upstream_side", False),
        )

    def __repr__(self) -> str:
        return f"Redactor({len(self.secret_values)} secret value(s), secret headers {sorted(self.secret_headers)})"

    # -- redaction ---------------------------------------------------------------------------------------

    def text(self, value: str) -> str:
        """``value`` with every form of every secret replaced by ``[REDACTED]``."""
        if len(value) < self._shortest:  # decoding only makes text shorter
            return value
        spans = self._spans(value)
        for escape, convert, markers in self._views:
            if not any(map(value.__contains__, markers)):
                continue
            view = escape.sub(convert, value)
            found = self._spans(view) if view != value else []
            if found:  # only now is it worth knowing where each decoded character came from
                starts = _starts(value, escape, convert)
                spans += [(starts[a], starts[b]) for a, b in found]
        return _replace(value, spans) if spans else value

    def clip(self, value: str, limit: int) -> str:
        """Redact, then cut to ``limit`` characters (never the other way round: a cut secret leaks its half)."""
        return self.text(value[: limit + self.reach])[:limit]

    def console(self, value: str) -> str:
        """Redacted and inert: what may be printed on a terminal."""
        return inert(self.text(value))

    def headers(self, headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        """Response headers: a secret header's value by name, every other value (and name) by content."""
        return tuple(
            (self.text(str(name)), REDACTED if str(name).lower() in self.secret_headers else self.text(str(value)))
            for name, value in headers.items()
        )

    def request_headers(self, headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        """Request headers, by value only (a deliberately wrong key is not a secret and shows as sent): a secret's
        exact value becomes its shell variable reference, any other form of it ``[REDACTED]``."""
        return tuple((self.text(str(name)), self.reference(str(value))) for name, value in headers.items())

    def reference(self, value: str) -> str:
        """Every exact secret in ``value`` as ``$VARIABLE`` (``${VARIABLE}`` before a name character), the rest
        redacted: a header value as a reproducer should show it."""
        for secret in self._references:
            if secret.value in value:
                pieces = value.split(secret.value)
                value = pieces[0]
                for piece in pieces[1:]:
                    braced = bool(_IDENTIFIER_CHAR.match(piece[:1]))
                    value += (f"${{{secret.variable}}}" if braced else f"${secret.variable}") + piece
        return self.text(value)

    def _spans(self, view: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        size = len(view)
        grams = self._grams
        if grams and size >= MIN_FRAGMENT:
            covered = -1
            for probe in [p for p in range(0, size - GRAM + 1, STRIDE) if view[p : p + GRAM] in grams]:
                if probe + GRAM <= covered:
                    continue
                best = _longest(view, probe, grams[view[probe : probe + GRAM]])
                if best is not None:
                    spans.append(best)
                    covered = best[1]
        for needle in self._short:
            start = view.find(needle)
            while start >= 0:
                spans.append((start, start + len(needle)))
                start = view.find(needle, start + len(needle))
        return spans


def _longest(view: str, probe: int, candidates: list[tuple[str, int]]) -> tuple[int, int] | None:
    """The longest stretch of ``view`` around ``probe`` that equals a stretch of a needle (at least
    MIN_FRAGMENT long), given where the probed gram sits in each needle."""
    best: tuple[int, int] | None = None
    for needle, offset in candidates:
        left, at = probe, offset
        while left > 0 and at > 0 and view[left - 1] == needle[at - 1]:
            left, at = left - 1, at - 1
        right, at = probe + GRAM, offset + GRAM
        while right < len(view) and at < len(needle) and view[right] == needle[at]:
            right, at = right + 1, at + 1
        if right - left >= MIN_FRAGMENT and (best is None or (right - left, -left) > (best[1] - best[0], -best[0])):
            best = (left, right)  # the longest; of equals the leftmost, so that stretches of a repetitive secret join
    return best


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each of the (possibly overlapping) ``spans`` replaced by one marker."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[str] = []
    last = 0
    for start, end in merged:
        out += [text[last:start], REDACTED]
        last = end
    out.append(text[last:])
    return "".join(out)
