"""The report writers: every artefact is well-formed, complete, inert under hostile data, and re-renderable.

Runs are built through the real code path: fabricated TestRecords (with evidence in the exact shape of
``evidence.Exchange.as_dict``) rolled up by ``modmsg.rollup.rollup`` against the real catalogue.
"""

from __future__ import annotations

import http.server
import itertools
import json
import re
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from markdown_it import MarkdownIt

from modmsg.evidence import Exchange
from modmsg.paths import REPO_DIR
from modmsg.report import rerender, write_reports
from modmsg.report.badge import badge_for, render_badge, text_width
from modmsg.report.html import render_html
from modmsg.report.summary import escape, render_summary
from modmsg.report.text import BODY_CAP, body, clean
from modmsg.requirements import Catalogue, Level, load_catalogue
from modmsg.results import Outcome, RunMeta, RunResult
from modmsg.results import TestRecord as Record  # aliased so pytest does not try to collect it
from modmsg.results_file import ResultsError, load_results
from modmsg.rollup import rollup
from modmsg.transport import Transport

ARTEFACTS = {"results.json", "junit.xml", "summary.md", "report.html", "badge.svg"}
SCHEMA = json.loads((REPO_DIR / "docs" / "results.schema.json").read_text(encoding="utf-8"))
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script></textarea>]]><!-- \x00\x1b[31mred\x7f \udcff\ud800 \u202eevil \ufffe"
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# ------------------------------------------------------------------------------------------------- builders


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def openai_ids(catalogue: Catalogue) -> list[str]:
    return [r.id for r in catalogue.for_profile("openai")]


def exchange(
    status: int | None = 200, body_text: str | None = '{"id": "msg_1", "metadata": {"a": "b"}}', **fields: Any
) -> dict[str, Any]:
    """Evidence in the real shape: built by evidence.Exchange itself."""
    values: dict[str, Any] = {
        "method": "POST",
        "url": "http://127.0.0.1:8080/v1/threads/thread_1/messages/msg_1",
        "request_headers": (("Authorization", "[REDACTED]"), ("Content-Type", "application/json")),
        "request_body": '{"metadata": {"a": "b"}}',
        "status": status,
        "response_headers": (("content-type", "application/json"),) if status is not None else (),
        "response_body": body_text if status is not None else None,
        "response_size": len((body_text or "").encode("utf-8", "replace")) if status is not None else 0,
        "elapsed": 0.0123,
        "error": None if status is not None else "connection refused",
    }
    values.update(fields)
    return Exchange(**values).as_dict()


def meta(**overrides: Any) -> RunMeta:
    values: dict[str, Any] = {
        "suite_version": "0.1.0",
        "spec_version": "2.3.0",
        "spec_commit": "0" * 40,
        "spec_sha256": "f" * 64,
        "profile": "openai",
        "product": None,
        "target": "http://127.0.0.1:8080/v1",
        "seed": 1234,
        "max_examples": 25,
        "started": "2026-01-02T03:04:05+00:00",
        "finished": "2026-01-02T03:05:10+00:00",
        "duration": 65.25,
    }
    values.update(overrides)
    return RunMeta(**values)


def passing(req_id: str, index: int = 0) -> Record:
    return Record(
        f"suites/test_area.py::test_{req_id.lower().replace('-', '_')}_{index}",
        (req_id,),
        Outcome.PASS,
        duration=0.05,
        evidence=(exchange(),),
    )


def failing(
    req_id: str,
    *,
    received: str = "200",
    evidence: tuple[dict[str, Any], ...] | None = None,
    title: str = "Unexpected HTTP status",
) -> Record:
    failure = {
        "req": req_id,
        "title": title,
        "expected": "400",
        "received": received,
        "detail": "sent 17 keys",
    }
    return Record(
        f"suites/test_area.py::test_breaks_{req_id.lower().replace('-', '_')}",
        (req_id,),
        Outcome.FAIL,
        failed_req=req_id,
        failure=failure,
        duration=0.2,
        evidence=evidence if evidence is not None else (exchange(), exchange(200)),
    )


def erroring(req_id: str) -> Record:
    return Record(
        f"suites/test_area.py::test_unreachable_{req_id.lower().replace('-', '_')}",
        (req_id,),
        Outcome.ERROR,
        reason="TransportError: POST http://127.0.0.1:9/v1: connection refused",
        evidence=(exchange(None),),
    )


def run_of(
    catalogue: Catalogue,
    records: list[Record],
    *,
    waivers: dict[str, str] | None = None,
    **meta_overrides: Any,
) -> RunResult:
    return rollup(
        catalogue,
        records,
        profile_name=meta_overrides.get("profile", "openai"),
        profile_base="openai",
        waivers=waivers or {},
        meta=meta(**meta_overrides),
    )


def all_pass(catalogue: Catalogue, *, skip: str = "") -> list[Record]:
    return [passing(r) for r in openai_ids(catalogue) if r != skip]


@pytest.fixture
def mixed(catalogue: Catalogue) -> RunResult:
    """A failing run with every state: FAIL, ERROR, WAIVED (observed FAIL), SKIP (spec-only) and PASS."""
    ids = openai_ids(catalogue)
    fail_id, error_id, waived_id = ids[3], ids[12], ids[20]
    records = [passing(r) for r in ids if r not in (fail_id, error_id, waived_id)]
    records += [passing(fail_id), failing(fail_id), erroring(error_id), failing(waived_id)]
    return run_of(catalogue, records, waivers={waived_id: "vendor keeps the legacy 201"})


def write(run: RunResult, directory: Path) -> dict[str, Path]:
    return {p.name: p for p in write_reports(run, directory)}


# ---------------------------------------------------------------------------------------------- HTML checks


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """A strict HTML checker: balanced tags, unique ids, headings, <th scope>, and no active content."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: list[str] = []
        self.headings: list[tuple[int, str]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text_parts: list[str] = []
        self._heading: list[str] | None = None
        self.feed(source)
        self.close()
        if self.stack:
            self.problems.append(f"unclosed: {self.stack}")

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if "id" in attributes:
            self.ids.append(str(attributes["id"]))
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            self.headings.append((int(tag[1]), " ".join("".join(self._heading).split())))
            self._heading = None

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)
        if self._heading is not None:
            self._heading.append(data)

    def count(self, tag: str, **attrs: str | None) -> int:
        return sum(t == tag and all(a.get(k) == v for k, v in attrs.items()) for t, a in self.tags)


def check_page(html: str) -> Page:
    page = Page(html)
    assert page.problems == []
    assert html.startswith("<!DOCTYPE html>")
    assert page.tags[0] == ("html", {"lang": "en"})
    assert [level for level, _ in page.headings].count(1) == 1
    levels = [level for level, _ in page.headings]
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), "a heading level was skipped"
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"
    assert all(a.get("scope") in ("col", "row") for t, a in page.tags if t == "th")
    for tag, attrs in page.tags:
        assert tag not in ("script", "iframe", "object", "embed", "link", "img", "form", "base")
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("href", "src", "action"):
            target = (attrs.get(name) or "#").lstrip().lower()
            assert not target.startswith(("http", "//", "javascript")), attrs
    return page


# -------------------------------------------------------------------------------------------------- tests


def test_write_reports_writes_all_five_artefacts(tmp_path: Path, mixed: RunResult) -> None:
    written = write(mixed, tmp_path / "reports")
    assert set(written) == ARTEFACTS
    assert all(p.parent == tmp_path / "reports" and p.stat().st_size > 0 for p in written.values())


def test_results_json_validates_against_the_schema(tmp_path: Path, mixed: RunResult, catalogue: Catalogue) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for run in (mixed, run_of(catalogue, all_pass(catalogue))):
        data = json.loads(write(run, tmp_path / run.claim.text[:3])["results.json"].read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator(SCHEMA).validate(data)
        assert data == run.as_dict()


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["meta"].update(colour="blue"), "meta"),
        (lambda d: d["requirements"][0].update(outcome="MAYBE"), "outcome"),
        (lambda d: d["requirements"][0].update(level="MUST NOT"), "level"),
        (lambda d: d["claim"].update(level="SHOULD"), "claim"),
        (lambda d: d["requirements"][0]["tests"][0]["evidence"][0].pop("curl"), "curl"),
        (lambda d: d["requirements"][0]["tests"][0].update(reqs=["XX-1"]), "reqs"),
    ],
)
def test_schema_is_strict(mixed: RunResult, mutate: Any, where: str) -> None:
    data = json.loads(json.dumps(mixed.as_dict()))
    data["requirements"].sort(key=lambda r: not r["tests"])  # the first one has a test with evidence
    mutate(data)
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))
    assert errors, f"a change to {where} was accepted"


def test_html_lists_every_requirement_with_the_claim_on_top(tmp_path: Path, mixed: RunResult) -> None:
    html = write(mixed, tmp_path)["report.html"].read_text(encoding="utf-8")
    page = check_page(html)
    assert page.headings[0] == (1, "Modify message conformance report")
    assert mixed.claim.text in page.text
    assert "Claim: NOT CONFORMANT" in page.text  # a text label, never colour alone
    assert html.index(mixed.claim.text) < html.index('id="h-summary"')
    for result in mixed.requirements:
        assert page.ids.count(f"req-{result.id}") == 1
        assert page.count("a", href=f"#req-{result.id}") >= 1
    for word in (
        "openai",
        "http://127.0.0.1:8080/v1",
        "0.1.0",
        "2.3.0",
        "0" * 40,
        "f" * 64,
        "1234",
        "1 min 5 s",
    ):
        assert word in page.text, word
    for state in ("PASS", "FAIL", "ERROR", "SKIP", "WAIVED"):
        assert f"{state}" in page.text
    assert {text for level, text in page.headings if level == 2} == {"Summary", "Requirements"}


def test_html_puts_failures_first_and_expands_only_them(mixed: RunResult) -> None:
    html = render_html(mixed)
    rows = re.findall(r'<tr class="row-(\w+)">', html)
    assert len(rows) == len(mixed.requirements)
    for section in html.split('<section class="area"')[1:]:
        states = re.findall(r'<tr class="row-(\w+)">', section)
        rank = [0 if s == "fail" else 1 if s == "error" else 2 for s in states]
        assert rank == sorted(rank)
    opened = re.findall(r'<details class="req req-(\w+)" id="req-[^"]+" open>', html)
    assert sorted(opened) == ["error", "fail"]
    assert sorted(re.findall(r'<details class="req req-(\w+)" id="req-[^"]+">', html)) == ["waived"]
    quiet = html.split('<details class="req req-quiet">')
    assert len(quiet) == 1 + len(mixed.by_area())  # each area has passed requirements, collapsed together
    assert all('<article class="req-quiet req-pass" id="req-' in part for part in quiet[1:])


def test_html_shows_the_evidence_of_a_failure(mixed: RunResult) -> None:
    page = Page(render_html(mixed))
    text = page.text
    failed = next(r for r in mixed.requirements if r.outcome is Outcome.FAIL)
    for expected in (
        failed.statement,
        failed.source,
        "Unexpected HTTP status",
        "Expected",
        "Received",
        "sent 17 keys",
        "Reproduce with curl",
        "curl -sS -X POST",
        "Authorization: [REDACTED]",
        '"metadata": {\n    "a": "b"',
        "HTTP 200",
        "No response: connection refused",
        "vendor keeps the legacy 201",
        "Observed before the waiver",
    ):
        assert expected in text, expected


def test_html_caps_bodies_with_a_truncation_note(catalogue: Catalogue) -> None:
    req_id = openai_ids(catalogue)[0]
    big = "y" * 100_000
    run = run_of(catalogue, [failing(req_id, evidence=(exchange(500, big, response_size=3_000_000),))])
    text = Page(render_html(run)).text
    assert f"truncated: showing {BODY_CAP:,} of 100,000 characters" in text
    assert "the suite kept the first 100,000 of 3,000,000 bytes received" in text
    assert "y" * BODY_CAP in text and "y" * (BODY_CAP + 1) not in text


def test_junit_has_one_testcase_per_requirement(tmp_path: Path, mixed: RunResult) -> None:
    root = ET.parse(write(mixed, tmp_path)["junit.xml"]).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(mixed.requirements) == int(suite.get("tests", "0"))
    by_id = {case.get("name", "").split()[0]: case for case in cases}
    assert set(by_id) == {r.id for r in mixed.requirements}
    for result in mixed.requirements:
        case = by_id[result.id]
        tag = {"FAIL": "failure", "ERROR": "error", "SKIP": "skipped", "WAIVED": "skipped"}.get(result.outcome.value)
        children = [child.tag for child in case]
        assert children == ([tag] if tag else []), (result.id, children)
        if tag in ("failure", "error"):
            element = case.find(tag)
            assert element is not None
            assert element.get("message", "").startswith(result.id)
            assert result.id in (element.text or "")
    assert suite.get("failures") == "1" and suite.get("errors") == "1"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["claim"] == mixed.claim.text


@pytest.mark.parametrize(
    ("scenario", "message", "colour"),
    [
        ("all-pass", "openai MUST+SHOULD: pass", "#2e8540"),
        ("should-fails", "openai MUST: pass", "#b08800"),
        ("must-fails", "openai: 1/{judged} failing", "#cb2431"),
        ("partial", "openai: partial", "#6a737d"),
        ("partial-should-fails", "openai: partial, 1 failing", "#6a737d"),
        ("waived-must", "openai: not conformant, 1 waived", "#0969da"),
    ],
)
def test_badge_states_the_claim(tmp_path: Path, catalogue: Catalogue, scenario: str, message: str, colour: str) -> None:
    should = next(r.id for r in catalogue.for_profile("openai") if r.level is Level.SHOULD and not r.conditional)
    must = next(r.id for r in catalogue.for_profile("openai") if r.level is Level.MUST and not r.conditional)
    records = {
        "all-pass": all_pass(catalogue),
        "should-fails": [*all_pass(catalogue, skip=should), failing(should)],
        "must-fails": [*all_pass(catalogue, skip=must), failing(must)],
        "partial": all_pass(catalogue, skip=must),
        "partial-should-fails": [*all_pass(catalogue, skip=must), failing(should)],
        "waived-must": [*all_pass(catalogue, skip=must), failing(must)],
    }[scenario]
    run = run_of(catalogue, records, waivers={must: "known deviation"} if scenario == "waived-must" else None)
    message = message.format(judged=sum(r.outcome is not Outcome.SKIP for r in run.requirements))
    written = write(run, tmp_path)
    label = {
        "all-pass": "✔ CONFORMANT (MUST+SHOULD)",
        "should-fails": "✔ CONFORMANT (MUST)",
        "must-fails": "✘ NOT CONFORMANT",
        "waived-must": "⚑ NOT CONFORMANT: 1 WAIVED",
    }.get(scenario, "◐ PARTIAL RUN: NO CLAIM")
    summary = written["summary.md"].read_text(encoding="utf-8")
    assert summary.startswith(f"## Modify message conformance: {label}\n")
    assert f"Claim: {label[2:]}" in Page(written["report.html"].read_text(encoding="utf-8")).text
    svg_path = written["badge.svg"]
    assert svg_path.read_text(encoding="utf-8").startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    root = ET.parse(svg_path).getroot()
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.get("aria-label") == f"modify message: {message}"
    assert root.findtext(f"{SVG}title") == f"modify message: {message}"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts == ["modify message", "modify message", message, message]
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("fill") not in ("#fff", "url(#s)")]
    assert rects[1].get("fill") == colour
    widths = [int(r.get("width", "0")) for r in rects]
    assert sum(widths) == int(root.get("width", "0"))
    assert widths[1] >= text_width(message)


def test_badge_escapes_a_hostile_profile_name(catalogue: Catalogue) -> None:
    run = run_of(catalogue, all_pass(catalogue), profile='ven<dor>&"x\x00')
    root = ET.fromstring(render_badge(badge_for(run)))
    assert root.get("aria-label") == 'modify message: ven<dor>&"x\\x00 MUST+SHOULD: pass'


def test_summary_lists_failures_and_counts(tmp_path: Path, mixed: RunResult) -> None:
    summary = write(mixed, tmp_path)["summary.md"].read_text(encoding="utf-8")
    assert summary.startswith("## Modify message conformance: ✘ NOT CONFORMANT")
    assert f"**Claim:** {escape(mixed.claim.text, 300)}" in summary
    assert "| **All** | " in summary
    bad = [r for r in mixed.requirements if r.outcome in (Outcome.FAIL, Outcome.ERROR)]
    listed = [line for line in summary.splitlines() if line.startswith("- ✘") or line.startswith("- ⚠")]
    assert [line.split()[3] for line in listed] == [r.id for r in bad]
    rendered = MarkdownIt("commonmark").enable("table").render(summary)
    assert "<a " not in rendered and "<table>" in rendered


def test_summary_says_with_what_the_replay_draws_the_same_cases(mixed: RunResult) -> None:
    drawn = replace(mixed, meta=replace(mixed.meta, draws_with=(("python", "3.11.7"), ("hypothesis", "6.170.17"))))
    line = next(line for line in render_summary(drawn).splitlines() if line.startswith("- Replay: "))
    assert line.endswith(" (draws the same cases with Python 3.11.7, Hypothesis 6.170.17)")
    older = replace(mixed, meta=replace(mixed.meta, draws_with=()))  # results written before the field existed
    assert "draws the same cases" not in render_summary(older)


def test_summary_neutralises_markdown_and_html_from_the_target(catalogue: Catalogue) -> None:
    req_id = openai_ids(catalogue)[0]
    title = "<script>x</script> | *bold* [link](http://evil.example) `code` @someone #1 ![i](y)\nsecond line"
    summary = render_summary(run_of(catalogue, [failing(req_id, title=title)]))
    line = next(line for line in summary.splitlines() if req_id in line)
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(summary)
    assert "<script" not in rendered and "<a " not in rendered and "<em>" not in rendered
    assert "<img" not in rendered and "<code>code" not in rendered
    assert "&lt;script&gt;x&lt;/script&gt;" in rendered and "second line" in line
    assert "\n" not in line


def test_hostile_target_data_renders_inert_and_bounded(tmp_path: Path, catalogue: Catalogue) -> None:
    ids = openai_ids(catalogue)
    huge = HOSTILE + "z" * 2_000_000 + HOSTILE
    evidence = (
        exchange(200, HOSTILE, response_headers=(("x-evil", HOSTILE), ("content-type", "text/html"))),
        exchange(500, huge, url="http://127.0.0.1:8080/v1/threads/" + HOSTILE),
        exchange(200, '{"metadata": {"k": "' + HOSTILE.replace("\\", "\\\\").replace('"', '\\"') + '"}}'),
    )
    records = [passing(r) for r in ids[1:]]
    records.append(failing(ids[0], received=HOSTILE, title=HOSTILE, evidence=evidence))
    records.append(
        Record(
            "suites/test_x.py::test_err",
            (ids[1],),
            Outcome.ERROR,
            reason=HOSTILE,
            evidence=(exchange(None, error=HOSTILE),),
        )
    )
    run = run_of(catalogue, records, target="http://" + HOSTILE, product=HOSTILE)
    written = write(run, tmp_path)

    raw = {name: path.read_bytes() for name, path in written.items()}
    # strict decoding: every artefact is valid UTF-8
    texts = {name: data.decode("utf-8") for name, data in raw.items()}
    html = texts["report.html"]
    assert re.search(r"<script|</textarea|<!--|]]>", html, re.IGNORECASE) is None
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\\x00" in html and "\\x1b[31m" in html and "\\x7f" in html and "\\u202e" in html
    assert "\ufffd" in html
    assert re.search("[\x00-\x08\x0b-\x1f\x7f\u202e\ud800-\udfff]", html) is None
    assert len(raw["report.html"]) < 400_000, len(raw["report.html"])
    check_page(html)

    junit = ET.fromstring(raw["junit.xml"])  # would raise on an illegal character
    assert XML_ILLEGAL.search(texts["junit.xml"]) is None
    assert len(junit.findall(".//testcase")) == len(run.requirements)
    assert len(raw["junit.xml"]) < 400_000
    ET.fromstring(raw["badge.svg"])
    summary = texts["summary.md"]  # target data sits in code spans or is escaped: inert once rendered
    assert re.search("[\x00-\x08\x0b-\x1f]", summary) is None
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(summary)
    assert "<script" not in rendered and "<!--" not in rendered and "<a " not in rendered
    assert len(summary) < 20_000

    # results.json is the faithful record: a lone surrogate survives as a JSON escape
    loaded = json.loads(texts["results.json"])
    assert loaded == run.as_dict()
    assert load_results(written["results.json"]).as_dict() == run.as_dict()


def test_rerender_round_trip(tmp_path: Path, mixed: RunResult) -> None:
    results = write(mixed, tmp_path / "run")["results.json"]
    out = rerender(results, tmp_path / "again")
    assert {p.name for p in out} == {"report.html", "summary.md", "badge.svg"}
    assert load_results(results) == RunResult.from_dict(json.loads(results.read_text(encoding="utf-8")))
    html = (tmp_path / "again" / "report.html").read_text(encoding="utf-8")
    assert mixed.claim.text in check_page(html).text
    assert (tmp_path / "again" / "summary.md").read_text(encoding="utf-8") == render_summary(mixed)
    assert (tmp_path / "again" / "badge.svg").read_bytes() == (tmp_path / "run" / "badge.svg").read_bytes()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[]", "expected a JSON object"),
        (b'{"format": "modmsg-results/1"}', "is not modmsg-results/2"),
        (b'{"format": "modmsg-results/2", "meta": {}}', "does not match modmsg-results/2"),
        ("outcome", "does not match modmsg-results/2 at /requirements/0/outcome"),
    ],
)
def test_rerender_rejects_a_malformed_results_file(tmp_path: Path, mixed: RunResult, content: Any, words: str) -> None:
    path = tmp_path / "results.json"
    if content == "outcome":
        data = mixed.as_dict()
        data["requirements"][0]["outcome"] = "MOSTLY\nPASS"
        content = json.dumps(data).encode()
    path.write_bytes(content)
    with pytest.raises(ResultsError) as caught:
        rerender(path, tmp_path / "out")
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert words in message and str(path) in message
    assert "\n" not in message and len(message) < 400
    assert not (tmp_path / "out").exists()


def test_rerender_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="cannot read"):
        rerender(tmp_path / "nope.json", tmp_path / "out")


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """A target that echoes the caller's credentials back, in a header and in the body."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        echoed = self.headers.get("authorization", "")
        payload = json.dumps({"error": {"message": f"bad key {echoed}", "type": "invalid_request_error"}}).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("x-echo", echoed)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_reports_never_reintroduce_a_redacted_secret(
    tmp_path: Path, catalogue: Catalogue, echo_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-modmsg-test-7f3a9c1e5b2d4e6f8a0b"
    monkeypatch.setenv("MODMSG_API_KEY", secret)  # settings-like places the writers never receive
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    transport = Transport(
        base_url=echo_server,
        api_key=secret,
        headers=(("x-api-key", secret),),
        secret_headers=("authorization", "x-api-key"),
    )
    response = transport.request("POST", "/threads/t/messages/m", json={"metadata": {"k": "v"}})
    assert secret in response.text  # the target really echoed it
    evidence = tuple(e.as_dict() for e in transport.recorder.snapshot())
    req_id = openai_ids(catalogue)[0]
    record = Record(
        "suites/test_x.py::test_secret",
        (req_id,),
        Outcome.FAIL,
        failed_req=req_id,
        failure={
            "req": req_id,
            "title": "Unexpected HTTP status",
            "expected": "200",
            "received": transport.redactor.text(response.text),
            "detail": "",
        },
        evidence=evidence,
    )
    written = write(run_of(catalogue, [record]), tmp_path)
    written.update({p.name + ".again": p for p in rerender(written["results.json"], tmp_path / "again")})
    for name, path in written.items():
        content = path.read_text(encoding="utf-8")
        assert secret not in content, name
        assert secret[3:20] not in content, name
    html = written["report.html"].read_text(encoding="utf-8")
    # A request header shows the variable that stands for the secret (as the curl does); an echo is redacted.
    assert "Authorization: Bearer $MODMSG_API_KEY" in html and "x-echo: Bearer [REDACTED]" in html
    assert "bad key Bearer [REDACTED]" in html


def test_clean_makes_control_characters_visible() -> None:
    assert clean("a\tb\nc\r\nd") == "a\tb\nc\nd"
    assert clean("\x00\x1b[31m\x7f\x85") == "\\x00\\x1b[31m\\x7f\\x85"
    assert clean("\udcff\ud800x") == "\ufffd\ufffdx"
    assert clean("\u202egnp.exe \u2066") == "\\u202egnp.exe \\u2066"
    assert clean("\ufffe") == "\\ufffe"
    assert clean(clean("\x00\udcff")) == clean("\x00\udcff")
    assert clean("ünïcødé 😀 — ok") == "ünïcødé 😀 — ok"


def test_body_pretty_prints_json_and_notes_truncation() -> None:
    shown = body('{"b":1,"a":[1,2]}')
    assert shown is not None and shown.is_json and shown.text == '{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ]\n}'
    assert shown.note == ""
    plain = body("not json {", wire_size=10)
    assert plain is not None and not plain.is_json and plain.text == "not json {" and plain.note == ""
    cut = body("x" * 10, limit=4, wire_size=50)
    assert cut is not None and cut.text == "xxxx"
    assert cut.note == "truncated: showing 4 of 10 characters; the suite kept the first 10 of 50 bytes received"
    assert body(None) is None


def test_report_package_reads_results_only() -> None:
    """Architecture: importing every writer pulls in neither checks, the pytest plugin, nor the suites."""
    code = (
        "import sys, modmsg.report, modmsg.report.browser, modmsg.report.console;"
        "bad = sorted(m for m in sys.modules if m.startswith(('modmsg.checks', 'modmsg.plugin', 'suites')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO_DIR,
        env={"PYTHONPATH": str(REPO_DIR), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
