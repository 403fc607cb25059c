"""The catalogue is well formed, documented, and tied to tests both ways."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import REPO

from modmsg.requirements import CatalogueError, load_catalogue, parse_catalogue
from modmsg.spec import load_fragment, resolve_pointer
from proving.docs import TARGET, render


class _Grab:
    def __init__(self) -> None:
        self.items: dict[str, tuple[str, ...]] = {}

    def pytest_collection_finish(self, session):
        for item in session.items:
            ids = tuple(a for m in item.iter_markers("req") for a in m.args)
            self.items[item.nodeid] = ids


@pytest.fixture(scope="module")
def suite_items() -> dict[str, tuple[str, ...]]:
    grab = _Grab()
    code = pytest.main([str(REPO / "suites"), "--collect-only", "-q", "-p", "no:cacheprovider"], plugins=[grab])
    assert code == 0, "collecting the suites failed"
    return grab.items


def test_catalogue_is_well_formed_and_large_enough():
    catalogue = load_catalogue()
    assert len(catalogue.active()) >= 45
    assert {r.area for r in catalogue} == {"RESP", "META", "REQ", "ERR", "HDR", "GEN", "SEQ"}


def test_every_spec_source_is_a_pointer_that_resolves_in_the_vendored_fragment():
    fragment = load_fragment()
    for requirement in load_catalogue():
        if requirement.source.kind == "spec":
            resolve_pointer(fragment, requirement.source.ref)


def test_every_non_spec_source_names_its_evidence():
    for requirement in load_catalogue():
        if requirement.source.kind in ("observed", "decision"):
            assert "openai-behaviour.md §" in requirement.source.ref, requirement.id
        if requirement.source.kind == "http":
            assert "RFC 9110" in requirement.source.ref, requirement.id


def test_every_requirement_has_a_test(suite_items):
    tested = {i for ids in suite_items.values() for i in ids}
    untested = [r.id for r in load_catalogue().active() if r.id not in tested]
    assert not untested, f"requirements without a test: {untested}"


def test_every_test_names_a_known_requirement(suite_items):
    catalogue = load_catalogue()
    unmarked = [nodeid for nodeid, ids in suite_items.items() if not ids]
    assert not unmarked, f"tests without @pytest.mark.req: {unmarked}"
    unknown = {i for ids in suite_items.values() for i in ids if i not in catalogue}
    assert not unknown


def test_generated_reference_docs_are_current():
    assert TARGET.read_text(encoding="utf-8") == render(load_catalogue()), (
        "docs/requirements.md is stale: run make docs"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"id": "MM-X-01"}, "missing"),
        (
            {
                "id": "MM-FOO-01",
                "title": "t",
                "level": "MUST",
                "statement": "MUST x",
                "source": {"kind": "spec", "ref": "#/"},
                "profiles": ["openai"],
            },
            "id must look like",
        ),
        (
            {
                "id": "MM-META-99",
                "title": "t",
                "level": "MUSTN'T",
                "statement": "x",
                "source": {"kind": "spec", "ref": "#/"},
                "profiles": ["openai"],
            },
            "level must be",
        ),
        (
            {
                "id": "MM-META-99",
                "title": "t",
                "level": "MUST",
                "statement": "should",
                "source": {"kind": "spec", "ref": "#/"},
                "profiles": ["openai"],
            },
            "RFC 2119 keyword",
        ),
        (
            {
                "id": "MM-META-99",
                "title": "t",
                "level": "MUST",
                "statement": "MUST",
                "source": "somewhere",
                "profiles": ["openai"],
            },
            "source must be",
        ),
        (
            {
                "id": "MM-META-99",
                "title": "t",
                "level": "MUST",
                "statement": "MUST",
                "source": {"kind": "spec", "ref": "#/"},
                "profiles": ["vendor"],
            },
            "profiles must be",
        ),
        ({"id": "MM-META-99", "colour": "red"}, "unknown key"),
    ],
)
def test_malformed_catalogue_entry_is_a_clear_error(entry, message):
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue({"requirements": [entry]}, "test.yaml")


def test_duplicate_ids_are_rejected():
    entry = {
        "id": "MM-META-99",
        "title": "t",
        "level": "MUST",
        "statement": "MUST",
        "profiles": ["openai"],
        "source": {"kind": "spec", "ref": "#/"},
    }
    with pytest.raises(CatalogueError, match="duplicate id"):
        parse_catalogue({"requirements": [entry, entry]}, "test.yaml")


def test_readme_configuration_table_is_current():
    from proving.docs import README, readme_with_current_table

    text = README.read_text(encoding="utf-8")
    assert text == readme_with_current_table(text), "README configuration table is stale: run make docs"


def test_checks_reference_is_current_and_covers_every_failure():
    from proving.docs import CHECKS_DOC, render_checks

    assert CHECKS_DOC.read_text(encoding="utf-8") == render_checks(), "docs/checks.md is stale: run make docs"


def test_schemathesis_check_tuning_doc_is_current():
    from proving.docs import TUNING_DOC, render_tuning

    assert TUNING_DOC.read_text(encoding="utf-8") == render_tuning(), "docs/schemathesis-checks.md is stale"


def test_readme_counts_are_current():
    from proving.docs import COUNT, README, readme_with_current_counts

    text = README.read_text(encoding="utf-8")
    assert {m["name"] for m in COUNT.finditer(text)} >= {"requirements", "variants", "guarantee"}
    assert text == readme_with_current_counts(text), "README counts are stale: run make docs"


def test_readme_counts_follow_the_catalogue():
    from proving.docs import readme_with_current_counts

    stale = "<!-- count:requirements -->1 requirements<!-- /count -->"
    current = readme_with_current_counts(stale)
    assert current == f"<!-- count:requirements -->{len(load_catalogue().active())} requirements<!-- /count -->"


CODE_ROOTS = ("modmsg", "suites", "proving")
REQ_ID_IN_CODE = re.compile(r"MM-[A-Z]+-\d\d")


def ids_in_code(root: Path) -> dict[str, list[str]]:
    """Requirement id -> the files under ``root``'s code folders that write it."""
    found: dict[str, list[str]] = {}
    for folder in CODE_ROOTS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in (".py", ".yaml", ".yml", ".toml") and path.is_file():
                for req in set(REQ_ID_IN_CODE.findall(path.read_text(encoding="utf-8"))):
                    found.setdefault(req, []).append(str(path.relative_to(root)))
    return found


