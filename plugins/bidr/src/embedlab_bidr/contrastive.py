"""BiDR's contrastive quantisation (stage 1, the "sparse" embeddings), on frozen document vectors.

BiDR (Xiao et al., WWW 2022; official code microsoft/BiDR, ``ContrasPQ``) trains the PQ codebooks
for retrieval instead of reconstruction: each document sub-vector selects a codeword by
``softmax(-||z_j - c||^2 / tau)`` with a straight-through hard one-hot (forward: the nearest
codeword, as the index will store it; backward: the soft assignment), the quantised document is the
concatenation of the selected codewords, queries stay dense (ADC), and the loss is InfoNCE over the
in-batch positives plus one hard negative per query (every document of the batch is a negative of
every other query): ``-log e^{<q, f_s(d+)>/T} / sum_d e^{<q, f_s(d)>/T}``.

Where we differ: the paper trains the document encoder too (RoBERTa, together with the codebooks);
here the encoder is frozen (MiniLM vectors), so only the codebooks train; the hard negative comes
from the initial PQ index's top ``negative_depth`` (the paper takes one BM25 negative); MiniLM's
cosine-scale scores need a temperature ``T`` (the paper's unnormalised scores do not). The OPQ
rotation of the initial ``OPQ{m},PQ{m}`` stays fixed, as in the official code.
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from embedlab.early_stopping import EarlyStopping
from embedlab.errors import InvalidInputError
from embedlab.pq import Codebooks
from embedlab.pq_compressor import PQCompressor
from embedlab.threads import torch_threads

_v = attrs.validators
_int = _v.instance_of(int)
_number = _v.instance_of((int, float))


def straight_through_quantise(z: torch.Tensor, centroids: torch.Tensor, tau: float) -> torch.Tensor:
    """``(n, d)`` vectors replaced by their nearest codewords per subspace (forward), with the
    gradient of the soft assignment ``softmax(-||z_j - c||^2 / tau)`` (backward) reaching the
    codewords; ``centroids`` is ``(m, ksub, d/m)``."""
    m, ksub, dsub = centroids.shape
    parts = z.reshape(len(z), m, 1, dsub)
    distances = ((parts - centroids.unsqueeze(0)) ** 2).sum(-1)                 # (n, m, ksub)
    soft = torch.softmax(-distances / tau, dim=-1)
    hard = F.one_hot(distances.argmin(-1), ksub).to(soft.dtype)
    weights = hard + soft - soft.detach()
    return torch.einsum("nmk,mkd->nmd", weights, centroids).reshape(len(z), m * dsub)


@attrs.frozen
class ContrastiveSettings:
    """``epochs``, ``batch_size`` (queries per step), ``lr`` (Adam on the codebooks), ``tau``
    (assignment softness), ``temperature`` (InfoNCE), ``negative_depth`` (hard negatives are drawn
    from each query's top ``negative_depth`` documents of the initial codes, relevant ones excluded),
    ``validation_fraction`` and ``patience`` (early stopping on held-out *training* queries:
    recall@``validation_k`` of their relevant documents in the code tier), ``seed``."""

    epochs: int = attrs.field(default=20, validator=[_int, _v.ge(1)])
    batch_size: int = attrs.field(default=64, validator=[_int, _v.ge(2)])
    lr: float = attrs.field(default=1e-3, validator=[_number, _v.gt(0)])
    tau: float = attrs.field(default=0.01, validator=[_number, _v.gt(0)])
    temperature: float = attrs.field(default=0.05, validator=[_number, _v.gt(0)])
    negative_depth: int = attrs.field(default=200, validator=[_int, _v.ge(1)])
    validation_fraction: float = attrs.field(default=0.1, validator=[_number, _v.ge(0), _v.lt(1)])
    validation_k: int = attrs.field(default=100, validator=[_int, _v.ge(1)])
    patience: int = attrs.field(default=3, validator=[_int, _v.ge(1)])
    seed: int = attrs.field(default=0, validator=[_int, _v.ge(0)])
    num_threads: int | None = attrs.field(default=None, validator=_v.optional([_int, _v.ge(1)]))
    show_progress: bool | None = attrs.field(default=None, validator=_v.optional(_v.instance_of(bool)))


def _rotate(x: np.ndarray, rotation: np.ndarray | None) -> np.ndarray:
    return np.ascontiguousarray(x if rotation is None else x @ rotation.T, dtype=np.float32)


def _recall(scores: torch.Tensor, relevant: Sequence[Sequence[int]], k: int) -> float:
    top = torch.topk(scores, min(k, scores.shape[1]), dim=1).indices.tolist()
    return float(np.mean([len(set(row) & set(rel)) / len(rel) for row, rel in zip(top, relevant)]))


def train_contrastive_pq(compressor: PQCompressor, doc_vectors: np.ndarray, query_vectors: np.ndarray,
                         relevant: Sequence[Sequence[int]], settings: ContrastiveSettings | None = None,
                         **params: Any) -> dict[str, Any]:
    """Train the codebooks of a fitted ``compressor`` (the core ``pq``, plain or OPQ) with BiDR's
    contrastive quantisation on frozen vectors, install the best ones (``use_codebooks``; the
    rotation stays) and return the record (losses, held-out recall per epoch, best epoch).

    ``relevant[i]``: positions in ``doc_vectors`` relevant to ``query_vectors[i]`` (queries
    without any are dropped). A share ``validation_fraction`` of the queries is held out; their
    recall@``validation_k`` in the code tier after every epoch picks the codebooks kept (epoch 0,
    the initial ones, included). Ctrl-C leaves the compressor as it was."""
    settings = settings or ContrastiveSettings(**params)
    keep = [i for i, rel in enumerate(relevant) if len(rel)]
    if not keep:
        raise InvalidInputError("bidr: no training query has a relevant document")
    rotation = compressor.rotation
    rotated = _rotate(doc_vectors, rotation)
    docs = torch.from_numpy(rotated)
    queries = torch.from_numpy(_rotate(np.asarray(query_vectors, dtype=np.float32)[keep], rotation))
    lists = [sorted(int(p) for p in relevant[i]) for i in keep]
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(keep))
    held_count = int(round(settings.validation_fraction * len(keep)))
    held, train = np.sort(order[:held_count]), np.sort(order[held_count:])
    codes = compressor.encode(doc_vectors)
    initial = compressor.score(np.asarray(query_vectors, dtype=np.float32)[keep], codes)
    negatives = _hard_negatives(initial, lists, settings.negative_depth)
    with torch.random.fork_rng(devices=[]), torch_threads(settings.num_threads):
        torch.manual_seed(settings.seed)
        centroids = torch.nn.Parameter(torch.from_numpy(compressor.codebooks.centroids.copy()))
        optimiser = torch.optim.Adam([centroids], lr=settings.lr)

        def validate() -> float | None:
            if not len(held):
                return None
            books = Codebooks(centroids.detach().numpy())        # the forward pass: nearest codewords
            decoded = torch.from_numpy(books.decode(books.encode(rotated)))
            return _recall(queries[held] @ decoded.T, [lists[i] for i in held], settings.validation_k)

        validation = [validate()]
        stopper = EarlyStopping(validation[0], centroids.detach().clone(), patience=settings.patience, mode="max")
        losses: list[float] = []
        disable = settings.show_progress is False or (settings.show_progress is None and not _interactive())
        for epoch in tqdm(range(settings.epochs), desc="bidr contrastive PQ", unit="epoch", disable=disable):
            batches = _batches(train, lists, settings.batch_size, np.random.default_rng([settings.seed, epoch]))
            total = 0.0
            for rows in batches:
                loss = _batch_loss(rows, queries, docs, centroids, lists, negatives, settings,
                                   np.random.default_rng([settings.seed, epoch, int(rows[0])]))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach())
            losses.append(total / max(len(batches), 1))
            validation.append(validate())
            if stopper.update(validation[-1], lambda: centroids.detach().clone()):
                break
    compressor.use_codebooks(stopper.best_state.numpy().copy())
    return {"trained": True, "losses": losses, "validation_recall": validation if len(held) else [],
            "best_epoch": stopper.best_epoch, "train_queries": len(train), "held_out_queries": len(held)}


def _interactive() -> bool:
    import sys

    return sys.stderr.isatty()


def _hard_negatives(scores: np.ndarray, relevant: list[list[int]], depth: int) -> list[np.ndarray]:
    """Per query, the non-relevant positions among its top ``depth`` by ``scores``."""
    depth = min(depth + max(len(r) for r in relevant), scores.shape[1])
    top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    return [np.setdiff1d(row, rel) for row, rel in zip(top, relevant)]


def _batches(rows: np.ndarray, relevant: list[list[int]], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Seeded batches of query rows (random order, as the paper's stage 1)."""
    order = rng.permutation(rows)
    return [order[s:s + size] for s in range(0, len(order), size)]


def _batch_loss(rows: np.ndarray, queries: torch.Tensor, docs: torch.Tensor, centroids: torch.Tensor,
                relevant: list[list[int]], negatives: list[np.ndarray], settings: ContrastiveSettings,
                rng: np.random.Generator) -> torch.Tensor:
    """InfoNCE of the batch's queries over the quantised in-batch positives and one hard negative
    per query; a document relevant to a query is never its negative."""
    positives = [relevant[r][rng.integers(len(relevant[r]))] for r in rows]
    hard = [int(negatives[r][rng.integers(len(negatives[r]))]) if len(negatives[r]) else positives[i]
            for i, r in enumerate(rows)]
    positions = np.unique(np.array(positives + hard))
    quantised = straight_through_quantise(docs[torch.from_numpy(positions)], centroids, settings.tau)
    logits = queries[torch.from_numpy(rows)] @ quantised.T / settings.temperature      # (b, docs)
    column = {int(p): j for j, p in enumerate(positions)}
    target = torch.tensor([column[p] for p in positives])
    mask = torch.zeros_like(logits, dtype=torch.bool)
    for i, r in enumerate(rows):
        for p in relevant[r]:
            if p in column and column[p] != target[i]:
                mask[i, column[p]] = True
    return F.cross_entropy(logits.masked_fill(mask, float("-inf")), target)
