"""Which MatMuls to leave float32 in the ``onnx-int8-qkv`` recipe: cosine to fp32 vs speed.

    python benchmarks/sweep_int8_recipes.py --texts 192 --threads 1                  # every candidate
    python benchmarks/sweep_int8_recipes.py --texts 192 --candidates qkv ffn_down:5 # some of them
    python benchmarks/sweep_int8_recipes.py --texts 300 --rounds 3 --candidates torch qkv ffn_down:5   # speed
    python benchmarks/sweep_int8_recipes.py --scifact ffn_down:5 --threads 1        # nDCG@10 of one

Each candidate is the ``onnx-int8-qkv`` recipe (Q/K/V projections unfused, every ``MatMul`` int8 per
channel) with the named MatMuls left float32 (:func:`embedlab_transformers.quantize.matmul_roles`:
``qkv``, ``out``, ``ffn_up``, ``ffn_down``, each for every layer or as ``role:layer``; ``qkv`` alone
is the shipped recipe, ``fused`` the shipped ``onnx-int8``, ``torch`` the torch fp32 reference of the
speed target; a ``@tensor`` suffix, e.g. ``ffn_down:0@tensor``, quantises with one weight scale
per tensor instead of per output column; ``--batch-size`` sets every encoder's batch). The first
``--texts`` SciFact abstracts (as ``bench_onnx_vs_torch.py``) are encoded with ONNX fp32 and with
each candidate, in rounds that alternate the order; the table gives the cosine to fp32 (mean, 1st
percentile, min) and texts/s relative to ``qkv`` in the same rounds (a ratio, so it holds under
load only roughly; the absolute speed against torch is ``bench_onnx_vs_torch.py``'s job, in a quiet
window).

``--scifact CANDIDATE`` reports SciFact test nDCG@10 with fp32 (from the embedding cache) and with
the candidate (encoded here, not cached), and the paired difference, as ``bench_onnx_int8.py`` does
for the shipped backends.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import attrs
import common
import numpy as np
from bench_onnx_vs_torch import load_texts
from embedlab_transformers import MiniLM
from embedlab_transformers.quantize import RECIPES, Int8Recipe, quantize

#: Candidates tried by default: one role everywhere, the last and first layers' FFN down
#: projection (the classic outlier-sensitive MatMul), and pairs.
DEFAULT = ("fused", "qkv", "ffn_down", "ffn_down:5", "ffn_down:0", "ffn_down:0,ffn_down:5", "out", "ffn_up",
           "qkv:0", "qkv:5", "out:5", "ffn_up:5")


def recipe_of(candidate: str) -> Int8Recipe:
    """``fused``, ``qkv`` or fp32 MatMuls as ``role[:layer],...``; a ``@tensor`` suffix quantises the
    weights with one scale per tensor instead of per output column."""
    name, _, scale = candidate.partition("@")
    if scale not in ("", "tensor"):
        raise SystemExit(f"unknown weight scale {scale!r} in {candidate!r} (only '@tensor')")
    if name == "fused":
        return attrs.evolve(RECIPES["onnx-int8"], per_channel=not scale)
    kept = () if name == "qkv" else tuple(name.split(","))
    return Int8Recipe(tag=f"sweep-{candidate}", split_attention=True, fingerprint=None, fp32_matmuls=kept,
                      per_channel=not scale)


def encoder_for(path: Path | None, threads: int, batch_size: int = 32) -> MiniLM:
    """MiniLM on ONNX fp32 (``path`` None) or on the model file ``path`` (same tokenizer, batches)."""
    encoder = MiniLM(backend="onnx", num_threads=threads, show_progress=False, batch_size=batch_size)
    if path is not None:
        backend = encoder.loaded.backend
        backend.session = backend.open_session(path)
    return encoder


def sweep(args: argparse.Namespace) -> None:
    texts = load_texts("scifact", args.texts)
    fp32 = encoder_for(None, args.threads, args.batch_size).encode_documents(texts)
    source = MiniLM(backend="onnx").loaded.backend.path
    candidates = args.candidates or list(DEFAULT)
    with tempfile.TemporaryDirectory(prefix="int8-sweep-") as scratch:
        encoders = {}
        for name in candidates:
            if name == "torch":  # the reference of the speed target
                encoders[name] = MiniLM(backend="torch", num_threads=args.threads, show_progress=False,
                                        batch_size=args.batch_size)
            else:
                target = Path(scratch) / f"{len(encoders)}.onnx"
                quantize(source, target, recipe_of(name))
                encoders[name] = encoder_for(target, args.threads, args.batch_size)
                target.unlink()  # the session holds the model: keep the disk free
            encoders[name].encode_documents(texts[:8])  # warm-up
        speed: dict[str, list[float]] = {name: [] for name in candidates}
        vectors = {}
        for round_ in range(args.rounds):
            for name in candidates if round_ % 2 == 0 else candidates[::-1]:
                start = time.perf_counter()
                vectors[name] = encoders[name].encode_documents(texts)
                speed[name].append(len(texts) / (time.perf_counter() - start))
    print(f"{len(texts)} SciFact abstracts, {args.threads} thread(s), {args.rounds} rounds (paired ratios: median of "
          "the per-round ratios)")
    print("| fp32 MatMuls | cosine mean | 1st pct | min | texts/s (median) | vs qkv | vs torch |")
    print("|---|---|---|---|---|---|---|")
    for name in candidates:
        cosine = (fp32 * vectors[name]).sum(axis=1)
        ratios = [paired(speed, name, ref) for ref in ("qkv", "torch")]
        print(f"| {name} | {cosine.mean():.4f} | {np.percentile(cosine, 1):.4f} | {cosine.min():.4f} | "
              f"{statistics.median(speed[name]):.1f} | {ratios[0]} | {ratios[1]} |", flush=True)


def paired(speed: dict[str, list[float]], name: str, reference: str) -> str:
    if reference not in speed:
        return "-"
    return f"{statistics.median(a / b for a, b in zip(speed[name], speed[reference])):.2f}x"


def scifact(args: argparse.Namespace) -> None:
    from bench_onnx_int8 import encode

    from embedlab import Ranking
    from embedlab.index import ExactIndex
    from embedlab.metrics import evaluate
    from embedlab.stats import paired_tests

    dataset = common.load("scifact")
    split = dataset.split("test")
    docs32, queries32, _ = encode("onnx", dataset, split, args.threads)
    source = MiniLM(backend="onnx").loaded.backend.path
    with tempfile.TemporaryDirectory(prefix="int8-sweep-") as scratch:
        target = Path(scratch) / "candidate.onnx"
        quantize(source, target, recipe_of(args.scifact))
        encoder = encoder_for(target, args.threads)
        docs, queries = encoder.encode_documents(dataset.corpus.documents()), encoder.encode_queries(
            list(split.queries.texts))
    runs = {}
    for name, (d, q) in {"fp32": (docs32, queries32), args.scifact: (docs, queries)}.items():
        index = ExactIndex()
        index.build(d)
        ranking = Ranking.from_search(split.queries.ids, index.search(q, 100), dataset.corpus.ids)
        runs[name] = evaluate(ranking, split.qrels, ["nDCG@10"])
        print(f"| {name} | {runs[name].aggregates['nDCG@10']:.4f} |")
    test = paired_tests(runs[args.scifact].per_query["nDCG@10"], runs["fp32"].per_query["nDCG@10"])
    cosines = np.concatenate([(a * b).sum(1) for a, b in zip((docs32, queries32), (docs, queries))])
    print(f"{args.scifact} - fp32: {test.mean_difference:+.4f} (paired t p = {test.p_ttest:.3f}; improved "
          f"{test.improved}, degraded {test.degraded}, tied {test.tied}); cosine over {cosines.size} texts: "
          f"mean {cosines.mean():.4f}, 1st percentile {np.percentile(cosines, 1):.4f}, min {cosines.min():.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=192)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--candidates", nargs="+", default=None, help=f"default: {' '.join(DEFAULT)}")
    parser.add_argument("--scifact", default=None, help="one candidate: SciFact nDCG@10 against fp32")
    args = parser.parse_args()
    common.report_load("before")
    if args.scifact:
        scifact(args)
    else:
        sweep(args)


if __name__ == "__main__":
    main()
