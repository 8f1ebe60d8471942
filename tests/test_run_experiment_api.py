"""``embedlab.run_experiment``: the Python API runs an experiment exactly as ``embedlab run`` does."""

from __future__ import annotations

import json
import warnings

import pytest

import embedlab
from embedlab.cli import main
from embedlab.experiment import parse_config
from embedlab.experiment.report import format_table
from embedlab.plugins import PluginHost

EXPERIMENT = """
[dataset]
path = "beir"
split = "test"

[experiment]
metrics = ["nDCG@10", "R@5"]
baseline = "small"

[[pipeline]]
name = "small"
encoder = { name = "hashing", dim = 8 }
index = "exact"

[[pipeline]]
name = "large"
encoder = { name = "hashing", dim = 256 }
index = "exact"
"""


@pytest.fixture
def experiment(tmp_path):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    words = ["apple pie", "car engine", "river bank", "bank loan", "green apple", "fast car", "loan rate"]
    (folder / "corpus.jsonl").write_text("".join(f'{{"_id": "d{i}", "text": "{t}"}}\n' for i, t in enumerate(words)))
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "apple"}\n{"_id": "q2", "text": "car"}\n'
                                          '{"_id": "q3", "text": "loan bank"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td0\t1\nq1\td4\t1\nq2\td1\t1\n"
                                               "q2\td5\t1\nq3\td3\t2\nq3\td6\t1\n")
    path = tmp_path / "experiment.toml"
    path.write_text(EXPERIMENT)
    return path


def test_the_api_and_the_command_line_give_the_same_results_and_files(experiment, tmp_path, capsys):
    result = embedlab.run_experiment(experiment, output=tmp_path / "api", cache=False, progress=False)
    assert main(["run", str(experiment), "--output", str(tmp_path / "cli"), "--no-cache", "--quiet"]) == 0
    printed = capsys.readouterr().out
    header = format_table(result).splitlines()[:3]  # the rows hold timings, which differ between runs
    assert "\n".join(header) in printed
    api, cli = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("api", "cli"))
    assert [p["aggregates"] for p in api["pipelines"]] == [p["aggregates"] for p in cli["pipelines"]]
    assert [p["aggregates"]["nDCG@10"] for p in api["pipelines"]] == \
        [o.evaluation.aggregates["nDCG@10"] for o in result.outcomes]
    files = sorted(p.relative_to(tmp_path / "api") for p in (tmp_path / "api").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli").rglob("*") if p.is_file())
    assert all(f"wrote {tmp_path / 'cli' / f}" in printed for f in files)


def test_a_parsed_config_a_cache_directory_and_the_report(experiment, tmp_path):
    config = parse_config(EXPERIMENT, base_dir=experiment.parent)
    result = embedlab.run_experiment(config, cache=tmp_path / "cache", report=tmp_path / "report.html",
                                     progress=False)
    assert [o.name for o in result.outcomes] == ["small", "large"]
    assert (tmp_path / "cache" / "embeddings").is_dir() and (tmp_path / "report.html").is_file()


def test_plugins_that_failed_to_load_are_warnings(experiment, fake_plugin, monkeypatch):
    from embedlab import _builtin

    fake_plugin("broken", 'raise RuntimeError("broken on purpose")\n')
    host = PluginHost()
    host.load_plugin(_builtin, "embedlab", "embedlab", "0")
    host.load_entry_points()
    monkeypatch.setattr(embedlab, "_host", host)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embedlab.run_experiment(experiment, cache=False, progress=False)
    assert any("plugin 'broken' (embedlab-broken 1.2.3) failed to load" in str(w.message) for w in caught)
