"""The request bodies of createMessage, createThread and modifyThread (messages, content parts, tool resources)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modmsg.reference.behaviour import Behaviour
from modmsg.reference.errors import RequestFailed, bad_request, invalid_type, invalid_value, missing_parameter
from modmsg.reference.metadata import new_metadata
from modmsg.reference.parsing import reject_unknown
from modmsg.reference.store import NewMessage, new_id

MESSAGE_KEYS = frozenset({"role", "content", "attachments", "metadata"})
THREAD_KEYS = frozenset({"messages", "tool_resources", "metadata"})
MODIFY_THREAD_KEYS = frozenset({"tool_resources", "metadata"})
_ROLES = ("user", "assistant")
_DETAILS = ("auto", "low", "high")
_TOOLS = ("code_interpreter", "file_search")
_PART_TYPES = ("text", "image_file", "image_url")
_SEARCH = "tool_resources.file_search"


def require_object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestFailed(invalid_type(param, "an object", value))
    return value


def require_string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise RequestFailed(invalid_type(param, "a string", value))
    return value


def require_array(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise RequestFailed(invalid_type(param, "an array", value))
    return value


def require_choice(value: Any, param: str, allowed: Sequence[str]) -> str:
    text = require_string(value, param)
    if text not in allowed:
        raise RequestFailed(invalid_value(param, text, allowed))
    return text


def require_key(body: Mapping[str, Any], key: str, prefix: str) -> Any:
    if key not in body:
        raise RequestFailed(missing_parameter(prefix + key))
    return body[key]


def _image_part(part: Mapping[str, Any], kind: str, param: str, behaviour: Behaviour) -> dict[str, Any]:
    target_key = "file_id" if kind == "image_file" else "url"
    inner = require_object(require_key(part, kind, param + "."), f"{param}.{kind}")
    reject_unknown(inner, frozenset({target_key, "detail"}), f"{param}.{kind}.", behaviour)
    target_param = f"{param}.{kind}.{target_key}"
    target = require_string(require_key(inner, target_key, f"{param}.{kind}."), target_param)
    if kind == "image_url" and not target.startswith(("https://", "http://", "data:")):
        raise RequestFailed(
            bad_request(
                f"Invalid '{param}.image_url.url': expected an 'https://', 'http://' or 'data:' URL.",
                param=f"{param}.image_url.url",
                code="invalid_value",
            )
        )
    stored: dict[str, Any] = {target_key: target}
    if "detail" in inner:
        stored["detail"] = require_choice(inner["detail"], f"{param}.{kind}.detail", _DETAILS)
    return {"type": kind, kind: stored}


def content_part(part: Any, param: str, behaviour: Behaviour) -> dict[str, Any]:
    obj = require_object(part, param)
    kind = require_choice(require_key(obj, "type", param + "."), param + ".type", _PART_TYPES)
    reject_unknown(obj, frozenset({"type", kind}), param + ".", behaviour)
    if kind == "text":
        text = require_string(require_key(obj, "text", param + "."), param + ".text")
        return {"type": "text", "text": {"value": text, "annotations": []}}
    return _image_part(obj, kind, param, behaviour)


def message_content(value: Any, param: str, behaviour: Behaviour) -> tuple[dict[str, Any], ...]:
    if isinstance(value, str):
        return ({"type": "text", "text": {"value": value, "annotations": []}},)
    if not isinstance(value, list):
        raise RequestFailed(invalid_type(param, "a string or an array of content parts", value))
    if not value:
        raise RequestFailed(
            bad_request(
                f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty "
                "array instead.",
                param=param,
                code="empty_array",
            )
        )
    return tuple(content_part(part, f"{param}[{index}]", behaviour) for index, part in enumerate(value))


def attachment(value: Any, param: str, behaviour: Behaviour) -> dict[str, Any]:
    obj = require_object(value, param)
    reject_unknown(obj, frozenset({"file_id", "tools"}), param + ".", behaviour)
    file_id = require_string(require_key(obj, "file_id", param + "."), param + ".file_id")
    tools = []
    for index, tool in enumerate(require_array(require_key(obj, "tools", param + "."), param + ".tools")):
        tool_param = f"{param}.tools[{index}]"
        tool_obj = require_object(tool, tool_param)
        reject_unknown(tool_obj, frozenset({"type"}), tool_param + ".", behaviour)
        prefix = tool_param + "."
        tools.append({"type": require_choice(require_key(tool_obj, "type", prefix), prefix + "type", _TOOLS)})
    return {"file_id": file_id, "tools": tools}


def new_message(body: Mapping[str, Any], prefix: str, behaviour: Behaviour) -> NewMessage:
    """Validate a CreateMessageRequest (``prefix`` is e.g. ``messages[0].`` inside createThread)."""
    reject_unknown(body, MESSAGE_KEYS, prefix, behaviour)
    role = require_choice(require_key(body, "role", prefix), prefix + "role", _ROLES)
    content = message_content(require_key(body, "content", prefix), prefix + "content", behaviour)
    attachments: tuple[dict[str, Any], ...] | None = ()
    raw_attachments = body.get("attachments", [])
    if raw_attachments is None:
        attachments = None
    else:
        items = require_array(raw_attachments, prefix + "attachments")
        attachments = tuple(
            attachment(item, f"{prefix}attachments[{index}]", behaviour) for index, item in enumerate(items)
        )
    metadata = new_metadata(body.get("metadata"), prefix + "metadata", behaviour)
    return NewMessage(role=role, content=content, attachments=attachments, metadata=metadata)


def _id_list(value: Any, param: str, limit: int) -> list[str]:
    items = require_array(value, param)
    if len(items) > limit:
        raise RequestFailed(
            bad_request(
                f"Invalid '{param}': array too long. Expected an array with maximum length {limit}, but got "
                f"an array with length {len(items)} instead.",
                param=param,
                code="array_above_max_length",
            )
        )
    return [require_string(item, f"{param}[{index}]") for index, item in enumerate(items)]


def tool_resources(value: Any, behaviour: Behaviour, *, creating: bool) -> dict[str, Any] | None:
    """Validate ``tool_resources``; a ``vector_stores`` helper becomes one generated vector store id."""
    if value is None:
        return None
    obj = require_object(value, "tool_resources")
    reject_unknown(obj, frozenset({"code_interpreter", "file_search"}), "tool_resources.", behaviour)
    result: dict[str, Any] = {}
    if "code_interpreter" in obj:
        interp = require_object(obj["code_interpreter"], "tool_resources.code_interpreter")
        reject_unknown(interp, frozenset({"file_ids"}), "tool_resources.code_interpreter.", behaviour)
        file_ids = _id_list(interp.get("file_ids", []), "tool_resources.code_interpreter.file_ids", 20)
        result["code_interpreter"] = {"file_ids": file_ids}
    if "file_search" in obj:
        allowed = {"vector_store_ids", "vector_stores"} if creating else {"vector_store_ids"}
        search = require_object(obj["file_search"], "tool_resources.file_search")
        reject_unknown(search, frozenset(allowed), "tool_resources.file_search.", behaviour)
        store_ids = _id_list(search.get("vector_store_ids", []), f"{_SEARCH}.vector_store_ids", 1)
        helpers = require_array(search.get("vector_stores", []), f"{_SEARCH}.vector_stores")
        for index, helper in enumerate(helpers):
            require_object(helper, f"tool_resources.file_search.vector_stores[{index}]")
            store_ids.append(new_id("vs"))
        if len(store_ids) > 1:
            raise RequestFailed(
                bad_request(
                    f"Invalid '{_SEARCH}': at most one vector store can be attached to a thread.",
                    param="tool_resources.file_search",
                    code="invalid_value",
                )
            )
        result["file_search"] = {"vector_store_ids": store_ids}
    return result
