"""The catalogue is well formed, documented, and tied to tests both ways."""

from __future__ import annotations

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
    assert {r.area for r in catalogue} == {"RESP", "META", "REQ", "ERR", "HDR", "GEN"}


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
