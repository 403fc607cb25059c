"""Checks: plain functions that raise a typed Failure (carrying a requirement id) when a property does not hold.

Every check takes what it judges (a response, a body, the state before and after); it never prints or formats
reports. A check that judges one requirement whoever calls it declares it (``@judges("MM-…")``, read back by
:func:`declared`); a general check (a status, a schema, an accepted or rejected request) judges the ``req`` its
caller names. Modules are split by requirement area.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from modmsg.checks._common import judged_by

MODULES = ("response", "metadata", "errors", "headers", "preconditions")


def modules() -> Iterator[ModuleType]:
    for name in MODULES:
        yield importlib.import_module(f"{__name__}.{name}")


def public_checks(module: ModuleType) -> list[tuple[str, Callable[..., Any]]]:
    """The checks ``module`` defines, by name."""
    return [
        (name, function)
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__ and not name.startswith("_")
    ]


def declared() -> dict[str, list[str]]:
    """Requirement id → the checks (``module.function``) that declare they judge it."""
    found: dict[str, list[str]] = {}
    for module in modules():
        for name, function in public_checks(module):
            req = judged_by(function)
            if req is not None:
                found.setdefault(req, []).append(f"{module.__name__.rsplit('.', 1)[1]}.{name}")
    return found
