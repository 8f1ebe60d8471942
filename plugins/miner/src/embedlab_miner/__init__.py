"""embedlab-miner: MINER-style retrieval-aligned layer probing and adaptive sparse multi-layer fusion
over a frozen encoder (a reconstruction from the paper's abstract: see the README).

Registers the ``pooling-head`` components ``layer-probe`` (a linear probe of one layer's mean) and
``miner-fusion`` (the fused head), and the encoder ``miner``: it trains one probe per transformer
layer (base and normalised-projection probes), scores each by its held-out nDCG@10 on training
queries, keeps the top-``k`` layers and the most important dimensions of each, and then trains the
fusion (probes, layer weights, global bias) through embedlab-train's loop."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from embedlab_train import FrozenHeadEncoder, PoolingHead, TrainingSet
from embedlab_transformers.config_fields import flag_field, int_at_least

import embedlab
from embedlab_miner.fusion import LayerProbe, SparseLayerFusion, keep_ratios, neuron_masks, select_layers

EMBEDLAB_API_VERSION = "1.1"
PROBES = ("base", "normalized", "both")
logger = logging.getLogger(__name__)


def _ratio(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{attribute.name} must be in (0, 1], got {value!r}")


class LayerProbeHead(PoolingHead):
    """A linear probe of one layer's mean, starting at the identity (MINER's probing stage)."""

    name = "layer-probe"
    features = "layers"

    @attrs.frozen(kw_only=True)
    class Config:
        """``layer``: hidden state 1..L (-1: the last); ``normalized``: probe ``W LN(x)`` instead of ``W x``."""

        layer: int = attrs.field(default=-1, validator=attrs.validators.instance_of(int))
        normalized: bool = flag_field(False)

    def module(self, dim: int, layers: int) -> torch.nn.Module:
        if not (1 <= self.config.layer <= layers or -layers <= self.config.layer <= -1):
            raise embedlab.ConfigError(f"layer-probe: layer={self.config.layer} is not a transformer layer "
                                       f"(1..{layers}, or -1 for the last)")
        return LayerProbe(dim, self.config.layer, self.config.normalized)


class FusionHead(PoolingHead):
    """MINER's fused head (fresh: the last layer's identity probe, i.e. mean pooling)."""

    name = "miner-fusion"
    features = "layers"

    def module(self, dim: int, layers: int) -> torch.nn.Module:
        return SparseLayerFusion(dim, layers)


@attrs.frozen
class Probing:
    """The probing stage's outcome over transformer layers ``1..L`` (index ``l - 1``)."""

    scores: np.ndarray
    normalized: np.ndarray
    probes: np.ndarray
    selected: np.ndarray
    ratios: np.ndarray
    masks: np.ndarray

    def as_record(self) -> dict[str, Any]:
        return {"layer_scores": self.scores.tolist(), "normalized": self.normalized.astype(bool).tolist(),
                "selected_layers": (self.selected + 1).tolist(), "keep_ratios": self.ratios.tolist(),
                "kept_dims": self.masks.sum(1).astype(int).tolist()}


