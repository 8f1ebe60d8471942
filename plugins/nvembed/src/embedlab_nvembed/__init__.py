"""embedlab-nvembed: NV-Embed's latent-attention pooling (Lee et al., 2024) as an embedlab-train
``pooling-head`` (``latent-attention``), trained over a frozen encoder's cached token states, and
the encoder preset ``nvembed`` (``frozen-head`` with that head)."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from embedlab_train import FrozenHeadEncoder, PoolingHead
from embedlab_transformers.config_fields import flag_field, int_at_least

import embedlab
from embedlab_nvembed.latent import LatentAttentionPooling

EMBEDLAB_API_VERSION = "1.1"
_optional_int = attrs.validators.optional(int_at_least(1))


class LatentAttentionHead(PoolingHead):
    """NV-Embed's latent attention layer + masked mean pooling over the last layer's tokens."""

    name = "latent-attention"
    features = "tokens"

    @attrs.frozen(kw_only=True)
    class Config:
        """``latents`` r (NV-Embed: 512), ``heads`` (8), ``head_dim`` (None: d / heads; NV-Embed
        uses d), ``mult`` of the GEGLU feed-forward (4), ``zero_init``: start at mean pooling."""

        latents: int = attrs.field(default=512, validator=int_at_least(1))
        heads: int = attrs.field(default=8, validator=int_at_least(1))
        head_dim: int | None = attrs.field(default=None, validator=_optional_int)
        mult: int = attrs.field(default=4, validator=int_at_least(1))
        zero_init: bool = flag_field(True)

    def module(self, dim: int, layers: int) -> torch.nn.Module:
        config = self.config
        if config.head_dim is None and dim % config.heads:
            raise embedlab.ConfigError(f"latent-attention: {config.heads} heads do not divide the model's {dim} "
                                       "dimensions; set head_dim")
        return LatentAttentionPooling(dim, latents=config.latents, heads=config.heads, head_dim=config.head_dim,
                                      mult=config.mult, zero_init=config.zero_init)


class NVEmbedEncoder(FrozenHeadEncoder):
    """``frozen-head`` with the ``latent-attention`` head by default (all-MiniLM-L6-v2 frozen)."""

    name = "nvembed"
    default_head: Any = "latent-attention"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``latent-attention`` head (kind ``pooling-head``, declared by embedlab-train)
    and the ``nvembed`` encoder."""
    registry.add("pooling-head", "latent-attention", LatentAttentionHead)
    registry.add("encoder", "nvembed", NVEmbedEncoder)


__all__ = ["EMBEDLAB_API_VERSION", "LatentAttentionHead", "LatentAttentionPooling", "NVEmbedEncoder",
           "embedlab_register"]
