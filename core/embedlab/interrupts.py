"""Ctrl-C that cannot be lost.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens to be, and code
that catches broad exceptions (a plugin, a C extension that reports the interrupted call as a
``RuntimeError``) can swallow it. Inside :func:`watch`, every SIGINT is also counted, and
:func:`check` raises ``KeyboardInterrupt`` once one was seen: the experiment runner calls it
between pipelines and before recording a pipeline's failure, so an interrupted run never goes on
to the next pipeline.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

_seen = 0


def _handler(signum: int, frame: Any) -> None:
    global _seen
    _seen += 1
    raise KeyboardInterrupt


@contextlib.contextmanager
def watch() -> Iterator[None]:
    """Count SIGINTs while the block runs (main thread only; elsewhere a no-op), restoring the
    previous handler afterwards. Nested blocks share the count."""
    global _seen
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is _handler:
        yield
        return
    previous = signal.signal(signal.SIGINT, _handler)
    _seen = 0
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check() -> None:
    """``KeyboardInterrupt`` when a SIGINT arrived inside :func:`watch`, even if something caught
    the exception it raised."""
    if _seen:
        raise KeyboardInterrupt
