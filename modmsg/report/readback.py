"""Reading the reports back: what junit.xml, report.html, summary.md and badge.svg each say about a run.

``modmsg verify`` compares these facts with results.json (:mod:`.verify`). Each format is parsed as what it is:
JUnit and SVG with ElementTree, the HTML page with :class:`html.parser.HTMLParser`, summary.md by the lines its
writer produces (a heading, a table row, list items). A file that cannot be parsed is :class:`ReadbackError`,
one sentence.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

SVG = "{http://www.w3.org/2000/svg}"
_ID = re.compile(r"MM-[A-Z]+-\d+")
_FAILING_ITEM = re.compile(r"^- \S+ \*\*([A-Z]+)\*\* (MM-[A-Z]+-\d+) ")
_FAILING_HEAD = re.compile(r"^### Failing requirements \((\d+)\)$")
_MORE = re.compile(r"^- and (\d+) more ")


class ReadbackError(ValueError):
    """A report that cannot be parsed as its format; one sentence."""


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReadbackError(f"{path.name} cannot be read as UTF-8 text ({exc})") from None


def _xml(path: Path) -> ET.Element:
    try:
        return ET.fromstring(_text(path))
    except ET.ParseError as exc:
        raise ReadbackError(f"{path.name} is not well-formed XML ({exc})") from None


@dataclass(frozen=True)
class JunitFacts:
    status: str | None  # the claim_status property
    claim: str | None  # the claim property
    counts: Mapping[str, str]  # the testsuite's tests, failures, errors and skipped attributes
    outcomes: Mapping[str, str]  # requirement id -> outcome, from each testcase


def _case_outcome(case: ET.Element) -> str:
    if case.find("failure") is not None:
        return "FAIL"
    error = case.find("error")
    if error is not None:
        return str(error.get("type") or "ERROR")
    skipped = case.find("skipped")
    if skipped is not None:
        return "WAIVED" if str(skipped.get("message") or "").startswith("WAIVED:") else "SKIP"
    return "PASS"


def read_junit(path: Path) -> JunitFacts:
    root = _xml(path)
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        raise ReadbackError(f"{path.name} has no <testsuite>")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    outcomes: dict[str, str] = {}
    for case in suite.iter("testcase"):
        req_id = str(case.get("name") or "").split(" ", 1)[0]
        outcomes[req_id] = _case_outcome(case)
    counts = {name: str(suite.get(name)) for name in ("tests", "failures", "errors", "skipped")}
    return JunitFacts(properties.get("claim_status"), properties.get("claim"), counts, outcomes)


@dataclass(frozen=True)
class BadgeFacts:
    title: str
    aria_label: str
    colour: str | None  # the fill of the message half


def read_badge(path: Path) -> BadgeFacts:
    root = _xml(path)
    title = root.find(f"{SVG}title")
    shapes = root.find(f"{SVG}g[@clip-path]")
    rects = shapes.findall(f"{SVG}rect") if shapes is not None else []
    return BadgeFacts(
        title=(title.text or "") if title is not None else "",
        aria_label=str(root.get("aria-label") or ""),
        colour=rects[1].get("fill") if len(rects) > 1 else None,
    )


@dataclass
class _Row:
    """One requirement as the page shows it: its id and every state its markup names (class and visible text)."""

    req_id: str = ""
    states: set[str] = field(default_factory=set)


def _suffixed(words: list[str], prefix: str) -> set[str]:
    return {w.removeprefix(prefix).upper() for w in words if w.startswith(prefix) and w != "req-quiet"}


class _ReportPage(HTMLParser):
    """Collects the claim section's status and label, the state of every row of the requirement tables, and the
    state of every requirement's own section (its class and the state in its title)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.status: str | None = None
        self.label: str | None = None
        self.rows: list[_Row] = []
        self.sections: list[_Row] = []
        self._verdict: list[str] | None = None
        self._row: _Row | None = None  # the table row being read
        self._section: _Row | None = None  # the requirement section whose title state is being looked for
        self._capture: str | None = None  # "id" or "state": the text being read
        self._buffer: list[str] = []
        self._depth = 0  # spans opened inside the state span being read
        self._in_matrix = False

    @property
    def _holder(self) -> _Row | None:
        return self._row if self._row is not None else self._section

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        words = (attributes.get("class") or "").split()
        if tag == "section" and "claim" in words:
            self.status = next((w.removeprefix("claim-") for w in words if w.startswith("claim-")), None)
        elif tag == "p" and "verdict" in words:
            self._verdict = []
        elif tag == "table":
            self._in_matrix = "matrix" in words
        elif tag == "tr" and self._in_matrix:
            self._row = _Row(states=_suffixed(words, "row-"))
        elif tag in ("details", "article") and (attributes.get("id") or "").startswith("req-"):
            self._section = _Row(str(attributes["id"]).removeprefix("req-"), _suffixed(words, "req-"))
        elif self._row is not None and tag == "a" and "id" in words:
            self._capture, self._buffer = "id", []
        elif self._capture == "state" and tag == "span":
            self._depth += 1
        elif self._holder is not None and tag == "span" and "state" in words:
            self._holder.states |= _suffixed(words, "state-")
            self._capture, self._buffer, self._depth = "state", [], 0

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._verdict is not None:
            self.label = " ".join("".join(self._verdict).split()).partition("Claim: ")[2] or None
            self._verdict = None
        elif tag == "table":
            self._in_matrix = False
        elif tag == "tr" and self._row is not None:
            if self._row.req_id:
                self.rows.append(self._row)
            self._row = None
        elif self._capture == "state" and tag == "span" and self._depth:
            self._depth -= 1
        elif self._capture == "id" and tag == "a" and self._row is not None:
            self._row.req_id = " ".join("".join(self._buffer).split())
            self._capture = None
        elif self._capture == "state" and tag == "span":
            self._end_state()

    def _end_state(self) -> None:
        text = "".join(self._buffer).split()
        holder = self._holder
        self._capture = None
        if holder is None:
            return
        if text:
            holder.states.add(text[-1])
        if holder is self._section:  # a section's first state is its title's: the rest is evidence
            self.sections.append(holder)
            self._section = None

    def handle_data(self, data: str) -> None:
        if self._verdict is not None:
            self._verdict.append(data)
        if self._capture:
            self._buffer.append(data)


