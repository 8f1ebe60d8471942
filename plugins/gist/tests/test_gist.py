"""GIST against sentence-transformers' GISTEmbedLoss, its reduction to InfoNCE, and its mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_gist import GIST
from embedlab_train import Batch, InfoNCE
from embedlab_train.model import TrainableModel
from embedlab_train.testing import TOPICS, gradients, pair_set, random_batch

import embedlab

ANCHORS = ["parse json text", "open a file", "sort numbers quickly", "send a request"]
POSITIVES = ["json.loads parses a string", "open(path) returns a file", "sorted(xs) sorts", "requests.get(url)"]
NEGATIVES = ["zlib compresses bytes", "time.time measures", "os.walk lists files", "json.dumps writes json"]


def float64_models(student_dir, guide_dir):
    from sentence_transformers import SentenceTransformer

    student = SentenceTransformer(str(student_dir), device="cpu").double().eval()
    guide = SentenceTransformer(str(guide_dir), device="cpu").double().eval()
    ours = TrainableModel(student_dir, pooling="mean", normalize=True, max_length=32, device=torch.device("cpu"))
    ours.model.load_state_dict(student[0].auto_model.state_dict())
    return student, guide, ours.double().eval()


@pytest.mark.parametrize("options", [{"margin_strategy": "absolute", "margin": 0.0},
                                     {"margin_strategy": "relative", "margin": 0.1},
                                     {"margin_strategy": "absolute", "margin": 0.05, "contrast_anchors": False}])
def test_gist_equals_sentence_transformers_gistembedloss(student_dir, guide_dir, options):
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss

    student, guide, ours = float64_models(student_dir, guide_dir)
    theirs = GISTEmbedLoss(student, guide, temperature=0.01, **options)
    expected_loss = theirs([student.preprocess(t) for t in (ANCHORS, POSITIVES, NEGATIVES)], None)
    expected_loss.backward()
    expected = {n: p.grad.clone() for n, p in student[0].auto_model.named_parameters() if p.grad is not None}

    loss = GIST(guide={"name": "transformers", "model_path": str(guide_dir)}, temperature=0.01, **options)
    with torch.no_grad():
        loss.use_guide_vectors(guide.encode(ANCHORS, convert_to_tensor=True).numpy(),
                               guide.encode(POSITIVES + NEGATIVES, convert_to_tensor=True).numpy())
    batch = Batch(ours.embed(ANCHORS), ours.embed(POSITIVES + NEGATIVES), np.arange(4), np.arange(8), pair_set(4, 8))
    value = loss(batch)
    value.backward()
    assert abs(float(value.detach()) - float(expected_loss.detach())) < 1e-6
    assert loss.masked_fraction(batch).any() or options["margin"] == 0.0
    for name, grad in expected.items():
        assert torch.allclose(dict(ours.model.named_parameters())[name].grad, grad, rtol=0, atol=1e-6), name


def test_gist_with_a_margin_that_masks_nothing_and_no_contrast_blocks_is_infonce(guide_dir):
    q, docs, batch = random_batch(b=6, k=2, d=16, seed=3)
    gist = GIST(guide={"name": "transformers", "model_path": str(guide_dir)}, temperature=0.05, margin=-2.0,
                contrast_anchors=False, contrast_positives=False)
    rng = np.random.default_rng(0)
    gist.use_guide_vectors(rng.standard_normal((6, 8)), rng.standard_normal((18, 8)))
    a, b = gist(batch), InfoNCE(temperature=0.05)(batch)
    assert abs(float(a.detach()) - float(b.detach())) < 1e-6
    for x, y in zip(gradients(a, q, docs), gradients(b, q, docs)):
        assert torch.allclose(x, y, rtol=0, atol=1e-6)
    assert not gist.masked_fraction(batch).any()


def test_the_positive_is_never_masked_and_the_rule_is_monotone_in_the_margin(guide_dir):
    q, docs, batch = random_batch(b=6, k=1, d=16, seed=4)
    counts = []
    for margin in (-0.5, 0.0, 0.2, 0.5, 2.0):
        gist = GIST(guide={"name": "transformers", "model_path": str(guide_dir)}, margin=margin)
        gist.use_guide_vectors(q.detach().numpy(), docs.detach().numpy())   # guide = the student itself
        mask = gist.masked_fraction(batch)
        assert not mask[np.arange(6), np.arange(6)].any()
        counts.append(int(mask.sum()))
        if margin == 0.0:   # guide = student, margin 0: masked exactly where a candidate beats the positive
            scores = batch.scores().detach().numpy()
            beats = scores > scores[np.arange(6), np.arange(6)][:, None]
            beats[np.arange(6), np.arange(6)] = False
            assert np.array_equal(mask, beats)
    assert counts == sorted(counts) and counts[-1] == 6 * 12 - 6


def test_a_reranker_guide_masks_an_exact_duplicate_of_the_positive(student_dir):
    data = pair_set(4, 8)
    texts = POSITIVES + [POSITIVES[1]] + NEGATIVES[1:]          # document 4 duplicates query 1's positive
    data = type(data)(data.queries, embedlab.Corpus([f"d{i}" for i in range(8)], texts), data.query,
                      data.positive, data.judged)
    data = type(data)(embedlab.Queries([f"q{i}" for i in range(4)], ANCHORS), data.corpus, data.query,
                      data.positive, data.judged)
    guide = {"kind": "reranker", "name": "maxsim", "model_path": str(student_dir), "max_length": 32,
             "num_threads": 1, "show_progress": False}
    gist = GIST(guide=guide, margin=1e-4, contrast_anchors=False, contrast_positives=False)
    q, docs = torch.randn(4, 8, dtype=torch.float64), torch.randn(8, 8, dtype=torch.float64)
    batch = Batch(q, docs, np.arange(4), np.arange(8), data)
    mask = gist.masked_fraction(batch)
    assert mask[1, 4] and not mask[np.arange(4), np.arange(4)].any()
    assert len(gist._pairs.memo) == 4 * 8            # every pair scored once and memoised
    with pytest.raises(embedlab.ConfigError, match="contrast_anchors = false"):
        GIST(guide=guide)



def test_minilm_guide_masks_planted_duplicates_and_spares_random_negatives():
    """The issue's check with the real all-MiniLM-L6-v2 as guide: each query's positive has a planted
    near-duplicate (function renamed) among the in-batch candidates; margin 0.1 (absolute)."""
    n = len(TOPICS)
    queries = [f"how to {t}" for t in TOPICS]
    positives = [f"def helper(): # {t} in python" for t in TOPICS]
    duplicates = [p.replace("def helper():", "def helper_copy():") for p in positives]
    data = type(pair_set(1, 1)).from_pairs(queries, positives + duplicates, [(i, i) for i in range(n)])
    gist = GIST(guide={"name": "minilm", "num_threads": 1, "show_progress": False}, margin=0.1)
    gist.use_guide_vectors(gist.guide.encode_queries(queries), gist.guide.encode_documents(positives + duplicates))
    mask = gist.masked_fraction(Batch(torch.zeros(n, 4), torch.zeros(2 * n, 4), np.arange(n), np.arange(2 * n), data))
    planted = mask[np.arange(n), n + np.arange(n)]
    others = np.ones_like(mask)
    others[np.arange(n), np.arange(n)] = others[np.arange(n), n + np.arange(n)] = False
    assert planted.mean() > 0.8 and mask[others].mean() < 0.05
