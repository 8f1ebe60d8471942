"""The plugin host: isolation of broken plugins, API versions, disabling, unknown names."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

import embedlab
from embedlab.errors import PluginError, UnknownComponentError
from embedlab.plugins import PluginHost, check_api_version
from embedlab.registry import Registry

GOOD = """
import attrs
import embedlab

EMBEDLAB_API_VERSION = "1.0"

class Identity(embedlab.Component):
    kind = "compressor"
    name = "identity"

    @attrs.frozen
    class Config:
        scale: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add("compressor", "identity", Identity)
"""

RAISES_ON_IMPORT = """
raise RuntimeError("boom at import")
"""

BAD_FACTORY = """
import embedlab
EMBEDLAB_API_VERSION = "1.0"

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add("index", "half-registered", dict)
    registry.add("index", "broken", 42)
"""

TOO_NEW = """
import embedlab
EMBEDLAB_API_VERSION = "9.0"

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add("index", "future", dict)
"""

BAD_HOOK_SIGNATURE = """
import embedlab
EMBEDLAB_API_VERSION = "1.0"

@embedlab.hookimpl
def embedlab_register(registry, unexpected_argument):
    pass
"""


def load(plugin_dir) -> PluginHost:
    host = PluginHost()
    host.load_entry_points()
    return host


def by_name(host: PluginHost) -> dict:
    return {p.name: p for p in host.plugins}


def test_good_plugin_is_loaded_and_creates_components(plugin_dir, fake_plugin):
    fake_plugin("goodplug", GOOD)
    host = load(plugin_dir)
    info = by_name(host)["goodplug"]
    assert info.status == "loaded"
    assert info.distribution == "embedlab-goodplug" and info.version == "1.2.3"
    assert info.components == {"compressor": ["identity"]}
    component = host.registry.create("compressor", "identity", scale=2.0)
    assert component.config.scale == 2.0


def test_broken_plugins_are_reported_and_others_still_load(plugin_dir, fake_plugin):
    fake_plugin("goodplug", GOOD)
    fake_plugin("importboom", RAISES_ON_IMPORT)
    fake_plugin("badfactory", BAD_FACTORY)
    fake_plugin("badhook", BAD_HOOK_SIGNATURE)
    host = load(plugin_dir)
    plugins = by_name(host)
    assert plugins["goodplug"].status == "loaded"
    assert plugins["importboom"].status == "failed"
    assert "boom at import" in plugins["importboom"].error
    assert plugins["badfactory"].status == "failed"
    assert "non-callable factory" in plugins["badfactory"].error
    assert plugins["badhook"].status == "failed"
    assert "unexpected_argument" in plugins["badhook"].error
    # nothing of a failed plugin stays registered, not even what it added before failing
    assert "half-registered" not in host.registry.names("index")
    assert "identity" in host.registry.names("compressor")


def test_incompatible_api_version_is_skipped_with_upgrade_advice(plugin_dir, fake_plugin):
    fake_plugin("futureplug", TOO_NEW)
    info = by_name(load(plugin_dir))["futureplug"]
    assert info.status == "incompatible"
    assert "upgrade embedlab" in info.error


@pytest.mark.parametrize("declared, advice", [("0.9", "upgrade the plugin"),
                                              ("1.7", "upgrade embedlab"),
                                              (None, "does not declare")])
def test_api_version_check(declared, advice):
    with pytest.raises(PluginError, match=advice):
        check_api_version("p", declared)
    check_api_version("p", "1.0")


def test_disable_plugins_environment_variable(plugin_dir, fake_plugin, monkeypatch):
    fake_plugin("goodplug", GOOD)
    monkeypatch.setenv("EMBEDLAB_DISABLE_PLUGINS", "other, goodplug")
    host = load(plugin_dir)
    assert by_name(host)["goodplug"].status == "disabled"
    assert "identity" not in host.registry.names("compressor")


def test_name_clash_between_plugins_keeps_both_and_the_bare_name_is_ambiguous(plugin_dir, fake_plugin):
    fake_plugin("goodplug", GOOD)
    fake_plugin("clashplug", GOOD.replace("class Identity", "class Other")
                      .replace(", Identity)", ", Other)"))
    host = load(plugin_dir)
    plugins = by_name(host)
    assert plugins["goodplug"].status == plugins["clashplug"].status == "loaded"
    with pytest.raises(embedlab.AmbiguousComponentError, match="embedlab-clashplug.*embedlab-goodplug"):
        host.registry.create("compressor", "identity")
    assert type(host.registry.create("compressor", "embedlab-clashplug:identity")).__name__ == "Other"
    assert type(host.registry.create("compressor", "goodplug:identity")).__name__ == "Identity"


EXITS_IN_HOOK = """
import sys
import embedlab
EMBEDLAB_API_VERSION = "1.0"

