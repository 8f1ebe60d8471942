"""embedlab-randproj: an example third-party embedlab plugin (Gaussian random projection).

Written only against embedlab's public API, as any outside plugin would be.
"""

from __future__ import annotations

import embedlab
from embedlab_randproj.randproj import RandomProjection, jl_min_dim

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``randproj`` compressor."""
    registry.add("compressor", "randproj", RandomProjection)


__all__ = ["EMBEDLAB_API_VERSION", "RandomProjection", "embedlab_register", "jl_min_dim"]
