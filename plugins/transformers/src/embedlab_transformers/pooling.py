"""Turning a transformer's last hidden states into embeddings; shared by every backend."""

from __future__ import annotations

import numpy as np

POOLINGS = ("mean", "cls")


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows divided by their L2 norm (as ``torch.nn.functional.normalize``)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)


def pool(hidden: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """``(batch, dim)`` sentence embeddings from ``(batch, length, dim)`` hidden states.

    ``mean`` averages the non-padding tokens (special tokens included, as sentence-transformers);
    ``cls`` takes the first non-padding token, which works for left and right padding.
    """
    if method == "mean":
        weights = mask.astype(np.float32)
        sums = np.einsum("bld,bl->bd", hidden, weights)
        return sums / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    if method == "cls":
        first = mask.argmax(axis=1)
        return hidden[np.arange(hidden.shape[0]), first]
    raise ValueError(f"unknown pooling {method!r}; expected one of {POOLINGS}")


def token_vectors(hidden: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-padding token vectors of a batch, flattened item after item, and the count per item."""
    keep = mask.astype(bool)
    return hidden[keep], keep.sum(axis=1)


def sentence_embeddings(hidden: np.ndarray, mask: np.ndarray, method: str, normalize: bool) -> np.ndarray:
    """Pooled (and optionally L2-normalised) float32 embeddings of one batch."""
    pooled = pool(hidden, mask, method)
    return np.ascontiguousarray(l2_normalize(pooled) if normalize else pooled, dtype=np.float32)


def token_embeddings(hidden: np.ndarray, mask: np.ndarray, normalize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-token (optionally L2-normalised) float32 vectors of one batch and their counts."""
    flat, counts = token_vectors(hidden, mask)
    return np.ascontiguousarray(l2_normalize(flat) if normalize else flat, dtype=np.float32), counts
