"""ERR and error HDR: 404s that change nothing, the error envelope, documented codes, no 5xx, no echoed secrets."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from modmsg.checks.errors import error_envelope_is_valid, error_matches, no_secret_echoed, not_a_server_error
from modmsg.checks.headers import content_type_is_json, has_request_id
from modmsg.checks.metadata import rejected, state_unchanged
from modmsg.failures import CrossThreadAccess, MissingResourceAccepted
from modmsg.plugin.ahead import message_fixture
from modmsg.scenarios import OPENAI_ONLY, SCENARIOS, Context, Scenario, unknown_id
from modmsg.strategies import TRICKY_PAIRS
from modmsg.waiting import mapped

SEED = {"before": "seeded"}
WRONG_KEY = "sk-modmsg-wrong-" + "x" * 32


seeded = message_fixture("seeded", metadata=SEED)
"""A fresh message that already carries SEED metadata, so 'unchanged' is observable."""


def fetch(api, message):
    return api.fetch_message(message["thread_id"], message["id"])


# ------------------------------------------------------------------------------------------ 404s


@pytest.mark.req("MM-ERR-01")
def test_unknown_thread_returns_404_and_changes_nothing(api, seeded):
    before = fetch(api, seeded)
    response = api.modify_message(unknown_id("thread_"), seeded["id"], {"metadata": {"a": "b"}})
    rejected(response, req="MM-ERR-01", what="an unknown thread", statuses=(404,), failure=MissingResourceAccepted)
    state_unchanged(before, fetch(api, seeded), req="MM-ERR-01", what="a modify through an unknown thread")


@pytest.mark.req("MM-ERR-02")
def test_unknown_message_returns_404(api, seeded):
    response = api.modify_message(seeded["thread_id"], unknown_id("msg_"), {"metadata": {"a": "b"}})
    rejected(response, req="MM-ERR-02", what="an unknown message", statuses=(404,), failure=MissingResourceAccepted)


@pytest.mark.req("MM-ERR-03")
def test_message_of_another_thread_returns_404_and_changes_nothing(api, threads, seeded):
    other = threads.create()
    before = fetch(api, seeded)
    response = api.modify_message(other["id"], seeded["id"], {"metadata": {"hijacked": "yes"}})
    rejected(
        response,
        req="MM-ERR-03",
        what="a message addressed through another thread",
        statuses=(404,),
        failure=CrossThreadAccess,
    )
    state_unchanged(before, fetch(api, seeded), req="MM-ERR-03", what="a modify through another thread")


@pytest.mark.req("MM-ERR-04")
def test_deleted_message_returns_404(api, seeded):
    api.delete_message(seeded["thread_id"], seeded["id"])
    response = api.modify_message(seeded["thread_id"], seeded["id"], {"metadata": {"a": "b"}})
    rejected(response, req="MM-ERR-04", what="a deleted message", statuses=(404,), failure=MissingResourceAccepted)


@pytest.mark.req("MM-ERR-05")
def test_message_of_deleted_thread_returns_404(api, message):
    api.delete_thread(message["thread_id"])
    response = api.modify_message(message["thread_id"], message["id"], {"metadata": {"a": "b"}})
    rejected(
        response,
        req="MM-ERR-05",
        what="a message of a deleted thread",
        statuses=(404,),
        failure=MissingResourceAccepted,
    )


# ------------------------------------------------------------------------------------------ scenario table


def selected_scenarios(session: pytest.Session) -> tuple[Scenario, ...]:
    """The scenarios a selected test reads, in the table's order: ``-k``, ``--req`` or the smoke pay only for
    those (the whole table costs ~150 requests, one scenario ~7)."""
    names = {
        item.callspec.params["name"]
        for item in session.items
        if "answered" in getattr(item, "fixturenames", ()) and hasattr(item, "callspec")
    }
    return tuple(scenario for scenario in SCENARIOS if scenario.name in names)


@pytest.fixture(scope="module")
def answered(request, api, threads, transport, settings) -> dict[str, tuple]:
    """Every selected error scenario sent once, against its own seeded message: name -> (scenario, response,
    evidence). The scenarios share nothing, so ``--concurrency`` of them are answered at once; each one's exchanges
    are captured on its own thread, and the setup's reach this test's evidence in the table's order."""
    scenarios = selected_scenarios(request.session)

    def answer(scenario: Scenario) -> tuple[tuple, tuple]:
        with transport.capturing() as setup:
            thread = threads.create()
            message = api.create_message(thread["id"], metadata=SEED)
            context = Context(api=api, message=message, other_thread=threads.create(), wrong_key=WRONG_KEY)
            before = fetch(api, message)
        with transport.capturing() as sent:
            response = scenario.send(context)
        with transport.capturing() as read_back:
            after = fetch(api, message)
        return (scenario, response, tuple(sent), before, after), (*setup, *read_back)

    pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="modmsg-scenario")
    try:
        answers = mapped(pool, answer, scenarios)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error or Ctrl-C: what is in flight ends, no more
    results = {}
    for scenario, (result, setup) in zip(scenarios, answers, strict=True):
        for exchange in setup:
            transport.recorder.add(exchange)
        results[scenario.name] = result
    return results


def scenario_params(*reqs: str, openai_only_ok: bool = True):
    return [
        pytest.param(s.name, id=s.name, marks=pytest.mark.req(*reqs))
        for s in SCENARIOS
        if openai_only_ok or s.name not in OPENAI_ONLY
    ]


