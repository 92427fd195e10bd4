"""Folders built once into the cache (converted models): atomic, locked, readable by all."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def build_cache_folder(
    target: Path, is_complete: Callable[[Path], bool], build: Callable[[Path], None]
) -> Path:
    """``target``, built by ``build(folder)`` unless ``is_complete(target)`` already holds.

    The folder is built next to its final place and renamed into it, so a crash never
    leaves half of it behind; a file lock keeps parallel callers from building twice.
    """
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.parent / f".{target.name}.lock"):
        if is_complete(target):
            return target
        building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            build(building)
            make_world_readable(building)
            if target.exists():  # a leftover that is_complete rejected: not usable
                shutil.rmtree(target)
            building.rename(target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return target


def make_world_readable(folder: Path) -> None:
    """Let every user read the folder: mkdtemp makes it 0700 and safetensors writes weights
    0600, but an image builds as root and runs as an unprivileged user. A model is not
    secret (it never holds a document)."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
