"""Thread-count context managers set a library's count inside the block only. The core depends on
none of these libraries, so stand-in modules with their thread functions take their place here."""

from __future__ import annotations

import sys
import types

import pytest

from embedlab.threads import faiss_threads, numba_threads, torch_threads


def fake_library(monkeypatch: pytest.MonkeyPatch, name: str, get: str, set_: str) -> types.SimpleNamespace:
    state = types.SimpleNamespace(threads=4)
    module = types.ModuleType(name)
    setattr(module, get, lambda: state.threads)
    setattr(module, set_, lambda n: setattr(state, "threads", n))
    module.config = types.SimpleNamespace(NUMBA_NUM_THREADS=2)
    monkeypatch.setitem(sys.modules, name, module)
    return state


LIBRARIES = [(torch_threads, "torch", "get_num_threads", "set_num_threads", 3),
             (faiss_threads, "faiss", "omp_get_max_threads", "omp_set_num_threads", 3),
             (numba_threads, "numba", "get_num_threads", "set_num_threads", 2)]  # numba: capped at its maximum


@pytest.mark.parametrize("manager, name, get, set_, expected", LIBRARIES)
def test_the_count_is_set_inside_and_restored_after_errors(monkeypatch, manager, name, get, set_, expected) -> None:
    state = fake_library(monkeypatch, name, get, set_)
    with manager(3):
        assert state.threads == expected
    assert state.threads == 4
    with pytest.raises(KeyboardInterrupt), manager(1):
        assert state.threads == 1
        raise KeyboardInterrupt
    assert state.threads == 4


@pytest.mark.parametrize("manager, name, get, set_, expected", LIBRARIES)
def test_none_leaves_the_setting_alone(monkeypatch, manager, name, get, set_, expected) -> None:
    state = fake_library(monkeypatch, name, get, set_)
    with manager(None):
        state.threads = 3
    assert state.threads == 3