def _states(rows: list[_Row]) -> tuple[dict[str, str], tuple[str, ...]]:
    """id -> state for rows that name one state, and the ids of rows whose markup names several."""
    return {r.req_id: next(iter(r.states)) for r in rows if len(r.states) == 1}, tuple(
        r.req_id for r in rows if len(r.states) != 1
    )


@dataclass(frozen=True)
class HtmlFacts:
    status: str | None  # the claim section's claim-… class
    label: str | None  # the verdict line after "Claim: "
    outcomes: Mapping[str, str]  # from the requirement tables' rows
    sections: Mapping[str, str]  # from each requirement's own section
    mixed: tuple[str, ...]  # requirements whose row or section names two different states


def read_html(path: Path) -> HtmlFacts:
    page = _ReportPage()
    page.feed(_text(path))
    page.close()
    if page.status is None and not page.rows:
        raise ReadbackError(f"{path.name} is not a modmsg report page (no claim section, no requirement table)")
    outcomes, mixed_rows = _states(page.rows)
    sections, mixed_sections = _states(page.sections)
    return HtmlFacts(page.status, page.label, outcomes, sections, tuple(dict.fromkeys(mixed_rows + mixed_sections)))


@dataclass(frozen=True)
class SummaryFacts:
    label: str | None  # the heading's verdict, after its symbol
    claim: str | None  # the **Claim:** line as written (escaped Markdown)
    counts: Mapping[str, int]  # the **All** row: state -> count
    failing: tuple[tuple[str, str], ...]  # (id, outcome) of each listed failing requirement
    failing_total: int  # the number in "### Failing requirements (N)"; 0 without that section
    more: int  # "and N more"
    waived: tuple[str, ...]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _counts(lines: list[str]) -> dict[str, int]:
    header = next((line for line in lines if line.startswith("| Level |")), None)
    total = next((line for line in lines if line.startswith("| **All** |")), None)
    if header is None or total is None:
        return {}
    states = [cell.split()[-1] for cell in _cells(header)[1:-1] if cell]
    values = _cells(total)[1:-1]
    try:
        return {state: int(value) for state, value in zip(states, values, strict=True)}
    except ValueError:
        return {}


def read_summary(path: Path) -> SummaryFacts:
    lines = _text(path).splitlines()
    heading = lines[0] if lines else ""
    if not heading.startswith("## Modify message conformance: "):
        raise ReadbackError(f"{path.name} does not start with the modmsg summary heading")
    label = heading.partition(": ")[2].partition(" ")[2] or None
    claim = next((line.removeprefix("**Claim:** ") for line in lines if line.startswith("**Claim:** ")), None)
    failing = tuple((m.group(2), m.group(1)) for line in lines if (m := _FAILING_ITEM.match(line)))
    total = next((int(m.group(1)) for line in lines if (m := _FAILING_HEAD.match(line))), 0)
    more = next((int(m.group(1)) for line in lines if (m := _MORE.match(line))), 0)
    waived_line = next((line for line in lines if line.startswith("Waived (")), "")
    waived = tuple(_ID.findall(waived_line.partition(": ")[2]))
    return SummaryFacts(label, claim, _counts(lines), failing, total, more, waived)