@embedlab.hookimpl
def embedlab_register(registry):
    sys.exit(3)
"""

EXITS_AT_IMPORT = """
raise SystemExit("bye")
"""

EXITS_IN_VERSION = """
import sys
def __getattr__(name):
    sys.exit(4)
"""


def test_sys_exit_in_a_plugin_fails_that_plugin_only(plugin_dir, fake_plugin):
    fake_plugin("goodplug", GOOD)
    fake_plugin("exithook", EXITS_IN_HOOK)
    fake_plugin("exitimport", EXITS_AT_IMPORT)
    fake_plugin("exitversion", EXITS_IN_VERSION)
    host = load(plugin_dir)
    plugins = by_name(host)
    assert plugins["goodplug"].status == "loaded"
    assert plugins["exithook"].status == "failed" and "SystemExit: 3" in plugins["exithook"].error
    assert plugins["exitimport"].status == "failed" and "SystemExit: bye" in plugins["exitimport"].error
    assert plugins["exitversion"].status == "incompatible" and "SystemExit: 4" in plugins["exitversion"].error
    assert "identity" in host.registry.names("compressor")


def test_keyboard_interrupt_in_a_plugin_still_stops_the_host(plugin_dir, fake_plugin):
    fake_plugin("ctrlc", EXITS_IN_HOOK.replace("sys.exit(3)", "raise KeyboardInterrupt"))
    with pytest.raises(KeyboardInterrupt):
        load(plugin_dir)


MISNAMED = """
import embedlab
EMBEDLAB_API_VERSION = "1.0"

class Quantizer(embedlab.Component):
    kind = "compressor"
    name = "int8"

class Unnamed(embedlab.Component):
    kind = "index"

def preset(**params):
    return Quantizer(**params)

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add({kind!r}, {name!r}, {factory})
"""


@pytest.mark.parametrize("kind, name, factory, message", [
    ("compressor", "int4", "Quantizer", "registered Quantizer as name 'int4', but the class declares "
                                        "name = 'int8'"),
    ("index", "int8", "Quantizer", "registered Quantizer as kind 'index', but the class declares "
                                   "kind = 'compressor'"),
    ("index", "unnamed", "Unnamed", "a Component subclass without a 'name' class attribute"),
])
def test_registration_checks_the_declared_kind_and_name(plugin_dir, fake_plugin, kind, name, factory,
                                                        message):
    fake_plugin("misnamed", MISNAMED.format(kind=kind, name=name, factory=factory))
    info = by_name(load(plugin_dir))["misnamed"]
    assert info.status == "failed"
    assert message in info.error


def test_a_function_factory_may_register_an_alias(plugin_dir, fake_plugin):
    fake_plugin("aliased", MISNAMED.format(kind="compressor", name="int8-preset", factory="preset"))
    host = load(plugin_dir)
    assert by_name(host)["aliased"].status == "loaded"
    assert host.registry.create("compressor", "int8-preset").name == "int8"


def test_unknown_component_lists_installed_close_matches_and_provider(plugin_dir, fake_plugin):
    fake_plugin("goodplug", GOOD)
    registry = load(plugin_dir).registry
    with pytest.raises(UnknownComponentError) as error:
        registry.create("compressor", "identiti")
    message = str(error.value)
    assert re.search(r"Installed compressors: [^.]*\bidentity\b", message)
    assert "Did you mean: identity" in message
    with pytest.raises(UnknownComponentError, match="provided by embedlab-seismic: pip install"):
        Registry().create("index", "seismic")
    with pytest.raises(UnknownComponentError, match="kinds: encoder"):
        registry.create("gadget", "x")


def test_unknown_parameter_is_a_config_error(plugin_dir, fake_plugin):
    fake_plugin("goodplug", GOOD)
    host = load(plugin_dir)
    with pytest.raises(embedlab.ConfigError, match="unknown parameter.*accepted: scale"):
        host.registry.create("compressor", "identity", scael=1)
    with pytest.raises(embedlab.ConfigError, match=r"^identity: scale must be > 0, got -1$"):
        host.registry.create("compressor", "identity", scale=-1)


def test_cli_plugins_json_reports_broken_plugin_while_others_work(plugin_dir, fake_plugin):
    fake_plugin("goodplug", GOOD)
    fake_plugin("importboom", RAISES_ON_IMPORT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), *sys.path])}
    out = subprocess.run([sys.executable, "-m", "embedlab.cli", "plugins", "--json"], env=env,
                         capture_output=True, text=True, check=True).stdout
    plugins = {p["name"]: p for p in json.loads(out)}
    assert plugins["embedlab"]["status"] == "loaded"
    assert plugins["goodplug"]["status"] == "loaded"
    assert plugins["importboom"]["status"] == "failed"
    assert "boom at import" in plugins["importboom"]["error"]


CLI_PLUGIN = """
import embedlab
EMBEDLAB_API_VERSION = "1.0"

