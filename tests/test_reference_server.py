"""The reference server over real HTTP on loopback: every route, every row of behaviour.md §6, the knobs."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.middleware import Middleware

from modmsg.reference import DEFAULT_BEHAVIOUR, Behaviour, ReferenceServer, create_app, start_server

REPO = Path(__file__).resolve().parent.parent
SPEC_PATH = REPO / "spec" / "modify-message.openapi.yaml"
SPEC_URI = "urn:modmsg:spec"
KEY = "sk-modmsg-test-0123456789abcdefghij"
BETA = "assistants=v2"
THREAD_ID = re.compile(r"thread_[A-Za-z0-9]{24}")
MESSAGE_ID = re.compile(r"msg_[A-Za-z0-9]{24}")
REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")
PARSE_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)
MISSING_BETA = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again by setting "
    "the header 'OpenAI-Beta: assistants=v2'."
)
V1_BETA = (
    "The v1 Assistants API has been deprecated. Please try again by setting the header "
    "'OpenAI-Beta: assistants=v2'. See the migration guide for more information: "
    "https://platform.openai.com/docs/assistants/migration."
)
UNSET: Any = object()
Target = tuple[str, str]  # (thread id, message id)
Knobs = Callable[..., "Client"]  # knob_servers(**knobs) -> a client of a server with those knobs
Listed = tuple[str, list[str]]  # (thread id, message ids in creation order)


# --------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------


class Client:
    """requests against one server, with the right key and beta header unless told otherwise."""

    def __init__(self, base_url: str, key: str = KEY) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only, never a proxy
        self.session.headers.update({"Authorization": f"Bearer {key}", "OpenAI-Beta": BETA})

    def call(
        self,
        method: str,
        path: str,
        body: Any = UNSET,
        *,
        raw: bytes | None = None,
        headers: dict[str, str | None] | None = None,
        params: dict[str, str] | str | None = None,
    ) -> requests.Response:
        all_headers: dict[str, str | None] = {}
        data = raw
        if body is not UNSET:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        return self.session.request(
            method, self.base_url + path, data=data, headers=all_headers, params=params, timeout=10
        )

    def ok(self, method: str, path: str, body: Any = UNSET, **kwargs: Any) -> dict[str, Any]:
        response = self.call(method, path, body, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def thread(self, **body: Any) -> dict[str, Any]:
        return self.ok("POST", "/threads", body)

    def message(self, thread_id: str, content: Any = "hello", **body: Any) -> dict[str, Any]:
        return self.ok("POST", f"/threads/{thread_id}/messages", {"role": "user", "content": content, **body})

    def thread_and_message(self, metadata: dict[str, str] | None = None) -> tuple[str, str]:
        thread_id = self.thread()["id"]
        body = {} if metadata is None else {"metadata": metadata}
        return thread_id, self.message(thread_id, **body)["id"]

    def modify(self, thread_id: str, message_id: str, body: Any = UNSET, **kwargs: Any) -> requests.Response:
        return self.call("POST", f"/threads/{thread_id}/messages/{message_id}", body, **kwargs)

    def get(self, thread_id: str, message_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/threads/{thread_id}/messages/{message_id}")

    def metadata(self, thread_id: str, message_id: str) -> dict[str, str]:
        return self.get(thread_id, message_id)["metadata"]

    def listing(self, thread_id: str, **params: str) -> dict[str, Any]:
        return self.ok("GET", f"/threads/{thread_id}/messages", params=params)


def error_of(response: requests.Response, status: int) -> dict[str, Any]:
    """The ``error`` object of an OpenAI envelope, after checking status, headers and the four keys."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert REQUEST_ID.fullmatch(response.headers["x-request-id"])
    body = response.json()
    assert list(body) == ["error"]
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def assert_error(
    response: requests.Response,
    status: int,
    *,
    code: str | None,
    param: str | None,
    message: str | None = None,
    error_type: str = "invalid_request_error",
) -> dict[str, Any]:
    error = error_of(response, status)
    assert (error["type"], error["code"], error["param"]) == (error_type, code, param), error
    if message is not None:
        assert error["message"] == message
    return error


@dataclass(frozen=True)
class Schemas:
    registry: Registry

    def validate(self, name: str, instance: Any) -> None:
        ref = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
        Draft202012Validator(ref, registry=self.registry).validate(instance)


@pytest.fixture(scope="session")
def schemas() -> Schemas:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    return Schemas(Registry().with_resource(SPEC_URI, resource))


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with start_server(KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ReferenceServer) -> Client:
    return Client(server.base_url)


@pytest.fixture
def target(client: Client) -> Target:
    """A fresh thread with one message whose metadata is ``{"keep": "me"}``."""
    return client.thread_and_message({"keep": "me"})


def serve(**knobs: Any) -> ReferenceServer:
    return start_server(KEY, replace(DEFAULT_BEHAVIOUR, **knobs))


def keys(count: int, prefix: str = "k") -> dict[str, str]:
    return {f"{prefix}{index:02d}": f"v{index}" for index in range(count)}


# --------------------------------------------------------------------------------------------------------
# Behaviour defaults and the runner
# --------------------------------------------------------------------------------------------------------


def test_behaviour_defaults_are_the_openai_profile() -> None:
    b = Behaviour()
    assert (b.max_keys, b.max_key_length, b.max_value_length, b.length_unit) == (16, 64, 512, "codepoints")
    assert (b.metadata_mode, b.merged_total_limit, b.null_metadata) == ("merge", True, "unchanged")
    assert (b.require_auth, b.auth_status, b.require_beta_header, b.check_order) == (
        True,
        401,
        True,
        "auth_first",
    )
    assert (b.error_envelope, b.error_codes, b.object_name, b.timestamp_unit) == (
        "openai",
        True,
        "thread.message",
        "s",
    )
    assert b.rate_limit is None and not b.echo_api_key_in_errors and not b.racy_modify
    assert b == DEFAULT_BEHAVIOUR


def test_behaviour_is_frozen_and_every_knob_has_a_default() -> None:
    with pytest.raises(AttributeError):
        Behaviour().max_keys = 17  # type: ignore[misc]
    assert all(f.default is not MISSING for f in fields(Behaviour))


def test_create_app_rejects_an_empty_key_and_a_non_positive_rate_limit() -> None:
    with pytest.raises(ValueError, match="API key"):
        create_app("")
    with pytest.raises(ValueError, match="rate_limit"):
        create_app(KEY, replace(DEFAULT_BEHAVIOUR, rate_limit=0))


def test_start_server_handle_reports_url_port_and_thread_ids() -> None:
    srv = start_server(KEY)
    with srv:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
        client = Client(srv.base_url)
        assert srv.thread_ids() == []
        thread_id = client.thread()["id"]
        assert srv.thread_ids() == [thread_id]
        client.ok("DELETE", f"/threads/{thread_id}")
        assert srv.thread_ids() == []
        client.session.close()
    with pytest.raises(requests.ConnectionError):
        Client(srv.base_url).call("POST", "/threads")


def test_two_servers_have_separate_stores() -> None:
    with serve() as first, serve() as second:
        Client(first.base_url).thread()
        assert len(first.thread_ids()) == 1
        assert second.thread_ids() == []


