"""``modmsg verify DIR``: does a published bundle still say what its run found?

Four checks, each discrepancy one sentence: the manifest (SHA256SUMS) holds for every artefact and lists every
one; results.json is a valid results file; the claim record (claim.json) names the reports as they are and says
what results.json says; junit.xml, report.html, summary.md and badge.svg say what results.json says (claim status
and label, one outcome per requirement, counts). So an edit that also rewrote SHA256SUMS is still caught: the
reports, the claim and results.json no longer agree. With a public key, claim.json.sig must be a valid Ed25519
signature of claim.json. A directory that is not there or holds no bundle is :class:`BundleError` (exit 2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modmsg.report import text, view
from modmsg.report.badge import COLOURS, badge_for
from modmsg.report.bundle import (
    CLAIM,
    FAILED,
    MANIFEST,
    PREDICATE_TYPE,
    REPORTS,
    SIGNATURE,
    SPEC_INPUT,
    STATEMENT_TYPE,
    WARNED,
    ids_with,
    modmsg_facts,
    predicate_result,
    sha256_file,
)
from modmsg.report.readback import ReadbackError, read_badge, read_html, read_junit, read_summary
from modmsg.report.summary import MAX_LISTED, escape
from modmsg.results import Outcome, RunResult
from modmsg.results_file import ResultsError, load_results

BUNDLE = (*REPORTS, CLAIM)
"""What every bundle lists in its manifest; a signed one adds claim.json.sig."""
_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")
SHOWN = 80  # characters of a value quoted in a sentence


class BundleError(ValueError):
    """Not a bundle to verify (no such directory, no bundle in it, an unusable public key): exit 2."""


@dataclass(frozen=True)
class Verification:
    problems: tuple[str, ...]  # one sentence per discrepancy; none: the bundle verifies
    listed: tuple[str, ...]  # the artefacts SHA256SUMS lists
    claim: str  # the claim as results.json states it ("" when it could not be read)
    signature: str  # "valid", "not checked" (a signature, no public key), "none" or "invalid"

    @property
    def ok(self) -> bool:
        return not self.problems


def _shown(value: Any) -> str:
    return repr(text.shorten(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), SHOWN))


# ------------------------------------------------------------------------------------------------- manifest


def _manifest(directory: Path, problems: list[str]) -> dict[str, str]:
    """SHA256SUMS as name -> digest; its format problems go to ``problems``."""
    path = directory / MANIFEST
    if not path.is_file():
        problems.append(f"{MANIFEST} is missing, so nothing vouches for the bytes of the artefacts")
        return {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{MANIFEST} cannot be read as text ({exc})")
        return {}
    listed: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        match = _LINE.fullmatch(line)
        if match is None:
            problems.append(f"{MANIFEST} line {number} is not a sha256sum line (digest, two spaces, file name)")
        elif match.group(2) not in (*BUNDLE, SIGNATURE):
            problems.append(f"{MANIFEST} lists {_shown(match.group(2))}, which is no artefact of a modmsg bundle")
        elif match.group(2) in listed:
            problems.append(f"{MANIFEST} lists {match.group(2)} twice")
        else:
            listed[match.group(2)] = match.group(1).lower()
    return listed


def manifest_problems(directory: Path, listed: Mapping[str, str]) -> list[str]:
    problems = []
    for name, digest in listed.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{name} is listed in {MANIFEST} but missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name} does not match its sha256 in {MANIFEST}: its bytes changed after the run")
    for name in (*BUNDLE, SIGNATURE):
        if name in listed:
            continue
        if (directory / name).is_file():
            problems.append(f"{name} is in the directory but not listed in {MANIFEST}")
        elif name != SIGNATURE:
            problems.append(f"{name} is missing" + (f", and {MANIFEST} does not list it either" if listed else ""))
    return problems


# ------------------------------------------------------------------------------------------------- results


def _load_run(directory: Path, problems: list[str]) -> RunResult | None:
    path = directory / "results.json"
    if not path.is_file():
        if not any("results.json" in p for p in problems):
            problems.append("results.json is missing, so nothing states what the run found")
        return None
    try:
        return load_results(path)
    except ResultsError as exc:
        problems.append(f"results.json is not a valid results file: {str(exc).removeprefix(f'{path}: ')}")
    except RecursionError:
        problems.append("results.json is nested too deeply to be a results file")
    return None


def outcome_problems(source: str, said: Mapping[str, str], run: RunResult) -> list[str]:
    """One sentence per requirement whose outcome ``source`` states differently from results.json."""
    problems = []
    for result in run.requirements:
        outcome = said.get(result.id)
        if outcome is None:
            problems.append(f"{source} does not list {result.id}, which results.json has as {result.outcome.value}")
        elif outcome != result.outcome.value:
            shown = outcome if isinstance(outcome, str) and outcome in Outcome.__members__ else _shown(outcome)
            problems.append(f"{source} says {result.id} is {shown}; results.json says {result.outcome.value}")
    known = {r.id for r in run.requirements}
    problems += [f"{source} lists {_shown(i)}, which results.json does not have" for i in sorted(set(said) - known)]
    return problems


def _differs(source: str, what: str, said: Any, expected: Any, verb: str = "is") -> list[str]:
    if said == expected:
        return []
    return [f"{source} says {what} {verb} {_shown(said)}; results.json makes {'them' if verb == 'are' else 'it'} "
            f"{_shown(expected)}"]  # fmt: skip


def _listed_problems(source: str, said: Mapping[str, str], expected: Mapping[str, str], run: RunResult) -> list[str]:
    """The failing requirements a report lists (id -> outcome) against those results.json has."""
    outcomes = {r.id: r.outcome.value for r in run.requirements}
    problems = []
    for req_id, outcome in expected.items():
        if req_id not in said:
            problems.append(f"{source} does not list {req_id} among the failing, which results.json has as {outcome}")
        elif said[req_id] != outcome:
            problems.append(f"{source} lists {req_id} as {_shown(said[req_id])}; results.json says {outcome}")
    for req_id in sorted(said.keys() - expected.keys()):
        has = f"has it as {outcomes[req_id]}" if req_id in outcomes else "does not have it"
        problems.append(f"{source} lists {req_id} among the failing, as {_shown(said[req_id])}; results.json {has}")
    return problems


# ------------------------------------------------------------------------------------------------- claim


def _str(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _descriptors(value: Any) -> dict[str, Any]:
    """A list of in-toto ResourceDescriptors as name -> sha256 (None where one has none)."""
    if not isinstance(value, list):
        return {}
    found = {}
    for descriptor in value:
        if isinstance(descriptor, dict):
            digest = descriptor.get("digest")
            found[_str(descriptor.get("name"))] = digest.get("sha256") if isinstance(digest, dict) else None
    return found


def _claim_record(path: Path) -> dict[str, Any] | str:
    """claim.json as a Statement with the test-result predicate, or one sentence saying why it is not one."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        return f"{CLAIM} is not a JSON document ({text.shorten(exc, SHOWN)})"
    if not isinstance(record, dict) or record.get("_type") != STATEMENT_TYPE:
        return f"{CLAIM} is not an in-toto Statement ({STATEMENT_TYPE})"
    if record.get("predicateType") != PREDICATE_TYPE or not isinstance(record.get("predicate"), dict):
        return f"{CLAIM} does not carry the test-result predicate ({PREDICATE_TYPE})"
    return record


