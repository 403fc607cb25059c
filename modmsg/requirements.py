"""The requirement catalogue (spec/requirements.yaml), loaded into validated frozen objects."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from modmsg.paths import spec_dir
from modmsg.yamlfile import read_yaml

ID_PATTERN = re.compile(r"^MM-(RESP|META|REQ|ERR|HDR|GEN|SEQ)-\d{2}$")
AREAS = ("RESP", "META", "REQ", "ERR", "HDR", "GEN", "SEQ")
AREA_TITLES = {
    "RESP": "Success response",
    "META": "Metadata",
    "REQ": "Request handling",
    "ERR": "Errors",
    "HDR": "Headers",
    "GEN": "Generated (Schemathesis)",
    "SEQ": "Sequences (model-based)",
}
SOURCE_KINDS = ("spec", "observed", "decision", "http")
BUNDLED_PROFILES = ("openai", "spec")
_KEYS = {"id", "title", "level", "statement", "source", "profiles", "when", "retired"}
_REQUIRED = ("id", "title", "level", "statement", "source", "profiles")


class CatalogueError(ValueError):
    """The catalogue file is malformed; the message names the entry and the problem."""


class Level(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


@dataclass(frozen=True)
class Source:
    kind: str
    ref: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.ref}"


@dataclass(frozen=True)
class Requirement:
    id: str
    title: str
    level: Level
    statement: str
    source: Source
    profiles: tuple[str, ...]
    when: str | None = None
    retired: str | None = None

    @property
    def area(self) -> str:
        return self.id.split("-")[1]

    @property
    def conditional(self) -> bool:
        return self.when is not None


@dataclass(frozen=True)
class Catalogue:
    version: int
    requirements: tuple[Requirement, ...]

    def __iter__(self) -> Iterator[Requirement]:
        return iter(self.requirements)

    def __len__(self) -> int:
        return len(self.requirements)

    def __contains__(self, req_id: object) -> bool:
        return any(r.id == req_id for r in self.requirements)

    def get(self, req_id: str) -> Requirement:
        for requirement in self.requirements:
            if requirement.id == req_id:
                return requirement
        raise KeyError(f"unknown requirement id {req_id!r}")

    def active(self) -> tuple[Requirement, ...]:
        return tuple(r for r in self.requirements if r.retired is None)

    def for_profile(self, base_profile: str) -> tuple[Requirement, ...]:
        return tuple(r for r in self.active() if base_profile in r.profiles)

    def select(self, selectors: Iterable[str]) -> tuple[Requirement, ...]:
        """Requirements matching any selector: a full id (MM-META-03) or a prefix (MM-META, MM)."""
        wanted = [s.strip().upper() for s in selectors if s.strip()]
        return tuple(r for r in self.active() if any(matches(r.id, s) for s in wanted))


def matches(req_id: str, selector: str) -> bool:
    return req_id == selector or req_id.startswith(selector.rstrip("-") + "-")


def default_path() -> Path:
    return spec_dir() / "requirements.yaml"


def load_catalogue(path: Path | None = None) -> Catalogue:
    path = path or default_path()
    return parse_catalogue(read_yaml(path, CatalogueError, "requirement catalogue"), str(path))


def parse_catalogue(data: Any, origin: str = "catalogue") -> Catalogue:
    if not isinstance(data, dict) or not isinstance(data.get("requirements"), list):
        raise CatalogueError(f"{origin}: expected a mapping with a 'requirements' list")
    seen: set[str] = set()
    requirements = []
    for index, entry in enumerate(data["requirements"], start=1):
        requirement = _parse_entry(entry, f"{origin}: entry {index}")
        if requirement.id in seen:
            raise CatalogueError(f"{origin}: entry {index}: duplicate id {requirement.id}")
        seen.add(requirement.id)
        requirements.append(requirement)
    return Catalogue(version=int(data.get("version", 1)), requirements=tuple(requirements))


def _parse_entry(entry: Any, where: str) -> Requirement:
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: expected a mapping, got {type(entry).__name__}")
    unknown = set(entry) - _KEYS
    if unknown:
        raise CatalogueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    missing = [k for k in _REQUIRED if not entry.get(k)]
    if missing:
        raise CatalogueError(f"{where}: missing {', '.join(missing)}")
    req_id = str(entry["id"])
    where = f"{where} ({req_id})"
    if not ID_PATTERN.match(req_id):
        raise CatalogueError(f"{where}: id must look like MM-<{'|'.join(AREAS)}>-NN")
    try:
        level = Level(entry["level"])
    except ValueError:
        raise CatalogueError(f"{where}: level must be MUST, SHOULD or MAY, not {entry['level']!r}") from None
    if level.value not in str(entry["statement"]):
        raise CatalogueError(f"{where}: the statement must use its RFC 2119 keyword {level.value}")
    source = entry["source"]
    if not isinstance(source, dict) or source.get("kind") not in SOURCE_KINDS or not source.get("ref"):
        raise CatalogueError(f"{where}: source must be {{kind: {'|'.join(SOURCE_KINDS)}, ref: ...}}")
    profiles = entry["profiles"]
    if not isinstance(profiles, list) or not set(profiles) <= set(BUNDLED_PROFILES):
        raise CatalogueError(f"{where}: profiles must be a list drawn from {', '.join(BUNDLED_PROFILES)}")
    return Requirement(
        id=req_id,
        title=str(entry["title"]),
        level=level,
        statement=str(entry["statement"]),
        source=Source(kind=source["kind"], ref=str(source["ref"])),
        profiles=tuple(profiles),
        when=entry.get("when"),
        retired=entry.get("retired"),
    )
