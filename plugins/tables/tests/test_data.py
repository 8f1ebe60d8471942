"""Criteo reader (on the real 200-row sample), synthetic generator, CTR data validation, metrics."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_tables import CTRData, TableSchema, generate
from embedlab_tables.criteo import CATEGORICAL_NAMES, read_criteo
from embedlab_tables.metrics import auc, log_loss
from embedlab_tables.schema import BudgetError
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from embedlab.errors import InvalidInputError


def test_criteo_sample_is_read_with_its_real_counts(criteo_sample):
    data, vocab = read_criteo(criteo_sample)
    assert len(data) == 200 and data.n_fields == 26 and data.n_dense == 13
    assert int(data.labels.sum()) == 49  # SOURCE.md: 151 x 0, 49 x 1
    assert data.field_names == CATEGORICAL_NAMES
    # C1's most frequent value gets id 1; id 0 is reserved for unseen values
    c1 = data.categorical[:, 0]
    assert np.bincount(c1)[1] == max(np.bincount(c1)[1:])
    assert data.categorical.min() >= 1 and all(data.categorical[:, f].max() < v for f, v in enumerate(vocab.sizes))
    # first row: I2 = 3 -> log1p(3); I1 blank -> 0
    assert data.dense[0, 1] == pytest.approx(np.log1p(3.0)) and data.dense[0, 0] == 0.0


def test_criteo_vocabulary_reuse_maps_unseen_values_to_zero(tmp_path, criteo_sample):
    data, vocab = read_criteo(criteo_sample, max_rows=50)
    rest, _ = read_criteo(criteo_sample, vocabulary=vocab)
    assert rest.vocab_sizes == data.vocab_sizes
    assert (rest.categorical[50:] == 0).any() and (rest.categorical[:50] >= 1).all()
    rare, rare_vocab = read_criteo(criteo_sample, min_count=2)
    assert sum(rare_vocab.sizes) < sum(vocab.sizes) and (rare.categorical == 0).any()


def test_criteo_tab_layout_and_bad_rows(tmp_path, criteo_sample):
    lines = criteo_sample.read_text().splitlines()[1:4]
    tab = tmp_path / "day_0.txt"
    tab.write_text("\n".join(line.replace(",", "\t") for line in lines) + "\n")
    data, _ = read_criteo(tab)
    assert len(data) == 3 and data.n_fields == 26
    short = tmp_path / "short.txt"
    short.write_text("1\t2\t3\n")
    with pytest.raises(InvalidInputError, match="line 1: 3 columns"):
        read_criteo(short)
    bad = tmp_path / "bad.txt"
    bad.write_text(lines[0].replace(",", "\t").replace("0", "2", 1) + "\n")
    with pytest.raises(InvalidInputError, match="label must be 0 or 1"):
        read_criteo(bad)
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_criteo(tmp_path / "missing.txt")


def test_synthetic_is_seeded_and_skew_concentrates_rows():
    a = generate(rows=2000, vocab_sizes=(500, 40), seed=3)
    b = generate(rows=2000, vocab_sizes=(500, 40), seed=3)
    assert np.array_equal(a.data.categorical, b.data.categorical) and np.array_equal(a.data.labels, b.data.labels)
    flat = generate(rows=2000, vocab_sizes=(500, 40), zipf=0.5, seed=3)
    steep = generate(rows=2000, vocab_sizes=(500, 40), zipf=2.0, seed=3)
    share = [np.sort(d.data.counts()[0])[::-1][:10].sum() / 2000 for d in (flat, steep)]
    assert share[1] > share[0] + 0.3
    # the hidden model carries signal: the true logits rank clicks far above chance
    assert 0.7 < a.bayes_auc() < 1.0
    assert abs(a.data.labels.mean() - 0.25) < 0.05
    with pytest.raises(InvalidInputError, match="zipf"):
        generate(rows=100, zipf=-1.0)


def test_ctr_data_rejects_bad_ids_labels_and_fields():
    ids = np.array([[0, 1], [1, 0]])
    with pytest.raises(InvalidInputError, match="negative id -1 in field 'C2'"):
        CTRData(np.array([[0, -1], [1, 0]]), np.zeros((2, 0)), [0, 1], (2, 2))
    with pytest.raises(InvalidInputError, match="outside its vocabulary of 2"):
        CTRData(np.array([[0, 2], [1, 0]]), np.zeros((2, 0)), [0, 1], (2, 2))
    with pytest.raises(InvalidInputError, match="labels must be 0 or 1"):
        CTRData(ids, np.zeros((2, 0)), [0, 2], (2, 2))
    with pytest.raises(InvalidInputError, match="NaN"):
        CTRData(ids, np.array([[np.nan], [0.0]]), [0, 1], (2, 2))
    data = CTRData(ids, np.zeros((2, 0)), [0, 1], (2, 2), field_names=("site", "ad"))
    assert data.field("ad") == 1
    with pytest.raises(InvalidInputError, match="unknown field 'user'; fields: site, ad"):
        data.field("user")


def test_budget_below_one_row_is_an_error():
    schema = TableSchema((10, 6), dim=4)
    assert schema.full_bytes == 16 * 4 * 4 and schema.budget(16) == 16
    with pytest.raises(BudgetError, match="less than one 4-dim float32 row"):
        schema.budget(17)
    with pytest.raises(BudgetError, match=">= 1"):
        schema.budget(0.5)


def test_auc_and_log_loss_match_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500).astype(float)
    scores = np.round(rng.normal(labels * 0.5, 1.0), 1)  # ties
    probabilities = 1 / (1 + np.exp(-scores))
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert log_loss(labels, probabilities) == pytest.approx(sk_log_loss(labels, probabilities), rel=1e-9)
    with pytest.raises(InvalidInputError, match="both clicks"):
        auc(np.ones(3), np.arange(3.0))


def test_criteo_files_may_start_with_a_byte_order_mark(tmp_path, criteo_sample):
    expected, _ = read_criteo(criteo_sample)
    with_bom = tmp_path / "criteo_sample.txt"
    with_bom.write_bytes("\ufeff".encode() + criteo_sample.read_bytes())
    data, _ = read_criteo(with_bom)
    assert np.array_equal(data.labels, expected.labels) and np.array_equal(data.categorical, expected.categorical)
    tab = tmp_path / "day_0.txt"
    tab.write_text("\ufeff" + criteo_sample.read_text().splitlines()[1].replace(",", "\t") + "\n", encoding="utf-8")
    assert len(read_criteo(tab)[0]) == 1


def test_criteo_files_that_are_not_text_are_input_errors(tmp_path, criteo_sample):
    binary = tmp_path / "binary.txt"
    binary.write_bytes(criteo_sample.read_bytes()[:500] + b"\xff\xfe" * 10_000)
    with pytest.raises(InvalidInputError, match="binary.txt: not UTF-8 text"):
        read_criteo(binary)
    wide = tmp_path / "wide.txt"
    wide.write_text("0" + "\t" * 13 + "x" * 200_000 + "\t" * 25 + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="wide.txt line 1: field larger than field limit"):
        read_criteo(wide)
