"""torch_threads sets torch's thread count inside the block only. The core never depends on torch,
so a stand-in module with torch's two thread functions takes its place here."""

from __future__ import annotations

import sys
import types

import pytest

from embedlab.threads import torch_threads


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    state = types.SimpleNamespace(threads=4)
    module = types.ModuleType("torch")
    module.get_num_threads = lambda: state.threads
    module.set_num_threads = lambda n: setattr(state, "threads", n)
    monkeypatch.setitem(sys.modules, "torch", module)
    return state


def test_the_thread_count_is_set_inside_and_restored_after_errors(fake_torch: types.SimpleNamespace) -> None:
    with torch_threads(1):
        assert fake_torch.threads == 1
    assert fake_torch.threads == 4
    with pytest.raises(KeyboardInterrupt), torch_threads(2):
        assert fake_torch.threads == 2
        raise KeyboardInterrupt
    assert fake_torch.threads == 4


def test_none_leaves_the_setting_alone(fake_torch: types.SimpleNamespace) -> None:
    with torch_threads(None):
        fake_torch.threads = 3
    assert fake_torch.threads == 3
