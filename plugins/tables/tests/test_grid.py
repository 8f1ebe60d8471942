"""The method x ratio grid: paired tests over seeds, out-of-reach rows, outputs, the CLI subcommand."""

from __future__ import annotations

import csv
import json
import math

import pytest
from embedlab_tables.grid import GridPoint, MethodSpec, markdown, run_grid, summarize, write_outputs
from embedlab_tables.models import ModelConfig
from embedlab_tables.training import TrainConfig

from embedlab.cli import main
from embedlab.errors import InvalidInputError


def test_method_specs_parse_parameters():
    spec = MethodSpec.parse("hash:scope=field;function=universal")
    assert spec.name == "hash" and dict(spec.params) == {"scope": "field", "function": "universal"}
    assert spec.label == "hash:scope=field;function=universal"
    assert MethodSpec.parse("alpt8:scale_lr=0.001").params == (("scale_lr", 0.001),)
    with pytest.raises(InvalidInputError, match="not KEY=VALUE"):
        MethodSpec.parse("hash:field")


def test_summary_pairs_seeds_against_the_baseline_and_keeps_out_of_reach_rows():
    points = [GridPoint("full", 1.0, s, "ok", 0.70 + 0.01 * s, 0.5, 100, 1.0, 1.0, 0.1) for s in range(3)]
    points += [GridPoint("hash", 10.0, s, "ok", 0.69 + 0.01 * s + 0.001 * s, 0.5, 10, 10.0, 1.0, 0.1)
               for s in range(3)]
    points += [GridPoint("int8", 10.0, s, "out of reach: int8 at most 4x") for s in range(3)]
    rows = summarize(points)
    by = {(r.method, r.ratio): r for r in rows}
    assert by["hash", 10.0].delta_auc == pytest.approx(-0.009)
    assert 0 < by["hash", 10.0].p_ttest < 0.05 and by["hash", 10.0].seeds == 3
    assert math.isnan(by["full", 1.0].p_ttest)
    assert by["int8", 10.0].status.startswith("out of reach")
    table = markdown(rows)
    assert "| int8 | 10 | - | out of reach |" in table and "| hash | 10 | 3 | 0.7010 +- 0.0110 | -0.0090 |" in table


def test_grid_trains_every_point_and_writes_table_and_plot(splits, tmp_path):
    methods = [MethodSpec.parse(m) for m in ("full", "hash", "int8")]
    points = run_grid(methods, [1, 4], [0, 1], lambda seed: splits, progress=False,
                      model=ModelConfig(dim=8, bottom=(8,), top=(8,)), training=TrainConfig(epochs=1, batch_size=512))
    assert len(points) == 12
    by = {(p.method, p.ratio, p.seed): p for p in points}
    assert by["full", 4.0, 0].status.startswith("out of reach")
    assert by["int8", 4.0, 1].status == "ok" and by["int8", 4.0, 1].compression == pytest.approx(4.0)
    assert by["hash", 1.0, 0].auc == pytest.approx(by["full", 1.0, 0].auc, abs=1e-9)  # identity at 1x
    rows = summarize(points)
    paths = write_outputs(points, rows, tmp_path, "tiny", {"seeds": [0, 1]})
    assert paths["auc_vs_bytes.png"].stat().st_size > 1000
    with paths["summary.csv"].open() as handle:
        assert len(list(csv.DictReader(handle))) == 6
    assert len(json.loads(paths["grid.json"].read_text())["points"]) == 12
    with pytest.raises(InvalidInputError, match="duplicate seeds"):
        run_grid(methods, [1], [0, 0], lambda seed: splits, progress=False)


def test_cli_subcommand_runs_a_grid_on_the_criteo_sample(criteo_sample, tmp_path, capsys):
    status = main(["tables-grid", "--criteo", str(criteo_sample), "--methods", "full,hash", "--ratios", "1,8",
                   "--seeds", "0,1", "--dim", "4", "--epochs", "1", "--batch-size", "64", "--output",
                   str(tmp_path / "out"), "--quiet"])
    assert status == 0
    out = capsys.readouterr().out
    assert "| hash | 8 | 2 |" in out and (tmp_path / "out" / "summary.md").is_file()
    assert main(["tables-grid", "--methods", "hashh", "--rows", "100", "--output", str(tmp_path / "x"),
                 "--quiet"]) == 2
    assert "no embedding-table named 'hashh'" in capsys.readouterr().err


