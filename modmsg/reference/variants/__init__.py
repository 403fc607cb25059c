"""Deliberately broken variants of the reference server: one realistic defect each, named after the defect.

A variant is the reference server with one defect switched on: a ``Behaviour`` with a knob flipped, or (for
defects that live in front of an application, in a gateway or framework) an ASGI middleware that rewrites
what the correct server does. Each names the requirements its defect ``breaks``: the conformance suite must
FAIL every one of them, deterministically, and must not ERROR (``tests/test_variants.py`` proves both;
``make mutation`` scores them). Pattern: Schemathesis' ``test/apps/.../modifiers``.

``modmsg serve --variant NAME`` and the tests start a variant through the same ``Variant.start``.
"""

from __future__ import annotations

from modmsg.reference.variants.defects import STALE_READS, Reply, RewriteResponses, rewrite
from modmsg.reference.variants.metadata import METADATA_VARIANTS
from modmsg.reference.variants.protocol import PROTOCOL_VARIANTS
from modmsg.reference.variants.sequences import SEQUENCE_VARIANTS
from modmsg.reference.variants.variant import Variant

__all__ = ["STALE_READS", "VARIANTS", "Reply", "RewriteResponses", "Variant", "get_variant", "rewrite"]

VARIANTS: tuple[Variant, ...] = (*METADATA_VARIANTS, *PROTOCOL_VARIANTS, *SEQUENCE_VARIANTS)


def get_variant(name: str) -> Variant:
    """The variant called ``name``; KeyError (with a hint) if there is none."""
    for variant in VARIANTS:
        if variant.name == name:
            return variant
    raise KeyError(f"unknown variant '{name}'; see `modmsg variants`")