def _subject_problems(directory: Path, record: Mapping[str, Any]) -> list[str]:
    named = _descriptors(record.get("subject"))
    problems = []
    for name in REPORTS:
        path = directory / name
        if name not in named:
            problems.append(f"{CLAIM} does not name {name} among its subjects")
        elif path.is_file() and named[name] != sha256_file(path):
            problems.append(f"{CLAIM} names {name} with another sha256 than the file has: the claim is not about it")
    return problems


def claim_problems(directory: Path, run: RunResult) -> list[str]:
    """What claim.json says against results.json (and against the reports it names)."""
    if not (directory / CLAIM).is_file():
        return []  # the manifest check has said so
    record = _claim_record(directory / CLAIM)
    if isinstance(record, str):
        return [record]
    found = _subject_problems(directory, record)
    predicate = record["predicate"]
    facts = predicate.get("modmsg")
    if not isinstance(facts, dict):
        return [*found, f"{CLAIM} has no modmsg facts (predicate.modmsg)"]
    suite = facts.get("suite")
    suite = suite if isinstance(suite, dict) else {}
    expected = modmsg_facts(run, suite.get("commit"), suite.get("modified"))
    said_outcomes = facts.get("outcomes")
    found += outcome_problems(CLAIM, said_outcomes if isinstance(said_outcomes, dict) else {}, run)
    for key, value in expected.items():
        if key != "outcomes":
            found += _differs(CLAIM, f"the {key.replace('_', ' ')}", facts.get(key), value)
    standard = {
        "result": predicate_result(run),
        "passedTests": ids_with(run, (Outcome.PASS,)),
        "warnedTests": ids_with(run, WARNED),
        "failedTests": ids_with(run, FAILED),
    }
    for key, value in standard.items():
        found += _differs(CLAIM, f"predicate.{key}", predicate.get(key), value)
    inputs = _descriptors(predicate.get("configuration"))
    found += _differs(CLAIM, "the spec's sha256", inputs.get(SPEC_INPUT), run.meta.spec_sha256)
    return found


# ------------------------------------------------------------------------------------------------- reports


