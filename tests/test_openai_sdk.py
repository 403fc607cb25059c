"""The official ``openai`` SDK works against the reference server unchanged (DESIGN.md §5)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from openai import OpenAI
from openai.pagination import SyncCursorPage
from openai.types.beta.thread import Thread
from openai.types.beta.thread_deleted import ThreadDeleted
from openai.types.beta.threads.message import Message
from openai.types.beta.threads.message_deleted import MessageDeleted
from openai.types.beta.threads.text_content_block import TextContentBlock

from modmsg.reference import ReferenceServer, start_server

KEY = "sk-modmsg-sdk-test-0123456789abcdef"

# The SDK marks every Assistants method @deprecated; that is expected, not a problem of the server.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with start_server(KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ReferenceServer) -> Iterator[OpenAI]:
    http_client = openai.DefaultHttpxClient(trust_env=False)  # loopback only, never a proxy
    with OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, http_client=http_client) as sdk:
        yield sdk


@pytest.fixture
def thread(client: OpenAI) -> Thread:
    return client.beta.threads.create(metadata={"suite": "sdk"})


def test_sdk_creates_and_retrieves_a_thread(client: OpenAI, thread: Thread) -> None:
    assert isinstance(thread, Thread)
    assert thread.object == "thread" and thread.metadata == {"suite": "sdk"}
    fetched = client.beta.threads.retrieve(thread.id)
    assert isinstance(fetched, Thread) and fetched.id == thread.id


def test_sdk_creates_a_message_and_updates_its_metadata(client: OpenAI, thread: Thread) -> None:
    message = client.beta.threads.messages.create(
        thread.id, role="user", content="Hello \U0001f600", metadata={"a": "1"}
    )
    assert isinstance(message, Message)
    block = message.content[0]
    assert isinstance(block, TextContentBlock) and block.text.value == "Hello \U0001f600"
    updated = client.beta.threads.messages.update(
        message.id, thread_id=thread.id, metadata={"modified": "true", "user": "abc123"}
    )
    assert isinstance(updated, Message)
    assert updated.id == message.id and updated.thread_id == thread.id
    assert updated.metadata == {"a": "1", "modified": "true", "user": "abc123"}
    assert updated.created_at == message.created_at and updated.content == message.content
    retrieved = client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert isinstance(retrieved, Message) and retrieved.metadata == updated.metadata


def test_sdk_update_without_metadata_sends_an_empty_body_and_changes_nothing(
    client: OpenAI,
    thread: Thread,
) -> None:
    message = client.beta.threads.messages.create(thread.id, role="user", content="x", metadata={"k": "v"})
    messages = client.beta.threads.messages
    assert messages.update(message.id, thread_id=thread.id).metadata == {"k": "v"}
    assert messages.update(message.id, thread_id=thread.id, metadata=None).metadata == {"k": "v"}


def test_sdk_request_id_is_exposed(client: OpenAI, thread: Thread) -> None:
    message = client.beta.threads.messages.create(thread.id, role="user", content="x")
    assert message._request_id is not None and message._request_id.startswith("req_")


def test_sdk_lists_and_auto_paginates_messages(client: OpenAI, thread: Thread) -> None:
    ids = [client.beta.threads.messages.create(thread.id, role="user", content=f"m{i}").id for i in range(7)]
    page = client.beta.threads.messages.list(thread.id, limit=3, order="asc")
    assert isinstance(page, SyncCursorPage)
    assert all(isinstance(item, Message) for item in page.data)
    assert [m.id for m in page.data] == ids[:3] and page.has_more is True
    assert [m.id for m in client.beta.threads.messages.list(thread.id, limit=2, order="asc")] == ids
    assert [m.id for m in client.beta.threads.messages.list(thread.id)] == ids[::-1]


def test_sdk_deletes_a_message_and_then_gets_not_found(client: OpenAI, thread: Thread) -> None:
    message = client.beta.threads.messages.create(thread.id, role="user", content="bye")
    deleted = client.beta.threads.messages.delete(message.id, thread_id=thread.id)
    assert isinstance(deleted, MessageDeleted)
    assert (deleted.id, deleted.deleted, deleted.object) == (message.id, True, "thread.message.deleted")
    with pytest.raises(openai.NotFoundError) as caught:
        client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert caught.value.status_code == 404
    assert caught.value.message.endswith(f"No message found with id '{message.id}'.")


def test_sdk_unknown_thread_raises_not_found(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.beta.threads.messages.update("msg_nope", thread_id="thread_nope", metadata={"a": "b"})
    assert caught.value.code is None and caught.value.param is None


def test_sdk_17_keys_raise_bad_request_with_code_and_param(client: OpenAI, thread: Thread) -> None:
    message = client.beta.threads.messages.create(thread.id, role="user", content="x")
    with pytest.raises(openai.BadRequestError) as caught:
        seventeen = {f"k{i}": "v" for i in range(17)}
        client.beta.threads.messages.update(message.id, thread_id=thread.id, metadata=seventeen)
    assert caught.value.status_code == 400
    assert (caught.value.code, caught.value.param) == ("object_above_max_properties", "metadata")
    assert caught.value.type == "invalid_request_error"
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id).metadata == {}


def test_sdk_non_string_value_raises_bad_request_with_the_key_param(client: OpenAI, thread: Thread) -> None:
    message = client.beta.threads.messages.create(thread.id, role="user", content="x")
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.update(
            message.id,
            thread_id=thread.id,
            metadata={"version": 2},  # type: ignore[dict-item]
        )
    assert (caught.value.code, caught.value.param) == ("invalid_type", "metadata.version")


def test_sdk_unknown_parameter_in_extra_body_raises_bad_request(client: OpenAI, thread: Thread) -> None:
    message = client.beta.threads.messages.create(thread.id, role="user", content="x")
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.update(message.id, thread_id=thread.id, extra_body={"content": "new"})
    assert (caught.value.code, caught.value.param) == ("unknown_parameter", "content")


def test_sdk_wrong_key_raises_authentication_error(server: ReferenceServer) -> None:
    http_client = openai.DefaultHttpxClient(trust_env=False)
    wrong = OpenAI(
        base_url=server.base_url,
        api_key="sk-wrong-0123456789",
        max_retries=0,
        http_client=http_client,
    )
    with wrong, pytest.raises(openai.AuthenticationError) as caught:
        wrong.beta.threads.create()
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-0123456789" not in str(caught.value)


def test_sdk_deletes_a_thread(client: OpenAI, server: ReferenceServer) -> None:
    thread = client.beta.threads.create()
    deleted = client.beta.threads.delete(thread.id)
    assert isinstance(deleted, ThreadDeleted) and deleted.deleted is True
    assert thread.id not in server.thread_ids()
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)