def test_resume_reuses_checkpointed_points_and_merge_joins_pieces(criteo_sample, tmp_path, capsys):
    common = ["--criteo", str(criteo_sample), "--ratios", "1,8", "--seeds", "0,1", "--dim", "4", "--epochs", "1",
              "--batch-size", "64", "--quiet"]
    assert main(["tables-grid", "--methods", "full", "--output", str(tmp_path / "a"), *common]) == 0
    first = json.loads((tmp_path / "a" / "grid.json").read_text())["points"]
    lines = (tmp_path / "a" / "points.jsonl").read_text().splitlines()
    assert len(lines) == 4
    # an interrupted run: two points on disk and a torn line; resume trains only the missing two
    (tmp_path / "a" / "points.jsonl").write_text("\n".join(lines[:2]) + '\n{"method": "fu')
    assert main(["tables-grid", "--methods", "full", "--output", str(tmp_path / "a"), "--resume", *common]) == 0
    resumed = json.loads((tmp_path / "a" / "grid.json").read_text())
    assert resumed["settings"]["reused_points"] == 2
    assert [p["auc"] for p in resumed["points"]] == pytest.approx([p["auc"] for p in first], nan_ok=True)
    assert main(["tables-grid", "--methods", "hash", "--output", str(tmp_path / "b"), *common]) == 0
    capsys.readouterr()
    assert main(["tables-grid", "--merge", str(tmp_path / "a"), str(tmp_path / "b"), "--output",
                 str(tmp_path / "m")]) == 0
    merged = json.loads((tmp_path / "m" / "grid.json").read_text())
    assert len(merged["points"]) == 8 and len(merged["settings"]["pieces"]) == 2
    assert "| hash | 1 | 2 |" in capsys.readouterr().out  # paired against full from the other piece
    rows = {(r["method"], r["ratio"]): r for r in merged["summary"]}
    assert rows["hash", 1.0]["delta_auc"] == pytest.approx(0.0, abs=1e-9)
    one_seed = [*common[:common.index("--seeds")], "--seeds", "0", *common[common.index("--seeds") + 2:]]
    assert main(["tables-grid", "--methods", "qr", "--output", str(tmp_path / "q"), *one_seed]) == 0
    assert main(["tables-grid", "--merge", str(tmp_path / "a"), str(tmp_path / "q"), "--output",
                 str(tmp_path / "mq"), "--quiet"]) == 0
    merged = json.loads((tmp_path / "mq" / "grid.json").read_text())
    qr = next(r for r in merged["summary"] if r["method"] == "qr" and r["ratio"] == 1.0)
    full0 = next(p["auc"] for p in merged["points"] if p["method"] == "full" and p["seed"] == 0 and p["ratio"] == 1.0)
    qr0 = next(p["auc"] for p in merged["points"] if p["method"] == "qr" and p["seed"] == 0 and p["ratio"] == 1.0)
    assert qr["seeds"] == 1 and math.isnan(qr["p_ttest"]) and qr["delta_auc"] == pytest.approx(qr0 - full0)
    assert merged["settings"]["seeds"] == [0, 1]
    other = ["--criteo", str(criteo_sample), "--ratios", "1", "--seeds", "0", "--dim", "8", "--epochs", "1",
             "--batch-size", "64", "--quiet"]
    assert main(["tables-grid", "--methods", "hash", "--output", str(tmp_path / "c"), *other]) == 0
    assert main(["tables-grid", "--merge", str(tmp_path / "a"), str(tmp_path / "c"), "--output",
                 str(tmp_path / "n")]) == 2
    assert "settings differ" in capsys.readouterr().err
