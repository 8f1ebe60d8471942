"""embedlab-longembed: LongEmbed (Zhu et al., 2024) for embedlab.

Registers the datasets ``longembed-passkey`` and ``longembed-needle`` (the paper's synthetic tasks,
generated at any length, :mod:`embedlab_longembed.synthetic`) and the encoder ``longembed``
(all-MiniLM-L6-v2 with a training-free context extension, :mod:`embedlab_longembed.encoder`).
torch is imported only when the encoder runs.
"""

from __future__ import annotations

import embedlab
from embedlab_longembed.encoder import METHODS, LongEmbedEncoder
from embedlab_longembed.synthetic import LENGTHS, needle, passkey

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``longembed`` encoder and the ``longembed-passkey``/``longembed-needle`` datasets."""
    registry.add("encoder", "longembed", LongEmbedEncoder)
    registry.add("dataset", "longembed-passkey", passkey)
    registry.add("dataset", "longembed-needle", needle)


__all__ = ["EMBEDLAB_API_VERSION", "LENGTHS", "METHODS", "LongEmbedEncoder", "embedlab_register", "needle",
           "passkey"]
