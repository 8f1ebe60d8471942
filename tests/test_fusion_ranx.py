"""Our fusion against ranx's fusion functions (ranx 0.3.x, the reference the method names follow)."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import Ranking
from embedlab.fusion import fuse

ranx = pytest.importorskip("ranx", reason="ranx is the fusion reference: pip install 'embedlab[test]'")


def random_rankings(seed: int, n_runs: int = 3, n_queries: int = 20, depth: int = 30, n_docs: int = 80):
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(n_runs):
        table = {}
        for q in range(n_queries):
            docs = rng.choice(n_docs, size=int(rng.integers(1, depth + 1)), replace=False)
            scores = rng.normal(size=docs.size) * rng.uniform(0.5, 20) + rng.uniform(-5, 5)
            table[f"q{q}"] = {f"d{d}": float(s) for d, s in zip(docs, scores)}
        runs.append(table)
    return runs


def to_ranx(table: dict[str, dict[str, float]]):
    ordered = {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])) for q, docs in table.items()}
    return ranx.Run(ordered)


CASES = [  # (our method, our norm, ranx method, ranx norm, weighted)
    ("rrf", None, "rrf", None, False),
    ("combsum", "min-max", "sum", "min-max", False),
    ("combsum", "z-score", "sum", "zmuv", False),
    ("combsum", "max", "sum", "max", False),
    ("combsum", "sum", "sum", "sum", False),
    ("combsum", "rank", "sum", "rank", False),
    ("combmnz", "min-max", "mnz", "min-max", False),
    ("linear", "min-max", "wsum", "min-max", True),
    ("linear", "z-score", "wsum", "zmuv", True),
]


@pytest.mark.parametrize("ours, our_norm, theirs, their_norm, weighted", CASES)
def test_scores_match_ranx(ours, our_norm, theirs, their_norm, weighted):
    tables = random_rankings(seed=len(ours) + len(our_norm or ""))
    weights = [0.5, 0.3, 0.2] if weighted else None
    params = {"weights": weights} if weighted else {}
    if theirs == "rrf":
        params = {"k": 60}
    expected = ranx.fuse([to_ranx(t) for t in tables], norm=their_norm, method=theirs, params=params).to_dict()
    fused = fuse([Ranking.from_dict(t) for t in tables], ours, weights=weights, norm=our_norm).to_dict()
    assert set(fused) == set(expected)
    for qid, docs in expected.items():
        assert set(fused[qid]) == set(docs), qid
        ids = sorted(docs)
        np.testing.assert_allclose([fused[qid][d] for d in ids], [docs[d] for d in ids], rtol=1e-9, atol=1e-12)
