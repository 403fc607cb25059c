"""Profiles: which requirements apply and how the open questions of the spec are settled."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modmsg.paths import spec_dir
from modmsg.requirements import BUNDLED_PROFILES
from modmsg.yamlfile import read_yaml

_CHOICES: dict[str, tuple[str, ...]] = {
    "metadata_mode": ("merge", "replace", "any"),
    "empty_modify": ("unchanged", "cleared", "any"),
}
_TOP_KEYS = {"name", "description", "extends", "settings"}


class ProfileError(ValueError):
    """A profile file is malformed; the message says which file and which key."""


@dataclass(frozen=True)
class ProfileSettings:
    metadata_mode: str = "merge"
    empty_modify: str = "unchanged"
    merged_total_limit: bool = True
    check_error_codes: bool = True
    beta_header: str = "assistants=v2"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    base: str  # the bundled profile whose requirement selection applies (openai or spec)
    settings: ProfileSettings
    source: str


def _profile_file(name_or_path: str) -> Path:
    if name_or_path in BUNDLED_PROFILES:
        return spec_dir() / "profiles" / f"{name_or_path}.yaml"
    return Path(name_or_path)


def load_profile(name_or_path: str) -> Profile:
    path = _profile_file(name_or_path)
    if not path.is_file():
        raise ProfileError(
            f"profile {name_or_path!r} is neither a bundled profile ({', '.join(BUNDLED_PROFILES)}) nor a readable file"
        )
    return parse_profile(read_yaml(path, ProfileError, "profile"), str(path))


def parse_profile(data: Any, origin: str) -> Profile:
    if not isinstance(data, dict):
        raise ProfileError(f"profile {origin}: expected a mapping at the top level")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ProfileError(f"profile {origin}: unknown key(s) {', '.join(sorted(unknown))}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"profile {origin}: 'name' is required")
    extends = data.get("extends")
    if name in BUNDLED_PROFILES and extends is None:
        base_settings, base = ProfileSettings(), name
    elif extends in BUNDLED_PROFILES:
        parent = load_profile(extends)
        base_settings, base = parent.settings, parent.base
    else:
        raise ProfileError(f"profile {origin}: 'extends' must name a bundled profile ({', '.join(BUNDLED_PROFILES)})")
    settings = _parse_settings(data.get("settings") or {}, base_settings, origin)
    return Profile(
        name=name,
        description=str(data.get("description", "")),
        base=base,
        settings=settings,
        source=origin,
    )


def _parse_settings(raw: Any, defaults: ProfileSettings, origin: str) -> ProfileSettings:
    if not isinstance(raw, dict):
        raise ProfileError(f"profile {origin}: 'settings' must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(ProfileSettings)}
    unknown = set(raw) - set(fields)
    if unknown:
        raise ProfileError(
            f"profile {origin}: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(fields)}"
        )
    for key, value in raw.items():
        expected = type(getattr(defaults, key))
        if not isinstance(value, expected):
            raise ProfileError(f"profile {origin}: setting {key} must be a {expected.__name__}")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ProfileError(f"profile {origin}: setting {key} must be one of {', '.join(_CHOICES[key])}")
    return dataclasses.replace(defaults, **raw)
