"""Kill a process while it saves a component, to check that the state survives (tests, benchmarks).

:func:`killed_save` forks; the child saves a component and SIGKILLs itself just before its
``n``-th file-system step (opening a file for writing, a write call, ``mkdir``, ``fsync``, a
rename, an exchange, a removal). The steps are counted the same way whatever the persistence code
does, so implementations can be compared. :func:`survey` saves version 1 of a component, kills
saves of version 2 over it at many steps and reports what loads afterwards.

>>> counts = survey(build, probe, tmp_path, kill_points(count_steps(build(2), tmp_path / "x"), 12))  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import io
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

_HOOKED = ((os, "rename"), (os, "replace"), (os, "fsync"), (os, "mkdir"), (os, "rmdir"), (os, "unlink"),
           (shutil, "rmtree"))


class _Writes:
    """A file whose every ``write`` is a step."""

    def __init__(self, handle: Any, step: Callable[[], None]) -> None:
        self._handle, self._step = handle, step

    def write(self, data: Any) -> int:
        self._step()
        return self._handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _Writes:
        self._handle.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._handle.__exit__(*exc)


def _install(kill_at: int | None, counter: list[int]) -> None:
    """Count (and at ``kill_at`` die on) every file-system step of this process."""
    def step() -> None:
        counter[0] += 1
        if kill_at is not None and counter[0] >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def hooked(function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            step()
            return function(*args, **kwargs)
        return wrapper

    real_open = io.open

    def opener(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        if any(c in mode for c in "wxa+"):
            step()
            return _Writes(handle, step)
        return handle

    for module, name in _HOOKED:
        setattr(module, name, hooked(getattr(module, name)))
    try:
        import embedlab.atomic as atomic

        atomic.exchange = hooked(atomic.exchange)
    except (ImportError, AttributeError):  # an older embedlab (before/after comparisons)
        pass
    builtins.open = io.open = opener


def killed_save(component: Any, path: str | Path, kill_at: int | None) -> tuple[bool, int]:
    """Fork; the child saves ``component`` to ``path`` and dies at step ``kill_at`` (None: never).
    Returns (killed, steps the child counted when it was not killed)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 1
        try:
            os.close(read)
            counter = [0]
            _install(kill_at, counter)
            component.save(path)
            os.write(write, str(counter[0]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        reported = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return True, 0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the saving child failed (status {status})")
    return False, int(reported)


def count_steps(component: Any, path: str | Path) -> int:
    """File-system steps of one uninterrupted save of ``component`` to ``path``."""
    return killed_save(component, path, None)[1]


def kill_points(steps: int, count: int) -> list[int]:
    """``count`` kill steps spread evenly over ``1..steps`` (every step when ``count >= steps``)."""
    if count >= steps:
        return list(range(1, steps + 1))
    return sorted({1 + round(i * (steps - 1) / (count - 1)) for i in range(count)})


def survey(build: Callable[[int], Any], probe: Callable[[Any], np.ndarray], directory: str | Path,
           points: list[int] | None = None, *, delays: list[float] | None = None,
           load: Callable[[Path], Any] | None = None) -> dict[str, int]:
    """Save ``build(1)`` to a fresh path, interrupt a save of ``build(2)`` over it (at each step of
    ``points``, or after each of ``delays`` seconds), then load what is there.

    Returns counts: ``old``/``new`` (loads and ``probe`` gives version 1's/2's result),
    ``unloadable`` (nothing there, or an error on loading), ``mixed`` (loads, but probes as
    neither), ``killed`` (saves that did not finish) and ``temporaries`` (hidden entries left
    beside the states).
    """
    from embedlab import load_component
    from embedlab.errors import EmbedlabError

    load = load or load_component
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    old, new = build(1), build(2)
    expected = {1: probe(old), 2: probe(new)}
    counts = {"old": 0, "new": 0, "unloadable": 0, "mixed": 0, "killed": 0}
    trials = [(k, None) for k in points or []] + [(None, d) for d in delays or []]
    for number, (kill_at, delay) in enumerate(trials):
        path = directory / f"state-{number}"
        old.save(path)
        if delay is None:
            counts["killed"] += killed_save(new, path, kill_at)[0]
        else:
            counts["killed"] += _timed_kill(new, path, delay)
        try:
            seen = probe(load(path))
        except (EmbedlabError, OSError):
            counts["unloadable"] += 1
            continue
        match = [v for v, e in expected.items() if np.array_equal(seen, e)]
        counts[{1: "old", 2: "new"}[match[0]] if match else "mixed"] += 1
    counts["temporaries"] = sum(1 for p in directory.iterdir() if p.name.startswith("."))
    return counts


def _timed_kill(component: Any, path: Path, delay: float) -> bool:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            component.save(path)
            code = 0
        finally:
            os._exit(code)
    time.sleep(delay)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status)


def assert_atomic_saves(build: Callable[[int], Any], probe: Callable[[Any], np.ndarray], directory: str | Path,
                        *, points: int = 8, tail: int = 4, load: Callable[[Path], Any] | None = None) -> dict[str, int]:
    """Kill saves of ``build(2)`` over ``build(1)`` at ``points`` steps spread over the save and at its
    last ``tail`` steps (where it publishes); assert that every state loads as version 1 or 2, and
    that the next save of each path leaves no temporaries. Returns :func:`survey`'s counts."""
    directory = Path(directory)
    build(1).save(directory / "count")
    steps = count_steps(build(2), directory / "count")
    chosen = sorted(set(kill_points(steps, points)) | set(range(max(1, steps - tail + 1), steps + 1)))
    counts = survey(build, probe, directory / "runs", chosen, load=load)
    assert counts["unloadable"] == counts["mixed"] == 0 and counts["killed"] == len(chosen), counts
    assert counts["old"] and counts["new"], counts
    for state in (directory / "runs").glob("state-*"):
        build(1).save(state)
    left = [p.name for p in (directory / "runs").iterdir() if p.name.startswith(".")]
    assert not left, f"temporaries left after the next save: {left}"
    return counts