def test_start_server_reports_a_port_in_use_clearly(server: ReferenceServer) -> None:
    with pytest.raises(RuntimeError, match="cannot listen"):
        start_server(KEY, port=server.port)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_prints_its_url_and_stops_cleanly_on_a_signal(sig: signal.Signals) -> None:
    code = "from modmsg.reference import serve_forever; serve_forever('127.0.0.1', 0, 'sk-cli-key')"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"modmsg reference server listening on (http://127\.0\.0\.1:\d+/v1)", line)
        assert match, line
        client = Client(match.group(1), key="sk-cli-key")
        assert client.thread()["object"] == "thread"
        client.session.close()
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=15)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"{}", b"  "])
def test_create_thread_accepts_an_empty_body_or_empty_object(
    client: Client,
    schemas: Schemas,
    raw: bytes,
) -> None:
    response = client.call("POST", "/threads", raw=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    thread = response.json()
    schemas.validate("ThreadObject", thread)
    assert THREAD_ID.fullmatch(thread["id"])
    assert (thread["object"], thread["metadata"], thread["tool_resources"]) == ("thread", {}, {})


def test_create_thread_without_content_type_or_body(client: Client) -> None:
    response = client.call("POST", "/threads")
    assert response.status_code == 200


def test_create_thread_with_messages_metadata_and_tool_resources(client: Client, schemas: Schemas) -> None:
    thread = client.thread(
        messages=[{"role": "user", "content": "first"}, {"role": "assistant", "content": "second"}],
        metadata={"team": "core"},
        tool_resources={
            "code_interpreter": {"file_ids": ["file-1"]},
            "file_search": {"vector_store_ids": ["vs_1"]},
        },
    )
    schemas.validate("ThreadObject", thread)
    assert thread["metadata"] == {"team": "core"}
    assert thread["tool_resources"]["code_interpreter"] == {"file_ids": ["file-1"]}
    listed = client.listing(thread["id"], order="asc")
    assert [m["content"][0]["text"]["value"] for m in listed["data"]] == ["first", "second"]
    assert [m["role"] for m in listed["data"]] == ["user", "assistant"]


def test_create_thread_vector_store_helper_becomes_one_vector_store_id(
    client: Client,
    schemas: Schemas,
) -> None:
    thread = client.thread(tool_resources={"file_search": {"vector_stores": [{"file_ids": ["f"]}]}})
    schemas.validate("ThreadObject", thread)
    (store_id,) = thread["tool_resources"]["file_search"]["vector_store_ids"]
    assert store_id.startswith("vs_")


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": "x"}, "messages", "invalid_type"),
        ({"messages": [{"content": "x"}]}, "messages[0].role", "missing_required_parameter"),
        ({"messages": [{"role": "user", "content": "x", "x": 1}]}, "messages[0].x", "unknown_parameter"),
        ({"metadata": {"a": 1}}, "metadata.a", "invalid_type"),
        ({"metadata": keys(17)}, "metadata", "object_above_max_properties"),
        ({"assistant_id": "asst_1"}, "assistant_id", "unknown_parameter"),
        (
            {"tool_resources": {"code_interpreter": {"file_ids": ["f"] * 21}}},
            "tool_resources.code_interpreter.file_ids",
            "array_above_max_length",
        ),
        ({"tool_resources": {"bogus": {}}}, "tool_resources.bogus", "unknown_parameter"),
    ],
)
def test_create_thread_rejects_invalid_bodies_and_creates_nothing(
    server: ReferenceServer, client: Client, body: dict[str, Any], param: str, code: str
) -> None:
    before = set(server.thread_ids())
    assert_error(client.call("POST", "/threads", body), 400, code=code, param=param)
    assert set(server.thread_ids()) == before


def test_get_thread_returns_the_thread(client: Client, schemas: Schemas) -> None:
    created = client.thread(metadata={"a": "b"})
    fetched = client.ok("GET", f"/threads/{created['id']}")
    schemas.validate("ThreadObject", fetched)
    assert fetched == created


def test_modify_thread_merges_metadata(client: Client, schemas: Schemas) -> None:
    thread_id = client.thread(metadata={"keep": "1", "change": "old"})["id"]
    updated = client.ok("POST", f"/threads/{thread_id}", {"metadata": {"change": "new", "add": ""}})
    schemas.validate("ThreadObject", updated)
    assert updated["metadata"] == {"keep": "1", "change": "new", "add": ""}
    assert client.ok("GET", f"/threads/{thread_id}")["metadata"] == updated["metadata"]


def test_modify_thread_rejects_merged_total_over_16(client: Client) -> None:
    thread_id = client.thread(metadata=keys(10, "a"))["id"]
    response = client.call("POST", f"/threads/{thread_id}", {"metadata": keys(7, "b")})
    assert_error(response, 400, code="object_above_max_properties", param="metadata")
    assert client.ok("GET", f"/threads/{thread_id}")["metadata"] == keys(10, "a")


def test_delete_thread_deletes_it_and_its_messages(client: Client, schemas: Schemas) -> None:
    thread_id, message_id = client.thread_and_message()
    deleted = client.ok("DELETE", f"/threads/{thread_id}")
    schemas.validate("DeleteThreadResponse", deleted)
    assert deleted == {"id": thread_id, "object": "thread.deleted", "deleted": True}
    not_found = f"No thread found with id '{thread_id}'."
    for method, path in [
        ("GET", f"/threads/{thread_id}"),
        ("DELETE", f"/threads/{thread_id}"),
        ("GET", f"/threads/{thread_id}/messages"),
        ("GET", f"/threads/{thread_id}/messages/{message_id}"),
    ]:
        assert_error(client.call(method, path), 404, code=None, param=None, message=not_found)
    response = client.modify(thread_id, message_id, {"metadata": {"a": "b"}})
    assert_error(response, 404, code=None, param=None, message=not_found)


# --------------------------------------------------------------------------------------------------------
# Messages: create, get, list, delete
# --------------------------------------------------------------------------------------------------------


def test_create_message_stores_string_content_as_a_text_part(client: Client, schemas: Schemas) -> None:
    thread_id = client.thread()["id"]
    message = client.message(thread_id, "How does AI work?")
    schemas.validate("MessageObject", message)
    assert MESSAGE_ID.fullmatch(message["id"])
    assert message["content"] == [{"type": "text", "text": {"value": "How does AI work?", "annotations": []}}]
    assert (message["object"], message["thread_id"], message["role"]) == ("thread.message", thread_id, "user")
    assert (message["assistant_id"], message["run_id"], message["attachments"], message["metadata"]) == (
        None,
        None,
        [],
        {},
    )
    assert isinstance(message["created_at"], int)


def test_create_message_with_content_parts_attachments_and_metadata(client: Client, schemas: Schemas) -> None:
    thread_id = client.thread()["id"]
    content = [
        {"type": "text", "text": "look"},
        {"type": "image_file", "image_file": {"file_id": "file-abc", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]
    attachments = [{"file_id": "file-x", "tools": [{"type": "code_interpreter"}, {"type": "file_search"}]}]
    extra = {"role": "assistant", "attachments": attachments, "metadata": {"m": "1"}}
    message = client.message(thread_id, content, **extra)
    schemas.validate("MessageObject", message)
    assert message["content"] == [
        {"type": "text", "text": {"value": "look", "annotations": []}},
        {"type": "image_file", "image_file": {"file_id": "file-abc", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]
    assert (message["role"], message["attachments"], message["metadata"]) == (
        "assistant",
        attachments,
        {"m": "1"},
    )
    assert client.get(thread_id, message["id"]) == message


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"content": "x"}, "role", "missing_required_parameter"),
        ({"role": "user"}, "content", "missing_required_parameter"),
        ({"role": "system", "content": "x"}, "role", "invalid_value"),
        ({"role": 1, "content": "x"}, "role", "invalid_type"),
        ({"role": "user", "content": []}, "content", "empty_array"),
        ({"role": "user", "content": 5}, "content", "invalid_type"),
        ({"role": "user", "content": [{"type": "audio"}]}, "content[0].type", "invalid_value"),
        ({"role": "user", "content": [{"type": "text"}]}, "content[0].text", "missing_required_parameter"),
        (
            {"role": "user", "content": [{"type": "text", "text": "a", "x": 1}]},
            "content[0].x",
            "unknown_parameter",
        ),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]},
            "content[0].image_url.url",
            "invalid_value",
        ),
        (
            {
                "role": "user",
                "content": [{"type": "image_file", "image_file": {"file_id": "f", "detail": "max"}}],
            },
            "content[0].image_file.detail",
            "invalid_value",
        ),
        (
            {"role": "user", "content": "x", "attachments": [{"file_id": "f"}]},
            "attachments[0].tools",
            "missing_required_parameter",
        ),
        (
            {"role": "user", "content": "x", "attachments": [{"file_id": "f", "tools": [{"type": "web"}]}]},
            "attachments[0].tools[0].type",
            "invalid_value",
        ),
        ({"role": "user", "content": "x", "file_ids": []}, "file_ids", "unknown_parameter"),
        ({"role": "user", "content": "x", "metadata": {"a": None}}, "metadata.a", "invalid_type"),
        (
            {"role": "user", "content": "x", "metadata": {"k" * 65: "v"}},
            "metadata",
            "string_above_max_length",
        ),
        (
            {"role": "user", "content": "x", "metadata": {"k": "v" * 513}},
            "metadata.k",
            "string_above_max_length",
        ),
    ],
)
def test_create_message_rejects_invalid_bodies_and_creates_nothing(
    client: Client, body: dict[str, Any], param: str, code: str
) -> None:
    thread_id = client.thread()["id"]
    assert_error(client.call("POST", f"/threads/{thread_id}/messages", body), 400, code=code, param=param)
    assert client.listing(thread_id)["data"] == []


