"""embedlab-mltp: poolers over all hidden layers of a frozen encoder, as embedlab-train
``pooling-head`` components: ``layer`` (one layer), ``layer-mean``, ``scalar-mix`` (ELMo) and
``mltp`` (multi-layers trainable pooling, Tang & Yang 2024), plus the encoder ``mltp``
(``frozen-head`` with the ``mltp`` head)."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from embedlab_train import FrozenHeadEncoder, PoolingHead
from embedlab_transformers.config_fields import flag_field, int_at_least

import embedlab
from embedlab_mltp.poolers import LayerMean, MultiLayerTrainablePooling, OneLayer, ScalarMix

EMBEDLAB_API_VERSION = "1.1"


def _open_unit(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1):
        raise ValueError(f"{attribute.name} must be None or in (0, 1), got {value!r}")


class LayersHead(PoolingHead):
    """A head over the per-layer means (``features = "layers"``)."""

    features = "layers"


class OneLayerHead(LayersHead):
    """No parameters: the mean of one hidden state (``layer``: 0 = embedding layer, ``L`` or -1 = last)."""

    name = "layer"

    @attrs.frozen(kw_only=True)
    class Config:
        """``layer``: which hidden state, 0..L or -1..-(L + 1) (default -1: the last)."""

        layer: int = attrs.field(default=-1, validator=attrs.validators.instance_of(int))

    def module(self, dim: int, layers: int) -> torch.nn.Module:
        if not -(layers + 1) <= self.config.layer <= layers:
            raise embedlab.ConfigError(f"layer: layer={self.config.layer} is outside the model's hidden states "
                                       f"0..{layers} (0 = embeddings, -1 = last)")
        return OneLayer(self.config.layer)


class LayerMeanHead(LayersHead):
    """No parameters: the uniform mean of the transformer layers' means."""

    name = "layer-mean"

    def module(self, dim: int, layers: int) -> torch.nn.Module:
        return LayerMean()


class ScalarMixHead(LayersHead):
    """ELMo's scalar mix of the transformer layers (``L + 1`` parameters)."""

    name = "scalar-mix"

    @attrs.frozen(kw_only=True)
    class Config:
        """``last_weight``: None (ELMo: start at the uniform mean) or the last layer's initial weight in (0, 1)."""

        last_weight: float | None = attrs.field(default=None, validator=_open_unit)

    def module(self, dim: int, layers: int) -> torch.nn.Module:
        return ScalarMix(layers, self.config.last_weight)


class MLTPHead(LayersHead):
    """Multi-layers trainable pooling (MLTP)."""

    name = "mltp"

    @attrs.frozen(kw_only=True)
    class Config:
        """``latents`` r (16; the paper's Mistral setting: 768), ``heads`` (6; paper 32), ``head_dim``
        (64; paper 2048), ``mult`` of the GEGLU feed-forward (4), ``residual``: output
        ``m_L + W_out mean_r(Z)`` with ``W_out`` zero at init (ours; False: the paper's ``mean_r(Z)``)."""

        latents: int = attrs.field(default=16, validator=int_at_least(1))
        heads: int = attrs.field(default=6, validator=int_at_least(1))
        head_dim: int = attrs.field(default=64, validator=int_at_least(1))
        mult: int = attrs.field(default=4, validator=int_at_least(1))
        residual: bool = flag_field(True)

    def module(self, dim: int, layers: int) -> torch.nn.Module:
        c = self.config
        return MultiLayerTrainablePooling(dim, layers, latents=c.latents, heads=c.heads, head_dim=c.head_dim,
                                          mult=c.mult, residual=c.residual)


class MLTPEncoder(FrozenHeadEncoder):
    """``frozen-head`` with the ``mltp`` head by default (all-MiniLM-L6-v2 frozen)."""

    name = "mltp"
    default_head: Any = "mltp"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the heads ``layer``, ``layer-mean``, ``scalar-mix``, ``mltp`` (kind ``pooling-head``,
    declared by embedlab-train) and the encoder ``mltp``."""
    for head in (OneLayerHead, LayerMeanHead, ScalarMixHead, MLTPHead):
        registry.add("pooling-head", head.name, head)
    registry.add("encoder", "mltp", MLTPEncoder)


__all__ = ["EMBEDLAB_API_VERSION", "LayerMean", "LayerMeanHead", "MLTPEncoder", "MLTPHead",
           "MultiLayerTrainablePooling", "OneLayer", "OneLayerHead", "ScalarMix", "ScalarMixHead", "embedlab_register"]
