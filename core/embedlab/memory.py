"""Returning freed heap memory to the operating system.

glibc's allocator keeps memory that a process freed (large buffers included, once its mmap
threshold has adapted upwards) for reuse; the process's resident size then stays at its high-water
mark. Stages that free large temporaries before allocating the lasting result (PQ training from
chunks before the codes) call :func:`release_freed_memory`, glibc's ``malloc_trim(0)``, so that
the resident size follows what is live. Elsewhere (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this process runs on
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Give freed heap memory back to the operating system (glibc's ``malloc_trim(0)``); whether
    this C library offers it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