def test_create_message_needs_a_body(client: Client) -> None:
    thread_id = client.thread()["id"]
    response = client.call("POST", f"/threads/{thread_id}/messages")
    assert_error(response, 400, code=None, param=None, message=PARSE_MESSAGE)


def test_create_message_in_unknown_thread_is_404(client: Client) -> None:
    response = client.call("POST", "/threads/thread_missing/messages", {"role": "user", "content": "x"})
    assert_error(response, 404, code=None, param=None, message="No thread found with id 'thread_missing'.")


def test_get_message_returns_the_stored_message(client: Client, schemas: Schemas) -> None:
    thread_id = client.thread()["id"]
    created = client.message(thread_id, metadata={"a": "1"})
    fetched = client.get(thread_id, created["id"])
    schemas.validate("MessageObject", fetched)
    assert fetched == created


def test_delete_message_then_it_is_gone_everywhere(client: Client, schemas: Schemas) -> None:
    thread_id, message_id = client.thread_and_message()
    deleted = client.ok("DELETE", f"/threads/{thread_id}/messages/{message_id}")
    schemas.validate("DeleteMessageResponse", deleted)
    assert deleted == {"id": message_id, "object": "thread.message.deleted", "deleted": True}
    gone = f"No message found with id '{message_id}'."
    for method in ("GET", "DELETE"):
        response = client.call(method, f"/threads/{thread_id}/messages/{message_id}")
        assert_error(response, 404, code=None, param=None, message=gone)
    assert_error(client.modify(thread_id, message_id, {"metadata": {"a": "b"}}), 404, code=None, param=None)
    assert client.listing(thread_id)["data"] == []


# --------------------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listed_thread(client: Client) -> Listed:
    """A thread with 25 messages (created within the same second or two, so created_at ties)."""
    thread_id = client.thread()["id"]
    ids = [client.message(thread_id, f"m{index}")["id"] for index in range(25)]
    return thread_id, ids


def test_list_defaults_to_desc_and_20(client: Client, schemas: Schemas, listed_thread: Listed) -> None:
    thread_id, ids = listed_thread
    listing = client.listing(thread_id)
    schemas.validate("ListMessagesResponse", listing)
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ids[::-1][:20]
    assert (listing["first_id"], listing["last_id"], listing["has_more"]) == (ids[-1], ids[5], True)


def test_list_order_is_stable_under_created_at_ties(client: Client, listed_thread: Listed) -> None:
    thread_id, ids = listed_thread
    listing = client.listing(thread_id, order="asc", limit="100")
    assert [m["id"] for m in listing["data"]] == ids
    assert listing["has_more"] is False
    stamps = [m["created_at"] for m in listing["data"]]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 3, 7, 25])
def test_list_after_cursor_walks_every_message_once(
    client: Client, listed_thread: Listed, order: str, limit: int
) -> None:
    thread_id, ids = listed_thread
    expected = ids if order == "asc" else ids[::-1]
    seen: list[str] = []
    params = {"order": order, "limit": str(limit)}
    while True:
        listing = client.listing(thread_id, **params)
        seen += [m["id"] for m in listing["data"]]
        if not listing["has_more"]:
            break
        params["after"] = listing["last_id"]
    assert seen == expected


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_list_before_cursor_returns_the_previous_page(
    client: Client,
    listed_thread: Listed,
    order: str,
) -> None:
    thread_id, ids = listed_thread
    expected = ids if order == "asc" else ids[::-1]
    listing = client.listing(thread_id, order=order, limit="3", before=expected[10])
    assert [m["id"] for m in listing["data"]] == expected[7:10]
    assert listing["has_more"] is True
    first = client.listing(thread_id, order=order, limit="5", before=expected[3])
    assert [m["id"] for m in first["data"]] == expected[:3]
    assert first["has_more"] is False


def test_list_after_and_before_together_page_the_range_between(client: Client, listed_thread: Listed) -> None:
    thread_id, ids = listed_thread
    listing = client.listing(thread_id, order="asc", limit="2", after=ids[3], before=ids[8])
    assert [m["id"] for m in listing["data"]] == ids[4:6]
    assert listing["has_more"] is True


@pytest.mark.parametrize("cursor", ["after", "before"])
def test_list_unknown_cursor_gives_an_empty_page(client: Client, listed_thread: Listed, cursor: str) -> None:
    thread_id, _ = listed_thread
    listing = client.listing(thread_id, **{cursor: "msg_doesnotexist"})
    assert listing == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_list_limit_bounds_are_accepted(client: Client, listed_thread: Listed) -> None:
    thread_id, ids = listed_thread
    assert len(client.listing(thread_id, limit="1")["data"]) == 1
    assert len(client.listing(thread_id, limit="100")["data"]) == len(ids)


@pytest.mark.parametrize(
    ("limit", "code"),
    [
        ("0", "integer_below_min_value"),
        ("-1", "integer_below_min_value"),
        ("101", "integer_above_max_value"),
        ("9" * 5000, "integer_above_max_value"),
        ("abc", "invalid_type"),
        ("1.5", "invalid_type"),
        ("", "invalid_type"),
        ("\u0663", "invalid_type"),
    ],
)
def test_list_limit_out_of_range_is_400(client: Client, listed_thread: Listed, limit: str, code: str) -> None:
    thread_id, _ = listed_thread
    response = client.call("GET", f"/threads/{thread_id}/messages", params={"limit": limit})
    assert_error(response, 400, code=code, param="limit")


@pytest.mark.parametrize("order", ["ASC", "random", ""])
def test_list_invalid_order_is_400(client: Client, listed_thread: Listed, order: str) -> None:
    thread_id, _ = listed_thread
    response = client.call("GET", f"/threads/{thread_id}/messages", params={"order": order})
    assert_error(response, 400, code="invalid_value", param="order")


def test_list_of_an_empty_thread_has_null_ids(client: Client, schemas: Schemas) -> None:
    listing = client.listing(client.thread()["id"])
    assert listing == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    # The fragment types first_id/last_id as string, but the real API sent null (behaviour.md §2, defect 4).
    relaxed = {**listing, "first_id": "", "last_id": ""}
    schemas.validate("ListMessagesResponse", relaxed)


def test_list_run_id_filter_matches_no_manually_created_message(
    client: Client,
    listed_thread: Listed,
) -> None:
    thread_id, _ = listed_thread
    assert client.listing(thread_id, run_id="run_abc")["data"] == []