@embedlab.hookimpl
def embedlab_register(registry):
    pass

@embedlab.hookimpl
def embedlab_cli(subparsers):
    parser = subparsers.add_parser("hello", help="say hello")
    parser.add_argument("who")
    parser.set_defaults(func=lambda args: print(f"hello {args.who}") or 0)
"""

BROKEN_CLI_PLUGIN = """
import embedlab
EMBEDLAB_API_VERSION = "1.0"

@embedlab.hookimpl
def embedlab_register(registry):
    pass

@embedlab.hookimpl
def embedlab_cli(subparsers):
    raise RuntimeError("no commands today")
"""


def test_plugins_add_cli_commands_and_a_failing_one_is_reported(plugin_dir, fake_plugin):
    fake_plugin("helloplug", CLI_PLUGIN)
    fake_plugin("sadplug", BROKEN_CLI_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), *sys.path])}
    done = subprocess.run([sys.executable, "-m", "embedlab.cli", "hello", "world"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "hello world"
    assert ("plugin 'sadplug' (embedlab-sadplug) failed to add its commands: RuntimeError: no commands today"
            in done.stderr)


DECLARES_KIND = """
import embedlab
EMBEDLAB_API_VERSION = "1.1"

def square(x=2):
    return x * x

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add_kind("gadget", description="things that compute")
    registry.add("gadget", "square", square)
"""

USES_KIND = """
import embedlab
EMBEDLAB_API_VERSION = "1.1"

def cube(x=2):
    return x ** 3

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add("gadget", "cube", cube)
"""


@pytest.mark.parametrize("order", [("adeclares", "zuses"), ("zdeclares", "auses")])
def test_plugin_declared_kind_is_extended_by_another_plugin_in_any_load_order(plugin_dir, fake_plugin,
                                                                              order):
    declarer, user = order
    fake_plugin(declarer, DECLARES_KIND)
    fake_plugin(user, USES_KIND)
    host = load(plugin_dir)
    plugins = by_name(host)
    assert plugins[declarer].status == plugins[user].status == "loaded"
    assert plugins[declarer].kinds == ["gadget"]
    assert "gadget" in host.registry.kinds()
    assert host.registry.names("gadget") == ["cube", "square"]
    assert host.registry.create("gadget", "cube", x=3) == 27


def test_components_of_an_undeclared_kind_fail_their_plugin_only(plugin_dir, fake_plugin):
    fake_plugin("goodplug", GOOD)
    fake_plugin("orphan", USES_KIND)
    host = load(plugin_dir)
    plugins = by_name(host)
    assert plugins["goodplug"].status == "loaded"
    assert plugins["orphan"].status == "failed"
    assert "unknown kind(s) gadget" in plugins["orphan"].error
    with pytest.raises(UnknownComponentError, match="unknown component kind 'gadget'"):
        host.registry.spec("gadget", "cube")


def test_a_failed_declarer_takes_down_the_plugins_that_need_its_kind(plugin_dir, fake_plugin):
    fake_plugin("declarer", DECLARES_KIND.replace('registry.add("gadget", "square", square)',
                                                  'registry.add("gadget", "square", 42)'))
    fake_plugin("user", USES_KIND)
    plugins = by_name(load(plugin_dir))
    assert plugins["declarer"].status == "failed"
    assert plugins["user"].status == "failed" and "unknown kind(s) gadget" in plugins["user"].error


def test_a_kind_declared_twice_or_shadowing_a_core_kind_fails(plugin_dir, fake_plugin):
    fake_plugin("first", DECLARES_KIND)
    fake_plugin("second", DECLARES_KIND.replace('"square", square', '"sq2", square'))
    fake_plugin("shadow", DECLARES_KIND.replace('add_kind("gadget"', 'add_kind("index"'))
    plugins = by_name(load(plugin_dir))
    statuses = sorted(plugins[p].status for p in ("first", "second"))
    assert statuses == ["failed", "loaded"]
    loser = next(plugins[p] for p in ("first", "second") if plugins[p].status == "failed")
    assert "kind 'gadget' is already declared by plugin" in loser.error
    assert plugins["shadow"].status == "failed" and "exists already" in plugins["shadow"].error
