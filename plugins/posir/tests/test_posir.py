"""posir-needle's crossed design, the position curve and PSI, and the analysis of a run."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_posir import posir_needle, position_curve, relative_positions
from embedlab_posir.__main__ import curves

import embedlab
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.metrics import evaluate


def test_every_length_and_depth_cell_is_filled_equally() -> None:
    data = posir_needle(lengths=(64, 256), bins=5, queries=20, seed=1)
    corpus, split = data.corpus, data.split("test")
    depth, length = corpus.attributes["fact_depth"], corpus.attributes["length"]
    cells = np.unique(np.stack([length, corpus.attributes["depth_bin"]]), axis=1, return_counts=True)[1]
    assert cells.tolist() == [2] * 10  # 2 lengths x 5 depth bins, two documents each
    nominal = (corpus.attributes["depth_bin"] + 0.5) / 5
    assert np.abs(depth - nominal)[length == 256].max() < 0.15  # near nominal: facts sit between sentences
    for n in (64, 256):
        words = [len(t.split()) for t, m in zip(corpus.texts, length) if m == n]
        assert max(words) <= 0.75 * n
    start, end = corpus.attributes["fact_start"], corpus.attributes["fact_end"]
    for qid, text in zip(split.queries.ids, split.queries.texts):
        p = corpus.position[next(iter(split.qrels[qid]))]
        fact = corpus.texts[p][start[p]:end[p]]
        assert text.rstrip("?").split()[-1].rstrip("?") in fact  # the question's last word is in its fact
    np.testing.assert_allclose(depth, relative_positions(start, end, [len(t) for t in corpus.texts]))


def test_bad_designs_are_refused() -> None:
    with pytest.raises(ConfigError, match="multiple of len\\(lengths\\) \\* bins = 40"):
        posir_needle(queries=30)
    with pytest.raises(ConfigError, match="at most 200 queries"):
        posir_needle(queries=240)
    with pytest.raises(ConfigError, match="lengths"):
        posir_needle(lengths=(8,), queries=10)
    assert "posir-needle" in embedlab.registry().names("dataset")


def test_position_curve_against_a_hand_computed_example() -> None:
    relpos = np.array([0.05, 0.1, 0.45, 0.55, 0.95, 1.0])
    scores = np.array([1.0, 0.8, 0.6, 0.4, 0.2, 0.0])
    curve = position_curve(scores, relpos, bins=2)
    np.testing.assert_allclose(curve.means, [0.8, 0.2])  # [0, 0.5): 1, .8, .6; [0.5, 1]: .4, .2, 0
    assert curve.counts.tolist() == [3, 3]
    assert curve.psi == pytest.approx(1 - 0.2 / 0.8)
    assert curve.slope < 0 and curve.spearman == pytest.approx(-1.0)  # primacy
    flat = position_curve(np.full(6, 0.5), relpos, bins=4)
    assert flat.psi == 0.0 and flat.slope == pytest.approx(0.0)
    assert np.isnan(position_curve(np.zeros(6), relpos, bins=2).psi)  # nothing found: undefined
    sparse = position_curve(scores, relpos, bins=20)
    assert np.isnan(sparse.means).sum() == 20 - np.count_nonzero(sparse.counts)


@pytest.mark.parametrize("scores, relpos, message", [
    ([1.0], [0.5], "length >= 2"), ([1.0, np.nan], [0.1, 0.2], "finite"), ([1.0, 0.0], [0.1, 1.2], r"\[0, 1\]"),
    ([1.0, 0.0], [0.1], "one length"),
])
def test_bad_curves(scores, relpos, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        position_curve(np.asarray(scores), np.asarray(relpos))


def test_curves_of_a_run(monkeypatch) -> None:
    """A run's per-query values go to the curve of the relevant document's fact position."""
    data = posir_needle(lengths=(64, 128), bins=2, queries=8)
    split = data.split("test")
    pipeline = embedlab.Pipeline.from_names(encoder={"name": "hashing", "dim": 256})
    pipeline.build(data.corpus)
    values = evaluate(pipeline.search(split.queries, 10), split.qrels, ["nDCG@10"]).query_values("nDCG@10")
    results = {"config": {"dataset": {"name": "posir-needle", "lengths": [64, 128], "bins": 2, "queries": 8,
                                      "split": "test"}},
               "pipelines": [{"name": "hashing", "per_query": {"nDCG@10": values}}]}
    rows = curves(results, "nDCG@10", 2)
    assert [r["length"] for r in rows] == ["all", "64", "128"]
    assert rows[0]["counts"] == [4, 4] and rows[1]["counts"] == [2, 2]
    assert rows[0]["mean"] == pytest.approx(np.mean(list(values.values())))
