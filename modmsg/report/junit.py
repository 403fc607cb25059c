"""JUnit XML with one testcase per requirement, so CI systems list requirement names."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from modmsg.results import Outcome, RunResult


def _failure_text(result) -> str:
    lines = [f"{result.id} [{result.level}] {result.statement}", f"source: {result.source}"]
    for test in result.tests:
        if test.outcome in (Outcome.FAIL, Outcome.ERROR):
            lines.append(f"\n{test.nodeid}: {test.outcome.value}")
            if test.failure:
                lines += [test.failure.get("title", ""), f"Expected: {test.failure.get('expected', '')}",
                          f"Received: {test.failure.get('received', '')}", test.failure.get("detail", "")]
            if test.reason:
                lines.append(test.reason)
            lines += [e["curl"] for e in test.evidence[-1:]]
    return "\n".join(line for line in lines if line)


def write_junit(run: RunResult, path: Path) -> Path:
    counts = run.counts
    suite = ET.Element(
        "testsuite",
        name=f"modmsg {run.meta.profile}",
        tests=str(len(run.requirements)),
        failures=str(counts.get("FAIL", 0)),
        errors=str(counts.get("ERROR", 0)),
        skipped=str(counts.get("SKIP", 0) + counts.get("WAIVED", 0)),
        time=f"{run.meta.duration:.3f}",
        timestamp=run.meta.started,
    )
    for result in run.requirements:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"modmsg.{result.area}",
            name=f"{result.id} {result.title}",
            time=f"{sum(t.duration for t in result.tests):.3f}",
        )
        if result.outcome is Outcome.FAIL:
            ET.SubElement(case, "failure", message=f"{result.id}: {result.reason}").text = _failure_text(result)
        elif result.outcome is Outcome.ERROR:
            ET.SubElement(case, "error", message=f"{result.id}: {result.reason}").text = _failure_text(result)
        elif result.outcome in (Outcome.SKIP, Outcome.WAIVED):
            ET.SubElement(case, "skipped", message=f"{result.outcome.value}: {result.reason}")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
