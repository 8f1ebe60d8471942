"""Thread-count control shared by plugins that run torch, FAISS or numba.

The core never imports these libraries itself: each context manager imports its library only when
given a thread count (``None`` leaves the library's setting alone and imports nothing).
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def _threads(num_threads: int | None, get: Callable[[], int], set_: Callable[[int], None]) -> Iterator[None]:
    previous = get()
    set_(num_threads)
    try:
        yield
    finally:
        set_(previous)


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``num_threads`` torch intra-op threads and restore the previous count
    afterwards, also on errors and Ctrl-C."""
    if num_threads is None:
        yield
        return
    torch = importlib.import_module("torch")
    with _threads(num_threads, torch.get_num_threads, torch.set_num_threads):
        yield


@contextmanager
def faiss_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``num_threads`` FAISS OpenMP threads, restoring the previous setting."""
    if num_threads is None:
        yield
        return
    faiss = importlib.import_module("faiss")
    with _threads(num_threads, faiss.omp_get_max_threads, faiss.omp_set_num_threads):
        yield


@contextmanager
def numba_threads(num_threads: int | None) -> Iterator[None]:
    """Run numba's parallel loops in the block with ``num_threads`` threads (at most numba's
    configured maximum), restoring the previous count."""
    if num_threads is None:
        yield
        return
    numba = importlib.import_module("numba")
    limit = min(num_threads, numba.config.NUMBA_NUM_THREADS)
    with _threads(limit, numba.get_num_threads, numba.set_num_threads):
        yield
