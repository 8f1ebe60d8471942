"""BM25 configurations on SciFact against Pyserini's BM25 "flat" regression (Anserini
beir-v1.0.0-scifact.flat: nDCG@10 0.6789, R@100 0.9253, R@1000 0.9767).

Run from the repository root::

    python benchmarks/bench_bm25_pyserini.py

Each row changes one thing on the way from bm25s's defaults to Pyserini's setting (k1 0.9, b 0.4,
Lucene's English analyzer with the Porter stemmer, one-byte length norms), and prints nDCG@10,
R@100 and R@1000 over the 300 test claims at depth 1000.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import common

import embedlab
from embedlab.datasets.beir import load_beir
from embedlab.pipeline import Pipeline

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CONFIGS = {
    "bm25s defaults (k1 1.5, b 0.75, regex, no stemming)": {},
    "k1 0.9, b 0.4, regex, Porter": dict(k1=0.9, b=0.4, stemmer="porter"),
    "k1 0.9, b 0.4, Lucene analyzer, Porter": dict(k1=0.9, b=0.4, analyzer="lucene", stemmer="porter"),
    "+ Lucene one-byte norms (= Pyserini flat)": dict(k1=0.9, b=0.4, analyzer="lucene", stemmer="porter",
                                                      lucene_norms=True),
    "same, Snowball English (Porter2) instead of Porter": dict(k1=0.9, b=0.4, analyzer="lucene",
                                                               stemmer="english", lucene_norms=True),
    "k1 1.2, b 0.75, regex, Snowball English (bm25s harness)": dict(k1=1.2, b=0.75, stemmer="english"),
}


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    common.report_load("before")
    dataset = load_beir(DATA / "scifact" / "beir")
    split = dataset.split("test")
    print("| configuration | nDCG@10 | R@100 | R@1000 |\n|---|---|---|---|")
    for label, params in CONFIGS.items():
        pipeline = Pipeline.from_names(encoder={"name": "bm25", **params}, index="exact")
        pipeline.build(dataset.corpus)
        result = embedlab.evaluate(pipeline.search(split.queries, k=1000), split.qrels, ["nDCG@10", "R@100", "R@1000"])
        cells = " | ".join(f"{result.aggregates[m]:.4f}" for m in ("nDCG@10", "R@100", "R@1000"))
        print(f"| {label} | {cells} |", flush=True)
    print("| Pyserini BM25 flat (Anserini regression) | 0.6789 | 0.9253 | 0.9767 |")


if __name__ == "__main__":
    main()
