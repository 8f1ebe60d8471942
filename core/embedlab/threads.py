"""Thread-count control shared by plugins that run torch (the core itself never imports torch)."""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``num_threads`` torch intra-op threads and restore the previous count
    afterwards, also on errors and Ctrl-C. ``None`` leaves torch's setting alone (torch is then not
    even imported)."""
    if num_threads is None:
        yield
        return
    torch = importlib.import_module("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