def junit_problems(path: Path, run: RunResult) -> list[str]:
    facts = read_junit(path)
    counts = view.state_counts(run.requirements)
    expected_counts = {
        "tests": str(len(run.requirements)),
        "failures": str(counts["FAIL"]),
        "errors": str(counts["ERROR"] + counts["BLOCKED"]),
        "skipped": str(counts["SKIP"] + counts["WAIVED"]),
    }
    found = _differs(path.name, "the claim status", facts.status, run.claim.status)
    found += _differs(path.name, "the claim", facts.claim, text.shorten(run.claim.text, 1000))
    for name, value in expected_counts.items():
        found += _differs(path.name, f"the testsuite's {name} count", facts.counts.get(name), value)
    return found + outcome_problems(path.name, facts.outcomes, run)


def html_problems(path: Path, run: RunResult) -> list[str]:
    facts = read_html(path)
    verdict = view.verdict(run)
    found = _differs(path.name, "the claim status", facts.status, verdict.key)
    found += _differs(path.name, "the claim", facts.label, verdict.label)
    found += [f"{path.name} shows {_shown(i)} with two different states" for i in facts.mixed]
    found += outcome_problems(path.name, facts.outcomes, run)
    return found + outcome_problems(f"{path.name}'s own section for each requirement", facts.sections, run)


def summary_problems(path: Path, run: RunResult) -> list[str]:
    facts = read_summary(path)
    failing = view.failing(run)
    listed = tuple((r.id, r.outcome.value) for r in failing[:MAX_LISTED])
    waived = tuple(r.id for r in run.requirements if r.outcome is Outcome.WAIVED)[:MAX_LISTED]
    found = _differs(path.name, "the claim", facts.label, view.verdict(run).label)
    found += _differs(path.name, "the claim's text", facts.claim, escape(run.claim.text, 300))
    counts = view.state_counts(run.requirements)
    found += _differs(path.name, "the counts of the All row", dict(facts.counts), counts, verb="are")
    found += _differs(path.name, "the number of failing requirements", facts.failing_total, len(failing))
    found += _listed_problems(path.name, dict(facts.failing), dict(listed), run)
    found += _differs(path.name, "the number not listed", facts.more, max(0, len(failing) - MAX_LISTED))
    return found + _differs(path.name, "the waived requirements", facts.waived, waived, verb="are")


def badge_problems(path: Path, run: RunResult) -> list[str]:
    facts = read_badge(path)
    badge = badge_for(run)
    words = f"{badge.label}: {badge.message}"
    found = _differs(path.name, "its title", facts.title, words)
    found += _differs(path.name, "its aria-label", facts.aria_label, words)
    return found + _differs(path.name, "its colour", facts.colour, COLOURS[badge.colour])


READERS = {
    "junit.xml": junit_problems,
    "report.html": html_problems,
    "summary.md": summary_problems,
    "badge.svg": badge_problems,
}


def report_problems(directory: Path, run: RunResult) -> list[str]:
    found = []
    for name, check in READERS.items():
        path = directory / name
        if not path.is_file():
            continue  # the manifest check has said so
        try:
            found += check(path, run)
        except ReadbackError as exc:
            found.append(str(exc))
    return found


# ------------------------------------------------------------------------------------------------- signature


def _public_key(path: Path) -> Any:
    from modmsg.report.signing import SigningError, load_public_key

    try:
        return load_public_key(path)
    except SigningError as exc:
        raise BundleError(f"--public-key: {exc}") from None


def signature_check(directory: Path, public_key: Any | None) -> tuple[str, list[str]]:
    signature, claim = directory / SIGNATURE, directory / CLAIM
    if public_key is None:
        return ("not checked" if signature.is_file() else "none"), []
    if not signature.is_file():
        return "none", [f"{SIGNATURE} is missing, so the claim is not signed by the key given"]
    if not claim.is_file():
        return "invalid", []  # the manifest check has said so
    from modmsg.report.signing import signature_problem

    problem = signature_problem(public_key, claim.read_bytes(), signature.read_bytes(), SIGNATURE)
    return ("invalid", [problem]) if problem else ("valid", [])


def verify_bundle(directory: Path, public_key: Path | None = None) -> Verification:
    """Check the bundle in ``directory``; BundleError (one sentence) when there is none to check."""
    if not directory.is_dir():
        raise BundleError(f"{directory} is not a directory")
    if not any((directory / name).is_file() for name in (MANIFEST, CLAIM)):
        raise BundleError(
            f"{directory} holds no claim bundle (no {MANIFEST}, no {CLAIM}); every run writes one beside its reports"
        )
    key = _public_key(public_key) if public_key is not None else None
    problems: list[str] = []
    listed = _manifest(directory, problems)
    problems += manifest_problems(directory, listed)
    run = _load_run(directory, problems)
    if run is not None:
        problems += claim_problems(directory, run)
        problems += report_problems(directory, run)
    signature, found = signature_check(directory, key)
    problems += found
    unique = tuple(dict.fromkeys(problems))
    return Verification(unique, tuple(listed), run.claim.text if run else "", signature)
