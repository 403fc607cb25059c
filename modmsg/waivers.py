"""A vendor overlay: known deviations of a product, each reported WAIVED (never PASS) with its reason."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modmsg.requirements import Catalogue
from modmsg.yamlfile import read_yaml


class WaiverError(ValueError):
    """The overlay file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Overlay:
    product: str
    waivers: dict[str, str]  # requirement id -> reason
    source: str  # the file it was read from: for messages only, never shown in a report
    version: str = ""  # the product's version, shown with its name in every report


def load_overlay(path: str, catalogue: Catalogue) -> Overlay:
    return parse_overlay(read_yaml(Path(path), WaiverError, "overlay"), path, catalogue)


def parse_overlay(data: Any, origin: str, catalogue: Catalogue) -> Overlay:
    if not isinstance(data, dict) or not isinstance(data.get("waivers"), list):
        raise WaiverError(f"overlay {origin}: expected a mapping with a 'waivers' list")
    unknown = set(data) - {"product", "version", "waivers"}
    if unknown:
        raise WaiverError(f"overlay {origin}: unknown key(s) {', '.join(sorted(unknown))}")
    waivers: dict[str, str] = {}
    for index, entry in enumerate(data["waivers"], start=1):
        if not isinstance(entry, dict) or set(entry) != {"id", "reason"}:
            raise WaiverError(f"overlay {origin}: waiver {index} must have exactly 'id' and 'reason'")
        req_id, reason = str(entry["id"]), str(entry["reason"]).strip()
        if req_id not in catalogue:
            raise WaiverError(f"overlay {origin}: waiver {index} names unknown requirement {req_id}")
        if not reason:
            raise WaiverError(f"overlay {origin}: waiver {index} ({req_id}) needs a reason")
        waivers[req_id] = reason
    return Overlay(
        product=str(data.get("product") or "").strip(),
        waivers=waivers,
        source=origin,
        version=str(data.get("version") or "").strip(),
    )
