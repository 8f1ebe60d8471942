"""The installed plugin is discovered through its ``embedlab`` entry point."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from embedlab_seismic import SeismicIndex

import embedlab


def test_plugin_is_discovered_and_loaded() -> None:
    host = embedlab.plugin_host(reload=True)
    info = {plugin.name: plugin for plugin in host.plugins}.get("seismic")
    assert info is not None, "entry point not found: is the plugin installed (pip install -e .)?"
    assert info.status == "loaded", info.error
    assert info.distribution == "embedlab-seismic"
    assert info.components == {"index": ["seismic"]}


def test_create_and_load_by_name(tmp_path) -> None:
    embedlab.plugin_host(reload=True)
    index = embedlab.create("index", "seismic", n_postings=10)
    assert isinstance(index, SeismicIndex)
    docs = sp.random(50, 30, density=0.2, format="csr", dtype=np.float32, random_state=0)
    index.build(docs)
    index.save(tmp_path / "state")
    loaded = embedlab.load_component(tmp_path / "state")
    assert isinstance(loaded, SeismicIndex)
    np.testing.assert_array_equal(loaded.search(docs[:5], 3).indices, index.search(docs[:5], 3).indices)
