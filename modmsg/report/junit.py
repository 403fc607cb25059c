"""JUnit XML with one testcase per requirement, so CI systems list requirement names.

Target data can hold characters XML 1.0 forbids (NUL, ESC, lone surrogates, U+FFFE); ``text.clean`` turns them
into visible escapes before ElementTree (which escapes markup but not these) sees any string.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from modmsg.report import text, view
from modmsg.results import Outcome, RequirementResult, RunResult

MESSAGE_CAP = 500
FAILURE_CAP = 65_536  # characters of one <failure> body; the HTML report and results.json have everything
RESPONSE_CAP = 2048


def _failure_text(result: RequirementResult) -> str:
    lines = [f"{result.id} [{result.level}] {result.statement}", f"source: {result.source}"]
    for test in view.bad_tests(result):
        lines.append(f"\n{test.nodeid}: {test.outcome.value}")
        if test.failure:
            lines += [
                test.failure.get("title", ""),
                f"Expected: {test.failure.get('expected', '')}",
                f"Received: {test.failure.get('received', '')}",
                test.failure.get("detail", ""),
            ]
        if test.reason:
            lines.append(test.reason)
        for exchange in test.evidence[-1:]:
            status = exchange.get("status")
            lines.append(f"Response: {status if status is not None else exchange.get('error') or 'none'}")
            body = text.body(exchange.get("response_body"), limit=RESPONSE_CAP)
            if body is not None:
                lines.append(body.text + (f"\n[{body.note}]" if body.note else ""))
            if exchange.get("curl"):
                lines.append(f"Reproduce: {exchange['curl']}")
    return text.capped("\n".join(str(line) for line in lines if line), FAILURE_CAP)


def _message(result: RequirementResult) -> str:
    return text.shorten(f"{result.id}: {result.reason}{view.attribution_of(result)}", MESSAGE_CAP)


def write_junit(run: RunResult, path: Path) -> Path:
    counts = view.state_counts(run.requirements)
    meta = run.meta
    suite = ET.Element(
        "testsuite",
        name=text.shorten(f"modmsg {meta.profile}: {run.claim.text}", 300),
        tests=str(len(run.requirements)),
        failures=str(counts["FAIL"]),
        errors=str(counts["ERROR"] + counts["BLOCKED"]),
        skipped=str(counts["SKIP"] + counts["WAIVED"]),
        time=f"{meta.duration:.3f}",
        timestamp=text.clean(meta.started),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("claim", run.claim.text),
        ("profile", meta.profile),
        ("claim_status", run.claim.status),
        ("product", view.product(run)),
        ("target", meta.target),
        ("suite_version", meta.suite_version),
        ("spec_version", meta.spec_version),
        ("spec_commit", meta.spec_commit),
        ("seed", "" if meta.seed is None else str(meta.seed)),
        *((("upstream", meta.upstream),) if meta.upstream is not None else ()),
    ):
        ET.SubElement(properties, "property", name=name, value=text.shorten(value, 1000))
    for result in run.requirements:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"modmsg.{result.area}",
            name=text.shorten(f"{result.id} {result.title}", 300),
            time=f"{sum(t.duration for t in result.tests):.3f}",
        )
        if result.attribution is not None:  # a run with --upstream-url: where the verdict comes from
            attributed = ET.SubElement(case, "properties")
            ET.SubElement(attributed, "property", name="attribution", value=result.attribution.value)
            if result.upstream is not None:
                ET.SubElement(attributed, "property", name="upstream_outcome", value=result.upstream.outcome.value)
        if result.outcome is Outcome.FAIL:
            ET.SubElement(case, "failure", message=_message(result), type="FAIL").text = _failure_text(result)
        elif result.outcome in (Outcome.ERROR, Outcome.BLOCKED):
            kind = result.outcome.value
            ET.SubElement(case, "error", message=_message(result), type=kind).text = _failure_text(result)
        elif result.outcome in (Outcome.SKIP, Outcome.WAIVED):
            reason = text.shorten(f"{result.outcome.value}: {result.reason}", MESSAGE_CAP)
            ET.SubElement(case, "skipped", message=reason)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
