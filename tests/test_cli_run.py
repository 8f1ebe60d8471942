"""``embedlab run`` (issue #11): ``--output`` written as one unit with the user's umask and checked
before anything runs; a failing pipeline leaves the others' results; Ctrl-C anywhere exits 130 with
one line and never goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import embedlab
from embedlab.cli import main

CORPUS = [("d1", "apples and pears"), ("d2", "cars and trucks"), ("d3", "pears in syrup"),
          ("d4", "fast red cars"), ("d5", "fruit salad with apples")]


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """A BEIR folder and an experiment file with pipelines a, b and c (the core hashing encoder)."""
    folder = tmp_path / "data"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in CORPUS))
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "apples"}\n{"_id": "q2", "text": "cars"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t1\n")
    path = tmp_path / "experiment.toml"
    tables = "".join(f'\n[[pipeline]]\nname = "{name}"\nencoder = {{ name = "{encoder}", dim = 32 }}\n'
                     for name, encoder in (("a", "hashing"), ("b", "hashing"), ("c", "hashing")))
    path.write_text(f'[dataset]\npath = "{folder}"\n\n[experiment]\nmetrics = ["nDCG@10"]\nbaseline = "a"\n{tables}')
    return path


def old_results(out: Path) -> dict[str, str]:
    """An --output folder from an earlier run."""
    (out / "runs").mkdir(parents=True)
    files = {"results.json": '{"old": true}', "results.csv": "old", "runs/old.trec": "q1 Q0 d1 1 1.0 old\n"}
    for name, text in files.items():
        (out / name).write_text(text)
    return files


def contents(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_output_is_written_whole_with_the_umask(experiment: Path, tmp_path: Path, umask: int) -> None:
    """Every file and folder of --output and the --report page gets the mode a plain open() or
    mkdir() gives under the user's umask (temporary files are created owner-only)."""
    out, page = tmp_path / "out", tmp_path / "pages" / "report.html"
    old_results(out)
    previous = os.umask(umask)
    try:
        assert main(["run", str(experiment), "-q", "--no-cache", "--output", str(out), "--report", str(page)]) == 0
    finally:
        os.umask(previous)
    assert sorted(contents(out)) == ["manifest.json", "results.csv", "results.json", "runs/a.trec", "runs/b.trec",
                                     "runs/c.trec"]
    for path in [out, out / "runs", *out.rglob("*"), page.parent, page]:
        assert path.stat().st_mode & 0o777 == (0o777 if path.is_dir() else 0o666) & ~umask, path
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in page.parent.iterdir()] == ["report.html"]


