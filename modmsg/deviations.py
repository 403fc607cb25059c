"""A deviations file (`--overlay PATH`, MODMSG_OVERLAY): known deviations of a product, each reported WAIVED.

Not to be confused with the spec overlay (spec/overlay.yaml, modmsg.spec), which adds to the vendored OpenAPI
fragment what upstream states only in prose. The option keeps its name ``--overlay`` so that existing command
lines, CI jobs and modmsg.toml files (``overlay = ...``) keep working; the messages name it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modmsg.requirements import Catalogue
from modmsg.yamlfile import read_yaml


class DeviationsError(ValueError):
    """The deviations file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Deviations:
    product: str
    waivers: dict[str, str]  # requirement id -> reason
    source: str  # the file it was read from: for messages only, never shown in a report
    version: str = ""  # the product's version, shown with its name in every report


def load_deviations(path: str, catalogue: Catalogue) -> Deviations:
    return parse_deviations(read_yaml(Path(path), DeviationsError, "overlay"), path, catalogue)


def parse_deviations(data: Any, origin: str, catalogue: Catalogue) -> Deviations:
    if not isinstance(data, dict) or not isinstance(data.get("waivers"), list):
        raise DeviationsError(f"overlay {origin}: expected a mapping with a 'waivers' list")
    unknown = set(data) - {"product", "version", "waivers"}
    if unknown:
        raise DeviationsError(f"overlay {origin}: unknown key(s) {', '.join(sorted(unknown))}")
    waivers: dict[str, str] = {}
    for index, entry in enumerate(data["waivers"], start=1):
        if not isinstance(entry, dict) or set(entry) != {"id", "reason"}:
            raise DeviationsError(f"overlay {origin}: waiver {index} must have exactly 'id' and 'reason'")
        req_id, reason = str(entry["id"]), str(entry["reason"]).strip()
        if req_id not in catalogue:
            raise DeviationsError(f"overlay {origin}: waiver {index} names unknown requirement {req_id}")
        if not reason:
            raise DeviationsError(f"overlay {origin}: waiver {index} ({req_id}) needs a reason")
        waivers[req_id] = reason
    return Deviations(
        product=str(data.get("product") or "").strip(),
        waivers=waivers,
        source=origin,
        version=str(data.get("version") or "").strip(),
    )
