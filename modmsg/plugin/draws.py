"""What a seed draws depends on the seed, the spec, the options and the versions of Python, modmsg, Schemathesis
and Hypothesis (:func:`draw_versions`, recorded in every run's results): never on where modmsg is installed or
which other modules the process imported.

Hypothesis (since spring 2025) mixes into its draws the literals of every *local* module loaded when it draws:
any module outside site-packages and the standard library. For a run from a clone that is all of modmsg (about
800 strings and numbers); installed from a wheel it is none of them; a vendor's own plugin or overlay module adds
its literals; and the pool grows as modules are imported lazily during the run. Each changes the cases a seed
draws (measured: about a third of the generated cases differ between a clone and an install), so a replay line
taken from a CI run could draw other cases on an engineer's machine. The run therefore draws without that pool;
Hypothesis' own built-in constants (boundary numbers, tricky strings) stay.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pytest


def draw_versions() -> tuple[tuple[str, str], ...]:
    """What, besides modmsg and the spec, decides the cases a seed draws (a run's results record it): the Python
    (its Unicode tables), Hypothesis (its engine) and Schemathesis (its strategies)."""
    found = [("python", platform.python_version())]
    for package in ("hypothesis", "schemathesis"):
        try:
            found.append((package, version(package)))
        except PackageNotFoundError:
            found.append((package, "unknown"))
    return tuple(found)


def without_local_constants(config: pytest.Config) -> bool:
    """Make Hypothesis draw without the literals of local modules for the rest of this pytest session (restored at
    its end; the plugin calls it once the session is known to run modmsg tests).

    False when this Hypothesis has no such pool (older) or names it otherwise (a newer one): the project's own tests
    (tests/test_generated_streams.py) then fail, so an upgrade cannot silently make draws install-dependent again.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - Hypothesis is a dependency
        return False
    original: Any = getattr(providers, "_get_local_constants", None)
    constants: Any = getattr(providers, "Constants", None)
    if original is None or constants is None:
        return False
    empty = constants()

    def no_local_constants() -> Any:
        return empty

    def use(function: Any) -> None:
        providers._get_local_constants = function
        # Hypothesis caches, per kind of draw, the constants it may pick (local ones included): start afresh.
        cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
        if cache is not None:
            cache.clear()

    use(no_local_constants)
    config.add_cleanup(lambda: use(original))
    return True
