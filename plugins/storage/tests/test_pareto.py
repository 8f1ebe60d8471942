"""Pareto front, the sweep through real pipelines (exact index on codes), table, plot, CLI errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from embedlab_storage.pareto import format_table, main, pareto_front, pareto_sweep, write_outputs

import embedlab
from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.embeddings import EmbeddingKind


def test_pareto_front_keeps_exactly_the_non_dominated_points() -> None:
    sizes = [1536, 768, 384, 384, 192, 48, 48, 96]
    values = [0.65, 0.65, 0.64, 0.60, 0.62, 0.50, 0.45, 0.40]
    # 1536 is dominated by 768 (same value, smaller); 384@0.60 by 384@0.64; 48@0.45 by 48@0.50;
    # 96@0.40 by 48@0.50.
    np.testing.assert_array_equal(pareto_front(sizes, values),
                                  [False, True, True, False, True, True, False, False])
    assert pareto_front([10], [0.1]).tolist() == [True]
    with pytest.raises(embedlab.ConfigError):
        pareto_front([1, 2], [0.5])


class LookupEncoder(embedlab.Component):
    """Test encoder: each text is the key of a precomputed vector."""

    kind, name = "encoder", "lookup"
    output_kind = EmbeddingKind.DENSE

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.table = table
        self.dim = len(next(iter(table.values())))

    def encode_queries(self, texts):
        return np.stack([self.table[t] for t in texts])

    encode_documents = encode_queries


@pytest.fixture(scope="module")
def toy() -> tuple[Dataset, LookupEncoder]:
    """300 documents, 40 queries each close to one relevant document (384-d, unit vectors)."""
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((300, 384)).astype(np.float32)
    relevant = rng.choice(300, 40, replace=False)
    queries = docs[relevant] + 5 * rng.standard_normal((40, 384)).astype(np.float32)
    table = {f"d{i}": v / np.linalg.norm(v) for i, v in enumerate(docs)}
    table.update({f"q{i}": v / np.linalg.norm(v) for i, v in enumerate(queries)})
    corpus = Corpus([f"D{i}" for i in range(300)], [f"d{i}" for i in range(300)])
    dataset = Dataset("toy", corpus, Queries([f"Q{i}" for i in range(40)], [f"q{i}" for i in range(40)]),
                      {"test": {f"Q{i}": {f"D{r}": 1} for i, r in enumerate(relevant)}})
    return dataset, LookupEncoder(table)


def test_sweep_measures_sizes_and_quality_through_pipelines(toy, tmp_path: Path) -> None:
    dataset, encoder = toy
    result = pareto_sweep(dataset, "test", ["float16", "int8", "binary", "pca:0.25+binary"],
                          encoder=encoder, metric="nDCG@10", progress=False)
    points = {p.spec: p for p in result.points}
    assert list(points) == ["float32", "float16", "int8", "binary", "pca:0.25+binary"]
    assert [points[s].bytes_per_document for s in points] == [1536, 768, 384, 48, 12]
    assert points["float32"].relative == 0 and points["binary"].compression == 32
    assert points["float32"].value > 0.5
    assert abs(points["float16"].relative) < 1e-3
    assert points["pca:0.25+binary"].value < points["binary"].value < points["float32"].value
    front = pareto_front([p.bytes_per_document for p in result.points], [p.value for p in result.points])
    assert [p.on_front for p in result.points] == front.tolist()
    assert result.best_within(400).bytes_per_document <= 400
    table = format_table(result)
    assert all(spec in table for spec in points) and "nDCG@10" in table
    paths = write_outputs(result, tmp_path)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "pareto.csv").read_text().count("\n") == 6


def test_cli_reports_an_unknown_base_pipeline(tmp_path: Path, capsys) -> None:
    config = tmp_path / "experiment.toml"
    config.write_text('[dataset]\npath = "nowhere"\n\n[[pipeline]]\nname = "minilm"\nencoder = "minilm"\n')
    assert main([str(config), "--pipeline", "other"]) == 1
    assert "--pipeline 'other' is not in" in capsys.readouterr().err
