"""The sibling calls the suite needs (create/delete thread, create/get/list/delete message) and modify itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from modmsg.ids import checked_id, path
from modmsg.transport import UNSET, Transport

PROBE_CONTENT = "modmsg conformance probe"
"""The content of the user messages the suite creates to modify."""


class SetupError(Exception):
    """A call the suite needs in order to judge anything did not work: the test reports ERROR, not FAIL."""


def message_path(thread_id: str, message_id: str) -> str:
    return path("threads", thread_id, "messages", message_id)


def json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@dataclass(frozen=True)
class AssistantsApi:
    transport: Transport

    def _ok(self, response: requests.Response, what: str) -> dict[str, Any]:
        body = json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise SetupError(
                f"{what} answered {response.status_code}: {self.transport.redactor.text(response.text[:300])}"
            )
        return body

    def create_thread(self, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        """The created thread; :class:`modmsg.ids.UnsafeId` when its id cannot go into a path."""
        body = {} if metadata is None else {"metadata": metadata}
        thread = self._ok(self.transport.request("POST", "threads", json=body), "createThread")
        checked_id(thread, "createThread")
        return thread

    def delete_thread(self, thread_id: str) -> requests.Response:
        return self.transport.request("DELETE", path("threads", thread_id))

    def create_message(
        self,
        thread_id: str,
        content: str = PROBE_CONTENT,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"role": "user", "content": content}
        if metadata is not None:
            body["metadata"] = metadata
        response = self.transport.request("POST", path("threads", thread_id, "messages"), json=body)
        message = self._ok(response, "createMessage")
        checked_id(message, "createMessage")
        if "thread_id" in message:  # the suite addresses the message by it
            checked_id(message, "createMessage", "thread_id")
        return message

    def get_message(self, thread_id: str, message_id: str) -> requests.Response:
        return self.transport.request("GET", message_path(thread_id, message_id))

    def fetch_message(self, thread_id: str, message_id: str) -> dict[str, Any]:
        return self._ok(self.get_message(thread_id, message_id), "getMessage")

    def list_messages(self, thread_id: str, **params: Any) -> requests.Response:
        return self.transport.request("GET", path("threads", thread_id, "messages"), params=params or None)

    def delete_message(self, thread_id: str, message_id: str) -> requests.Response:
        return self.transport.request("DELETE", message_path(thread_id, message_id))

    def modify_message(
        self,
        thread_id: str,
        message_id: str,
        body: Any = UNSET,
        *,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        without: tuple[str, ...] = (),
        method: str = "POST",
    ) -> requests.Response:
        return self.transport.request(
            method,
            message_path(thread_id, message_id),
            json=body,
            data=data,
            headers=headers,
            without=without,
        )
