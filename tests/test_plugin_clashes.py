"""Plugins are entry points of distributions; component names several plugins share are ambiguous,
never decided by disk order; a component of a plugin that did not load says why."""

from __future__ import annotations

import pytest

from embedlab.errors import AmbiguousComponentError, ConfigError, UnknownComponentError
from embedlab.experiment import parse_config
from embedlab.metrics import parse_metric
from embedlab.pipeline import create_component
from embedlab.plugins import PluginHost
from embedlab.registry import normalize_distribution

INDEX = """
import embedlab
EMBEDLAB_API_VERSION = "1.0"

class Flat(embedlab.Component):
    kind = "index"
    name = "faiss"
    origin = "{origin}"

class Helper(embedlab.Component):
    kind = "compressor"
    name = "{helper}"

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add("index", "faiss", Flat)
    registry.add("compressor", "{helper}", Helper)
"""

MEASURE = """
import embedlab
from embedlab.metrics.measures import Measure
import numpy as np
EMBEDLAB_API_VERSION = "1.0"

class Depth(Measure):
    name = "Depth"
    origin = "{origin}"

    def compute(self, judged):
        return judged.retrieved.sum(axis=1).astype(float)

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add("metric", "Depth", Depth)
"""


def real_and_fake(fake_plugin, *, fake_module: str = "evil_faiss") -> None:
    """Two distributions with the same entry-point name ``faiss`` both registering index ``faiss``."""
    fake_plugin("faiss", INDEX.format(origin="real", helper="real-helper"), distribution="embedlab-faiss",
                module="real_faiss")
    fake_plugin("faiss", INDEX.format(origin="fake", helper="fake-helper"), distribution="evil-faiss",
                module=fake_module)


def host() -> PluginHost:
    """A host loaded as ``embedlab.plugin_host()`` loads one: the core's components, then every plugin."""
    from embedlab import _builtin

    loaded = PluginHost()
    loaded.load_plugin(_builtin, "embedlab", "embedlab", "0")
    loaded.load_entry_points()
    return loaded


def infos(loaded: PluginHost, name: str) -> dict[str, object]:
    return {p.distribution: p for p in loaded.plugins if p.name == name}


def test_same_entry_point_name_in_two_distributions_both_load_and_are_listed(fake_plugin):
    real_and_fake(fake_plugin)
    loaded = host()
    both = infos(loaded, "faiss")
    assert set(both) >= {"embedlab-faiss", "evil-faiss"}
    assert both["embedlab-faiss"].status == both["evil-faiss"].status == "loaded"
    # each keeps its other components
    assert loaded.registry.spec("compressor", "real-helper").distribution == "embedlab-faiss"
    assert loaded.registry.spec("compressor", "fake-helper").distribution == "evil-faiss"


def test_an_ambiguous_name_fails_naming_both_distributions_and_the_ways_out(fake_plugin):
    real_and_fake(fake_plugin)
    registry = host().registry
    with pytest.raises(AmbiguousComponentError) as error:
        registry.create("index", "faiss")
    message = str(error.value)
    for expected in ("embedlab-faiss 1.2.3", "evil-faiss 1.2.3", "'embedlab-faiss:faiss'",
                     "'evil-faiss:faiss'", "EMBEDLAB_DISABLE_PLUGINS=evil-faiss"):
        assert expected in message
    assert [s.distribution for s in registry.clashes()[0]] == ["embedlab-faiss", "evil-faiss"]


def test_qualified_names_choose_a_provider_in_python_and_toml(fake_plugin):
    real_and_fake(fake_plugin)
    registry = host().registry
    assert registry.create("index", "embedlab-faiss:faiss").origin == "real"
    assert registry.create("index", "evil-faiss:faiss").origin == "fake"
    assert registry.create("index", "Embedlab_FAISS:faiss").origin == "real"  # PEP 503 names
    with pytest.raises(AmbiguousComponentError):  # both entry points are called faiss
        registry.create("index", "faiss:faiss")
    with pytest.raises(UnknownComponentError, match="not-there.*installed providers: 'embedlab-faiss:faiss'"):
        registry.create("index", "not-there:faiss")
    config = parse_config('[dataset]\nname = "python-stdlib"\nsplit = "test"\n[experiment]\n'
                          'metrics = ["nDCG@10"]\n[[pipeline]]\nname = "p"\nencoder = "e"\n'
                          'index = { name = "evil-faiss:faiss" }\n')
    assert config.pipelines[0].index == {"name": "evil-faiss:faiss"}