def test_list_shows_modified_metadata(client: Client, target: Target) -> None:
    thread_id, message_id = target
    client.modify(thread_id, message_id, {"metadata": {"new": "x"}})
    (listed,) = client.listing(thread_id)["data"]
    assert listed["metadata"] == {"keep": "me", "new": "x"} == client.metadata(thread_id, message_id)


# --------------------------------------------------------------------------------------------------------
# Modify: the happy path and metadata semantics (§6)
# --------------------------------------------------------------------------------------------------------


def test_modify_returns_the_updated_message_and_persists_it(
    client: Client,
    schemas: Schemas,
    target: Target,
) -> None:
    thread_id, message_id = target
    before = client.get(thread_id, message_id)
    response = client.modify(thread_id, message_id, {"metadata": {"modified": "true", "user": "abc123"}})
    assert response.status_code == 200
    updated = response.json()
    schemas.validate("MessageObject", updated)
    assert (updated["id"], updated["thread_id"], updated["object"]) == (
        message_id,
        thread_id,
        "thread.message",
    )
    assert updated["metadata"] == {"keep": "me", "modified": "true", "user": "abc123"}
    assert client.get(thread_id, message_id) == updated
    updated.pop("metadata"), before.pop("metadata")
    assert updated == before


def test_modify_merges_keys_overwrites_sent_ones_and_keeps_empty_strings(
    client: Client,
    target: Target,
) -> None:
    thread_id, message_id = target
    client.modify(thread_id, message_id, {"metadata": {"a": "1", "b": "2"}})
    response = client.modify(thread_id, message_id, {"metadata": {"b": "two", "c": ""}})
    assert response.json()["metadata"] == {"keep": "me", "a": "1", "b": "two", "c": ""}
    assert client.metadata(thread_id, message_id) == {"keep": "me", "a": "1", "b": "two", "c": ""}


@pytest.mark.parametrize("body", [{}, {"metadata": {}}, {"metadata": None}])
def test_empty_or_null_metadata_leaves_metadata_unchanged(
    client: Client,
    target: Target,
    body: dict[str, Any],
) -> None:
    thread_id, message_id = target
    response = client.modify(thread_id, message_id, body)
    assert response.status_code == 200
    assert response.json()["metadata"] == {"keep": "me"} == client.metadata(thread_id, message_id)


def test_repeating_the_same_modify_is_idempotent(client: Client, target: Target) -> None:
    thread_id, message_id = target
    first = client.modify(thread_id, message_id, {"metadata": {"x": "1"}}).json()
    second = client.modify(thread_id, message_id, {"metadata": {"x": "1"}}).json()
    assert first == second


UNICODE_SAMPLES = {
    "emoji": "\U0001f600\U0001f389 \U0001f469\u200d\U0001f469\u200d\U0001f467",
    "astral-math": "\U0001d518\U0001d52b\U0001d526\U0001d520",  # Fraktur "Unic"
    "cjk": "中文字符",
    "rtl": "مرحبا",
    "combining": "e\u0301 vs \u00e9",
    "zero-width": "a\u200bb\u200dc\ufeff",
    "whitespace": "  lead and trail \t\n ",
    "case": "MiXeD CaSe",
    "nul": "a\u0000b",
    "quotes": "\"'\\/<>&",
    "": "empty key",
    "😀 key": "astral key",
}


