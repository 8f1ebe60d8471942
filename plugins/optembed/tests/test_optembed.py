"""OptEmbed: the straight-through step, the supernet's thresholds and prefix masks, search and retrain."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_optembed import OptEmbed, SupernetTable, binary_step
from embedlab_optembed.method import served_bytes
from embedlab_tables import KIND, TableSchema, generate
from embedlab_tables.models import ModelConfig
from embedlab_tables.schema import BudgetError
from embedlab_tables.training import TableRun, TrainConfig

import embedlab


def test_binary_step_is_a_hard_threshold_with_the_official_surrogate_gradient():
    z = torch.tensor([-1.5, -0.5, -0.1, 0.1, 0.5, 1.5], requires_grad=True)
    out = binary_step(z)
    assert out.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    out.sum().backward()
    assert torch.allclose(z.grad, torch.tensor([0.0, 0.4, 1.6, 1.6, 0.4, 0.0]))


def test_supernet_prunes_by_threshold_samples_prefixes_and_regularises_thresholds_upwards():
    schema = TableSchema((40, 30), dim=8)
    table = SupernetTable(schema, alpha=1.0, threshold_lr=0.1, seed=0)
    ids = torch.tensor([[3, 40 + 5]] * 64)
    table.train()
    out = table(ids)
    nonzero = (out != 0).sum(-1)  # a prefix of 1..8 coordinates per (row, field)
    assert nonzero.min() >= 1 and nonzero.max() <= 8 and len(set(nonzero[:, 0].tolist())) > 2
    table.eval()
    table.candidate = torch.tensor([2, 5])
    out = table(ids[:1])
    assert (out[0, 0, 2:] == 0).all() and (out[0, 1, 5:] == 0).all() and (out[0, 0, :2] != 0).all()
    with torch.no_grad():
        table.threshold[0] = 10.0  # above every L1 norm: field 0 is pruned
    table.candidate = None
    assert (table(ids[:1])[0, 0] == 0).all() and not table.kept()[:40].any() and table.kept()[40:].all()
    penalty = table.penalty()
    penalty.backward()
    assert table.threshold.grad[1, 0] == pytest.approx(-1.0)  # d/dt exp(-t) at t = 0: descent raises t


def test_fit_searches_dimensions_retrains_within_budget_and_reloads(tmp_path):
    assert isinstance(embedlab.registry().create(KIND, "optembed", ratio=2), OptEmbed)
    data = generate(rows=3000, vocab_sizes=(300, 50, 800, 20), seed=0).data
    train, valid, test = data.split((0.8, 0.1, 0.1), seed=0)
    run = TableRun(train, valid, test, model=ModelConfig(dim=8, bottom=(8,), top=(8,)),
                   training=TrainConfig(epochs=1, batch_size=256, lr=3e-3))
    method = OptEmbed(ratio=2, iterations=2, mutations=4, crossovers=4, alpha=1e-2, threshold_lr=1e-2)
    fitted = method.fit(run)
    dims = fitted.plan["dims"]
    assert len(dims) == 4 and all(1 <= d <= 8 for d in dims)
    assert fitted.storage_bytes == fitted.plan["bytes"] <= run.schema.budget(2)
    assert set(fitted.logs) == {"supernet", "retrain"}
    logits = run.predict(fitted.model, "test")
    method.save(tmp_path / "optembed")
    loaded = OptEmbed.load(tmp_path / "optembed")
    assert np.allclose(run.predict(loaded.fitted.model, "test"), logits, atol=1e-6)


def test_served_bytes_count_rows_and_the_kept_bitmap():
    assert served_bytes([(100, 100)], [4]) == 100 * 4 * 4  # nothing pruned: no bitmap
    assert served_bytes([(100, 60)], [4]) == 60 * 16 + 13 + 4 * 2


def test_out_of_reach_budget_is_a_clear_error():
    data = generate(rows=600, vocab_sizes=(30, 20), seed=0).data
    train, valid, test = data.split((0.6, 0.2, 0.2), seed=0)
    run = TableRun(train, valid, test, model=ModelConfig(dim=4, bottom=(4,), top=(4,)),
                   training=TrainConfig(epochs=1, batch_size=128))
    with pytest.raises(BudgetError, match="out of reach"):
        OptEmbed(ratio=8, iterations=1, mutations=2, crossovers=0, alpha=0.0).fit(run)
