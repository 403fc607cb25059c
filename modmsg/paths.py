"""Where the suite's data lives: the repo's spec/ directory (overridable with MODMSG_SPEC_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def spec_dir() -> Path:
    return Path(os.environ.get("MODMSG_SPEC_DIR") or REPO_DIR / "spec")


def suites_dir() -> Path:
    return REPO_DIR / "suites"