@pytest.mark.parametrize("ensure_ascii", [False, True], ids=["utf8", "escaped"])
def test_unicode_metadata_round_trips_exactly(client: Client, target: Target, ensure_ascii: bool) -> None:
    thread_id, message_id = target
    raw = json.dumps({"metadata": UNICODE_SAMPLES}, ensure_ascii=ensure_ascii).encode("utf-8")
    response = client.modify(thread_id, message_id, raw=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["metadata"] == {"keep": "me", **UNICODE_SAMPLES}
    assert client.metadata(thread_id, message_id) == {"keep": "me", **UNICODE_SAMPLES}
    (listed,) = client.listing(thread_id)["data"]
    assert listed["metadata"] == {"keep": "me", **UNICODE_SAMPLES}


@pytest.mark.parametrize("char", ["a", "é", "中", "😀"], ids=["ascii", "2-byte", "3-byte", "astral"])
def test_key_of_64_code_points_is_accepted_and_65_rejected(client: Client, target: Target, char: str) -> None:
    thread_id, message_id = target
    ok = client.modify(thread_id, message_id, {"metadata": {char * 64: "v"}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["metadata"][char * 64] == "v"
    too_long = client.modify(thread_id, message_id, {"metadata": {char * 65: "v"}})
    error = assert_error(too_long, 400, code="string_above_max_length", param="metadata")
    assert "maximum length 64" in error["message"] and "length 65" in error["message"]
    assert char * 65 not in client.metadata(thread_id, message_id)


@pytest.mark.parametrize("char", ["a", "é", "中", "😀"], ids=["ascii", "2-byte", "3-byte", "astral"])
def test_value_of_512_code_points_is_accepted_and_513_rejected(
    client: Client,
    target: Target,
    char: str,
) -> None:
    thread_id, message_id = target
    ok = client.modify(thread_id, message_id, {"metadata": {"v": char * 512}})
    assert ok.status_code == 200, ok.text
    too_long = client.modify(thread_id, message_id, {"metadata": {"v": char * 513}})
    error = assert_error(too_long, 400, code="string_above_max_length", param="metadata.v")
    assert error["message"] == (
        "Invalid 'metadata.v': string too long. Expected a string with maximum length 512, but got a string "
        "with length 513 instead."
    )
    assert client.metadata(thread_id, message_id)["v"] == char * 512


def test_16_keys_are_accepted_and_17_rejected(client: Client) -> None:
    thread_id, message_id = client.thread_and_message()
    assert client.modify(thread_id, message_id, {"metadata": keys(16)}).status_code == 200
    other_thread, other_message = client.thread_and_message()
    response = client.modify(other_thread, other_message, {"metadata": keys(17)})
    assert_error(
        response,
        400,
        code="object_above_max_properties",
        param="metadata",
        message="Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but "
        "got an object with 17 properties instead.",
    )
    assert client.metadata(other_thread, other_message) == {}


def test_merged_total_over_16_is_rejected_and_nothing_changes(client: Client) -> None:
    thread_id, message_id = client.thread_and_message(keys(10, "old"))
    before = client.get(thread_id, message_id)
    response = client.modify(thread_id, message_id, {"metadata": {**keys(7, "new"), "old00": "changed"}})
    error = assert_error(response, 400, code="object_above_max_properties", param="metadata")
    assert "got an object with 17 properties" in error["message"]
    assert client.get(thread_id, message_id) == before
    # Overwriting existing keys never grows the total, so this fits exactly.
    fits = client.modify(thread_id, message_id, {"metadata": {**keys(6, "new"), "old00": "changed"}})
    assert fits.status_code == 200 and len(fits.json()["metadata"]) == 16


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (1, "an integer"),
        (1.5, "a decimal"),
        (True, "a boolean"),
        (None, "null"),
        ({}, "an object"),
        ([], "an array"),
    ],
)
def test_non_string_values_are_rejected_and_nothing_changes(
    client: Client, target: Target, value: Any, kind: str
) -> None:
    thread_id, message_id = target
    response = client.modify(thread_id, message_id, {"metadata": {"fine": "yes", "bad": value}})
    assert_error(
        response,
        400,
        code="invalid_type",
        param="metadata.bad",
        message=f"Invalid type for 'metadata.bad': expected a string, but got {kind} instead.",
    )
    assert client.metadata(thread_id, message_id) == {"keep": "me"}


@pytest.mark.parametrize(
    ("value", "kind"), [("x", "a string"), (1, "an integer"), ([], "an array"), (False, "a boolean")]
)
def test_metadata_that_is_not_an_object_is_rejected(
    client: Client,
    target: Target,
    value: Any,
    kind: str,
) -> None:
    thread_id, message_id = target
    response = client.modify(thread_id, message_id, {"metadata": value})
    assert_error(
        response,
        400,
        code="invalid_type",
        param="metadata",
        message=f"Invalid type for 'metadata': expected an object, but got {kind} instead.",
    )


def test_empty_key_is_legal(client: Client, target: Target) -> None:
    thread_id, message_id = target
    response = client.modify(thread_id, message_id, {"metadata": {"": "empty key"}})
    assert response.status_code == 200
    assert client.metadata(thread_id, message_id) == {"keep": "me", "": "empty key"}


def test_unknown_body_field_is_rejected_and_nothing_changes(client: Client, target: Target) -> None:
    thread_id, message_id = target
    before = client.get(thread_id, message_id)
    for field_name in ("content", "role", "Metadata"):
        response = client.modify(thread_id, message_id, {"metadata": {"new": "x"}, field_name: "x"})
        assert_error(
            response,
            400,
            code="unknown_parameter",
            param=field_name,
            message=f"Unknown parameter: '{field_name}'.",
        )
    assert client.get(thread_id, message_id) == before


def test_an_invalid_pair_anywhere_rejects_the_whole_request(client: Client, target: Target) -> None:
    thread_id, message_id = target
    body = {"metadata": {"first": "ok", "second": "ok", "third": "x" * 600, "fourth": "ok"}}
    assert_error(
        client.modify(thread_id, message_id, body),
        400,
        code="string_above_max_length",
        param="metadata.third",
    )
    assert client.metadata(thread_id, message_id) == {"keep": "me"}


# --------------------------------------------------------------------------------------------------------
# Errors: §6 rows, order of checks, envelopes
# --------------------------------------------------------------------------------------------------------


def test_missing_api_key_is_401_with_code_null(client: Client, target: Target) -> None:
    thread_id, message_id = target
    for headers in ({"Authorization": None}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
        response = client.modify(thread_id, message_id, {"metadata": {"a": "b"}}, headers=headers)
        error = assert_error(response, 401, code=None, param=None)
        assert error["message"].startswith("You didn't provide an API key.")
    assert client.metadata(thread_id, message_id) == {"keep": "me"}


@pytest.mark.parametrize("wrong", ["sk-wrong-key-0123456789abcdef", "abc", "x", KEY + "x", KEY[:-1]])
def test_wrong_api_key_is_401_invalid_api_key_and_never_echoed(client: Client, wrong: str) -> None:
    response = client.call("GET", "/threads/thread_x", headers={"Authorization": f"Bearer {wrong}"})
    error = assert_error(response, 401, code="invalid_api_key", param=None)
    shown = re.fullmatch(r"Incorrect API key provided: (.*?)\*+\. You can find .*", error["message"])
    assert shown, error["message"]
    assert len(shown.group(1)) <= 5 and wrong.startswith(shown.group(1))
    assert wrong not in response.text and KEY not in response.text


def test_bearer_scheme_is_case_insensitive(client: Client) -> None:
    response = client.call("POST", "/threads", headers={"Authorization": f"bearer {KEY}"})
    assert response.status_code == 200


def test_missing_beta_header_is_400_invalid_beta(client: Client, target: Target) -> None:
    thread_id, message_id = target
    response = client.modify(thread_id, message_id, {"metadata": {"a": "b"}}, headers={"OpenAI-Beta": None})
    assert_error(response, 400, code="invalid_beta", param=None, message=MISSING_BETA)
    assert client.metadata(thread_id, message_id) == {"keep": "me"}


def test_v1_beta_header_gets_the_deprecation_message(client: Client) -> None:
    response = client.call("POST", "/threads", headers={"OpenAI-Beta": "assistants=v1"})
    assert_error(response, 400, code="invalid_beta", param=None, message=V1_BETA)


@pytest.mark.parametrize("value", ["assistants=v3", "Assistants=v2", "assistants=v2,other", "", "v2"])
def test_any_other_beta_value_is_400_invalid_beta(client: Client, value: str) -> None:
    response = client.call("POST", "/threads", headers={"OpenAI-Beta": value})
    assert_error(response, 400, code="invalid_beta", param=None)


def test_unknown_thread_is_404_and_wins_over_the_message(client: Client) -> None:
    response = client.modify("thread_nope", "msg_nope", {"metadata": {"a": "b"}})
    assert_error(response, 404, code=None, param=None, message="No thread found with id 'thread_nope'.")
    response = client.call("GET", "/threads/not-even-a-thread-id")
    message = "No thread found with id 'not-even-a-thread-id'."
    assert_error(response, 404, code=None, param=None, message=message)


def test_unknown_message_is_404(client: Client) -> None:
    thread_id = client.thread()["id"]
    response = client.modify(thread_id, "msg_nope", {"metadata": {"a": "b"}})
    assert_error(response, 404, code=None, param=None, message="No message found with id 'msg_nope'.")


def test_message_of_another_thread_is_404_and_unchanged(client: Client) -> None:
    thread_a, message_a = client.thread_and_message({"keep": "me"})
    thread_b = client.thread()["id"]
    for method in ("GET", "DELETE"):
        response = client.call(method, f"/threads/{thread_b}/messages/{message_a}")
        assert_error(response, 404, code=None, param=None, message=f"No message found with id '{message_a}'.")
    assert_error(client.modify(thread_b, message_a, {"metadata": {"x": "y"}}), 404, code=None, param=None)
    assert client.metadata(thread_a, message_a) == {"keep": "me"}


def test_order_of_checks_is_auth_beta_thread_message_body(client: Client) -> None:
    thread_id, message_id = client.thread_and_message()
    bad_body = {"metadata": keys(17), "content": "x"}
    no_auth = {"Authorization": None, "OpenAI-Beta": None}
    assert client.modify("thread_x", "msg_x", bad_body, headers=no_auth).status_code == 401
    no_beta = {"OpenAI-Beta": None}
    response = client.modify("thread_x", "msg_x", bad_body, headers=no_beta)
    assert_error(response, 400, code="invalid_beta", param=None)
    assert "No thread" in error_of(client.modify("thread_x", "msg_x", bad_body), 404)["message"]
    assert "No message" in error_of(client.modify(thread_id, "msg_x", bad_body), 404)["message"]
    response = client.modify(thread_id, message_id, bad_body)
    assert_error(response, 400, code="unknown_parameter", param="content")
    assert_error(client.modify(thread_id, message_id, raw=b"{"), 400, code=None, param=None)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b"nul",
        b"{'metadata': {}}",
        b'{"metadata": {"a": "b"}',
        b'{"metadata": {"a": NaN}}',
        b'{"metadata": {"a": Infinity}}',
        b'{"metadata": {"a": "\\ud800"}}',
        b'{"metadata": {"\\udfff": "a"}}',
        b'{"metadata": {"a": "\xff\xfe"}}',
        "\ufeff{}".encode(),
        '{"metadata": {}}'.encode("utf-16"),
        b"[" * 100_000 + b"]" * 100_000,
        b'{"metadata": {"a": "b"}} trailing',
    ],
)
def test_malformed_json_is_400_with_the_parse_message(client: Client, target: Target, raw: bytes) -> None:
    thread_id, message_id = target
    response = client.modify(thread_id, message_id, raw=raw, headers={"Content-Type": "application/json"})
    assert_error(response, 400, code=None, param=None, message=PARSE_MESSAGE)
    assert client.metadata(thread_id, message_id) == {"keep": "me"}


