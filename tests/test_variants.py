"""Broken variants: every requirement can be broken, and the real suite catches every variant (the self-test).

The self-test runs ``pytest suites`` (the user's code path) in a subprocess against each variant and the
reference server on loopback, two at a time: ``proving.mutation.run_variant``, which ``make mutation`` uses too.
One defect fails exactly the requirements it breaks (``breaks``, plus ``generated`` ones when generated input
reaches it); everything that stands on them is BLOCKED, never FAIL.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from modmsg.paths import REPO_DIR
from modmsg.reference import start_server
from modmsg.reference.variants import VARIANTS, Reply, Variant, get_variant, rewrite
from modmsg.requirements import load_catalogue
from proving.mutation import (
    DOCS_PATH,
    REFERENCE,
    TABLE_BEGIN,
    TABLE_END,
    SuiteOutcome,
    examples_for,
    run_many,
    run_suite,
    run_variant,
    subprocess_env,
    variant_table,
)

CATALOGUE = load_catalogue()
NOT_FAILED = ("PASS", "BLOCKED", "SKIP")
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
SEEDS = (101, 202, 303, 404, 505)
SEEDED_EXAMPLES = 20
REFERENCE_RUNS: dict[str, tuple[str, ...]] = {
    "openai": ("--profile", "openai"),  # the full default run: every generated test at --max-examples 100
    "spec": ("--profile", "spec", "--max-examples", str(SEEDED_EXAMPLES)),
    **{f"seed-{seed}": ("--seed", str(seed), "--max-examples", str(SEEDED_EXAMPLES)) for seed in SEEDS},
}


# ---------------------------------------------------------------------------------------------------------
# The catalogue of variants
# ---------------------------------------------------------------------------------------------------------


def test_every_active_requirement_is_broken_by_some_variant():
    broken = {req for variant in VARIANTS for req in variant.breaks}
    unbroken = [r.id for r in CATALOGUE.active() if r.id not in broken]
    assert not unbroken, f"no variant breaks {unbroken}"


def test_breaks_name_active_requirements_of_the_catalogue():
    active = {r.id for r in CATALOGUE.active()}
    for variant in VARIANTS:
        assert variant.breaks, f"{variant.name} breaks nothing"
        named = (*variant.breaks, *variant.generated)
        assert len(set(named)) == len(named), f"{variant.name} names a requirement twice"
        unknown = [req for req in named if req not in active]
        assert not unknown, f"{variant.name} names {unknown}, not active requirements of the catalogue"


def test_variant_names_are_unique_snake_case_and_docs_one_line():
    names = [variant.name for variant in VARIANTS]
    assert len(names) == len(set(names)), "duplicate variant names"
    for variant in VARIANTS:
        assert SNAKE_CASE.fullmatch(variant.name), variant.name
        assert variant.doc.strip() and "\n" not in variant.doc, variant.name
    assert len(VARIANTS) >= 30


def test_every_variant_changes_something():
    for variant in VARIANTS:
        assert variant.behaviour != REFERENCE.behaviour or variant.middleware, f"{variant.name} is the reference"


def test_get_variant_finds_by_name_and_rejects_an_unknown_name():
    assert get_variant(VARIANTS[0].name) is VARIANTS[0]
    with pytest.raises(KeyError) as raised:
        get_variant("no_such_defect")
    assert raised.value.args[0] == "unknown variant 'no_such_defect'; see `modmsg variants`"


def test_docs_variant_table_is_generated_from_the_variants():
    text = DOCS_PATH.read_text(encoding="utf-8")
    assert TABLE_BEGIN in text and TABLE_END in text
    current = text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip()
    assert current == variant_table(CATALOGUE), "docs/variants.md is stale: run `python -m proving.mutation --docs`"


def test_cli_serve_applies_the_variant_middleware():
    """`modmsg serve --variant` starts the same server as Variant.start, middleware included."""
    variant = get_variant("delete_returns_204")
    assert variant.middleware
    command = [sys.executable, "-m", "modmsg.cli", "serve", "--variant", variant.name, "--port", "0"]
    env = subprocess_env({"MODMSG_API_KEY": "sk-modmsg-variant-cli"})
    with subprocess.Popen(
        command, cwd=REPO_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as served:
        try:
            line = served.stdout.readline() if served.stdout else ""
            match = re.search(r"http://\S+/v1", line)
            assert match, f"no URL in {line!r}"
            headers = {"Authorization": "Bearer sk-modmsg-variant-cli", "OpenAI-Beta": "assistants=v2"}
            thread = requests.post(f"{match.group(0)}/threads", json={}, headers=headers, timeout=10).json()
            deleted = requests.delete(f"{match.group(0)}/threads/{thread['id']}", headers=headers, timeout=10)
            assert deleted.status_code == 204
        finally:
            served.terminate()
            served.wait(timeout=10)


# ---------------------------------------------------------------------------------------------------------
# The defects on the wire (what the suite sees, without the suite)
# ---------------------------------------------------------------------------------------------------------

WIRE_KEY = "sk-modmsg-variant-wire"
WIRE_HEADERS = {"Authorization": f"Bearer {WIRE_KEY}", "OpenAI-Beta": "assistants=v2"}


def live_message(base_url: str, metadata: dict[str, str] | None = None) -> dict:
    thread = requests.post(f"{base_url}/threads", json={}, headers=WIRE_HEADERS, timeout=10).json()
    body = {"role": "user", "content": "wire", **({"metadata": metadata} if metadata else {})}
    url = f"{base_url}/threads/{thread['id']}/messages"
    return requests.post(url, json=body, headers=WIRE_HEADERS, timeout=10).json()


def raw_post(port: int, path: str, body: bytes) -> bytes:
    """Everything the server sends back on one connection for one POST (it closes the connection after)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {WIRE_KEY}\r\n"
        f"OpenAI-Beta: assistants=v2\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head.encode() + body)
        for _ in range(1000):  # bounded: a closed connection reads b"" at once
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def test_lone_surrogate_modify_gets_no_answer_while_the_rest_is_answered():
    with get_variant("drops_connection_on_lone_surrogate").start(WIRE_KEY) as server:
        message = live_message(server.base_url)
        path = f"/v1/threads/{message['thread_id']}/messages/{message['id']}"
        assert raw_post(server.port, path, b'{"metadata": {"k": "\\ud800"}}') == b""
        assert raw_post(server.port, path, b'{"metadata": {"k": "\\ud83e\\udd84"}}').startswith(b"HTTP/1.1 200")
        assert raw_post(server.port, path, b'{"metadata": {"k": "v"}}').startswith(b"HTTP/1.1 200")