class MinerEncoder(FrozenHeadEncoder):
    """Frozen all-MiniLM-L6-v2 with MINER's probing and sparse multi-layer fusion (``LearnsFromQueries``)."""

    name = "miner"
    default_head: Any = "miner-fusion"

    @attrs.frozen(kw_only=True)
    class Config(FrozenHeadEncoder.Config):
        """``frozen-head``'s parameters plus ``top_layers`` k (3), ``rho_min`` (0.25) and ``rho_max``
        (1.0): the keep-ratio range of the neuron masks, and ``probes``: which probe kinds are trained
        per layer (``base``, ``normalized`` or ``both``: the better on held-out queries is kept)."""

        top_layers: int = attrs.field(default=3, validator=int_at_least(1))
        rho_min: float = attrs.field(default=0.25, validator=_ratio)
        rho_max: float = attrs.field(default=1.0, validator=_ratio)
        probes: str = attrs.field(default="both", validator=attrs.validators.in_(PROBES))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        if self.head.name != "miner-fusion":
            raise embedlab.ConfigError(f"miner: the head is MINER's fusion; got head {self.head.name!r}")
        if self.config.rho_min > self.config.rho_max:
            raise embedlab.ConfigError(f"miner: rho_min={self.config.rho_min} exceeds rho_max={self.config.rho_max}")
        if self.config.validation_fraction == 0:
            raise embedlab.ConfigError("miner: layers are scored on held-out training queries; "
                                       "set validation_fraction > 0")
        self.probing: Probing | None = None

    def probe_encoder(self, layer: int, normalized: bool) -> FrozenHeadEncoder:
        """The ``frozen-head`` encoder that trains the probe of ``layer`` with this encoder's settings
        (a ``checkpoint_dir`` path gets one sub-folder per probe run: runs never share a folder)."""
        own = {f.name: getattr(self.config, f.name) for f in attrs.fields(FrozenHeadEncoder.Config)}
        if own["checkpoint_dir"] not in (None, "auto"):
            kind = "normalized" if normalized else "base"
            own["checkpoint_dir"] = str(Path(own["checkpoint_dir"]) / f"probe-layer{layer}-{kind}")
        return FrozenHeadEncoder(**{**own, "head": {"name": "layer-probe", "layer": layer, "normalized": normalized}})

    def probe(self, data: TrainingSet) -> Probing:
        """Train every layer's probes; select layers and dimensions (MINER's first stage)."""
        layers, dim = self.frozen.layers, self.frozen.dim
        kinds = {"base": (False,), "normalized": (True,), "both": (False, True)}[self.config.probes]
        scores, normalized = np.full(layers, -np.inf), np.zeros(layers)
        probes = np.zeros((layers, dim, dim), dtype=np.float32)
        for layer in range(1, layers + 1):
            for kind in kinds:
                encoder = self.probe_encoder(layer, kind).train(data)
                score = max(encoder.training_record.get("validation_ndcg10") or [float("nan")])
                logger.info("miner: layer %d %s probe: held-out nDCG@10 %.4f", layer,
                            "normalized" if kind else "base", score)
                if score > scores[layer - 1]:
                    scores[layer - 1], normalized[layer - 1] = score, float(kind)
                    probes[layer - 1] = encoder.module.linear.weight.detach().numpy()
        selected = select_layers(scores, self.config.top_layers)
        ratios = keep_ratios(scores, self.config.rho_min, self.config.rho_max)
        return Probing(scores, normalized, probes, selected, ratios, neuron_masks(probes, ratios))

    def prepare_student(self, student: Any, data: TrainingSet) -> None:
        super().prepare_student(student, data)
        self.probing = self.probe(data)
        student.model.configure(self.probing.probes, self.probing.normalized, self.probing.scores,
                                self.probing.selected, self.probing.masks)

    def layer_report(self) -> dict[str, Any]:
        """What the probing stage chose, read from the (trained or loaded) fusion's buffers."""
        module = self.module
        return {"layer_scores": module.scores.tolist(), "selected_layers": (torch.nonzero(module.selected).flatten()
                                                                            + 1).tolist(),
                "layer_weights": (module.layer_weights * module.selected).tolist(),
                "kept_dims": module.masks.sum(1).int().tolist(), "normalized": module.normalized.bool().tolist()}


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the heads ``layer-probe`` and ``miner-fusion`` (kind ``pooling-head``, declared by
    embedlab-train) and the encoder ``miner``."""
    registry.add("pooling-head", "layer-probe", LayerProbeHead)
    registry.add("pooling-head", "miner-fusion", FusionHead)
    registry.add("encoder", "miner", MinerEncoder)


__all__ = ["EMBEDLAB_API_VERSION", "FusionHead", "LayerProbe", "LayerProbeHead", "MinerEncoder", "Probing",
           "SparseLayerFusion", "embedlab_register", "keep_ratios", "neuron_masks", "select_layers"]