@pytest.mark.parametrize("body", [[], ["metadata"], "metadata", 1, None, True])
def test_json_that_is_not_an_object_is_400_invalid_type(client: Client, target: Target, body: Any) -> None:
    thread_id, message_id = target
    assert_error(client.modify(thread_id, message_id, body), 400, code="invalid_type", param=None)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_a_non_json_content_type_gets_the_parse_error(
    client: Client,
    target: Target,
    content_type: str,
) -> None:
    thread_id, message_id = target
    raw = b'{"metadata": {"a": "b"}}'
    response = client.modify(thread_id, message_id, raw=raw, headers={"Content-Type": content_type})
    assert_error(response, 400, code=None, param=None, message=PARSE_MESSAGE)
    assert client.metadata(thread_id, message_id) == {"keep": "me"}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/ld+json", None])
def test_json_content_types_and_a_missing_one_are_accepted(
    client: Client, target: Target, content_type: str | None
) -> None:
    thread_id, message_id = target
    raw = b'{"metadata": {"a": "b"}}'
    response = client.modify(thread_id, message_id, raw=raw, headers={"Content-Type": content_type})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("POST", ""),
        ("GET", "/nope"),
        ("GET", "/threads/"),
        ("GET", "/threads/t/runs"),
        ("POST", "/threads/t/messages/m/extra"),
        ("GET", "/assistants"),
    ],
)
def test_unknown_route_is_404_unknown_url(client: Client, method: str, path: str) -> None:
    error = assert_error(client.call(method, path), 404, code="unknown_url", param=None)
    assert error["message"].startswith(f"Unknown request URL: {method} /v1{path}. Please check the URL")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/threads", "POST"),
        ("PUT", "/threads/t", "GET, HEAD, POST, DELETE"),
        ("PATCH", "/threads/t/messages", "GET, HEAD, POST"),
        ("DELETE", "/threads/t/messages", "GET, HEAD, POST"),
        ("PUT", "/threads/t/messages/m", "GET, HEAD, POST, DELETE"),
        ("OPTIONS", "/threads/t/messages/m", "GET, HEAD, POST, DELETE"),
        ("TRACE", "/threads/t/messages/m", "GET, HEAD, POST, DELETE"),
        ("QUERY", "/threads/t/messages/m", "GET, HEAD, POST, DELETE"),
    ],
)
def test_wrong_method_on_a_known_path_is_405_with_allow(
    client: Client,
    method: str,
    path: str,
    allow: str,
) -> None:
    response = client.call(method, path)
    assert_error(response, 405, code="method_not_allowed", param=None)
    assert response.headers["allow"] == allow


def test_head_follows_get(client: Client, target: Target) -> None:
    thread_id, message_id = target
    response = client.call("HEAD", f"/threads/{thread_id}/messages/{message_id}")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"] == "application/json"


def test_unknown_route_still_needs_auth(client: Client) -> None:
    assert_error(client.call("GET", "/nope", headers={"Authorization": None}), 401, code=None, param=None)


@pytest.mark.parametrize(
    "make",
    [
        lambda c, t, m: c.call("POST", "/threads"),
        lambda c, t, m: c.modify(t, m, {"metadata": {"a": "b"}}),
        lambda c, t, m: c.call("GET", f"/threads/{t}/messages"),
        lambda c, t, m: c.call("DELETE", f"/threads/{t}/messages/{m}"),
        lambda c, t, m: c.modify(t, m, raw=b"{"),
        lambda c, t, m: c.modify(t, m, {"metadata": keys(17)}),
        lambda c, t, m: c.call("GET", "/threads/nope"),
        lambda c, t, m: c.call("GET", "/nope"),
        lambda c, t, m: c.call("PUT", f"/threads/{t}"),
        lambda c, t, m: c.call("GET", "/threads/x", headers={"Authorization": None}),
        lambda c, t, m: c.call("GET", "/threads/x", headers={"OpenAI-Beta": None}),
        lambda c, t, m: c.call("HEAD", f"/threads/{t}"),
    ],
)
def test_every_response_has_json_content_type_and_a_request_id(
    client: Client, target: Target, make: Callable[..., requests.Response]
) -> None:
    response = make(client, *target)
    assert response.headers["content-type"] == "application/json"
    assert REQUEST_ID.fullmatch(response.headers["x-request-id"])
    if response.request.method != "HEAD":
        response.json()


def test_request_ids_are_unique(client: Client) -> None:
    ids = {client.call("GET", "/nope").headers["x-request-id"] for _ in range(50)}
    assert len(ids) == 50


def test_ids_have_the_openai_format_and_are_unique(client: Client) -> None:
    thread_ids = {client.thread()["id"] for _ in range(20)}
    assert len(thread_ids) == 20 and all(THREAD_ID.fullmatch(i) for i in thread_ids)
    thread_id = next(iter(thread_ids))
    message_ids = {client.message(thread_id)["id"] for _ in range(20)}
    assert len(message_ids) == 20 and all(MESSAGE_ID.fullmatch(i) for i in message_ids)


def test_an_unexpected_exception_becomes_a_json_500_and_logs_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serve() as srv:

        def explode(thread_id: str) -> None:
            raise RuntimeError(f"boom with {KEY} inside")

        srv.app.state.store.get_thread = explode  # an instance attribute shadows the method
        client = Client(srv.base_url)
        with caplog.at_level(logging.ERROR, logger="modmsg.reference"):
            response = client.call("GET", "/threads/x")
        assert_error(response, 500, code=None, param=None, error_type="server_error")
        assert KEY not in response.text
        assert "RuntimeError" in caplog.text and KEY not in caplog.text
        assert client.call("GET", "/nope").status_code == 404  # the server keeps serving