def test_every_requirement_id_written_in_code_is_active_in_the_catalogue():
    active = {r.id for r in load_catalogue().active()}
    stray = {req: files for req, files in ids_in_code(REPO).items() if req not in active}
    assert not stray, f"requirement ids in code that the catalogue lacks or has retired: {stray}"


def test_the_id_scan_finds_an_id_written_anywhere_in_code(tmp_path: Path):
    (tmp_path / "modmsg" / "checks").mkdir(parents=True)
    (tmp_path / "modmsg" / "checks" / "x.py").write_text('raise WrongStatus(req="MM-META-99")\n', encoding="utf-8")
    (tmp_path / "proving").mkdir()
    (tmp_path / "proving" / "y.yaml").write_text("- MM-FOO-01\n", encoding="utf-8")
    assert ids_in_code(tmp_path) == {"MM-META-99": ["modmsg/checks/x.py"], "MM-FOO-01": ["proving/y.yaml"]}


def test_docs_list_the_tests_and_variants_of_each_requirement():
    from modmsg.reference.variants import VARIANTS
    from modmsg.testindex import judging_tests

    text = TARGET.read_text(encoding="utf-8")
    tests = judging_tests()
    for requirement in load_catalogue().active():
        section = text.split(f"### {requirement.id}\n", 1)[1].split("\n### ", 1)[0]
        for test in tests[requirement.id]:
            assert f"`{test}`" in section, (requirement.id, test)
        for variant in VARIANTS:
            if requirement.id in variant.breaks or requirement.id in variant.generated:
                assert f"`{variant.name}`" in section, (requirement.id, variant.name)


def test_every_check_that_declares_its_requirement_names_one_a_bundled_test_judges():
    from modmsg import checks
    from modmsg.testindex import judging_tests

    declared = checks.declared()
    active = {requirement.id for requirement in load_catalogue().active()}
    tests = judging_tests()
    assert declared, "no check declares its requirement"
    for req, names in declared.items():
        assert req in active, (req, names)
        assert tests.get(req), f"{req} is declared by {names} but no bundled test judges it"
