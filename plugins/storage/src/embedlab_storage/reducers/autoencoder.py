"""A seeded PyTorch MLP autoencoder (optional: ``pip install 'embedlab-storage[autoencoder]'``)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from tqdm.auto import tqdm

from embedlab.errors import StateError
from embedlab.threads import torch_threads
from embedlab_storage.reducers.base import Reducer, import_optional, row_blocks


def import_torch() -> Any:
    """The ``torch`` module, or a ConfigError naming the extra to install."""
    return import_optional("torch", "ae", "PyTorch", "autoencoder")


class Autoencoder(Reducer):
    """MLP encoder ``d -> hidden... -> k`` and mirrored decoder, ReLU, MSE loss, Adam (the
    paper's defaults: hidden (512, 256), 10 epochs, lr 1e-3, batch 64).

    Inputs are centred and divided by their overall standard deviation first (unit-norm
    embeddings have entries near 0.05, which makes the raw MSE tiny). Weights are initialised and
    batches shuffled from ``seed`` (the global torch RNG is left as it was); training runs on one
    thread. Ctrl-C during training leaves the reducer (and the compressor) as they were before
    ``fit``.
    """

    method = "ae"

    def __init__(self, input_dim: int, output_dim: int, seed: int, *, hidden: tuple[int, ...] = (512, 256),
                 epochs: int = 10, lr: float = 1e-3, batch_size: int = 64) -> None:
        super().__init__(input_dim, output_dim, seed)
        self.hidden, self.epochs, self.lr, self.batch_size = hidden, epochs, lr, batch_size
        self.networks: tuple[Any, Any] | None = None

    def _build(self, torch: Any) -> tuple[Any, Any]:
        def mlp(sizes: list[int]) -> Any:
            layers: list[Any] = []
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                layers.append(torch.nn.Linear(a, b))
                if i < len(sizes) - 2:
                    layers.append(torch.nn.ReLU())
            return torch.nn.Sequential(*layers)

        sizes = [self.input_dim, *self.hidden, self.output_dim]
        return mlp(sizes), mlp(sizes[::-1])

    def fit(self, vectors: np.ndarray) -> None:
        torch = import_torch()
        mean = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
        scale = np.asarray([np.std(vectors - mean) or 1.0], np.float32)
        data = torch.from_numpy(np.ascontiguousarray((vectors - mean) / scale, dtype=np.float32))
        # Batches of 64 rows gain nothing from intra-op threads (measured 3x slower with 2 threads
        # on 2 cores), and one thread makes the trained weights independent of the caller's setting.
        with torch_threads(1), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            encoder, decoder = self._build(torch)
            order = torch.Generator().manual_seed(self.seed)
            self._train(torch, encoder, decoder, data, order)
        encoder.eval()
        decoder.eval()
        self.networks, self.mean, self.scale = (encoder, decoder), mean, scale

    def _train(self, torch: Any, encoder: Any, decoder: Any, data: Any, order: Any) -> None:
        optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=self.lr)
        batches = -(-len(data) // self.batch_size)
        bar = tqdm(total=self.epochs * batches, desc=f"ae {self.input_dim}->{self.output_dim}",
                   unit="batch", disable=None)
        epoch = 0
        try:
            for epoch in range(self.epochs):
                permutation = torch.randperm(len(data), generator=order)
                for start in range(0, len(data), self.batch_size):
                    batch = data[permutation[start:start + self.batch_size]]
                    loss = torch.nn.functional.mse_loss(decoder(encoder(batch)), batch)
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    bar.update()
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}", refresh=False)
        except KeyboardInterrupt:
            bar.write(f"ae: training interrupted in epoch {epoch + 1}/{self.epochs}; nothing was fitted")
            raise
        finally:
            bar.close()

    def _run(self, network: Any, values: np.ndarray) -> np.ndarray:
        torch = import_torch()
        out = np.empty((len(values), network[-1].out_features), np.float32)
        with torch.no_grad():
            for rows in row_blocks(len(values), 65536):
                out[rows] = network(torch.from_numpy(np.ascontiguousarray(values[rows]))).numpy()
        return out

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        assert self.networks is not None
        return self._run(self.networks[0], (vectors - self.mean) / self.scale)

    @property
    def linear_decoder(self) -> None:
        return None

    def inverse(self, reduced: np.ndarray) -> np.ndarray:
        assert self.networks is not None
        return self._run(self.networks[1], np.asarray(reduced, np.float32)) * self.scale + self.mean

    def shapes(self) -> dict[str, tuple[int | str, ...]]:
        sizes = [self.input_dim, *self.hidden, self.output_dim]
        shapes: dict[str, tuple[int | str, ...]] = {"mean": (self.input_dim,), "scale": (1,)}
        for prefix, chain in (("encoder", sizes), ("decoder", sizes[::-1])):
            for i, (a, b) in enumerate(zip(chain[:-1], chain[1:])):  # Linear layers sit at 0, 2, 4...
                shapes[f"{prefix}.{2 * i}.weight"] = (b, a)
                shapes[f"{prefix}.{2 * i}.bias"] = (b,)
        return shapes

    def state(self) -> dict[str, np.ndarray]:
        assert self.networks is not None
        arrays = {"mean": self.mean, "scale": self.scale}
        for prefix, network in zip(("encoder.", "decoder."), self.networks):
            arrays.update({prefix + k: v.numpy().copy() for k, v in network.state_dict().items()})
        return arrays

    def restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        torch = import_torch()
        shapes = self.shapes()
        for name, shape in shapes.items():
            if tuple(np.shape(arrays[name])) != shape:
                raise StateError(f"ae state: {name} has shape {np.shape(arrays[name])}, expected {shape}")
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten below
            encoder, decoder = self._build(torch)
        for prefix, network in (("encoder.", encoder), ("decoder.", decoder)):
            network.load_state_dict({name[len(prefix):]: torch.from_numpy(np.array(arrays[name], np.float32))
                                     for name in shapes if name.startswith(prefix)})
            network.eval()
        self.networks = (encoder, decoder)
        self.mean = np.asarray(arrays["mean"], np.float32)
        self.scale = np.asarray(arrays["scale"], np.float32)