class DropRequestId:
    """A response rewriter like a variant would add: removes ``x-request-id``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_without(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(n, v) for n, v in message["headers"] if n != b"x-request-id"]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_without)


def test_extra_middleware_wraps_the_whole_app() -> None:
    with start_server(KEY, middleware=[Middleware(DropRequestId)]) as srv:
        client = Client(srv.base_url)
        for response in (client.call("POST", "/threads"), client.call("GET", "/nope")):
            assert "x-request-id" not in response.headers
            assert response.headers["content-type"] == "application/json"


def test_oversized_body_is_413_in_the_envelope() -> None:
    with serve(max_body_bytes=1000) as srv:
        client = Client(srv.base_url)
        thread_id, message_id = client.thread_and_message()
        response = client.modify(thread_id, message_id, {"metadata": {"a": "x" * 2000}})
        assert_error(response, 413, code="request_too_large", param=None)


# --------------------------------------------------------------------------------------------------------
# Concurrency and robustness
# --------------------------------------------------------------------------------------------------------


def concurrent_modifies(base_url: str, thread_id: str, message_id: str, count: int = 16) -> list[int]:
    """``count`` threads, released together, each adding its own key; returns the status codes."""
    barrier = threading.Barrier(count)
    statuses: list[int] = [0] * count

    def worker(index: int) -> None:
        client = Client(base_url)
        barrier.wait()
        statuses[index] = client.modify(
            thread_id, message_id, {"metadata": {f"key{index:02d}": str(index)}}
        ).status_code
        client.session.close()

    workers = [threading.Thread(target=worker, args=(index,)) for index in range(count)]
    for worker_thread in workers:
        worker_thread.start()
    for worker_thread in workers:
        worker_thread.join(timeout=30)
    return statuses


def test_concurrent_modifies_lose_no_update(server: ReferenceServer, client: Client) -> None:
    thread_id, message_id = client.thread_and_message()
    assert concurrent_modifies(server.base_url, thread_id, message_id) == [200] * 16
    assert client.metadata(thread_id, message_id) == {f"key{index:02d}": str(index) for index in range(16)}


def test_concurrent_modifies_never_exceed_the_key_limit(server: ReferenceServer, client: Client) -> None:
    thread_id, message_id = client.thread_and_message(keys(8, "base"))
    statuses = concurrent_modifies(server.base_url, thread_id, message_id)
    assert statuses.count(200) == 8 and statuses.count(400) == 8
    assert len(client.metadata(thread_id, message_id)) == 16


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def fuzz_target(client: Client) -> Target:
    return client.thread_and_message()


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=200))
def test_garbage_bytes_never_cause_a_5xx(client: Client, fuzz_target: Target, raw: bytes) -> None:
    thread_id, message_id = fuzz_target
    for response in (
        client.modify(thread_id, message_id, raw=raw, headers={"Content-Type": "application/json"}),
        client.call("POST", f"/threads/{thread_id}/messages", raw=raw),
        client.call("POST", "/threads", raw=raw),
    ):
        assert response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/json"


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=JSON_VALUES | st.dictionaries(st.sampled_from(["metadata", "content", "role"]), JSON_VALUES))
def test_arbitrary_json_never_causes_a_5xx_and_errors_use_the_envelope(
    client: Client, fuzz_target: Target, body: Any
) -> None:
    thread_id, message_id = fuzz_target
    for response in (
        client.modify(thread_id, message_id, body),
        client.call("POST", f"/threads/{thread_id}/messages", body),
        client.call("POST", f"/threads/{thread_id}", body),
    ):
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            error_of(response, 400)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadata=st.dictionaries(st.text(max_size=70), st.text(max_size=520), max_size=18))
def test_generated_metadata_is_accepted_exactly_when_within_limits(
    client: Client,
    metadata: dict[str, str],
) -> None:
    thread_id, message_id = client.thread_and_message()
    response = client.modify(thread_id, message_id, {"metadata": metadata})
    valid = len(metadata) <= 16 and all(len(k) <= 64 and len(v) <= 512 for k, v in metadata.items())
    assert response.status_code == (200 if valid else 400), response.text
    assert client.metadata(thread_id, message_id) == (metadata if valid else {})


@pytest.mark.parametrize(
    "path",
    [
        "/threads/%00",
        "/threads/%FF%FE/messages",
        "/threads/" + "a" * 5000,
        "/threads/%F0%9F%98%80/messages/%F0%9F%98%80",
        "/threads/..%2F..%2Fetc/messages",
        "/threads/x/messages?limit=%FF&order=%00&after=%ED%A0%80",
        "/threads/x/messages/y?foo=bar",
    ],
)
def test_garbage_paths_never_cause_a_5xx(client: Client, path: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = client.call(method, path)
        assert 400 <= response.status_code < 500, response.text
        error_of(response, response.status_code)


# --------------------------------------------------------------------------------------------------------
# The knobs change what they say
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def knob_servers() -> Iterator[Callable[..., Client]]:
    """Start (and finally stop) one server per distinct set of knobs."""
    started: dict[tuple[tuple[str, Any], ...], ReferenceServer] = {}

    def client_for(**knobs: Any) -> Client:
        signature = tuple(sorted(knobs.items()))
        if signature not in started:
            started[signature] = serve(**knobs)
        return Client(started[signature].base_url)

    yield client_for
    with ThreadPoolExecutor() as pool:  # each stop waits for uvicorn's 0.1 s tick; do them together
        list(pool.map(ReferenceServer.stop, started.values()))


def test_knob_metadata_mode_replace(knob_servers: Knobs) -> None:
    client = knob_servers(metadata_mode="replace")
    thread_id, message_id = client.thread_and_message({"keep": "me"})
    assert client.modify(thread_id, message_id, {"metadata": {"new": "x"}}).json()["metadata"] == {"new": "x"}
    assert client.metadata(thread_id, message_id) == {"new": "x"}


@pytest.mark.parametrize(
    ("unit", "key_ok", "key_bad"),
    [("bytes", "é" * 32, "é" * 33), ("utf16", "😀" * 32, "😀" * 33)],
)
def test_knob_length_unit(knob_servers: Knobs, unit: str, key_ok: str, key_bad: str) -> None:
    client = knob_servers(length_unit=unit)
    thread_id, message_id = client.thread_and_message()
    assert client.modify(thread_id, message_id, {"metadata": {key_ok: "v"}}).status_code == 200
    assert client.modify(thread_id, message_id, {"metadata": {key_bad: "v"}}).status_code == 400
    # A 64-code-point key of two-unit characters, correct by §6, is now rejected.
    assert client.modify(thread_id, message_id, {"metadata": {key_ok * 2: "v"}}).status_code == 400


def test_knob_racy_modify_loses_updates(knob_servers: Knobs) -> None:
    client = knob_servers(racy_modify=True)
    kept: list[int] = []
    for _ in range(5):
        thread_id, message_id = client.thread_and_message()
        assert concurrent_modifies(client.base_url, thread_id, message_id) == [200] * 16
        kept.append(len(client.metadata(thread_id, message_id)))
        if kept[-1] < 16:
            break
    assert min(kept) < 16, kept


def test_knob_merged_total_limit_off(knob_servers: Knobs) -> None:
    client = knob_servers(merged_total_limit=False)
    thread_id, message_id = client.thread_and_message(keys(10, "a"))
    assert client.modify(thread_id, message_id, {"metadata": keys(10, "b")}).status_code == 200
    assert len(client.metadata(thread_id, message_id)) == 20


@pytest.mark.parametrize(("mode", "status", "after"), [("clear", 200, {}), ("error", 400, {"keep": "me"})])
def test_knob_null_metadata(knob_servers: Knobs, mode: str, status: int, after: dict[str, str]) -> None:
    client = knob_servers(null_metadata=mode)
    thread_id, message_id = client.thread_and_message({"keep": "me"})
    assert client.modify(thread_id, message_id, {"metadata": None}).status_code == status
    assert client.metadata(thread_id, message_id) == after


def test_knob_coerce_non_string_values(knob_servers: Knobs) -> None:
    client = knob_servers(coerce_non_string_values=True)
    thread_id, message_id = client.thread_and_message()
    response = client.modify(thread_id, message_id, {"metadata": {"n": 1, "b": True, "o": {"x": 1}}})
    assert response.json()["metadata"] == {"n": "1", "b": "true", "o": '{"x": 1}'}


def test_knob_reject_unknown_fields_off(knob_servers: Knobs) -> None:
    client = knob_servers(reject_unknown_fields=False)
    thread_id, message_id = client.thread_and_message()
    response = client.modify(thread_id, message_id, {"content": "x", "metadata": {"a": "b"}})
    assert response.status_code == 200 and response.json()["metadata"] == {"a": "b"}


def test_knob_validate_before_write_off_makes_partial_writes(knob_servers: Knobs) -> None:
    client = knob_servers(validate_before_write=False)
    thread_id, message_id = client.thread_and_message()
    response = client.modify(thread_id, message_id, {"metadata": {"a": "1", "b": 2, "c": "3"}})
    assert_error(response, 400, code="invalid_type", param="metadata.b")
    assert client.metadata(thread_id, message_id) == {"a": "1"}
    response = client.modify(thread_id, message_id, {"metadata": {"d": "4"}, "content": "x"})
    assert_error(response, 400, code="unknown_parameter", param="content")
    assert client.metadata(thread_id, message_id) == {"a": "1", "d": "4"}
    response = client.modify(thread_id, message_id, {"metadata": keys(15)})
    assert_error(response, 400, code="object_above_max_properties", param="metadata")
    assert len(client.metadata(thread_id, message_id)) == 16


def test_knob_persist_modify_off(knob_servers: Knobs) -> None:
    client = knob_servers(persist_modify=False)
    thread_id, message_id = client.thread_and_message()
    assert client.modify(thread_id, message_id, {"metadata": {"a": "b"}}).json()["metadata"] == {"a": "b"}
    assert client.metadata(thread_id, message_id) == {}


def test_knob_check_message_thread_off(knob_servers: Knobs) -> None:
    client = knob_servers(check_message_thread=False)
    _, message_id = client.thread_and_message()
    other_thread = client.thread()["id"]
    assert client.modify(other_thread, message_id, {"metadata": {"a": "b"}}).status_code == 200


def test_knob_deleted_message_visible(knob_servers: Knobs) -> None:
    client = knob_servers(deleted_message_visible=True)
    thread_id, message_id = client.thread_and_message()
    assert client.ok("DELETE", f"/threads/{thread_id}/messages/{message_id}")["deleted"] is True
    assert client.modify(thread_id, message_id, {"metadata": {"a": "b"}}).status_code == 200


def test_knob_require_beta_header_off(knob_servers: Knobs) -> None:
    client = knob_servers(require_beta_header=False)
    assert client.call("POST", "/threads", headers={"OpenAI-Beta": None}).status_code == 200


def test_knob_require_auth_off(knob_servers: Knobs) -> None:
    client = knob_servers(require_auth=False)
    assert client.call("POST", "/threads", headers={"Authorization": None}).status_code == 200


def test_knob_auth_status(knob_servers: Knobs) -> None:
    client = knob_servers(auth_status=403)
    assert client.call("POST", "/threads", headers={"Authorization": None}).status_code == 403


def test_knob_check_order_beta_first(knob_servers: Knobs) -> None:
    client = knob_servers(check_order="beta_first")
    response = client.call("POST", "/threads", headers={"Authorization": None, "OpenAI-Beta": None})
    assert_error(response, 400, code="invalid_beta", param=None)


def test_knob_echo_api_key_in_errors(knob_servers: Knobs) -> None:
    client = knob_servers(echo_api_key_in_errors=True)
    wrong = "sk-leaky-0123456789"
    assert wrong in client.call("GET", "/threads/x", headers={"Authorization": f"Bearer {wrong}"}).text
    assert KEY in client.call("GET", "/threads/x").text


@pytest.mark.parametrize(
    ("envelope", "check"),
    [
        ("status_failure", lambda r: r.json() == {"status": "failure", "message": r.json()["message"]}),
        ("detail", lambda r: list(r.json()) == ["detail"]),
        ("html", lambda r: r.headers["content-type"] == "text/html; charset=utf-8" and "<html>" in r.text),
    ],
)
def test_knob_error_envelope(
    knob_servers: Knobs,
    envelope: str,
    check: Callable[[requests.Response], bool],
) -> None:
    response = knob_servers(error_envelope=envelope).call("GET", "/threads/x")
    assert response.status_code == 404 and check(response)


def test_knob_error_codes_off(knob_servers: Knobs) -> None:
    client = knob_servers(error_codes=False)
    thread_id, message_id = client.thread_and_message()
    error = error_of(client.modify(thread_id, message_id, {"metadata": keys(17)}), 400)
    assert (error["code"], error["param"]) == (None, None)


def test_knob_json_content_type_and_request_id_header_off(knob_servers: Knobs) -> None:
    response = knob_servers(json_content_type=False, request_id_header=False).call("POST", "/threads")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert "x-request-id" not in response.headers


def test_knob_response_shape(knob_servers: Knobs, schemas: Schemas) -> None:
    client = knob_servers(drop_null_fields=True, object_name="message", timestamp_unit="ms")
    thread_id, message_id = client.thread_and_message()
    message = client.get(thread_id, message_id)
    assert "assistant_id" not in message and "run_id" not in message
    assert message["object"] == "message" and message["created_at"] > 10**12
    with pytest.raises(ValidationError):
        schemas.validate("MessageObject", message)


def test_knob_id_echo_correct_off(knob_servers: Knobs) -> None:
    client = knob_servers(id_echo_correct=False)
    thread_id, message_id = client.thread_and_message()
    body = client.modify(thread_id, message_id, {"metadata": {"a": "b"}}).json()
    assert body["id"] != message_id and body["thread_id"] != thread_id


@pytest.mark.parametrize("changed", ["created_at", "status", "role", "content", "assistant_id"])
def test_knob_modify_changes_other_fields(knob_servers: Knobs, changed: str) -> None:
    client = knob_servers(modify_changes_other_fields=True, changed_field=changed)
    thread_id, message_id = client.thread_and_message()
    before = client.get(thread_id, message_id)
    after = client.modify(thread_id, message_id, {"metadata": {"a": "b"}}).json()
    assert after[changed] != before[changed]
    assert client.get(thread_id, message_id)[changed] == after[changed]


def test_knob_server_error_on_edge(knob_servers: Knobs) -> None:
    client = knob_servers(server_error_on_edge=True)
    thread_id, message_id = client.thread_and_message()
    for metadata in ({"": "v"}, {"k": "😀"}):
        response = client.modify(thread_id, message_id, {"metadata": metadata})
        assert_error(response, 500, code=None, param=None, error_type="server_error")
    assert client.modify(thread_id, message_id, {"metadata": {"k": "é"}}).status_code == 200


def test_knob_invalid_json_status(knob_servers: Knobs) -> None:
    client = knob_servers(invalid_json_status=422)
    thread_id, message_id = client.thread_and_message()
    response = client.modify(thread_id, message_id, raw=b"{")
    assert_error(response, 422, code=None, param=None, message=PARSE_MESSAGE)


def test_knob_rate_limit_gives_429_with_retry_after(knob_servers: Knobs) -> None:
    client = knob_servers(rate_limit=0.01)  # one request, then the bucket refills in 100 s
    assert client.call("POST", "/threads").status_code == 200
    response = client.call("POST", "/threads")
    assert_error(response, 429, code="rate_limit_exceeded", param=None, error_type="requests")
    assert int(response.headers["retry-after"]) >= 1
    no_header = knob_servers(rate_limit=0.01, retry_after_header=False)
    no_header.call("POST", "/threads")
    response = no_header.call("POST", "/threads")
    assert response.status_code == 429 and "retry-after" not in response.headers


@pytest.mark.parametrize(
    ("knobs", "metadata", "status"),
    [
        ({"max_keys": 15}, keys(16), 400),
        ({"max_keys": 17}, keys(17), 200),
        ({"max_key_length": 63}, {"k" * 64: "v"}, 400),
        ({"max_value_length": 511}, {"k": "v" * 512}, 400),
        ({"allow_empty_key": False}, {"": "v"}, 400),
    ],
)
def test_knob_limits(knob_servers: Knobs, knobs: dict[str, Any], metadata: dict, status: int) -> None:
    client = knob_servers(**knobs)
    thread_id, message_id = client.thread_and_message()
    assert client.modify(thread_id, message_id, {"metadata": metadata}).status_code == status


@pytest.mark.parametrize(
    ("knobs", "key", "value", "stored"),
    [
        ({"key_transform": "casefold"}, "ABC", "v", ("abc", "v")),
        ({"value_transform": "strip"}, "k", "  v  ", ("k", "v")),
        ({"value_transform": "nfc"}, "k", "e\u0301", ("k", "\u00e9")),
        ({"value_transform": "ascii"}, "k", "é", ("k", "?")),
    ],
)
def test_knob_string_transforms(
    knob_servers: Knobs, knobs: dict[str, Any], key: str, value: str, stored: tuple[str, str]
) -> None:
    client = knob_servers(**knobs)
    thread_id, message_id = client.thread_and_message()
    client.modify(thread_id, message_id, {"metadata": {key: value}})
    assert client.metadata(thread_id, message_id) == dict([stored])


def test_knob_statuses_and_body_handling(knob_servers: Knobs) -> None:
    client = knob_servers(
        not_found_status=400,
        modify_success_status=201,
        empty_body_is_empty_object=True,
        require_json_content_type=False,
    )
    thread_id, message_id = client.thread_and_message()
    assert client.call("GET", "/threads/nope").status_code == 400
    assert client.modify(thread_id, message_id, raw=b"").status_code == 201
    raw = b'{"metadata": {"a": "b"}}'
    response = client.modify(thread_id, message_id, raw=raw, headers={"Content-Type": "text/plain"})
    assert response.status_code == 201