def test_a_failing_write_leaves_the_previous_results(experiment: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    out = tmp_path / "out"
    before = old_results(out)
    import embedlab.trec

    calls = []

    def failing(ranking, path, tag="embedlab"):  # type: ignore[no-untyped-def]
        calls.append(tag)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return original(ranking, path, tag)

    original = embedlab.trec.write_run
    monkeypatch.setattr(embedlab.trec, "write_run", failing)
    assert main(["run", str(experiment), "-q", "--no-cache", "--output", str(out)]) == 1
    assert contents(out) == before  # not a mix of old and new
    assert "No space left on device" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("setup, message", [
    (lambda out: (out.mkdir(), (out / "notes.txt").write_text("mine")), "holds files that are not embedlab results"),
    (lambda out: out.write_text("a file"), "exists and is not a directory"),
])
def test_a_wrong_output_is_refused_before_anything_runs(experiment: Path, tmp_path: Path, setup, message: str,
                                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    out = tmp_path / "out"
    setup(out)
    built = []
    monkeypatch.setattr(embedlab.Pipeline, "build", lambda self, *a, **k: built.append(self.name))
    assert main(["run", str(experiment), "-q", "--no-cache", "--output", str(out)]) == 1
    assert message in capsys.readouterr().err and built == []


def test_a_wrong_report_is_refused_before_anything_runs(experiment: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    page = tmp_path / "report.html"
    page.mkdir()
    built = []
    monkeypatch.setattr(embedlab.Pipeline, "build", lambda self, *a, **k: built.append(self.name))
    assert main(["run", str(experiment), "-q", "--no-cache", "--report", str(page)]) == 1
    assert "--report" in (err := capsys.readouterr().err) and "is a directory" in err and built == []


def test_a_failing_pipeline_still_writes_the_others(experiment: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    original = embedlab.Pipeline.build

    def build(self, corpus, train=None):  # type: ignore[no-untyped-def]
        if self.name == "b":
            raise embedlab.InvalidInputError("b cannot be built")
        return original(self, corpus, train=train)

    monkeypatch.setattr(embedlab.Pipeline, "build", build)
    out = tmp_path / "out"
    assert main(["run", str(experiment), "-q", "--no-cache", "--output", str(out)]) == 1
    captured = capsys.readouterr()
    assert "embedlab run: error: pipeline 'b' failed: InvalidInputError: b cannot be built" in captured.err
    assert "\na (baseline)" in captured.out and "\nc " in captured.out
    assert sorted(contents(out)) == ["manifest.json", "results.csv", "results.json", "runs/a.trec", "runs/c.trec"]
    assert json.loads((out / "results.json").read_text())["failures"][0]["pipeline"] == "b"


# -- Ctrl-C ---------------------------------------------------------------------------------------

INTERRUPTING = """
import os, signal
from pathlib import Path
import embedlab
from embedlab.hashing import HashingEncoder

EMBEDLAB_API_VERSION = "1.1"
MARKER = Path(os.environ["EMBEDLAB_TEST_MARKER"])

class Interrupting(HashingEncoder):
    name = "interrupting"

    def encode_documents(self, texts):
        MARKER.write_text(MARKER.read_text() + "built " if MARKER.exists() else "built ")
        os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C while this pipeline runs
        return super().encode_documents(texts)

class Swallowing(HashingEncoder):
    name = "swallowing"

    def encode_documents(self, texts):
        MARKER.write_text(MARKER.read_text() + "built " if MARKER.exists() else "built ")
        try:
            os.kill(os.getpid(), signal.SIGINT)
            import time; time.sleep(1)
        except KeyboardInterrupt:             # a library that turns Ctrl-C into its own error
            raise RuntimeError("interrupted system call")
        return super().encode_documents(texts)

if os.environ.get("EMBEDLAB_TEST_INTERRUPT_IMPORT"):
    os.kill(os.getpid(), signal.SIGINT)       # Ctrl-C while plugins load

@embedlab.hookimpl
def embedlab_register(registry):
    registry.add("encoder", "interrupting", Interrupting)
    registry.add("encoder", "swallowing", Swallowing)
"""


@pytest.mark.parametrize("encoder, import_interrupt", [("interrupting", False), ("swallowing", False),
                                                       ("hashing", True)])
def test_ctrl_c_exits_130_with_one_line_and_never_goes_on(experiment: Path, tmp_path: Path, fake_plugin,
                                                          plugin_dir: Path, encoder: str,
                                                          import_interrupt: bool) -> None:
    fake_plugin("interruptplug", INTERRUPTING)
    experiment.write_text(experiment.read_text().replace('name = "hashing"', f'name = "{encoder}"'))
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), *sys.path]),
           "EMBEDLAB_TEST_MARKER": str(marker), "EMBEDLAB_TEST_INTERRUPT_IMPORT": "1" if import_interrupt else ""}
    # Ctrl-C as from a terminal: SIGINT at its default disposition in the child. A test run started in
    # the background by a non-interactive shell inherits SIGINT ignored, and Python then keeps it ignored.
    done = subprocess.run([sys.executable, "-c", "import sys, embedlab_main; sys.exit(embedlab_main.main())",
                           "run", str(experiment), "-q", "--no-cache", "--output", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "embedlab run: interrupted"
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "wrote" not in done.stdout and not (tmp_path / "out").exists()
    if not import_interrupt:
        assert marker.read_text() == "built "  # the first pipeline only: the run never went on


def test_ctrl_c_while_embedlab_imports(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The console script handles Ctrl-C before it imports embedlab (seconds on a busy machine)."""
    import builtins

    import embedlab_main

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "embedlab.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert embedlab_main.main() == 130
    assert capsys.readouterr().err == "embedlab: interrupted\n"
