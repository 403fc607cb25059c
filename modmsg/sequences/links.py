"""The sibling operations and the OpenAPI links between them (spec/overlay.yaml), as Schemathesis resolves them.

``stateful_schema()`` is the overlaid spec narrowed to the operations a sequence uses, with Schemathesis' stateful
phase on; ``schema.as_state_machine()`` builds its state machine from the links (``NoLinksFound`` without them).
``Links`` is that machine's table of links by (source, target) operation id: every step of a sequence is
addressed through the link from the step that last answered about its object (createMessage → modifyMessage,
modifyMessage → getMessage, deleteMessage → modifyMessage ...), so a link that does not resolve on a real answer
stops the sequence instead of being assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import requests
import schemathesis
from schemathesis import APIOperation, Case
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.generation.stateful.state_machine import StepOutput
from schemathesis.schemas import BaseSchema

from modmsg.spec import load_overlaid

OPERATIONS = (
    "createThread",
    "getThread",
    "deleteThread",
    "createMessage",
    "listMessages",
    "getMessage",
    "modifyMessage",
    "deleteMessage",
)


class LinkError(RuntimeError):
    """A link the sequences need is missing from the overlay."""


class Unresolved(LinkError):
    """A link does not resolve on an answer (the answer lacks what the link reads)."""


def stateful_config() -> schemathesis.Config:
    """Schemathesis' own phases off except stateful (the state machine is built, never run by Schemathesis);
    no example database."""
    return schemathesis.Config.from_dict(
        {
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": False},
                "fuzzing": {"enabled": False},
                "stateful": {"enabled": True},
            },
            "generation": {"database": "none"},
        }
    )


@cache
def stateful_schema() -> BaseSchema:
    schema = schemathesis.openapi.from_dict(load_overlaid(), config=stateful_config())
    return schema.include(operation_id=list(OPERATIONS))


def operation_id(operation: APIOperation) -> str:
    return str(operation.definition.raw["operationId"])


@dataclass(frozen=True)
class Links:
    """The overlay's links by (source operation id, target operation id), and the operations by id."""

    links: Mapping[tuple[str, str], Any]
    operations: Mapping[str, APIOperation]

    @classmethod
    def of(cls, machine: Any) -> Links:
        """The links of ``schema.as_state_machine()``'s class (its ``_transitions``)."""
        links: dict[tuple[str, str], Any] = {}
        operations: dict[str, APIOperation] = {}
        for transitions in machine._transitions.operations.values():
            for link in transitions.outgoing:
                if link.is_inferred:  # only what the overlay declares
                    continue
                source, target = operation_id(link.source), operation_id(link.target)
                operations[source], operations[target] = link.source, link.target
                links.setdefault((source, target), link)
        return cls(links, operations)

    def names(self) -> list[str]:
        """``source -> target`` for every link."""
        return sorted(f"{source} -> {target}" for source, target in self.links)

    def follow(self, output: StepOutput, target: str) -> dict[str, Any]:
        """The parameters of ``target`` the link from ``output``'s operation extracts from ``output``."""
        source = operation_id(output.case.operation)
        link = self.links.get((source, target))
        if link is None:
            raise LinkError(f"spec/overlay.yaml has no link {source} -> {target}")
        parameters: dict[str, Any] = {}
        for container in link.extract(output).parameters.values():
            for name, extracted in container.items():
                value = extracted.value
                if not isinstance(value, Ok) or not isinstance(value.ok(), str):
                    raise Unresolved(f"the link {source} -> {target} does not resolve {name} ({extracted.definition})")
                parameters[name] = value.ok()
        return parameters


def step_output(case: Case, response: requests.Response) -> StepOutput:
    """One answered step as Schemathesis' state machine keeps it (what a link is evaluated on)."""
    return StepOutput(Response.from_requests(response, verify=True), case)


@cache
def sequence_links() -> Links:
    return Links.of(stateful_schema().as_state_machine())
