"""Metadata: validation against the limits, the merge of a modify, and the string knobs of the variants."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modmsg.reference.behaviour import Behaviour, StringTransform
from modmsg.reference.errors import ApiError, RequestFailed, bad_request, invalid_type, too_many_properties


def measure(text: str, behaviour: Behaviour) -> int:
    if behaviour.length_unit == "bytes":
        return len(text.encode("utf-8", "surrogatepass"))
    if behaviour.length_unit == "utf16":
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    return len(text)


def transform(text: str, how: StringTransform) -> str:
    if how == "strip":
        return text.strip()
    if how == "casefold":
        return text.casefold()
    if how in ("nfc", "nfkc"):
        return unicodedata.normalize("NFC" if how == "nfc" else "NFKC", text)
    if how == "ascii":
        return text.encode("ascii", "replace").decode("ascii")
    return text


Pairs = tuple[tuple[str, str | None], ...]
"""Validated metadata pairs; a None value deletes its key (only with ``Behaviour.delete_marker``)."""


def _check_pair(key: str, value: Any, param: str, behaviour: Behaviour) -> tuple[str | None, ApiError | None]:
    """Validate one metadata pair; returns the value to store (None: delete the key; "" on error) and the error."""
    key_length = measure(key, behaviour)
    if key_length > behaviour.max_key_length:
        return "", bad_request(
            f"Invalid property name in '{param}': '{key}' is too long. Expected a string with maximum "
            f"length {behaviour.max_key_length}, but got a string with length {key_length} instead.",
            param=param,
            code="string_above_max_length",
        )
    if key == "" and not behaviour.allow_empty_key:
        return "", bad_request(
            f"Invalid property name in '{param}': expected a non-empty string.",
            param=param,
            code="invalid_value",
        )
    value_param = f"{param}.{key}"
    if value is None and behaviour.delete_marker == "null":
        return None, None
    if value == "" and behaviour.delete_marker == "empty_string":
        return None, None
    if not isinstance(value, str):
        if value is None or not behaviour.coerce_non_string_values:
            return "", invalid_type(value_param, "a string", value)
        value = json.dumps(value, ensure_ascii=False)
    value_length = measure(value, behaviour)
    if value_length > behaviour.max_value_length:
        return "", bad_request(
            f"Invalid '{value_param}': string too long. Expected a string with maximum length "
            f"{behaviour.max_value_length}, but got a string with length {value_length} instead.",
            param=value_param,
            code="string_above_max_length",
        )
    return value, None


def validate_metadata(value: Any, param: str, behaviour: Behaviour) -> tuple[Pairs, ApiError | None]:
    """Check a metadata object; returns the valid pairs before the first error, and that error."""
    if not isinstance(value, dict):
        return (), invalid_type(param, "an object", value)
    if len(value) > behaviour.max_keys:
        return (), too_many_properties(param, behaviour.max_keys, len(value))
    pairs: list[tuple[str, str | None]] = []
    for key, raw in value.items():
        stored, error = _check_pair(key, raw, param, behaviour)
        if error is not None:
            return tuple(pairs), error
        kept = None if stored is None else transform(stored, behaviour.value_transform)
        pairs.append((transform(key, behaviour.key_transform), kept))
    return tuple(pairs), None


def new_metadata(value: Any, param: str, behaviour: Behaviour) -> dict[str, str]:
    """Metadata of a new thread or message: absent or null is ``{}``; any error is raised."""
    if value is None:
        return {}
    pairs, error = validate_metadata(value, param, behaviour)
    if error is not None:
        raise RequestFailed(error)
    return {key: stored for key, stored in pairs if stored is not None}


@dataclass(frozen=True)
class MetadataPatch:
    """What a modify request asks for: no metadata, ``null``, or these pairs."""

    kind: Literal["absent", "null", "object"]
    pairs: Pairs = ()


def read_patch(body: Mapping[str, Any], behaviour: Behaviour) -> tuple[MetadataPatch, ApiError | None]:
    if "metadata" not in body:
        return MetadataPatch("absent"), None
    value = body["metadata"]
    if value is None:
        if behaviour.null_metadata == "error":
            return MetadataPatch("absent"), invalid_type("metadata", "an object", None)
        return MetadataPatch("null"), None
    if not isinstance(value, dict) and behaviour.ignore_non_object_metadata:
        return MetadataPatch("absent"), None
    pairs, error = validate_metadata(value, "metadata", behaviour)
    return MetadataPatch("object", pairs), error


def merge(
    current: Mapping[str, str], patch: MetadataPatch, behaviour: Behaviour
) -> tuple[dict[str, str], ApiError | None]:
    """The metadata after ``patch``; over the key limit, the pairs that still fit and the error."""
    if patch.kind == "absent" or (patch.kind == "null" and behaviour.null_metadata != "clear"):
        return dict(current), None
    if patch.kind == "null":
        return {}, None
    result = {} if behaviour.metadata_mode == "replace" else dict(current)
    total = len(result.keys() | {key for key, _ in patch.pairs})
    naive_total = len(result) + len(patch.pairs)
    if behaviour.merged_total_limit and behaviour.merged_limit_counts_overwrites and naive_total > behaviour.max_keys:
        return result, too_many_properties("metadata", behaviour.max_keys, naive_total)
    for key, value in patch.pairs:
        if value is None or (behaviour.repeated_pair_toggles and result.get(key) == value):
            result.pop(key, None)
            continue
        if behaviour.merged_total_limit and key not in result and len(result) >= behaviour.max_keys:
            return result, too_many_properties("metadata", behaviour.max_keys, total)
        result[key] = value
    return result, None


def is_edge_metadata(body: Mapping[str, Any]) -> bool:
    """An empty key or an astral character anywhere in the metadata (``server_error_on_edge``)."""
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        return False
    texts = [*metadata, *(value for value in metadata.values() if isinstance(value, str))]
    return "" in metadata or any(max(text, default="\0") > "\uffff" for text in texts)
