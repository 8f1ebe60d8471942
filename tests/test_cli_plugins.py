"""The command line and plugins: lazy loading, hostile CLI hooks, ``plugins --strict``, run warnings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata

import pytest

from embedlab.cli import SUBCOMMANDS, needs_plugin_commands
from embedlab.plugins import DISABLE_ENV, ENTRY_POINT_GROUP

MARKS_IMPORT = """
import os
import embedlab
EMBEDLAB_API_VERSION = "1.0"
open(os.environ["MARKER"], "a").write("imported\\n")

@embedlab.hookimpl
def embedlab_register(registry):
    pass

@embedlab.hookimpl
def embedlab_cli(subparsers):
    parser = subparsers.add_parser("hello", help="say hello")
    parser.add_argument("who")
    parser.set_defaults(func=lambda args: print(f"hello {args.who}") or 0)
"""

EXITS_IN_CLI_HOOK = """
import sys
import embedlab
EMBEDLAB_API_VERSION = "1.0"

@embedlab.hookimpl
def embedlab_register(registry):
    pass

@embedlab.hookimpl
def embedlab_cli(subparsers):
    sys.exit(0)
"""

BROKEN = 'raise RuntimeError("broken on purpose")\n'

CLASH = """
import embedlab
EMBEDLAB_API_VERSION = "1.0"

class Exact(embedlab.Component):
    kind = "index"
    name = "exact"

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add("index", "exact", Exact)
"""


@pytest.fixture
def cli(plugin_dir, tmp_path):
    """Run ``python -m embedlab.cli ARGS`` with the fake plugins and without the installed ones (which
    this test does not need and should not wait for)."""
    marker = tmp_path / "marker"
    installed = ",".join(f"{ep.dist.metadata['Name']}:{ep.name}" if ep.dist else ep.name
                         for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), *sys.path]),
           DISABLE_ENV: installed, "MARKER": str(marker)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "embedlab.cli", *args], env=env, capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)

    run.marker = marker  # type: ignore[attr-defined]
    return run


@pytest.mark.parametrize("argv, needed", [
    (["--version"], False), (["run", "--help"], False), (["new-plugin", "x"], False),
    (["evaluate", "-h"], False), (["--help"], True), ([], True), (["pareto", "--x"], True),
])
def test_which_command_lines_need_plugin_commands(argv, needed):
    assert needs_plugin_commands(argv) is needed


def test_version_and_core_command_help_import_no_plugin(cli, fake_plugin):
    fake_plugin("marks", MARKS_IMPORT)
    for args in (["--version"], *([name, "--help"] for name in SUBCOMMANDS)):
        done = cli(*args)
        assert done.returncode == 0, (args, done.stderr)
        assert not cli.marker.exists(), f"embedlab {' '.join(args)} imported a plugin"
    assert cli("plugins").returncode == 0 and cli.marker.exists()  # plugins load when needed


def test_version_imports_neither_torch_nor_the_installed_plugins(cli):
    done = cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("embedlab ")
    probe = subprocess.run([sys.executable, "-X", "importtime", "-m", "embedlab.cli", "--version"],
                           capture_output=True, text=True, timeout=120)
    modules = {line.split("|")[-1].strip() for line in probe.stderr.splitlines() if line.startswith("import")}
    assert "torch" not in modules and not [m for m in modules if m.startswith("embedlab_")]


def test_top_level_help_and_plugin_commands_load_plugins(cli, fake_plugin):
    fake_plugin("marks", MARKS_IMPORT)
    helped = cli("--help")
    assert helped.returncode == 0 and "hello" in helped.stdout and "say hello" in helped.stdout
    ran = cli("hello", "world")
    assert ran.returncode == 0 and ran.stdout.strip() == "hello world"


def test_sys_exit_in_a_cli_hook_is_reported_and_other_commands_work(cli, fake_plugin):
    fake_plugin("marks", MARKS_IMPORT)
    fake_plugin("exiter", EXITS_IN_CLI_HOOK)
    ran = cli("hello", "world")
    assert ran.returncode == 0 and ran.stdout.strip() == "hello world", ran.stderr
    assert "plugin 'exiter' (embedlab-exiter) failed to add its commands: SystemExit: 0" in ran.stderr


def test_plugins_strict_fails_on_a_broken_plugin_and_on_a_clash(cli, fake_plugin):
    assert cli("plugins", "--strict").returncode == 0
    fake_plugin("broken", BROKEN)
    done = cli("plugins", "--strict")
    assert done.returncode == 1
    assert "plugin 'broken' (embedlab-broken 1.2.3) failed to load: import failed: RuntimeError" in done.stderr
    assert cli("plugins").returncode == 0  # without --strict a broken plugin is only reported


def test_plugins_lists_a_clash_in_text_and_json(cli, fake_plugin):
    fake_plugin("clash", CLASH)
    text = cli("plugins", "--strict")
    assert text.returncode == 1
    assert "ambiguous  index 'exact' is also provided by embedlab: write embedlab-clash:exact" in text.stdout
    assert "index 'exact' is provided by several plugins (embedlab, embedlab-clash)" in text.stderr
    rows = {p["name"]: p for p in json.loads(cli("plugins", "--json").stdout)}
    assert rows["clash"]["ambiguous"] == {"index": ["exact"]}
    assert rows["embedlab"]["ambiguous"] == {"index": ["exact"]}


def test_run_warns_about_plugins_that_failed_to_load(cli, fake_plugin, tmp_path):
    fake_plugin("broken", BROKEN)
    config = tmp_path / "experiment.toml"
    config.write_text('[dataset]\npath = "missing"\nsplit = "test"\n[experiment]\nmetrics = ["nDCG@10"]\n'
                      '[[pipeline]]\nname = "p"\nencoder = "bm25"\nindex = "exact"\n')
    done = cli("run", str(config))
    assert ("embedlab run: warning: plugin 'broken' (embedlab-broken 1.2.3) failed to load: import failed: "
            "RuntimeError: broken on purpose") in done.stderr
    assert "see `embedlab plugins`" in done.stderr
