"""Distill-VQ training with a fixed query encoder: the coarse centroids and PQ codebooks learn to
reproduce the ranking of exact dense scores (ListNet over top-K teacher neighbours + in-batch
documents); no relevance labels are used.

Per batch of training queries ``q`` and candidate documents ``d`` (fixed coarse list ``c(d)``):

* teacher ``t = <q, v_d>``; IVF student ``s_ivf = <q, o_c(d)>``; PQ student
  ``s_pq = <q, o_c(d) + u_hat_d>`` where ``u_hat_d`` concatenates, per subspace, the codeword chosen by
  a straight-through softmax over ``-||u_d - c||^2`` (forward: nearest codeword; backward: soft);
* loss ``ListNet(t, s_ivf) + ListNet(t, s_pq)``, scores divided by ``temperature``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from embedlab.early_stopping import EarlyStopping


def teacher_neighbours(queries: np.ndarray, docs: np.ndarray, k: int) -> np.ndarray:
    """Exact top-``k`` documents of every query by inner product, best first, int64 ``(n, k)``."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 1024):
        scores = queries[start:start + 1024] @ docs.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start:start + 1024] = np.take_along_axis(top, order, axis=1)
    return out


def drop_self(neighbours: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Remove each pseudo-query's own document (``rows``) from its ``k + 1`` neighbours (the last
    one when it is absent): ``(n, k)``."""
    keep = neighbours != rows[:, None]
    keep[keep.all(axis=1), -1] = False
    return neighbours[keep].reshape(len(neighbours), -1)


def listnet(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the softmax of teacher and student scores, averaged over queries."""
    return -(torch.softmax(teacher, dim=1) * torch.log_softmax(student, dim=1)).sum(dim=1).mean()


class Student(torch.nn.Module):
    """Learnable coarse centroids ``(nlist, d)`` and PQ codebooks ``(m, ksub, dsub)``."""

    def __init__(self, centroids: np.ndarray, codebooks: np.ndarray) -> None:
        super().__init__()
        self.centroids = torch.nn.Parameter(torch.from_numpy(centroids.copy()))
        self.codebooks = torch.nn.Parameter(torch.from_numpy(codebooks.copy()))

    def reconstruct(self, docs: torch.Tensor, lists: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(o, o + u_hat)``: coarse centroid and IVF-PQ reconstruction of every document."""
        o = self.centroids[lists]
        m, ksub, dsub = self.codebooks.shape
        residual = (docs - o.detach()).reshape(len(docs), m, dsub)
        distances = ((self.codebooks ** 2).sum(dim=2).unsqueeze(0)
                     - 2.0 * torch.einsum("njd,jcd->njc", residual, self.codebooks))  # (n, m, ksub) + const
        soft = torch.softmax(-distances, dim=2)
        hard = torch.nn.functional.one_hot(distances.argmin(dim=2), ksub).to(soft.dtype)
        weights = hard + soft - soft.detach()
        u_hat = torch.einsum("njc,jcd->njd", weights, self.codebooks).reshape(len(docs), m * dsub)
        return o, o + u_hat


def batch_loss(student: Student, queries: torch.Tensor, docs: torch.Tensor, lists: torch.Tensor,
               candidates: np.ndarray, temperature: float) -> torch.Tensor:
    """Distillation loss of one batch; ``candidates`` ``(B, K)`` document rows per query, extended
    with the batch's in-batch documents (every query's best teacher neighbour)."""
    in_batch = np.broadcast_to(candidates[:, 0], (len(candidates), len(candidates)))
    everything = np.concatenate([candidates, in_batch], axis=1)
    unique, inverse = np.unique(everything, return_inverse=True)
    inverse = torch.from_numpy(inverse.reshape(everything.shape))
    rows = torch.from_numpy(unique)
    o, full = student.reconstruct(docs[rows], lists[rows])
    teacher = torch.gather(queries @ docs[rows].T, 1, inverse) / temperature
    s_ivf = torch.gather(queries @ o.T, 1, inverse) / temperature
    s_pq = torch.gather(queries @ full.T, 1, inverse) / temperature
    return listnet(teacher, s_ivf) + listnet(teacher, s_pq)


def distill(docs: np.ndarray, lists: np.ndarray, queries: np.ndarray, centroids: np.ndarray,
            codebooks: np.ndarray, cfg: Any,
            query_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Train from the initial ``centroids``/``codebooks``; returns the best ones by validation loss
    (the initial ones when no epoch improves it) and the validation loss history (epoch 0 first).
    ``cfg`` carries epochs, batch_size, topk, lr_ivf, lr_pq, temperature, patience, seed,
    validation_fraction, show_progress. ``query_rows``: when the queries are documents, their
    rows, so that each pseudo-query's own document is left out of its teacher neighbours."""
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    if query_rows is None:
        neighbours = teacher_neighbours(queries, docs, min(cfg.topk, len(docs)))
    else:
        neighbours = drop_self(teacher_neighbours(queries, docs, min(cfg.topk + 1, len(docs))), query_rows)
    order = rng.permutation(len(queries))
    n_val = min(len(queries) - 1, max(1, int(round(cfg.validation_fraction * len(queries)))))
    val, train = (order[:n_val], order[n_val:]) if n_val > 0 else (order, order)
    student = Student(centroids, codebooks)
    optimiser = torch.optim.Adam([{"params": [student.centroids], "lr": cfg.lr_ivf},
                                  {"params": [student.codebooks], "lr": cfg.lr_pq}])
    d, lst, q = torch.from_numpy(docs), torch.from_numpy(lists), torch.from_numpy(queries)

    def validation_loss() -> float:
        with torch.no_grad():
            chunks = [val[s:s + cfg.batch_size] for s in range(0, len(val), cfg.batch_size)]
            losses = [float(batch_loss(student, q[c], d, lst, neighbours[c], cfg.temperature)) * len(c)
                      for c in chunks]
            return sum(losses) / max(1, len(val))

    history = [validation_loss()]
    stopper = EarlyStopping(history[0], (centroids.copy(), codebooks.copy()), cfg.patience, tol=1e-6)
    steps = -(-len(train) // cfg.batch_size)
    with tqdm(total=cfg.epochs * steps, desc="distillvq", unit="batch", disable=not cfg.show_progress) as bar:
        for _ in range(cfg.epochs):
            shuffled = train[rng.permutation(len(train))]
            for start in range(0, len(shuffled), cfg.batch_size):
                batch = shuffled[start:start + cfg.batch_size]
                loss = batch_loss(student, q[batch], d, lst, neighbours[batch], cfg.temperature)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}", val=f"{stopper.best_value:.4f}")
            history.append(validation_loss())
            if stopper.update(history[-1], lambda: (_numpy(student.centroids), _numpy(student.codebooks))):
                break
    return *stopper.best_state, history


def _numpy(parameter: torch.Tensor) -> np.ndarray:
    return parameter.detach().numpy().astype(np.float32, copy=True)

