"""Our losses against sentence-transformers' on the same batch: loss value and gradient to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_train import Batch, InfoNCE, Matryoshka
from embedlab_train.model import TrainableModel
from embedlab_train.testing import gradients, pair_set, random_batch

import embedlab

grads = gradients


@pytest.mark.parametrize("k", [0, 1, 3])
def test_infonce_equals_sentence_transformers_mnrl(k):
    q, docs, batch = random_batch(k=k)
    ours = InfoNCE(temperature=0.05)(batch)
    columns = [q] + list(docs.split(q.shape[0]))
    theirs = _st_mnrl(scale=20.0)(columns)
    assert abs(float(ours.detach()) - float(theirs.detach())) < 1e-6
    for a, b in zip(grads(ours, q, docs), grads(theirs, q, docs)):
        assert torch.allclose(a, b, atol=1e-6)


def _st_mnrl(scale: float, **options):
    """sentence-transformers' MNRL on precomputed embedding columns (no model forward)."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    loss = MultipleNegativesRankingLoss.__new__(MultipleNegativesRankingLoss)
    torch.nn.Module.__init__(loss)
    loss.model, loss.scale, loss.gather_across_devices = None, scale, False
    from sentence_transformers.util import cos_sim

    loss.similarity_fct, loss.directions, loss.partition_mode = cos_sim, ("query_to_doc",), "joint"
    loss.hardness_mode, loss.hardness_strength = options.get("hardness_mode"), options.get("hardness_strength", 0.0)
    return lambda columns: loss.compute_loss_from_embeddings(columns, None)


def test_judged_documents_are_not_negatives_and_get_no_gradient():
    # document 1 (query 1's positive) is also judged relevant to query 0
    q, docs, batch = random_batch(k=1, judged=[{0, 1}] + [{i} for i in range(1, 6)])
    masked = InfoNCE(mask_judged=True)
    loss = masked(batch)
    logits = masked.logits(batch)
    assert torch.isinf(logits[0, 1]) and torch.isfinite(logits[0, 0]) and torch.isfinite(logits[1, 1])
    # query 0's loss no longer depends on document 1: its gradient comes from query 1's row only
    only_row0 = torch.nn.functional.cross_entropy(logits[:1], torch.tensor([0]))
    (g_doc,) = torch.autograd.grad(only_row0, docs, retain_graph=True)
    assert torch.count_nonzero(g_doc[1]) == 0 and torch.count_nonzero(g_doc[0]) > 0
    unmasked = InfoNCE(mask_judged=False)(batch)
    assert float(unmasked) > float(loss)


def test_matryoshka_with_the_full_dimension_is_the_base_loss():
    q, docs, batch = random_batch(d=16)
    base, mrl = InfoNCE(temperature=0.07), Matryoshka(dims=[16], base={"name": "infonce", "temperature": 0.07})
    a, b = base(batch), mrl(batch)
    assert abs(float(a) - float(b)) < 1e-12
    for x, y in zip(grads(a, q, docs), grads(b, q, docs)):
        assert torch.allclose(x, y, atol=1e-12)


def test_matryoshka_rejects_dims_above_the_model_and_mismatched_weights():
    with pytest.raises(embedlab.ConfigError, match="weights has 1 values for 2 dims"):
        Matryoshka(dims=[8, 4], weights=[1.0])
    with pytest.raises(embedlab.UnknownComponentError, match="no loss named 'nope'"):
        Matryoshka(base="nope")


def st_model_and_ours(tiny_model):
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    st = SentenceTransformer(str(tiny_model), device="cpu")
    st.max_seq_length = 32
    ours = TrainableModel(tiny_model, pooling="mean", normalize=True, max_length=32, device=torch.device("cpu"))
    ours.model.load_state_dict(st[0].auto_model.state_dict())
    st.eval(), ours.eval()  # no dropout: both sides see the same function
    st.double(), ours.double()  # float64, so summation order cannot hide a real difference
    return st, ours


def param_grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


TEXTS_Q = ["parse json text", "open a file", "sort numbers quickly", "send a request"]
TEXTS_D = ["json.loads parses a string", "open(path) returns a file", "sorted(xs) sorts", "requests.get(url)",
           "zlib compresses bytes", "time.time measures", "os.walk lists files", "hashlib hashes"]


@pytest.mark.parametrize("dims", [None, (32, 16, 8)])
def test_model_gradients_equal_sentence_transformers_mnrl_and_matryoshka(tiny_model, dims):
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

    st, ours = st_model_and_ours(tiny_model)
    st_loss = MultipleNegativesRankingLoss(st, scale=20.0)
    if dims:
        st_loss = MatryoshkaLoss(st, st_loss, matryoshka_dims=list(dims), matryoshka_weights=[1.0, 0.5, 0.25])
    features = [st.preprocess(TEXTS_Q), st.preprocess(TEXTS_D[:4]), st.preprocess(TEXTS_D[4:])]
    theirs = st_loss(features, None)
    theirs.backward()
    expected = param_grads(st[0].auto_model)

    loss = InfoNCE(temperature=0.05) if not dims else \
        Matryoshka(dims=list(dims), weights=[1.0, 0.5, 0.25], base={"name": "infonce", "temperature": 0.05})
    data = pair_set(4, 8)
    batch = Batch(ours.embed(TEXTS_Q), ours.embed(TEXTS_D), np.arange(4), np.arange(8), data)
    value = loss(batch)
    value.backward()
    got = param_grads(ours.model)
    assert abs(float(value) - float(theirs)) < 1e-6
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.allclose(got[name], expected[name], rtol=0, atol=1e-6), name
