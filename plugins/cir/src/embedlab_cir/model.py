"""The multimodal encoder: a small CNN turns an image into a grid of visual tokens, a two-layer MLP
turns a frozen sentence embedding (MiniLM) into a text token, and a small transformer reads an
``[EMB]`` token followed by whichever tokens an input has (image, text, or both) and returns the
``[EMB]`` output, projected and L2-normalised. One network embeds images, texts and composed
queries into one space, the miniature of the paper's MLLM embedder.
"""

from __future__ import annotations

import torch
from torch import nn


class ImageTokens(nn.Module):
    """``(n, c, s, s)`` pixels in [0, 1] -> ``(n, (s / 8)^2, width)`` visual tokens."""

    def __init__(self, channels: int, width: int, image_size: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.GELU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(64, 96, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(96, width, 3, stride=2, padding=1),
        )
        grid = (image_size + 7) // 8
        self.position = nn.Parameter(torch.randn(1, grid * grid, width) * 0.02)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.net(pixels * 2 - 1)
        return features.flatten(2).transpose(1, 2) + self.position


class JointEncoder(nn.Module):
    """``[EMB]`` + visual tokens + text token -> one normalised embedding."""

    def __init__(self, *, text_dim: int, channels: int = 3, image_size: int = 32, width: int = 128,
                 layers: int = 2, heads: int = 4, dim: int = 128) -> None:
        super().__init__()
        self.image = ImageTokens(channels, width, image_size)
        self.text = nn.Sequential(nn.Linear(text_dim, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.cls = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.types = nn.Parameter(torch.randn(2, width) * 0.02)  # image, text
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, dim)

    def forward(self, pixels: torch.Tensor | None = None, text: torch.Tensor | None = None) -> torch.Tensor:
        """Embed images (``pixels``), texts (``text``: sentence vectors) or both (composed)."""
        parts = []
        if pixels is not None:
            parts.append(self.image(pixels) + self.types[0])
        if text is not None:
            parts.append(self.text(text).unsqueeze(1) + self.types[1])
        if not parts:
            raise ValueError("JointEncoder needs pixels, text or both")
        tokens = torch.cat([self.cls.expand(parts[0].shape[0], -1, -1), *parts], dim=1)
        out = self.norm(self.blocks(tokens)[:, 0])
        return nn.functional.normalize(self.head(out), dim=1)
