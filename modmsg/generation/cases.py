"""The generated cases sent: what one case sent got back (``Sent``), what it says about itself (its pairs, mode and
description), and how the run's seed draws them (per-label seeds, bounded Hypothesis runs, the settings)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import hypothesis
import requests
from hypothesis import HealthCheck, Phase
from schemathesis import Case, GenerationMode
from schemathesis.generation.meta import REQUEST_SHAPE_PROBES, CoverageScenario, coverage_scenario

POSITIVE = GenerationMode.POSITIVE
NEGATIVE = GenerationMode.NEGATIVE


@dataclass(frozen=True)
class Sent:
    """One generated case and what came back."""

    case: Case
    mode: GenerationMode
    response: requests.Response
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    note: str = ""

    @property
    def is_method_probe(self) -> bool:
        return coverage_scenario(self.case) == CoverageScenario.UNSPECIFIED_HTTP_METHOD

    @property
    def is_request_shape_probe(self) -> bool:
        return coverage_scenario(self.case) in REQUEST_SHAPE_PROBES


def sent_pairs(case: Case) -> dict[str, str]:
    """The metadata pairs a (positive) case sends; empty for ``{}``, ``null`` or no metadata."""
    body = case.body
    metadata = body.get("metadata") if isinstance(body, dict) else None
    return {k: v for k, v in metadata.items() if isinstance(v, str)} if isinstance(metadata, dict) else {}


def effective_mode(case: Case) -> GenerationMode:
    """The mode after pinning: Schemathesis revalidates edited components, so a coverage case whose only
    defect was a header it generated (missing Authorization, wrong OpenAI-Beta) is positive once pinned."""
    meta = case.meta
    return meta.generation.mode if meta is not None else POSITIVE


def describe(case: Case, mode: GenerationMode, note: str = "") -> str:
    meta = case.meta
    if note or meta is None:
        return f"{mode.value} case: {note or 'hand-built'}"
    description = (meta.phase.data.description or "").replace("\n", " ")
    return f"{mode.value} case ({meta.phase.name.value} phase): {description}"


def derive_seed(seed: int, label: str) -> int:
    """A per-test seed: the same --seed replays every test, yet the tests explore different inputs."""
    return zlib.crc32(f"{seed}:{label}".encode()) ^ (seed & 0xFFFFFFFF)


HYPOTHESIS_BATCH = 500
"""The most examples one Hypothesis run draws. Hypothesis keeps every example of a run it tried (its result cache
and tree of choices grow with them, and CPython keeps the high-water mark resident), so ``--max-examples`` above
this is drawn in several runs of at most this size, each with its own seed derived from the run's: memory stays
flat whatever ``--max-examples`` is, and the same seed still replays the same cases."""


def batches(max_examples: int, label: str) -> list[tuple[str, int]]:
    """The (seed label, size) of each Hypothesis run that draws ``max_examples`` cases for ``label``."""
    sizes = [HYPOTHESIS_BATCH] * (max_examples // HYPOTHESIS_BATCH)
    if max_examples % HYPOTHESIS_BATCH:
        sizes.append(max_examples % HYPOTHESIS_BATCH)
    return [(label if index == 0 else f"{label}#{index}", size) for index, size in enumerate(sizes)]


def hypothesis_settings(max_examples: int, *, shrink: bool = True) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=max_examples,
        database=None,  # no .hypothesis replay: a CI run is exactly what the seed says
        deadline=None,  # network round trips, not CPU
        derandomize=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.explicit, Phase.generate),
        suppress_health_check=(
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ),
        verbosity=hypothesis.Verbosity.quiet,
        print_blob=False,
        # One finding per test, replayed last: the plugin reports one failure and the last exchanges as
        # evidence, so they must belong to the same case.
        report_multiple_bugs=False,
    )
