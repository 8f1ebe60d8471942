"""Unified Embedding: multiplexed lookups, budgets, training through embedlab-tables' harness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_tables import KIND, TableSchema, generate
from embedlab_tables.models import ModelConfig
from embedlab_tables.schema import BudgetError
from embedlab_tables.training import TableRun, TrainConfig
from embedlab_unified_embedding import UnifiedEmbedding

import embedlab


def test_a_value_is_the_concatenation_of_its_probes_rows_in_the_shared_table():
    schema = TableSchema((50, 30, 20), dim=8)
    method = UnifiedEmbedding(ratio=4, probes=2)
    plan = method.plan(schema)
    assert plan == {"rows": 100 * 8 * 4 // 4 // 16, "probes": 2, "bytes": 50 * 16}
    table = method.build(schema, plan, seed=0)
    ids = torch.tensor([[7, 50 + 7, 80 + 7]])  # local id 7 in every field
    out = table(ids)
    slots = table.slots(ids)[0]
    for f in range(3):
        assert torch.equal(out[0, f], torch.cat([table.weight[slots[f, 0]], table.weight[slots[f, 1]]]))
    # one table for all fields, field-specific hashes: the same local id lands on different rows
    assert len({tuple(s.tolist()) for s in slots}) == 3
    assert table.storage_bytes() == plan["bytes"] <= schema.budget(4)


def test_hash_spread_over_the_shared_rows_is_near_uniform():
    schema = TableSchema((5000, 5000), dim=4)
    table = UnifiedEmbedding(ratio=100).build(schema, UnifiedEmbedding(ratio=100).plan(schema), seed=1)
    ids = torch.stack([torch.arange(5000), torch.arange(5000) + 5000], dim=1)
    counts = np.bincount(table.slots(ids).reshape(-1).numpy(), minlength=table.rows)
    assert table.rows == 100 and counts.min() > 50 and counts.max() < 150  # 100 expected per row


def test_bad_probes_and_budgets_are_clear_errors():
    schema = TableSchema((50, 30), dim=8)
    with pytest.raises(BudgetError, match="probes=3 must divide the embedding dimension 8"):
        UnifiedEmbedding(ratio=2, probes=3).plan(schema)
    with pytest.raises(BudgetError, match="less than one"):
        UnifiedEmbedding(ratio=81, probes=1).plan(schema)
    with pytest.raises(ValueError, match="probes"):
        UnifiedEmbedding(ratio=2, probes=0)


def test_registered_in_the_tables_kind_trains_and_reloads(tmp_path):
    assert isinstance(embedlab.registry().create(KIND, "unified-embedding", ratio=3, probes=2), UnifiedEmbedding)
    data = generate(rows=3000, vocab_sizes=(300, 50, 800, 20), seed=0).data
    train, valid, test = data.split((0.8, 0.1, 0.1), seed=0)
    run = TableRun(train, valid, test, model=ModelConfig(dim=8, bottom=(8,), top=(8,)),
                   training=TrainConfig(epochs=1, batch_size=256, lr=3e-3))
    method = UnifiedEmbedding(ratio=8, probes=2)
    fitted = method.fit(run)
    assert fitted.storage_bytes <= run.schema.budget(8)
    logits = run.predict(fitted.model, "test")
    method.save(tmp_path / "ue")
    loaded = UnifiedEmbedding.load(tmp_path / "ue")
    assert np.allclose(run.predict(loaded.fitted.model, "test"), logits, atol=1e-6)
