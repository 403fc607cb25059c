"""A private Hypothesis home per process, so a run leaves no ``.hypothesis`` directory in the user's working tree,
and the content-addressed caches Hypothesis keeps there shared between runs through the user's cache directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest

HYPOTHESIS_HOME_PREFIX = "modmsg-hypothesis-"
SHARED_CACHES = ("unicode_data",)
"""Hypothesis' caches that hold nothing of the user's and are keyed by what they hold (the Unicode version, the
codec), so any run may reuse another's: without it each process spends ~1.5 s finding which characters UTF-8
encodes. (Its ``constants`` cache is not shared: it holds the literals of the user's own source files.)"""


def shared_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/modmsg/hypothesis-<version>`` (``~/.cache`` by default): a Hypothesis upgrade starts afresh."""
    import hypothesis

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modmsg" / f"hypothesis-{hypothesis.__version__}"


def _copy_new(source: Path, destination: Path) -> None:
    """Copy the files under ``source`` that ``destination`` lacks, each written under a temporary name and renamed,
    so a concurrent run never reads half a file. Best effort: a cache that cannot be read or written is no cache."""
    with suppress(OSError):
        for path in source.rglob("*"):
            target = destination / path.relative_to(source)
            if not path.is_file() or path.name.startswith(".tmp") or target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".tmp-{os.getpid()}-{target.name}")
            shutil.copyfile(path, partial)
            os.replace(partial, target)


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


def _keep_shared(home: Path, shared: Path) -> None:
    for name in SHARED_CACHES:
        _copy_new(home / name, shared / name)


def use_private_home() -> Callable[[], None]:
    """Hypothesis writes caches under ``./.hypothesis`` even without an example database (constants, charmap):
    give this process a private directory, and return what undoes it (the shared caches kept, the directory
    removed, the previous home given back), so nothing is left in the user's working directory. A directory the
    user chose (HYPOTHESIS_STORAGE_DIRECTORY) is kept."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return lambda: None
    from hypothesis import configuration
    from hypothesis.configuration import set_hypothesis_home_dir

    # What the process used before (None: Hypothesis' default, ./.hypothesis), given back at the end: a session run
    # inside another (pytester, pytest.main) must not leave its host writing caches into the working directory.
    previous = getattr(configuration, "__hypothesis_home_directory", None)

    _remove_orphaned_hypothesis_homes()
    home = tempfile.mkdtemp(prefix=f"{HYPOTHESIS_HOME_PREFIX}{os.getpid()}-")
    shared = shared_cache_dir()
    for name in SHARED_CACHES:
        _copy_new(shared / name, Path(home) / name)
    set_hypothesis_home_dir(home)

    def undo() -> None:
        _keep_shared(Path(home), shared)
        set_hypothesis_home_dir(previous)
        shutil.rmtree(home, ignore_errors=True)

    return undo


def private_hypothesis_home(config: pytest.Config) -> None:
    """A private Hypothesis home for the session (:func:`use_private_home`), undone at its end."""
    config.add_cleanup(use_private_home())
