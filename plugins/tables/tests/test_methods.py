"""Every registered embedding-table method: plan within budget, training, served bytes, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from embedlab_tables import KIND, TableSchema, table_methods
from embedlab_tables.methods.quantization import Int8
from embedlab_tables.methods.static import Hash, QuotientRemainder
from embedlab_tables.schema import BudgetError

import embedlab
from embedlab.errors import InvalidInputError, StateError
from embedlab.persistence import MANIFEST
from embedlab.testing import reseal

#: Methods whose ratio-1 table is the uncompressed one (the benchmark's rule: compress only to save memory).
IDENTITY_AT_1X = ("hash", "qr", "tt-rec", "dhe", "adaptemb", "dedup", "mde", "deeplight", "pep", "autosrh")
#: A ratio each method reaches on the tiny schema (quantisation is capped by its precision).
COMPRESSED = {"int8": 4.0, "int16": 2.0, "alpt8": 2.5, "alpt16": 1.5, "autodim": 3.0, "dhe": 2.5,
              "dpq": 6.0, "mde": 6.0, "mgqe": 1.4, "qr": 6.0}


def test_the_kind_is_declared_and_every_method_is_registered():
    registry = embedlab.registry()
    assert set(table_methods()) <= set(registry.names(KIND))
    assert len(table_methods()) == 19
    table = registry.create(KIND, "qr", ratio=3)
    assert isinstance(table, QuotientRemainder) and table.config.ratio == 3.0


@pytest.fixture(scope="module")
def full_auc(make_run):
    run = make_run()
    fitted = table_methods()["full"](ratio=1).fit(run)
    return run.evaluate(fitted.model, "test").auc


@pytest.mark.parametrize("name", IDENTITY_AT_1X)
def test_at_1x_a_method_equals_the_uncompressed_baseline(name, make_run, full_auc):
    run = make_run()
    fitted = table_methods()[name](ratio=1).fit(run)
    assert fitted.storage_bytes == run.schema.full_bytes
    assert abs(run.evaluate(fitted.model, "test").auc - full_auc) <= 0.002


@pytest.mark.parametrize("name", sorted(set(table_methods()) - {"full"}))
def test_a_compressed_table_fits_its_budget_trains_and_reloads(name, make_run, tmp_path):
    run = make_run()
    ratio = COMPRESSED.get(name, 8.0)
    method = table_methods()[name](ratio=ratio)
    fitted = method.fit(run)
    budget = run.schema.budget(ratio)
    assert 0 < fitted.storage_bytes <= budget, (fitted.plan, fitted.storage_bytes, budget)
    logits = run.predict(fitted.model, "test")
    assert np.all(np.isfinite(logits)) and logits.std() > 0
    method.save(tmp_path / name)
    loaded = type(method).load(tmp_path / name)
    assert loaded.fitted.storage_bytes == fitted.storage_bytes
    assert np.allclose(run.predict(loaded.fitted.model, "test"), logits, atol=1e-5)


def test_quantised_tables_store_integer_codes_on_their_grid(make_run):
    run = make_run()
    fitted = Int8(ratio=4).fit(run)
    storage = fitted.table.storage()
    assert storage["codes"].dtype == np.int8 and storage["codes"].shape == (run.schema.n_features, 8)
    weight = fitted.table.weight.detach().numpy()
    assert np.array_equal(weight, storage["codes"].astype(np.float32) * fitted.plan["scale"])
    with pytest.raises(BudgetError, match="at most 4x"):
        Int8(ratio=5).fit(run)


def test_hashing_shares_rows_by_id_modulo_rows():
    schema = TableSchema((10, 6), dim=4)
    method = Hash(ratio=4)
    plan = method.plan(schema)
    assert plan == {"rows": [4], "bytes": 4 * 4 * 4}
    table = method.build(schema, plan, seed=0)
    ids = torch.tensor([[1, 15], [5, 10]])
    out = table(ids)
    assert torch.equal(out[0, 0], out[1, 0]) and torch.equal(out[0, 0], table.weight[1])
    field = Hash(ratio=4, scope="field").plan(schema)
    assert sum(field["rows"]) <= 4 and all(r >= 1 for r in field["rows"])


def test_qr_embeds_by_quotient_times_remainder():
    schema = TableSchema((100,), dim=4)
    method = QuotientRemainder(ratio=4)
    plan = method.plan(schema)
    assert plan["compressed"] == [True] and plan["bytes"] <= schema.budget(4)
    table = method.build(schema, plan, seed=0)
    c = plan["collision"]
    field = table.fields[0]
    assert torch.allclose(table(torch.tensor([[37]]))[0, 0], field.quotient[37 // c] * field.remainder[37 % c])
    with pytest.raises(BudgetError, match="out of reach"):
        QuotientRemainder(ratio=50).plan(schema)  # at best ceil(100 / 10) + 10 = 20 rows: 5x


def test_bad_configs_and_unknown_names_are_clear_errors():
    with pytest.raises((InvalidInputError, ValueError), match="ratio"):
        table_methods()["hash"](ratio=0.5)
    with pytest.raises(Exception, match="Installed embedding-tables|no embedding-table named"):
        embedlab.registry().create(KIND, "hashh", ratio=2)


@pytest.mark.parametrize("kind", ["deepfm", "fm"])
def test_fm_models_train_around_a_table(kind, make_run):
    run = make_run(kind=kind)
    fitted = table_methods()["hash"](ratio=2).fit(run)
    assert 0.0 < run.evaluate(fitted.model, "test").auc < 1.0


def test_forged_codes_and_plans_are_state_errors_on_load(make_run, tmp_path):
    """A state edited on purpose (checksums recomputed): DPQ codes out of range (before: loaded, and
    the first prediction raised IndexError) and a hashing plan of 2**40 rows (before: torch was asked
    for 35 TB; now the model is built on the meta device and compared with the saved tensors)."""
    run = make_run()
    dpq = table_methods()["dpq"](ratio=COMPRESSED["dpq"])
    dpq.fit(run)
    dpq.save(tmp_path / "dpq")
    codes = next((tmp_path / "dpq").glob("state.table.fields.*.codes.npy"))
    forged = np.load(codes)
    forged[0, 0] = 10**6
    codes.unlink()
    np.save(codes, forged)
    reseal(tmp_path / "dpq")
    with pytest.raises(StateError, match="not a fitted dpq table"):
        embedlab.load_component(tmp_path / "dpq")

    hashing = Hash(ratio=4)
    hashing.fit(run)
    hashing.save(tmp_path / "hash")
    manifest = json.loads((tmp_path / "hash" / MANIFEST).read_text())
    manifest["meta"]["plan"]["rows"] = [2**40]
    (tmp_path / "hash" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(StateError, match="do not fit the saved plan"):
        embedlab.load_component(tmp_path / "hash")