def test_qualified_names_reach_the_process_wide_registry(fake_plugin, monkeypatch):
    real_and_fake(fake_plugin)
    fake_plugin("depth", MEASURE.format(origin="a"), distribution="embedlab-depth-a", module="depth_a")
    fake_plugin("depth", MEASURE.format(origin="b"), distribution="embedlab-depth-b", module="depth_b")
    import embedlab

    monkeypatch.setattr(embedlab, "_host", host())
    assert create_component("index", {"name": "evil-faiss:faiss"}).origin == "fake"
    assert parse_metric("embedlab-depth-b:Depth@10").origin == "b"
    assert str(parse_metric("embedlab-depth-a:Depth@10")) == "Depth@10"
    with pytest.raises(AmbiguousComponentError, match="metric name 'Depth'"):
        parse_metric("Depth@10")


@pytest.mark.parametrize("fake_first", [True, False])
def test_disk_order_decides_nothing(tmp_path, fake_plugin, fake_first):
    real = dict(name="faiss", source=INDEX.format(origin="real", helper="real-helper"),
                distribution="embedlab-faiss", module="real_faiss", site=tmp_path / "real")
    fake = dict(name="faiss", source=INDEX.format(origin="fake", helper="fake-helper"),
                distribution="evil-faiss", module="evil_faiss", site=tmp_path / "fake")
    for plugin in ([real, fake] if fake_first else [fake, real]):  # the last one is first on sys.path
        fake_plugin(**plugin)
    loaded = host()
    order = [(p.distribution, p.status) for p in loaded.plugins if p.name == "faiss"]
    assert order == [("embedlab-faiss", "loaded"), ("evil-faiss", "loaded")]
    with pytest.raises(AmbiguousComponentError):
        loaded.registry.spec("index", "faiss")


@pytest.mark.parametrize("disabled, left", [("evil-faiss", "real"), ("Evil_Faiss", "real"),
                                            ("evil-faiss:faiss", "real"), ("embedlab-faiss", "fake")])
def test_disabling_one_distribution_keeps_the_other(fake_plugin, monkeypatch, disabled, left):
    real_and_fake(fake_plugin)
    monkeypatch.setenv("EMBEDLAB_DISABLE_PLUGINS", disabled)
    loaded = host()
    statuses = {d: p.status for d, p in infos(loaded, "faiss").items()}
    gone = "evil-faiss" if left == "real" else "embedlab-faiss"
    assert statuses[gone] == "disabled" and statuses[next(d for d in statuses if d != gone)] == "loaded"
    assert loaded.registry.create("index", "faiss").origin == left
    assert not [line for line in loaded.problems() if "faiss" in line]


def test_disabling_by_entry_point_name_disables_every_distribution_of_that_name(fake_plugin, monkeypatch):
    real_and_fake(fake_plugin)
    monkeypatch.setenv("EMBEDLAB_DISABLE_PLUGINS", "faiss")
    assert {p.status for p in infos(host(), "faiss").values()} == {"disabled"}


def test_load_component_prefers_the_distribution_that_saved_the_state(fake_plugin, monkeypatch, tmp_path):
    import embedlab
    from embedlab.persistence import save_state

    real_and_fake(fake_plugin)
    loaded = host()
    real = loaded.registry.spec("index", "embedlab-faiss:faiss").factory
    real.load = classmethod(lambda cls, path: cls())
    monkeypatch.setattr(embedlab, "_host", loaded)
    monkeypatch.setattr("embedlab.components.distribution_of", lambda obj: ("embedlab-faiss", "1.2.3"))
    save_state(tmp_path / "state", real(), arrays={})
    assert embedlab.load_component(tmp_path / "state").origin == "real"