def test_stale_cache_serves_the_copy_from_before_the_modify_for_the_next_reads():
    with get_variant("stale_read_cache").start(WIRE_KEY) as server:
        message = live_message(server.base_url, {"v": "old"})
        url = f"{server.base_url}/threads/{message['thread_id']}/messages"
        changed = requests.post(f"{url}/{message['id']}", json={"metadata": {"v": "new"}}, headers=WIRE_HEADERS)
        assert changed.json()["metadata"] == {"v": "new"}

        def read(listing: bool) -> dict:
            if listing:
                return requests.get(url, headers=WIRE_HEADERS, timeout=10).json()["data"][0]["metadata"]
            return requests.get(f"{url}/{message['id']}", headers=WIRE_HEADERS, timeout=10).json()["metadata"]

        assert [read(listing) for listing in (False, True, False, True)] == [
            {"v": "old"},
            {"v": "old"},
            {"v": "new"},
            {"v": "new"},
        ]


def test_html_404_pages_answer_unknown_ids_with_the_framework_page():
    with get_variant("html_404_pages").start(WIRE_KEY) as server:
        message = live_message(server.base_url)
        unknown = f"{server.base_url}/threads/{message['thread_id']}/messages/msg_unknown"
        response = requests.post(unknown, json={"metadata": {}}, headers=WIRE_HEADERS, timeout=10)
        assert response.status_code == 404
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "<pre>Cannot POST /v1/threads/" in response.text
        known = requests.get(f"{server.base_url}/threads/{message['thread_id']}", headers=WIRE_HEADERS, timeout=10)
        assert known.status_code == 200 and known.json()["object"] == "thread"


def _gateway_500_for_unparseable_bodies(scope, reply: Reply) -> Reply:
    """The Portkey gateway in front of a correct API: a body it cannot parse gets its own 500 envelope."""
    if reply.status != 400 or b"could not parse the JSON body" not in reply.body:
        return reply
    return Reply(500, reply.headers, b"").with_json({"status": "failure", "message": "Proxy error: Unexpected token"})


