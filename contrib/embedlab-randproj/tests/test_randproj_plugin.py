"""The installed plugin is discovered through its entry point, like any third-party plugin."""

from __future__ import annotations

import numpy as np
from embedlab_randproj import RandomProjection

import embedlab


def test_plugin_is_discovered_and_loaded() -> None:
    host = embedlab.plugin_host(reload=True)
    info = {plugin.name: plugin for plugin in host.plugins}.get("randproj")
    assert info is not None, "entry point not found: pip install ./contrib/embedlab-randproj"
    assert info.status == "loaded", info.error
    assert info.distribution == "embedlab-randproj"
    assert info.components == {"compressor": ["randproj"]}


def test_create_by_name_satisfies_the_compressor_protocols(tmp_path) -> None:
    embedlab.plugin_host(reload=True)
    compressor = embedlab.create("compressor", "randproj", ratio=0.5, seed=1)
    assert isinstance(compressor, RandomProjection)
    vectors = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    compressor.fit(vectors).save(tmp_path / "state")
    # After fit: on Python < 3.12 isinstance() evaluates bytes_per_vector, which needs the fit.
    assert isinstance(compressor, embedlab.Compressor) and isinstance(compressor, embedlab.CodeScorer)
    loaded = embedlab.load_component(tmp_path / "state")
    np.testing.assert_array_equal(loaded.encode(vectors), compressor.encode(vectors))
