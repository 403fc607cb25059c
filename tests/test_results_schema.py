"""docs/results.schema.json and the results dataclasses describe one format: neither can gain a field alone."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from modmsg.paths import REPO_DIR
from modmsg.results import (
    Attribution,
    Claim,
    Comparison,
    Outcome,
    RequirementResult,
    RunMeta,
    RunResult,
    TestRecord,
    UpstreamResult,
)

SCHEMA = json.loads((REPO_DIR / "docs" / "results.schema.json").read_text(encoding="utf-8"))

# Written by every run, but optional in the schema so that a results.json written before the field existed
# (same format, modmsg-results/2) still validates for `modmsg report` and --baseline.
OPTIONAL_FOR_OLDER_FILES = {("meta", "variables"), ("meta", "draws_with"), ("(root)", "comparison")}
# Written only by a run with --upstream-url: a run without one writes exactly what it wrote before.
ONLY_WITH_AN_UPSTREAM = {("meta", "upstream"), ("requirement", "attribution"), ("requirement", "upstream")}

TEST = TestRecord(nodeid="suites/test_x.py::test_y", reqs=("MM-RESP-01",), outcome=Outcome.PASS)
UPSTREAM = UpstreamResult(outcome=Outcome.PASS, reason="", tests=(TEST,))
REQUIREMENT = RequirementResult(
    id="MM-RESP-01",
    title="t",
    level="MUST",
    area="RESP",
    statement="s",
    source="spec",
    outcome=Outcome.PASS,
    tests=(TEST,),
    attribution=Attribution.NONE,
    upstream=UPSTREAM,
)
META = RunMeta(
    suite_version="0",
    spec_version="2.3.0",
    spec_commit="c",
    spec_sha256="s",
    profile="openai",
    product=None,
    target="bundled reference server",
    seed=1,
    max_examples=1,
    started="2026-01-01T00:00:00Z",
    finished="2026-01-01T00:00:01Z",
    duration=1.0,
    upstream="http://127.0.0.1:1/v1",
    draws_with=(("python", "3.11.7"), ("hypothesis", "6.170.17"), ("schemathesis", "4.32.5")),
)
CLAIM = Claim(level="MUST+SHOULD", complete=True, waivers=0, text="conformant")
COMPARISON = Comparison(baseline="b", regressions=(), fixes=(), unchanged_failures=())
RUN = RunResult(meta=META, requirements=(REQUIREMENT,), claim=CLAIM, counts={"PASS": 1}, comparison=COMPARISON)

# (schema location, the dataclass, one instance): the part of results.json each dataclass writes.
PARTS: list[tuple[str, Any, Any]] = [
    ("meta", RunMeta, META),
    ("claim", Claim, CLAIM),
    ("requirement", RequirementResult, REQUIREMENT),
    ("test", TestRecord, TEST),
    ("comparison", Comparison, COMPARISON),
    ("upstream", UpstreamResult, UPSTREAM),
    ("(root)", RunResult, RUN),
]


def _schema_of(part: str) -> dict[str, Any]:
    return SCHEMA if part == "(root)" else SCHEMA["$defs"][part]


@pytest.mark.parametrize(("part", "cls", "instance"), PARTS, ids=[p[0] for p in PARTS])
def test_schema_properties_are_exactly_the_keys_the_dataclass_writes(part, cls, instance):
    schema = _schema_of(part)
    written = set(instance.as_dict())
    assert set(schema["properties"]) == written, f"{part}: schema and {cls.__name__}.as_dict() disagree"
    assert schema.get("additionalProperties") is False, f"{part}: the schema must refuse unknown keys"
    always = {key for key in written if (part, key) not in OPTIONAL_FOR_OLDER_FILES | ONLY_WITH_AN_UPSTREAM}
    assert set(schema.get("required", ())) == always, f"{part}: required keys differ from those always written"


@pytest.mark.parametrize(("part", "cls", "instance"), PARTS, ids=[p[0] for p in PARTS])
def test_every_dataclass_field_is_written(part, cls, instance):
    fields = {f.name for f in dataclasses.fields(cls)}
    written = set(instance.as_dict())
    assert fields <= written, f"{cls.__name__} fields not in results.json: {sorted(fields - written)}"


def test_a_written_run_validates_against_the_schema():
    from jsonschema import Draft202012Validator

    Draft202012Validator(SCHEMA).validate(RUN.as_dict())
    Draft202012Validator(SCHEMA).validate(dataclasses.replace(RUN, comparison=None).as_dict())


def test_a_run_without_an_upstream_writes_no_attribution_and_validates():
    from jsonschema import Draft202012Validator

    plain = dataclasses.replace(
        RUN,
        meta=dataclasses.replace(META, upstream=None),
        requirements=(dataclasses.replace(REQUIREMENT, attribution=None, upstream=None),),
    )
    written = plain.as_dict()
    assert "upstream" not in written["meta"]
    assert not {"attribution", "upstream"} & set(written["requirements"][0])
    Draft202012Validator(SCHEMA).validate(written)
    assert RunResult.from_dict(written) == plain
    assert RunResult.from_dict(RUN.as_dict()) == RUN


def test_a_run_records_what_decides_its_draws_and_older_results_still_load(tmp_path):
    """A replay draws the same cases only with the same Python, Hypothesis and Schemathesis: every run says which
    it used (results.json and summary.md); results written before that field existed still load and validate."""
    import json

    from jsonschema import Draft202012Validator

    from modmsg.plugin.draws import draw_versions

    versions = dict(draw_versions())
    assert set(versions) == {"python", "hypothesis", "schemathesis"} and all(versions.values())
    written = RUN.as_dict()
    assert written["meta"]["draws_with"] == dict(META.draws_with)
    assert RunResult.from_dict(json.loads(json.dumps(written))).meta.draws_with == META.draws_with
    older = json.loads(json.dumps(written))
    del older["meta"]["draws_with"]
    Draft202012Validator(SCHEMA).validate(older)
    assert RunResult.from_dict(older).meta.draws_with == ()
    assert "draws_with" not in RunResult.from_dict(older).as_dict()["meta"]
