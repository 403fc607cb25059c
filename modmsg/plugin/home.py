"""A private Hypothesis home per process, so a run leaves no ``.hypothesis`` directory in the user's working tree."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path

import pytest

HYPOTHESIS_HOME_PREFIX = "modmsg-hypothesis-"


def _remove_orphaned_hypothesis_homes() -> None:
    """Remove the private Hypothesis directories of this user's runs whose process is gone (killed, or ended at
    once by a second Ctrl-C), so they do not pile up in the temporary directory."""
    for path in Path(tempfile.gettempdir()).glob(f"{HYPOTHESIS_HOME_PREFIX}*-*"):
        pid = path.name.removeprefix(HYPOTHESIS_HOME_PREFIX).split("-", 1)[0]
        with suppress(OSError):
            if pid.isdigit() and path.stat().st_uid == os.getuid() and not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:  # another user's process
        return True
    except (OSError, OverflowError):
        return False
    return True


def private_hypothesis_home(config: pytest.Config) -> None:
    """Hypothesis writes caches under ``./.hypothesis`` even without an example database (constants, charmap):
    give this process a private directory, removed at the end, so a run leaves nothing in the user's working
    directory. A directory the user chose (HYPOTHESIS_STORAGE_DIRECTORY) is kept."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    from hypothesis.configuration import set_hypothesis_home_dir

    _remove_orphaned_hypothesis_homes()
    home = tempfile.mkdtemp(prefix=f"{HYPOTHESIS_HOME_PREFIX}{os.getpid()}-")
    set_hypothesis_home_dir(home)
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
    config.add_cleanup(lambda: set_hypothesis_home_dir(None))