def test_the_envelope_of_an_error_is_judged_whatever_its_status(tmp_path: Path):
    """A 500 where a 400 belongs is MM-REQ-02's and MM-ERR-08's finding, and never hides a non-OpenAI body."""
    with start_server(WIRE_KEY, middleware=rewrite(_gateway_500_for_unparseable_bodies)) as server:
        outcome = run_suite(server.base_url, WIRE_KEY, tmp_path, "--req", "MM-ERR-06", "--req", "MM-ERR-07")
    assert outcome.outcomes["MM-ERR-06"] == "FAIL", outcome.describe()
    assert outcome.outcomes["MM-ERR-07"] == "BLOCKED", outcome.describe()  # a crash is no rejection: MM-ERR-08


# ---------------------------------------------------------------------------------------------------------
# The self-test: the real suite against every variant and against the reference server
# ---------------------------------------------------------------------------------------------------------

Job = Callable[[], SuiteOutcome]


def variant_job(variant: Variant, report_dir: Path, seed: int) -> Job:
    return lambda: run_variant(variant, report_dir, "--seed", str(seed))


def reference_job(args: tuple[str, ...], report_dir: Path) -> Job:
    return lambda: run_variant(REFERENCE, report_dir, *args, max_examples=None)


def _cost(key: str) -> int:
    """Rough order: full-generation runs first, so two workers finish together."""
    kind, name = key.split(":", 1)
    if kind == "reference":
        return 3 if name == "openai" else 1
    return 2 if examples_for(get_variant(name)) is None else 0


@pytest.fixture(scope="session")
def suite_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SuiteOutcome]:
    """Every run the selected self-test items need, two at a time; key 'variant:NAME' or 'reference:NAME'."""
    wanted = sorted(
        {
            item.callspec.params["run"]
            for item in request.session.items
            if hasattr(item, "callspec") and "run" in item.callspec.params
        },
        key=_cost,
        reverse=True,
    )
    base = tmp_path_factory.mktemp("suite-runs")
    seed = int(os.environ.get("MODMSG_VARIANT_SEED") or secrets.randbelow(2**31))
    jobs: list[tuple[str, Job]] = []
    for key in wanted:
        kind, name = key.split(":", 1)
        report_dir = base / key.replace(":", "-")
        if kind == "variant":
            jobs.append((key, variant_job(get_variant(name), report_dir, seed)))
        else:
            jobs.append((key, reference_job(REFERENCE_RUNS[name], report_dir)))
    return run_many(jobs)


@pytest.mark.parametrize("run", [pytest.param(f"variant:{v.name}", id=v.name) for v in VARIANTS])
def test_variant_is_caught(suite_runs, run):
    variant = get_variant(run.split(":", 1)[1])
    outcome = suite_runs[run]
    assert outcome.outcomes, f"the suite wrote no results\n{outcome.describe()}"
    errored = outcome.errored
    assert not errored, f"the suite ERRORed on {errored}: it must judge a misbehaving target\n{outcome.describe()}"
    missed = [req for req in variant.breaks if outcome.outcomes.get(req) != "FAIL"]
    assert not missed, f"{variant.name} should FAIL {missed}\n{outcome.describe()}"
    unexplained = sorted(set(outcome.failed) - set(variant.breaks) - set(variant.generated))
    assert not unexplained, (
        f"{variant.name} FAILs {unexplained}, which it does not name: a requirement that stands on a broken one "
        f"must be BLOCKED by it\n{outcome.describe()}"
    )
    others = {req: value for req, value in outcome.outcomes.items() if value not in ("FAIL", *NOT_FAILED)}
    assert not others, f"{variant.name}: {others}\n{outcome.describe()}"
    assert outcome.exit_code == 1, outcome.describe()


@pytest.mark.parametrize("run", [pytest.param(f"reference:{name}", id=name) for name in REFERENCE_RUNS])
def test_reference_passes_every_requirement(suite_runs, run):
    outcome = suite_runs[run]
    assert outcome.exit_code == 0, outcome.describe()
    assert not outcome.failed and not outcome.errored, outcome.describe()
    assert outcome.claim == "MUST+SHOULD", outcome.describe()
