"""ANNCUR on a hidden-matrix scorer: the CUR identity, recall trends, call counts, state, errors."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_anncur import Anncur, cur_factors

import embedlab
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError, StateError
from embedlab.index import ExactIndex

QUIET = {"show_progress": False}
TEST_QUERIES = [f"q{i}" for i in range(60, 100)]


def fitted(items, pool, spec, **params) -> Anncur:
    return Anncur(scorer=spec, **QUIET, **params).fit(items, anchor_queries=pool)


def approx_scores(encoder: Anncur, items: list[str], queries: list[str]) -> np.ndarray:
    return encoder.encode_queries(queries).astype(np.float64) @ encoder.encode_documents(items).T.astype(np.float64)


def top10_recall(encoder: Anncur, exact: np.ndarray, items: list[str], k_r: int) -> float:
    """Recall of the exact top-10 among the top k_r by approximate score (exact rerank keeps them)."""
    result = ExactIndex(metric="ip")
    result.build(encoder.encode_documents(items))
    found = result.search(encoder.encode_queries(TEST_QUERIES), k_r).indices
    truth = np.argsort(-exact, axis=1)[:, :10]
    return float(np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found)]))


def test_cur_identity_on_exact_low_rank_matrix(items, pool, table, matrix):
    spec = table(rank=5)
    encoder = fitted(items, pool, spec, k_q=8, k_i=8, seed=3)
    exact = matrix(spec)[60:]
    approx = approx_scores(encoder, items, TEST_QUERIES)
    assert np.max(np.abs(approx - exact)) < 1e-4 * np.max(np.abs(exact))
    # in float64 the factors reproduce unseen rows to ~1e-10
    rows = matrix(spec)[np.sort(np.random.default_rng(0).choice(60, 8, replace=False))]
    anchors = np.arange(0, 300, 37)
    u, e = cur_factors(rows, anchors)
    assert u.shape == (anchors.size, 8) and e.shape == (300, anchors.size)
    np.testing.assert_allclose(exact[:, anchors] @ e.T, exact, atol=1e-8 * np.max(np.abs(exact)))


def test_too_few_anchors_cannot_reproduce_the_matrix(items, pool, table, matrix):
    spec = table(rank=5)
    encoder = fitted(items, pool, spec, k_q=8, k_i=3, seed=3)
    error = np.max(np.abs(approx_scores(encoder, items, TEST_QUERIES) - matrix(spec)[60:]))
    assert error > 0.1


def test_recall_grows_with_anchor_items_and_rerank_depth(items, pool, table, matrix):
    spec = table(rank=12, noise=1.0, seed=1)
    exact = matrix(spec)[60:]
    by_items = [top10_recall(fitted(items, pool, spec, k_q=60, k_i=k_i), exact, items, 30) for k_i in (4, 12, 24)]
    encoder = fitted(items, pool, spec, k_q=60, k_i=16)
    by_depth = [top10_recall(encoder, exact, items, k_r) for k_r in (10, 40, 120)]
    assert by_items[0] < by_items[1] < by_items[2] and by_items[2] > 0.75
    assert by_depth[0] < by_depth[1] < by_depth[2] and by_depth[2] > 0.95


def test_scorer_calls_are_counted(items, pool, table):
    encoder = fitted(items, pool, table(), k_q=7, k_i=5)
    assert encoder.scorer_calls == encoder.fit_scorer_calls == 7 * 300 == encoder.scorer.calls
    encoder.encode_queries(TEST_QUERIES[:4])
    assert encoder.scorer_calls == 7 * 300 + 4 * 5 == encoder.scorer.calls
    encoder.encode_documents(items)  # the fitted documents: no scorer call
    assert encoder.scorer_calls == 7 * 300 + 4 * 5


def test_scorer_with_small_k_gets_candidates_in_blocks(items, pool, table):
    whole = fitted(items, pool, table(), k_q=6, k_i=4)
    blocks = fitted(items, pool, table(k=64), k_q=6, k_i=4, queries_per_call=4)
    assert blocks.scorer.calls == whole.scorer.calls == 6 * 300
    np.testing.assert_array_equal(blocks.encode_documents(items), whole.encode_documents(items))


def test_new_documents_are_embedded_by_the_same_formula(items, pool, table):
    encoder = fitted(items, pool, table(noise=0.3), k_q=10, k_i=6)
    calls = encoder.scorer_calls
    np.testing.assert_allclose(encoder.encode_documents(items[:7]), encoder.encode_documents(items)[:7], atol=1e-5)
    assert encoder.scorer_calls - calls == 10 * 7


def test_save_load_gives_identical_results(tmp_path, items, pool, table):
    encoder = fitted(items, pool, table(noise=0.5), k_q=12, k_i=9, seed=5)
    encoder.save(tmp_path / "anncur")
    loaded = Anncur.load(tmp_path / "anncur")
    assert loaded.config == encoder.config and loaded.memory_bytes == encoder.memory_bytes > 300 * 9 * 4
    np.testing.assert_array_equal(loaded.encode_documents(items), encoder.encode_documents(items))
    np.testing.assert_array_equal(loaded.encode_queries(TEST_QUERIES), encoder.encode_queries(TEST_QUERIES))
    np.testing.assert_array_equal(loaded.anchor_items, encoder.anchor_items)
    assert embedlab.load_component(tmp_path / "anncur").config == encoder.config
    (tmp_path / "anncur" / "intersection.npy").write_bytes(b"edited")
    with pytest.raises(StateError):
        Anncur.load(tmp_path / "anncur")


def test_fit_is_deterministic_given_a_seed(items, pool, table):
    spec = table(noise=0.5)
    a, b = (fitted(items, pool, spec, k_q=10, k_i=6, seed=7) for _ in range(2))
    c = fitted(items, pool, spec, k_q=10, k_i=6, seed=8)
    np.testing.assert_array_equal(a.encode_documents(items), b.encode_documents(items))
    np.testing.assert_array_equal(a.anchor_items, b.anchor_items)
    assert not np.array_equal(a.anchor_items, c.anchor_items)


def test_pipeline_draws_anchors_from_its_training_split_and_reranks(tmp_path, items, table, matrix):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(f'{{"_id": "{d}", "text": "{d}"}}\n' for d in items))
    (folder / "queries.jsonl").write_text("".join(f'{{"_id": "q{i}", "text": "q{i}"}}\n' for i in range(100)))
    for split, ids in (("train", range(60)), ("test", range(60, 100))):
        (folder / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in ids))
    dataset = embedlab.datasets.load_dataset_spec(path=folder)
    spec = table(rank=4, noise=0.05)
    pipeline = embedlab.Pipeline.from_names(
        encoder={"name": "anncur", "k_q": 20, "k_i": 10, "scorer": spec, **QUIET},
        index={"name": "exact", "metric": "ip"}, reranker={**spec, "k": 40})
    pipeline.build(dataset.corpus, train=dataset.split("train"))
    assert set(pipeline.encoder._texts["anchor_query_texts"]) <= {f"q{i}" for i in range(60)}
    ranking = pipeline.search(dataset.split("test").queries, k=40).truncate(10)
    exact = matrix(spec)[60:]
    truth = [set(np.asarray(items)[np.argsort(-row)[:10]]) for row in exact]
    assert np.mean([len(t & set(r)) / 10 for t, r in zip(truth, ranking.doc_ids)]) > 0.95
    np.testing.assert_allclose(ranking.scores[:, 0], exact.max(axis=1), rtol=1e-6)


def test_bad_inputs_and_configs(items, pool, table):
    with pytest.raises(InvalidInputError, match="k_i=301"):
        fitted(items, pool, table(), k_q=5, k_i=301)
    with pytest.raises(InvalidInputError, match="k_q=61"):
        fitted(items, pool, table(), k_q=61, k_i=5)
    with pytest.raises(NotFittedError):
        Anncur(scorer=table()).encode_queries(["q1"])
    with pytest.raises(ConfigError, match="train_split"):
        Anncur(scorer=table(), **QUIET).fit(items)
    for bad in ({"k_q": 0}, {"k_i": 2.5}, {"scorer": {"k": 3}}, {"rcond": -1.0}, {"unknown": 1}):
        with pytest.raises(ConfigError):
            Anncur(**bad)
    with pytest.raises(InvalidInputError, match="item 1"):
        fitted(items, ["q1", b"q2", "q3"], table(), k_q=2, k_i=2)


def test_scorer_that_drops_or_invents_candidates_is_rejected(items, pool, table):
    encoder = Anncur(scorer=table(), k_q=3, k_i=2, **QUIET)
    original = encoder.scorer.rerank
    encoder.scorer.rerank = lambda ranking, queries, corpus: original(ranking, queries, corpus).truncate(50)
    with pytest.raises(InvalidInputError, match="unscored"):
        encoder.fit(items, anchor_queries=pool)
    encoder.scorer.rerank = lambda ranking, queries, corpus: embedlab.Ranking(
        ranking.query_ids, np.where(ranking.doc_ids == "0", "nope", ranking.doc_ids), ranking.scores)
    with pytest.raises(InvalidInputError, match="not in the corpus"):
        encoder.fit(items, anchor_queries=pool)


def test_default_scorer_is_maxsim(scifact_texts):
    docs, queries = scifact_texts
    encoder = Anncur(k_q=3, k_i=2, scorer={"name": "maxsim", "k": 1000, "keep_tail": False, "num_threads": 1,
                                           "show_progress": False}, **QUIET)
    assert Anncur().scorer.name == "maxsim"
    encoder.fit(docs, anchor_queries=queries[:5])
    c_q = encoder.encode_queries(queries[5:7])
    corpus = embedlab.Corpus([str(i) for i in range(len(docs))], docs)
    anchors = corpus.ids[encoder.anchor_items]
    ranking = embedlab.Ranking(["a", "b"], np.broadcast_to(anchors, (2, 2)), np.zeros((2, 2)))
    reference = encoder.scorer.rerank(ranking, embedlab.Queries(["a", "b"], queries[5:7]), corpus)
    for row, (_, ids, scores) in enumerate(reference):
        expected = dict(zip(ids, scores))
        np.testing.assert_allclose(c_q[row], [expected[a] for a in anchors], rtol=1e-5)
    assert encoder.scorer_calls == 3 * len(docs) + 2 * 2


@pytest.fixture(scope="module")
def scifact_texts():
    from pathlib import Path

    from embedlab.datasets.beir import load_beir

    data = load_beir(Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "scifact" / "beir")
    return [t[:300] for t in data.corpus.documents()[:6]], list(data.queries.texts[:7])


def test_texts_round_trip_through_utf8_arrays():
    from embedlab_anncur.texts import pack_texts, unpack_texts

    texts = ["", "ascii", "ünïcødé ✓ 漢字", "\n\t"]
    data, offsets = pack_texts(texts)
    assert data.dtype == np.uint8 and offsets.tolist()[-1] == data.size == sum(len(t.encode()) for t in texts)
    assert unpack_texts(data, offsets) == texts
    with pytest.raises(StateError):
        unpack_texts(data, offsets[::-1])
    with pytest.raises(StateError):
        unpack_texts(np.frombuffer("漢".encode(), dtype=np.uint8)[:2].copy(), np.array([0, 2]))
