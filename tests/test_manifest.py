"""The run manifest in every --output directory, and `embedlab reproduce` on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedlab.cli import main
from embedlab.errors import ConfigError
from embedlab.manifest import read_manifest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EXPERIMENT = """
[dataset]
path = "{path}"
split = "test"

[experiment]
metrics = ["nDCG@10", "R@100"]
baseline = "small"
seed = 3

[[pipeline]]
name = "small"
encoder = { name = "hashing", dim = 64 }

[[pipeline]]
name = "large"
encoder = { name = "hashing", dim = 512, seed = 1 }

[[pipeline]]
name = "fused"
retrievers = ["small", "large"]
fusion = { method = "linear", norm = "z-score" }
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("manifest")
    (root / "exp.toml").write_text(EXPERIMENT.replace("{path}", str(SHARED_DATA / "adi" / "beir")))
    assert main(["run", str(root / "exp.toml"), "--output", str(root / "out"), "--cache-dir", str(root / "cache"),
                 "--quiet"]) == 0
    return root


def test_manifest_records_what_changes_numbers(run_dir):
    manifest = json.loads((run_dir / "out" / "manifest.json").read_text())
    dataset = manifest["dataset"]
    assert dataset["split"] == "test" and dataset["train_split"] is None and len(dataset["content_sha256"]) == 64
    assert dataset["spec"]["path"].endswith("adi/beir") and dataset["documents"] == 82
    assert manifest["seed"] == 3 and manifest["metrics"] == ["nDCG@10", "R@100"]
    assert manifest["evaluation"]["ignore_identical_ids"] is False and "descending" in manifest["evaluation"]["ties"][
        "evaluation"]
    assert manifest["hardware"]["cpu"] and manifest["hardware"]["cpu_count"] >= 1
    assert {"numpy", "scipy"} <= set(manifest["versions"]["libraries"]) and "embedlab" in manifest["versions"]
    pipelines = {p["name"]: p for p in manifest["pipelines"]}
    fused = pipelines["fused"]
    assert fused["fitted"] == {"weights": [1.0, 1.0], "tuned": False}
    first = fused["components"][0]
    assert first["name"] == "fusion" and first["config"]["norm"] == "z-score"
    assert first["parts"]["small"]["parts"]["encoder"]["config"]["dim"] == 64
    assert pipelines["large"]["components"][0]["parts"]["encoder"]["config"] == {"dim": 512, "seed": 1}


def test_reproduce_matches_then_detects_a_changed_number(run_dir, capsys):
    out = run_dir / "out"
    capsys.readouterr()
    assert main(["reproduce", str(out), "--cache-dir", str(run_dir / "cache"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "reproduced: every number matches" in printed and "fused nDCG@10" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["pipelines"][2]["aggregates"]["nDCG@10"] += 0.01
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["reproduce", str(out), "--cache-dir", str(run_dir / "cache"), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "fused nDCG@10" in printed and "DIFFERS" in printed and "NOT reproduced" in printed


def test_reproduce_errors(tmp_path):
    with pytest.raises(ConfigError, match="no manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(ConfigError, match="unreadable manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(ConfigError, match="not an embedlab run manifest"):
        read_manifest(tmp_path)
