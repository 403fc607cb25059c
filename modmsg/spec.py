"""The vendored OpenAPI fragment, its provenance, and the overlay that adds what it states only in prose."""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from modmsg.paths import spec_dir

FRAGMENT = "modify-message.openapi.yaml"
OVERLAY = "overlay.yaml"
MODIFY_PATH = "/threads/{thread_id}/messages/{message_id}"


class SpecError(ValueError):
    """The vendored spec or its overlay cannot be applied."""


@dataclass(frozen=True)
class SpecInfo:
    version: str
    commit: str
    sha256: str
    path: Path


def fragment_path() -> Path:
    return spec_dir() / FRAGMENT


@cache
def spec_info() -> SpecInfo:
    path = fragment_path()
    raw = path.read_bytes()
    commit = re.search(rb"commit:\s*([0-9a-f]{40})", raw)
    document = yaml.safe_load(raw)
    return SpecInfo(
        version=str(document["info"]["version"]),
        commit=commit.group(1).decode() if commit else "unknown",
        sha256=hashlib.sha256(raw).hexdigest(),
        path=path,
    )


def resolve_pointer(document: Any, pointer: str) -> Any:
    """Follow a JSON pointer (``#/a/b~1c``) through ``document``; KeyError when it does not resolve."""
    node = document
    for token in pointer.lstrip("#").lstrip("/").split("/") if pointer.strip("#/") else []:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise KeyError(pointer)
    return node


def _parent_and_key(document: Any, pointer: str) -> tuple[Any, str]:
    head, _, last = pointer.rpartition("/")
    return resolve_pointer(document, head or "#"), last.replace("~1", "/").replace("~0", "~")


def merge(target: Any, update: Any) -> Any:
    """Overlay merge: mappings recursively, lists by appending, anything else replaced."""
    if isinstance(target, dict) and isinstance(update, dict):
        merged = dict(target)
        for key, value in update.items():
            merged[key] = merge(target[key], value) if key in target else copy.deepcopy(value)
        return merged
    if isinstance(target, list) and isinstance(update, list):
        return [*target, *copy.deepcopy(update)]
    return copy.deepcopy(update)


def apply_overlay(document: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(document)
    for index, action in enumerate(overlay.get("actions", []), start=1):
        pointer = action.get("target", "")
        try:
            parent, key = _parent_and_key(result, pointer)
        except (KeyError, ValueError, IndexError):
            raise SpecError(f"overlay action {index}: target {pointer!r} does not resolve") from None
        empty: Any = [] if isinstance(action.get("update"), list) else {}
        current = parent[int(key)] if isinstance(parent, list) else parent.get(key, empty)
        merged = merge(current, action["update"])
        if isinstance(parent, list):
            parent[int(key)] = merged
        else:
            parent[key] = merged
    return result


@cache
def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_fragment() -> dict[str, Any]:
    """The upstream fragment exactly as vendored."""
    return copy.deepcopy(_load(fragment_path()))


def load_overlaid() -> dict[str, Any]:
    """The fragment with spec/overlay.yaml applied: what the generated suite and schema checks use."""
    return apply_overlay(_load(fragment_path()), _load(spec_dir() / OVERLAY))


METADATA_SCHEMA = "#/components/schemas/Metadata/anyOf/0"


@dataclass(frozen=True)
class MetadataLimits:
    """The metadata limits (MM-META-05..08), counted in code points (MM-META-18)."""

    keys: int
    key_length: int
    value_length: int


def limits_of(document: dict[str, Any]) -> MetadataLimits:
    """The limits ``document`` (the overlaid spec) states on the Metadata schema; SpecError when it states none."""
    schema = resolve_pointer(document, METADATA_SCHEMA)
    try:
        return MetadataLimits(
            keys=int(schema["maxProperties"]),
            key_length=int(schema["propertyNames"]["maxLength"]),
            value_length=int(schema["additionalProperties"]["maxLength"]),
        )
    except (KeyError, TypeError, ValueError):
        raise SpecError(
            f"{OVERLAY}: the Metadata schema ({METADATA_SCHEMA}) needs maxProperties, propertyNames.maxLength and "
            "additionalProperties.maxLength"
        ) from None


@cache
def metadata_limits() -> MetadataLimits:
    """The metadata limits as spec/overlay.yaml adds them to the vendored fragment: their one source."""
    return limits_of(load_overlaid())
