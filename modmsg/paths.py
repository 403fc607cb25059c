"""Where the suite's data lives: the repo's top-level ``spec/``, ``suites/`` and ``docs/`` in a checkout (or an
editable install), their copies under ``modmsg/bundled/`` in an installed wheel. ``MODMSG_SPEC_DIR`` overrides
the spec directory."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
BUNDLED_DIR = PACKAGE_DIR / "bundled"


def shipped(name: str) -> Path:
    """A top-level directory of the repo, or its copy in the installed wheel."""
    bundled = BUNDLED_DIR / name
    return bundled if bundled.is_dir() else REPO_DIR / name


def spec_dir() -> Path:
    return Path(os.environ.get("MODMSG_SPEC_DIR") or shipped("spec"))


def suites_dir() -> Path:
    return shipped("suites")


def docs_dir() -> Path:
    return shipped("docs")
