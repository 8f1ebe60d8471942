"""The ``bebr`` compressor: recurrent binarisation codes scored by lookup tables (SDC or ADC)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

import embedlab
from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError, NotFittedError, StateError
from embedlab.persistence import load_state, save_state
from embedlab.threads import numba_threads, torch_threads
from embedlab_bebr import codes as layout
from embedlab_bebr import scan
from embedlab_bebr.model import RecurrentBinariser
from embedlab_bebr.training import train

_v = attrs.validators
_int = _v.instance_of(int)
_number = _v.instance_of((int, float))
#: Rows pushed through the network at once when encoding.
ENCODE_BLOCK = 8192
SCORINGS = ("sdc", "adc")
OBJECTIVES = ("nce", "similarity")
#: Largest input or code dimension a saved state may declare (checked before the network is built).
MAX_DIM = 1 << 16


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _multiple_of_8(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and value % 8:
        raise ValueError(f"{attribute.name} must be a multiple of 8 (codes are packed in bytes), "
                         f"got {value}")


def _even(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value % 2:
        raise ValueError(f"{attribute.name} must be even (half anchors, half their neighbours), got {value}")


@attrs.define
class _Fitted:
    input_dim: int
    code_dim: int
    model: RecurrentBinariser
    mean: np.ndarray  # (d,) subtracted before the network
    scale: np.ndarray  # (1,) divides the centred inputs
    decoder: np.ndarray  # (d, m): decode(code) = composite @ decoder.T + offset
    offset: np.ndarray  # (d,)
    history: list[float]


class BEBRCompressor(embedlab.Component):
    """Binary Embedding-based Retrieval (Gan et al., KDD 2023): ``bits_per_dim`` (= u + 1) loops
    of ``code_dim`` signs from a recurrent binarisation network trained on the float vectors
    alone, scored by symmetric distance calculation (queries binarised too) or asymmetrically.

    >>> bebr = BEBRCompressor(bits_per_dim=2, code_dim=384).fit(document_vectors)  # doctest: +SKIP
    >>> bebr.bytes_per_vector                                                    # doctest: +SKIP
    96.0
    """

    kind = "compressor"
    name = "bebr"

    @attrs.frozen
    class Config:
        """``bits_per_dim``: loops u + 1 (bits per code dimension); ``code_dim``: m, the signs per
        loop (None: the input dimension); ``hidden``: hidden sizes of every residual MLP block
        (empty: linear maps); ``scoring``: "sdc" (binarised queries) or "adc" (float queries
        against the linear decoding); ``objective`` ("nce": the paper's embedding-to-embedding
        contrastive loss, "similarity": ours), ``neighbours``, ``temperature``,
        ``reconstruction_weight`` and ``compatibility_weight`` (backward-compatible training):
        the training (see :mod:`embedlab_bebr.training`);
        ``num_threads``: torch intra-op threads while training and encoding (set, then restored;
        None: leave torch's setting)."""

        bits_per_dim: int = attrs.field(default=2, validator=[_int, _v.ge(1), _v.le(8)])
        code_dim: int | None = attrs.field(default=None, validator=_v.optional([_int, _v.ge(8), _multiple_of_8]))
        hidden: tuple[int, ...] = attrs.field(
            default=(), converter=_as_tuple,
            validator=_v.deep_iterable(_v.and_(_int, _v.ge(1)), _v.instance_of(tuple)))
        epochs: int = attrs.field(default=20, validator=[_int, _v.ge(1)])
        lr: float = attrs.field(default=3e-3, validator=[_number, _v.gt(0)])
        batch_size: int = attrs.field(default=256, validator=[_int, _v.ge(2), _even])
        neighbours: int = attrs.field(default=10, validator=[_int, _v.ge(1)])
        seed: int = attrs.field(default=0, validator=[_int, _v.ge(0)])
        temperature: float = attrs.field(default=0.1, validator=[_number, _v.gt(0)])
        reconstruction_weight: float = attrs.field(default=1.0, validator=[_number, _v.ge(0)])
        objective: str = attrs.field(default="similarity", validator=_v.in_(OBJECTIVES))
        compatibility_weight: float = attrs.field(default=1.0, validator=[_number, _v.ge(0)])
        scoring: str = attrs.field(default="sdc", validator=_v.in_(SCORINGS))
        num_threads: int | None = attrs.field(default=None, validator=_v.optional([_int, _v.ge(1)]))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._fitted: _Fitted | None = None

    # -- fitting --------------------------------------------------------------------------

    def fit(self, vectors: np.ndarray, *, compatible_with: BEBRCompressor | None = None,
            old_vectors: np.ndarray | None = None) -> BEBRCompressor:
        """Train the binariser on ``vectors`` (no labels). Ctrl-C stops training and leaves the
        compressor as it was before this call.

        Backward-compatible training (the paper's model upgrade without re-indexing):
        ``compatible_with`` is the fitted binariser of the old embedding model and ``old_vectors``
        the old model's embeddings of the same items, row for row. The new codes are then trained
        to score (symmetric scoring) against the old codes as they score against each other, so new
        queries can search an index of old codes; both need the same ``bits_per_dim`` and code size."""
        config = self.config
        x = as_dense(vectors, name="bebr fit vectors")
        n, dim = x.shape
        if n < config.batch_size:
            raise InvalidInputError(
                f"bebr: training needs at least batch_size={config.batch_size} fit vectors (one full "
                f"batch of in-batch neighbours), got {n}; fit on at least {config.batch_size} vectors "
                "or lower batch_size")
        code_dim = config.code_dim if config.code_dim is not None else dim
        if code_dim % 8:
            raise InvalidInputError(f"bebr: the input dimension {dim} is not a multiple of 8; set "
                                    "code_dim to a multiple of 8")
        old = None if compatible_with is None and old_vectors is None else \
            self._old_composites(compatible_with, old_vectors, n, code_dim)
        mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        scale = np.asarray([np.sqrt(np.mean((x - mean) ** 2)) or 1.0], np.float32)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        unit = torch.from_numpy(x / np.where(norms > 0, norms, 1))
        inputs = torch.from_numpy((x - mean) / scale)
        with torch.random.fork_rng(devices=[]), torch_threads(config.num_threads):
            torch.manual_seed(config.seed)
            model = RecurrentBinariser(dim, code_dim, config.bits_per_dim, config.hidden)
            generator = torch.Generator().manual_seed(config.seed)
            history = train(model, inputs, unit, config, layout.composite_norm2(config.bits_per_dim, code_dim),
                            generator, desc=f"bebr {config.bits_per_dim}x{code_dim} bits", old=old)
        self._fitted = self._assemble(dim, code_dim, model, mean, scale, history)
        return self

    def _old_composites(self, old: BEBRCompressor | None, old_vectors: np.ndarray | None, n: int,
                        code_dim: int) -> torch.Tensor:
        """Composites of the old binariser's codes of ``old_vectors``, checked against this config."""
        if old is None or old_vectors is None:
            raise InvalidInputError("bebr: backward-compatible training needs both compatible_with (the old "
                                    "fitted binariser) and old_vectors (the old model's embeddings of the "
                                    "same items)")
        if not isinstance(old, BEBRCompressor):
            raise InvalidInputError(f"bebr: compatible_with must be a fitted bebr compressor, got "
                                    f"{type(old).__name__}")
        if (old.config.bits_per_dim, old.code_dim) != (self.config.bits_per_dim, code_dim):
            raise InvalidInputError(
                f"bebr: old codes have {old.config.bits_per_dim} bit(s) x {old.code_dim} dimensions, this "
                f"binariser makes {self.config.bits_per_dim} x {code_dim}: compatible codes need the same layout")
        reference = as_dense(old_vectors, name="bebr old_vectors")
        if len(reference) != n:
            raise InvalidInputError(f"bebr: {len(reference)} old_vectors for {n} fit vectors; give the old "
                                    "model's embedding of every fit item, in the same order")
        return torch.from_numpy(old.composite(old.encode(reference)))

    @staticmethod
    def _assemble(dim: int, code_dim: int, model: RecurrentBinariser, mean: np.ndarray, scale: np.ndarray,
                  history: list[float]) -> _Fitted:
        weight = model.output.weight.detach().numpy()
        bias = model.output.bias.detach().numpy()
        decoder = np.ascontiguousarray(scale[0] * weight, dtype=np.float32)
        offset = (scale[0] * bias + mean).astype(np.float32)
        return _Fitted(dim, code_dim, model, mean, scale, decoder, offset, history)

    def _state(self) -> _Fitted:
        if self._fitted is None:
            raise NotFittedError("bebr: call fit(vectors) first")
        return self._fitted

    @property
    def loss_history(self) -> list[float]:
        """Mean training loss of every epoch of the last fit."""
        return list(self._state().history)

    @property
    def code_dim(self) -> int:
        return self._state().code_dim

    @property
    def bytes_per_vector(self) -> float:
        """Bytes of one code: ``bits_per_dim * code_dim / 8`` (exact)."""
        return float(layout.code_bytes(self.config.bits_per_dim, self._state().code_dim))

    # -- codes ----------------------------------------------------------------------------

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, d)`` vectors (any float dtype or layout) to ``(n, bits_per_dim * code_dim / 8)``
        uint8 codes (bit planes, loop 0 first; see :mod:`embedlab_bebr.codes`)."""
        state = self._state()
        x = as_dense(vectors, dim=state.input_dim, name="bebr vectors", allow_empty=True)
        planes = []
        with torch.inference_mode(), torch_threads(self.config.num_threads):
            for start in range(0, len(x), ENCODE_BLOCK):
                block = torch.from_numpy((x[start:start + ENCODE_BLOCK] - state.mean) / state.scale)
                signs, _ = state.model(block)
                planes.append(layout.pack(torch.stack(signs).numpy()))
        if not planes:
            return np.zeros((0, int(self.bytes_per_vector)), np.uint8)
        return np.concatenate(planes)

    def check_codes(self, codes: object) -> np.ndarray:
        """``codes`` of this compressor (dtype and width), or InvalidInputError."""
        return layout.check_codes(codes, self.config.bits_per_dim, self._state().code_dim, "bebr")

    def composite(self, codes: np.ndarray) -> np.ndarray:
        """``(n, code_dim)`` float32 composite vectors ``sum_t 2**-t s_t`` of the codes."""
        return layout.composite(self.check_codes(codes), self.config.bits_per_dim, self._state().code_dim)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes to ``(n, d)`` float32 reconstructions (the linear output decoder)."""
        state = self._state()
        return (self.composite(codes) @ state.decoder.T + state.offset).astype(np.float32)

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``(n_queries, n_codes)`` similarities, without decoding.

        ``scoring="sdc"``: the queries are binarised too and the score is
        ``composite(q) . composite(d) / (code_dim * sum_t 4**-t)`` (1 for identical 1-bit codes),
        by popcounts of the XORed bit planes when ``code_dim`` is a multiple of 64, else by tables.
        ``scoring="adc"``: ``q . decode(d)`` exactly, with float queries. Both are compiled scans
        (:mod:`embedlab_bebr.scan`) on ``num_threads`` numba threads.
        """
        state = self._state()
        q = as_dense(queries, dim=state.input_dim, name="bebr queries", allow_empty=True)
        codes = self.check_codes(codes)
        if self.config.scoring == "adc":
            with numba_threads(self.config.num_threads):
                return scan.adc_scores(q @ state.decoder, codes, self.config.bits_per_dim) + (q @ state.offset)[:, None]
        return self.score_codes(self.encode(q), codes)

    def score_codes(self, query_codes: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """SDC scores of queries that are already codes (``encode`` of this or of a compatible
        binariser) against codes, normalised as :meth:`score` normalises them."""
        levels, m = self.config.bits_per_dim, self._state().code_dim
        query_codes, codes = self.check_codes(query_codes), self.check_codes(codes)
        norm2 = layout.composite_norm2(levels, m)
        with numba_threads(self.config.num_threads):
            if m % 64 == 0:
                return scan.sdc_scores(query_codes, codes, levels, m) / np.float32(norm2)
            return scan.adc_scores(self.composite(query_codes) / norm2, codes, levels)

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the config, the network weights (``model.*.npy``) and the input standardisation
        with embedlab.persistence (no pickle)."""
        state = self._state()
        arrays = {f"model.{k}": v.detach().numpy() for k, v in state.model.state_dict().items()}
        arrays.update({"mean": state.mean, "scale": state.scale})
        save_state(path, self, arrays=arrays, meta={"input_dim": state.input_dim, "code_dim": state.code_dim,
                                                    "bytes_per_vector": self.bytes_per_vector,
                                                    "loss_history": state.history})

    @classmethod
    def load(cls, path: str | Path) -> BEBRCompressor:
        """Read a compressor written by :meth:`save`; the state of any other component, or arrays
        that do not fit the saved configuration, raise StateError."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        compressor = state.build(cls)
        config = compressor.config
        input_dim = state.value("input_dim", int, minimum=1, maximum=MAX_DIM)
        code_dim = state.value("code_dim", int, minimum=1, maximum=MAX_DIM)
        mean = np.array(state.array("mean", kinds="f", shape=(input_dim,), finite=True), dtype=np.float32)
        scale = np.array(state.array("scale", kinds="f", shape=(1,), finite=True), dtype=np.float32)
        model = RecurrentBinariser(input_dim, code_dim, config.bits_per_dim, config.hidden)
        expected = model.state_dict()
        saved = {k[len("model."):] for k in state.arrays if k.startswith("model.")}
        if saved != set(expected):
            raise StateError(f"{path}: saved arrays do not match a bebr network with the saved "
                             f"configuration (bits_per_dim={config.bits_per_dim}, code_dim={code_dim}, "
                             f"hidden={config.hidden})")
        weights = {key: state.array(f"model.{key}", kinds="f" if tensor.is_floating_point() else "iu",
                                    shape=tuple(tensor.shape), finite=True)
                   for key, tensor in expected.items()}
        model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=expected[k].numpy().dtype))
                               for k, v in weights.items()})
        model.eval()
        compressor._fitted = cls._assemble(input_dim, code_dim, model, mean, scale, state.numbers("loss_history"))
        return compressor
