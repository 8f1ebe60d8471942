"""CTR models around a pluggable embedding table: DLRM, DeepFM and FM.

* ``dlrm`` (Naumov et al. 2019, the benchmark's main model): a bottom MLP maps the dense features
  to ``dim``; the pairwise dot products of that vector and the field embeddings, concatenated with
  it, feed a top MLP.
* ``deepfm`` (Guo et al. 2017) as the benchmark's code builds it: coordinate 0 of each embedding is
  the field's first-order weight, coordinates 1.. feed the second-order FM term and a DNN (which
  also gets the dense features here); dense features have a linear term.
* ``fm``: the first- and second-order terms only.

No separate first-order table exists, so the embedding table is every per-feature parameter and
its bytes are the model's memory that scales with the vocabulary.
"""

from __future__ import annotations

from typing import Sequence

import attrs
import torch

from embedlab_tables.table import EmbeddingTable

_v = attrs.validators
MODELS = ("dlrm", "deepfm", "fm")


def _layers(_: object, attribute: attrs.Attribute, value: tuple[int, ...]) -> None:
    if any(not isinstance(v, int) or v < 1 for v in value):
        raise ValueError(f"{attribute.name} must be layer widths >= 1, got {value!r}")


@attrs.frozen
class ModelConfig:
    """Architecture: ``kind`` (dlrm, deepfm, fm), embedding ``dim``, MLP widths."""

    kind: str = attrs.field(default="dlrm", validator=_v.in_(MODELS))
    dim: int = attrs.field(default=16, validator=[_v.instance_of(int), _v.ge(2)])
    bottom: tuple[int, ...] = attrs.field(default=(64,), converter=tuple, validator=_layers)
    top: tuple[int, ...] = attrs.field(default=(128, 64), converter=tuple, validator=_layers)
    deep: tuple[int, ...] = attrs.field(default=(128, 64), converter=tuple, validator=_layers)


def mlp(widths: Sequence[int], last_activation: bool) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(widths) - 2 or last_activation:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


class CTRModel(torch.nn.Module):
    """``forward(ids, dense) -> logits``: ids are global feature ids ``(batch, fields)``."""

    def __init__(self, table: EmbeddingTable, n_dense: int, config: ModelConfig, seed: int) -> None:
        super().__init__()
        self.table = table
        self.config = config
        self.n_fields = table.schema.n_fields
        self.n_dense = n_dense
        dim = config.dim
        if table.dim != dim:
            raise ValueError(f"table dimension {table.dim} differs from the model's {dim}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if config.kind == "dlrm":
                vectors = self.n_fields + (1 if n_dense else 0)
                self.bottom = mlp((n_dense, *config.bottom, dim), last_activation=True) if n_dense else None
                pairs = vectors * (vectors - 1) // 2
                self.top = mlp((pairs + (dim if n_dense else 0), *config.top, 1), last_activation=False)
                rows, cols = torch.tril_indices(vectors, vectors, offset=-1)
                self.register_buffer("rows", rows, persistent=False)
                self.register_buffer("cols", cols, persistent=False)
            else:
                self.linear = torch.nn.Linear(n_dense, 1) if n_dense else None
                self.bias = torch.nn.Parameter(torch.zeros(1))
                if config.kind == "deepfm":
                    self.deep = mlp((self.n_fields * (dim - 1) + n_dense, *config.deep, 1), last_activation=False)

    def forward(self, ids: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        embeddings = self.table(ids)
        return self.head(embeddings, dense)

    def head(self, embeddings: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """Logits from the table's output ``(batch, fields, dim)`` and the dense features."""
        if self.config.kind == "dlrm":
            return self._dlrm(embeddings, dense)
        return self._fm(embeddings, dense)

    def _dlrm(self, embeddings: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        if self.bottom is not None:
            bottom = self.bottom(dense)
            vectors = torch.cat([bottom.unsqueeze(1), embeddings], dim=1)
        else:
            vectors = embeddings
        products = torch.bmm(vectors, vectors.transpose(1, 2))[:, self.rows, self.cols]
        features = torch.cat([bottom, products], dim=1) if self.bottom is not None else products
        return self.top(features).squeeze(1)

    def _fm(self, embeddings: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        first = embeddings[:, :, 0].sum(dim=1) + self.bias
        if self.linear is not None:
            first = first + self.linear(dense).squeeze(1)
        latent = embeddings[:, :, 1:]
        second = 0.5 * (latent.sum(dim=1).pow(2) - latent.pow(2).sum(dim=1)).sum(dim=1)
        logits = first + second
        if self.config.kind == "deepfm":
            deep_in = latent.reshape(latent.shape[0], -1)
            if self.n_dense:
                deep_in = torch.cat([deep_in, dense], dim=1)
            logits = logits + self.deep(deep_in).squeeze(1)
        return logits

    def network_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters outside the embedding table."""
        table = {id(p) for p in self.table.parameters()}
        return [p for p in self.parameters() if id(p) not in table]