def replay(answered, transport, name) -> tuple[Scenario, object, dict, dict]:
    scenario, response, evidence, message, after = answered[name]
    for exchange in evidence:  # show the scenario's exchange as this test's evidence
        transport.recorder.add(exchange)
    return scenario, response, message, after


def an_error_answer(response, scenario: Scenario) -> None:
    """The precondition of every test that judges an error answer: there is one. A scenario the target accepted
    fails its own requirement (MM-META-06 for an accepted 17-key body ...), which BLOCKS the calling test's.
    Any 4xx or 5xx is an error answer, whatever its status: a wrong status is its scenario's requirement's
    finding, and never hides a defect of the body (MM-ERR-06) or its content type (MM-HDR-02)."""
    if response.status_code < 400:
        rejected(response, req=scenario.req, what=scenario.name, statuses=(scenario.status,), failure=scenario.failure)


def skip_openai_only(name: str, profile) -> None:
    if name in OPENAI_ONLY and profile.base != "openai":
        pytest.skip("the spec profile does not require the OpenAI-Beta header")


@pytest.mark.parametrize("name", scenario_params("MM-ERR-06"))
def test_error_uses_openai_envelope(answered, transport, profile, name):
    scenario, response, _, _ = replay(answered, transport, name)
    skip_openai_only(name, profile)
    an_error_answer(response, scenario)
    error_envelope_is_valid(response, req="MM-ERR-06")


@pytest.mark.parametrize("name", scenario_params("MM-HDR-02"))
def test_error_is_application_json(answered, transport, profile, name):
    scenario, response, _, _ = replay(answered, transport, name)
    skip_openai_only(name, profile)
    an_error_answer(response, scenario)
    content_type_is_json(response, req="MM-HDR-02")


@pytest.mark.parametrize("name", scenario_params("MM-ERR-07"))
def test_error_carries_documented_code_and_param(answered, transport, profile, name):
    if not profile.settings.check_error_codes:
        pytest.skip(f"the {profile.name} profile does not judge error codes")
    scenario, response, _, _ = replay(answered, transport, name)
    an_error_answer(response, scenario)
    # A rejection's code is judged whatever its status (a 403 for a wrong key still owes invalid_api_key); a
    # crash is no rejection (MM-ERR-08), and a code can only be read from the envelope (MM-ERR-06).
    not_a_server_error(response, req="MM-ERR-08", what=name)
    error_envelope_is_valid(response, req="MM-ERR-06")
    error_matches(response, type=scenario.type, code=scenario.code, param=scenario.param)


@pytest.mark.parametrize("name", scenario_params("MM-META-12"))
def test_rejected_request_changes_nothing(answered, transport, profile, name):
    scenario, response, before, after = replay(answered, transport, name)
    skip_openai_only(name, profile)
    an_error_answer(response, scenario)
    state_unchanged(before, after, req="MM-META-12", what=name)


@pytest.mark.parametrize("name", scenario_params("MM-HDR-03"))
def test_error_carries_request_id(answered, transport, name):
    _, response, _, _ = replay(answered, transport, name)
    has_request_id(response)


@pytest.mark.req("MM-ERR-09")
def test_successful_responses_never_echo_credentials(api, message, target):
    for response in (
        api.modify_message(message["thread_id"], message["id"], {"metadata": {"k": "v"}}),
        api.get_message(message["thread_id"], message["id"]),
        api.list_messages(message["thread_id"]),
    ):
        no_secret_echoed(response, (target.api_key,))


@pytest.mark.parametrize("name", scenario_params("MM-ERR-09"))
def test_credentials_are_never_echoed(answered, transport, target, name):
    _, response, _, _ = replay(answered, transport, name)
    no_secret_echoed(response, (target.api_key, WRONG_KEY))


# ------------------------------------------------------------------------------------------ no 5xx

EDGE_BODIES = {
    "empty key": {"metadata": {"": ""}},
    "tricky Unicode": {"metadata": TRICKY_PAIRS},
    "NUL characters": {"metadata": {"nul\u0000key": "nul\u0000value"}},
    "lone surrogate escape": b'{"metadata": {"k": "\\ud800"}}',
    "deep nesting": {"metadata": {"k": [[[[[[[[[[{}]]]]]]]]]]}},
    "huge key count": {"metadata": {f"k{i}": "v" for i in range(1000)}},
    "huge value": {"metadata": {"k": "v" * 1_000_000}},
    "float overflow": b'{"metadata": {"k": 1e999}}',
    "big integer": b'{"metadata": {"k": 123456789012345678901234567890}}',
    "duplicate keys": b'{"metadata": {"k": "a", "k": "b"}}',
    "metadata twice": b'{"metadata": {"a": "1"}, "metadata": {"b": "2"}}',
    "BOM prefix": b'\xef\xbb\xbf{"metadata": {}}',
}


@pytest.mark.req("MM-ERR-08")
@pytest.mark.parametrize("name", EDGE_BODIES)
def test_edge_input_never_causes_server_error(api, message, name):
    body = EDGE_BODIES[name]
    if isinstance(body, bytes):
        response = api.modify_message(
            message["thread_id"], message["id"], data=body, headers={"Content-Type": "application/json"}
        )
    else:
        response = api.modify_message(message["thread_id"], message["id"], body)
    not_a_server_error(response, req="MM-ERR-08", what=name)


@pytest.mark.req("MM-ERR-08")
@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_error_scenario_never_causes_server_error(answered, transport, name):
    _, response, _, _ = replay(answered, transport, name)
    not_a_server_error(response, req="MM-ERR-08", what=name)