BROKEN_IMPORT = """
raise ImportError("libfaiss.so: cannot open shared object file")
"""

TOO_NEW = """
import embedlab
EMBEDLAB_API_VERSION = "1.9"

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add("index", "future", dict)
"""

FAILS_AFTER_STAGING = """
import embedlab
EMBEDLAB_API_VERSION = "1.0"

def make(**params):
    return params

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add("reranker", "half", make)
    raise RuntimeError("model file missing")
"""


def test_a_component_of_a_plugin_that_failed_says_so_and_why(fake_plugin, monkeypatch):
    from embedlab import known_plugins

    fake_plugin("brokenidx", BROKEN_IMPORT)
    fake_plugin("futureplug", TOO_NEW)
    fake_plugin("halfplug", FAILS_AFTER_STAGING)
    monkeypatch.setitem(known_plugins.KNOWN_PROVIDERS, ("index", "future"), "embedlab-futureplug")
    registry = host().registry
    with pytest.raises(UnknownComponentError) as error:
        registry.create("index", "brokenidx")  # the entry point's own name
    assert str(error.value).startswith(
        "index 'brokenidx' is not available: it should come from plugin 'brokenidx' (embedlab-brokenidx "
        "1.2.3), is installed but failed to load: import failed: ImportError: libfaiss.so")
    with pytest.raises(UnknownComponentError, match=r"embedlab-futureplug 1.2.3\), is installed but "
                                                    r"incompatible: .*needs embedlab API 1.9"):
        registry.create("index", "future")  # known_plugins names the distribution
    with pytest.raises(UnknownComponentError, match="failed to load: registration failed: RuntimeError: "
                                                    "model file missing"):
        registry.create("reranker", "half")  # staged before the hook failed


def test_a_component_of_a_disabled_plugin_says_it_is_disabled(fake_plugin, monkeypatch):
    fake_plugin("faiss", INDEX.format(origin="real", helper="h"), distribution="embedlab-faiss",
                module="real_faiss")
    monkeypatch.setenv("EMBEDLAB_DISABLE_PLUGINS", "embedlab-faiss")
    with pytest.raises(UnknownComponentError, match=r"plugin 'faiss' \(embedlab-faiss 1.2.3\), is disabled: "
                                                    "disabled by EMBEDLAB_DISABLE_PLUGINS"):
        host().registry.create("index", "faiss")


def test_problems_list_failures_and_clashes(fake_plugin):
    real_and_fake(fake_plugin)
    fake_plugin("brokenidx", BROKEN_IMPORT)
    problems = host().problems()
    assert any("'brokenidx' (embedlab-brokenidx 1.2.3) failed to load" in line for line in problems)
    assert any("index 'faiss' is provided by several plugins (embedlab-faiss, evil-faiss)" in line
               for line in problems)


def test_a_kind_clash_is_decided_by_distribution_name_not_disk_order(tmp_path, fake_plugin):
    source = ("import embedlab\nEMBEDLAB_API_VERSION = '1.1'\n@embedlab.hookimpl\n"
              "def embedlab_register(registry):\n    registry.add_kind('gadget', description='{0}')\n")
    for directory, dist in (("one", "zeta-gadgets"), ("two", "alpha-gadgets")):
        fake_plugin("gadgets", source.format(dist), distribution=dist, module=dist.replace("-", "_"),
                    site=tmp_path / directory)
    loaded = host()
    statuses = {p.distribution: p.status for p in loaded.plugins if p.name == "gadgets"}
    assert statuses == {"alpha-gadgets": "loaded", "zeta-gadgets": "failed"}
    assert loaded.registry.kind("gadget").distribution == "alpha-gadgets"
    failed = next(p for p in loaded.plugins if p.distribution == "zeta-gadgets")
    assert "already declared by plugin 'gadgets' (alpha-gadgets)" in failed.error


def test_normalize_distribution():
    assert normalize_distribution("Embedlab__FAISS.x") == "embedlab-faiss-x"


def test_unknown_measure_stays_a_config_error():
    with pytest.raises(ConfigError, match="unknown measure 'nDGC'"):
        parse_metric("nDGC@10")
