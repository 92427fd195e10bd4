"""Handing freed heap memory back to the operating system."""

from __future__ import annotations

import contextlib
import ctypes


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc's malloc_trim), so that the memory of a deleted
    session, or of a parsed document in a worker, really goes away; elsewhere a no-op."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
