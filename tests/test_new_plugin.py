"""``embedlab new-plugin``: the scaffolded project installs, passes its own tests and is discovered."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from embedlab.claims import read_claims
from embedlab.cli import main
from embedlab.errors import ConfigError
from embedlab.plugins import API_VERSION, DISABLE_ENV, ENTRY_POINT_GROUP
from embedlab.scaffold import KIND_FACTORIES, SUFFIX, PluginNames, render_plugin, template_root

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def template_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_every_kind_installs_passes_its_own_tests_and_is_discovered(tmp_path, capsys) -> None:
    """One scaffolded project per kind, installed together with one pip call and tested with one
    pytest run (the slow parts), so the test stays fast while covering every template."""
    projects = {}
    for kind in KIND_FACTORIES:
        assert main(["new-plugin", f"probe-{kind}", "--kind", kind, "--output", str(tmp_path / "plugins")]) == 0
        projects[kind] = tmp_path / "plugins" / f"probe-{kind}"
        out = capsys.readouterr().out
        assert f"cd {projects[kind]}" in out and "pip install -e" in out and f"{kind}.py" in out

    site = tmp_path / "site"  # installed here only: the shared environment is left untouched
    pip = run(sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
              "--disable-pip-version-check", "--quiet", "--target", str(site), *map(str, projects.values()),
              cwd=tmp_path)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (site / "embedlab_probe_index" / "__init__.py").is_file()

    env = dict(os.environ)
    # Other installed plugins are switched off: this test must not depend on them (nor wait for them).
    env[DISABLE_ENV] = ",".join(f"{ep.dist.metadata['Name']}:{ep.name}" if ep.dist else ep.name
                                for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    tests = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", "--rootdir", ".",
                *(f"{p.name}/tests" for p in projects.values()), cwd=tmp_path / "plugins", env=env)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    for kind in projects:  # each project's own tests ran and passed
        module = f"embedlab_probe_{kind}"
        assert f"PASSED probe-{kind}/tests/test_{module}.py::" in tests.stdout, kind
        assert f"PASSED probe-{kind}/tests/test_{module}_plugin.py::test_plugin_is_discovered_and_loaded" \
            in tests.stdout, kind

    listing = run(sys.executable, "-m", "embedlab.cli", "plugins", "--json", "--strict", cwd=tmp_path, env=env)
    assert listing.returncode == 0, listing.stderr
    plugins = {p["name"]: p for p in json.loads(listing.stdout)}
    for kind in KIND_FACTORIES:
        probe = plugins[f"probe-{kind}"]
        assert (probe["status"], probe["distribution"]) == ("loaded", f"embedlab-probe-{kind}"), probe
        assert probe["components"] == {kind: [f"probe-{kind}"]}


def test_default_destination_and_rendered_project(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new-plugin", "my_method"]) == 0
    project = tmp_path / "embedlab-my-method"
    files = template_files(project)
    assert files == ["README.md", "pyproject.toml", "src/embedlab_my_method/__init__.py",
                     "src/embedlab_my_method/claims.toml", "src/embedlab_my_method/compressor.py",
                     "tests/test_embedlab_my_method.py", "tests/test_embedlab_my_method_plugin.py"]
    for name in files:
        assert "{{" not in (project / name).read_text(), name
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "embedlab-my-method"
    assert "embedlab>=0.1" in meta["project"]["dependencies"]
    assert meta["project"]["entry-points"]["embedlab"] == {"my_method": "embedlab_my_method"}
    init = (project / "src/embedlab_my_method/__init__.py").read_text()
    assert f'EMBEDLAB_API_VERSION = "{API_VERSION}"' in init and "@embedlab.hookimpl" in init
    assert 'registry.add("compressor", "my_method", MyMethod)' in init
    compressor = (project / "src/embedlab_my_method/compressor.py").read_text()
    assert "class MyMethod(embedlab.Component)" in compressor
    claims = read_claims(project / "src/embedlab_my_method/claims.toml", "my_method")
    assert [c.status for c in claims] == ["not tested"]
    assert meta["tool"]["setuptools"]["package-data"] == {"embedlab_my_method": ["claims.toml"]}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


@pytest.mark.parametrize("kind", list(KIND_FACTORIES))
def test_each_kind_renders_its_component_module_tests_and_readme(tmp_path, kind: str) -> None:
    project = render_plugin("my-method", tmp_path / "p", kind=kind)
    files = template_files(project)
    assert files == sorted(["README.md", "pyproject.toml", "src/embedlab_my_method/__init__.py",
                            "src/embedlab_my_method/claims.toml", f"src/embedlab_my_method/{kind}.py",
                            "tests/test_embedlab_my_method.py", "tests/test_embedlab_my_method_plugin.py"])
    for name in files:
        text = (project / name).read_text()
        assert "{{" not in text, name
        if name.endswith(".py"):
            assert max(map(len, text.splitlines())) <= 120, name  # the generated code passes ruff's E501
    factory = "my_method_dataset" if kind == "dataset" else "MyMethod"
    init = (project / "src/embedlab_my_method/__init__.py").read_text()
    assert f'from embedlab_my_method.{kind} import {factory}' in init
    assert f'registry.add("{kind}", "my-method", {factory})' in init
    readme = (project / "README.md").read_text()
    assert f"the {kind} `my-method`" in readme and "## Usage\n\n```" in readme and "| parameter |" in readme


def test_unknown_kind_is_refused(tmp_path, capsys) -> None:
    with pytest.raises(ConfigError, match="no plugin template for kind 'gadget'"):
        render_plugin("x", tmp_path / "x", kind="gadget")
    with pytest.raises(SystemExit):
        main(["new-plugin", "x", "--kind", "gadget"])
    assert "invalid choice: 'gadget'" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "expected"), [
    ("my-method", ("my-method", "embedlab_my_method", "embedlab-my-method", "MyMethod")),
    ("pq2", ("pq2", "embedlab_pq2", "embedlab-pq2", "Pq2")),
    ("none", ("none", "embedlab_none", "embedlab-none", "NoneComponent")),
])
def test_derived_names(name: str, expected: tuple[str, ...]) -> None:
    names = PluginNames.from_name(name)
    assert (names.name, names.module, names.distribution, names.class_name) == expected


@pytest.mark.parametrize(("name", "message"), [
    ("MyMethod", "invalid plugin name"), ("2fast", "invalid"), ("my--method", "invalid"), ("-x", "invalid"),
    ("x-", "invalid"), ("my method", "invalid"), ("my.method", "invalid"), ("café", "invalid"),
    ("", "invalid"), ("a" * 41, "at most 40"), ("embedlab-foo", "leave out the 'embedlab' prefix"),
])
def test_invalid_names_are_refused(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PluginNames.from_name(name)


def test_cli_reports_an_invalid_name_and_writes_nothing(tmp_path, capsys) -> None:
    assert main(["new-plugin", "My-Method", "--output", str(tmp_path)]) == 1
    assert "invalid plugin name 'My-Method'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite(tmp_path, capsys) -> None:
    existing = tmp_path / "taken"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    assert main(["new-plugin", "taken", "--output", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in existing.iterdir()] == ["keep.txt"] and sorted(tmp_path.iterdir()) == [existing]


def test_template_error_leaves_nothing_behind(tmp_path) -> None:
    template = tmp_path / "template"
    shutil.copytree(Path(str(template_root())), template)
    (template / "tests" / ("zz.txt" + SUFFIX)).write_text("{{unknown}}")
    with pytest.raises(ConfigError, match="unknown placeholder"):
        render_plugin("broken", tmp_path / "out" / "broken", template=template)
    assert list((tmp_path / "out").iterdir()) == []


def test_core_wheel_ships_the_template(tmp_path) -> None:
    """An installed (not editable) embedlab must carry the template as package data."""
    source = tmp_path / "src"
    shutil.copytree(REPO / "core", source / "core",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for file in REPO.iterdir():
        if file.is_file():
            shutil.copy(file, source / file.name)
    build = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                "--disable-pip-version-check", "--quiet", "-w", str(tmp_path / "dist"), str(source),
                cwd=tmp_path)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("embedlab-*.whl")
    root = Path(str(template_root())).parent
    expected = {f"embedlab/templates/{name}" for name in template_files(root) if "__pycache__" not in name}
    with zipfile.ZipFile(wheel) as archive:
        missing = expected - set(archive.namelist())
        assert not missing, ("add the template to [tool.setuptools.package-data] in pyproject.toml: "
                             f'embedlab = ["py.typed", "templates/**/*"]; missing {sorted(missing)}')
        packaged = zipfile.Path(archive, "embedlab/templates/")
        from_wheel = render_plugin("probe", tmp_path / "from-wheel", template=packaged / "plugin", kind="index",
                                   kind_template=packaged / "kinds" / "index")
    from_source = render_plugin("probe", tmp_path / "from-source", kind="index")
    files = template_files(from_source)
    assert "src/embedlab_probe/index.py" in files and template_files(from_wheel) == files
    assert all((from_wheel / f).read_bytes() == (from_source / f).read_bytes() for f in files)
