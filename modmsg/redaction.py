"""Redaction: the one place that decides what of a secret may appear in evidence, reports and the console."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

REDACTED = "[REDACTED]"


@dataclass(frozen=True)
class Redactor:
    """Removes credentials from evidence: secret header values by name, and secret values anywhere."""

    secret_headers: frozenset[str]
    secret_values: tuple[str, ...]

    def text(self, value: str) -> str:
        for secret in self.secret_values:
            if secret and secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def headers(self, headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(
            (name, REDACTED if name.lower() in self.secret_headers else self.text(str(value)))
            for name, value in headers.items()
        )
