"""Experiment files are validated before anything runs (issue #13, config validation; #11 loaders):
wrong types and values name the TOML line and key, every pipeline is built before the first runs,
errors name the pipeline, a pipeline failing mid-run leaves the others' results, and the public
validators keep attrs internals out of messages."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import pytest

import embedlab
from embedlab import ConfigError, validators
from embedlab.experiment import load_config, parse_config
from embedlab.experiment.runner import build_pipelines, run_experiment

CORPUS = [("d1", "apples and pears"), ("d2", "cars and trucks"), ("d3", "pears in syrup"),
          ("d4", "fast red cars"), ("d5", "fruit salad with apples")]
QUERIES = [("q1", "apples"), ("q2", "cars")]


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in CORPUS))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in QUERIES))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td5\t1\nq2\td4\t1\n")
    return folder


def experiment(folder: Path, *pipelines: str, extra: str = "") -> str:
    tables = "".join(f'\n[[pipeline]]\nname = "{name}"\nencoder = {{ name = "hashing", dim = 64 }}\n{body}\n'
                     for name, body in (p.split("|", 1) if "|" in p else (p, "") for p in pipelines))
    return (f'[dataset]\npath = "{folder}"\nsplit = "test"\n\n[experiment]\nmetrics = ["nDCG@10", "R@10"]\n'
            f'{extra}{tables}')


# -- the shape of the file: every wrong type names its line and key -------------------------------

VALID = """[dataset]
path = "data"
split = "test"

[experiment]
metrics = ["nDCG@10"]
k = 10
seed = 3

[[pipeline]]
name = "a"
encoder = { name = "hashing" }
"""


@pytest.mark.parametrize("edit, message", [
    (('path = "data"', "path = 5"), r"line 2: dataset.path: must be a non-empty string, got 5"),
    (('split = "test"', "split = {}"), r"line 3: dataset.split: must be a non-empty string, got \{\}"),
    (('k = 10', "k = true"), r"line 7: experiment.k: must be a positive integer, got True"),
    (('k = 10', "k = 0"), r"line 7: experiment.k: must be a positive integer, got 0"),
    (('seed = 3', 'seed = "x"'), r"line 8: experiment.seed: must be an integer in \[0, 2147483647\], got 'x'"),
    (('seed = 3', "seed = -1"), r"line 8: experiment.seed: must be an integer in"),
    (('seed = 3', "seed = 99999999999999999999"), r"line 8: experiment.seed: must be an integer in"),
    (('seed = 3', "seed = 1.5"), r"line 8: experiment.seed"),
    (('metrics = ["nDCG@10"]', "metrics = []"), r"line 6: experiment.metrics: must be a list of at least 1"),
    (('metrics = ["nDCG@10"]', 'metrics = [""]'), r"line 6: experiment.metrics: items must be a non-empty string"),
    (('name = "a"', 'name = "a b"'), r"line 11: pipeline\[0\].name: must be 1-100 letters"),
    (('name = "a"', f'name = "{"a" * 101}"'), r"pipeline\[0\].name: must be 1-100"),
    (('[experiment]', 'experiment = 3\n[x]'), r"unknown table"),
    (("[dataset]\n", "dataset = 1\n[y]\n"), r"unknown table|dataset: must be a table"),
])
def test_wrong_types_name_the_line_and_key(edit: tuple[str, str], message: str) -> None:
    text = VALID.replace(*edit)
    with pytest.raises(ConfigError, match=message):
        parse_config(text, source="exp.toml")


@pytest.mark.parametrize("value", ["[1, 2]", '"x"', "[]", "[[1]]"])
def test_pipeline_must_be_tables(value: str) -> None:
    text = f"pipeline = {value}\n" + VALID.split("[[pipeline]]")[0]
    with pytest.raises(ConfigError, match=r"exp.toml, line 1: pipeline\[0\]: needs one or more \[\[pipeline"):
        parse_config(text, source="exp.toml")


def test_messages_never_show_attrs_internals() -> None:
    for edit in [("k = 10", "k = -1"), ("seed = 3", "seed = []"), ('name = "a"', "name = 3")]:
        with pytest.raises(ConfigError) as caught:
            parse_config(VALID.replace(*edit), source="exp.toml")
        assert "Attribute(" not in str(caught.value) and "<class" not in str(caught.value)


def test_bom_non_utf8_and_hostile_toml(tmp_path: Path) -> None:
    path = tmp_path / "exp.toml"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    assert load_config(path).k == 10
    path.write_bytes(VALID.encode().replace(b'"a"', b'"\xe9"'))
    with pytest.raises(ConfigError, match=r"exp\.toml, line 11: not UTF-8"):
        load_config(path)
    for text in ["x = " + "[" * 50_000 + "]" * 50_000, "x = " + "1" * 5000, "a = {" * 20_000]:
        with pytest.raises(ConfigError, match="malformed TOML"):
            parse_config(text, source="exp.toml")


# -- components: public validators, short messages ----------------------------------------------

@pytest.mark.parametrize("kind, name, params, message", [
    ("index", "exact", {"metric": "cos"}, "exact: metric must be one of 'ip', 'cosine', 'l2', got 'cos'"),
    ("index", "exact", {"block_size": True}, "exact: block_size must be an integer, got True"),  # declared type first
    ("encoder", "hashing", {"dim": "8"}, "hashing: dim must be an integer, got '8'"),
    ("encoder", "hashing", {"dim": True}, "hashing: dim must be an integer, got True"),
    ("encoder", "hashing", {"dim": 0}, "hashing: dim must be > 0, got 0"),
    ("compressor", "pq", {"m": "4"}, "pq: m must be an integer, got '4'"),  # a one-letter name was dropped
])
def test_component_config_errors_are_short(kind: str, name: str, params: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        embedlab.create(kind, name, **params)
    text = str(caught.value)
    assert text.startswith(message) and "Attribute(" not in text and "{" not in text


def test_public_validators() -> None:
    @attrs.frozen
    class Config:
        n: int = attrs.field(default=1, validator=validators.positive_int)
        p: float = attrs.field(default=0.5, validator=validators.probability)
        kind: str = attrs.field(default="a", validator=validators.choice("a", "b"))
        seed: int = attrs.field(default=0, validator=validators.seed)
        flag: bool = attrs.field(default=False, validator=validators.boolean)
        cut: int | None = attrs.field(default=None, validator=validators.optional(validators.int_in(2, 5)))
        rate: float = attrs.field(default=1.0, validator=validators.real_in(0.0, low_open=True))

    Config(n=3, p=1, kind="b", seed=2**31 - 1, flag=True, cut=5, rate=1e-9)
    with pytest.raises(validators.InvalidValue, match=r"^n must be a positive integer, got True$"):
        Config(n=True)  # the validator itself rejects bools; from a config file the declared type does first
    for params, message in [({"n": True}, "n must be an integer, got True"),
                            ({"n": 0}, "n must be a positive integer, got 0"),
                            ({"p": 1.5}, "p must be a finite number >= 0.0 and <= 1.0, got 1.5"),
                            ({"p": float("nan")}, "p must be a finite number >= 0.0 and <= 1.0, got nan"),
                            ({"kind": "c"}, "kind must be one of 'a', 'b', got 'c'"),
                            ({"seed": 2**31}, "seed must be an integer in [0, 2147483647], got 2147483648"),
                            ({"flag": 1}, "flag must be true or false, got 1"),
                            ({"cut": 6}, "cut must be an integer in [2, 5], got 6"),
                            ({"rate": 0.0}, "rate must be a finite number > 0.0, got 0.0")]:
        with pytest.raises(ConfigError) as caught:
            embedlab.components.make_config(Config, params, "thing")
        assert str(caught.value) == f"thing: {message}"


def test_declared_types_are_checked_without_validators() -> None:
    """A config field annotated int/float/bool rejects a value of another type even when its
    author wrote no validator (a TOML ``true`` for a dimension used to fail mid-run)."""
    @attrs.frozen
    class Config:
        n: int = 1
        rate: float = 0.5
        flag: bool = False
        cut: int | None = None
        name: str = "x"
        anything: int | str = 1
        scaled: int = attrs.field(default=1, converter=int)

    config = embedlab.components.make_config(Config, {"n": np.int64(3), "rate": 2, "flag": np.bool_(True),
                                                     "cut": None, "anything": True, "scaled": "4"}, "thing")
    assert (config.n, config.rate, config.scaled) == (3, 2, 4)
    for params, message in [({"n": True}, "n must be an integer, got True"),
                            ({"n": 2.5}, "n must be an integer, got 2.5"),
                            ({"rate": "0.1"}, "rate must be a number, got '0.1'"),
                            ({"rate": False}, "rate must be a number, got False"),
                            ({"flag": 1}, "flag must be true or false, got 1"),
                            ({"cut": "3"}, "cut must be an integer or none, got '3'")]:
        with pytest.raises(ConfigError) as caught:
            embedlab.components.make_config(Config, params, "thing")
        assert str(caught.value) == f"thing: {message}"


def _typed_fields() -> list[tuple[str, str, str, object]]:
    """(kind, name, parameter, a value of the wrong type) for every int/float/bool parameter of
    every installed component built on an attrs Config."""
    from embedlab.validators import _type_names

    wrong = {"int": "8", "float": "0.5", "bool": 1}
    cases = []
    for spec in sorted(embedlab.registry().specs(), key=lambda s: (s.kind, s.name)):
        config = getattr(spec.factory, "Config", None)
        if not isinstance(config, type) or not attrs.has(config):
            continue
        for field in attrs.fields(config):
            names = _type_names(field.type) if field.converter is None else None
            if names:
                cases.append((spec.kind, spec.name, field.alias or field.name, wrong[min(names - {"None"})]))
    return cases


def test_every_installed_component_rejects_wrong_types_with_a_config_error() -> None:
    """The whole class, not single cases: each typed parameter of each installed component, given a
    value of the wrong type, fails at creation with a ConfigError naming the component and the
    parameter (never a raw TypeError later, never attrs internals)."""
    cases = _typed_fields()
    assert len(cases) > 50  # the core and the plugins installed beside it
    for kind, name, parameter, value in cases:
        with pytest.raises(ConfigError) as caught:
            embedlab.registry().create(kind, name, **{parameter: value})
        text = str(caught.value)
        assert f"{parameter} must be" in text and name in text and "Attribute(" not in text, (kind, name, text)


# -- every pipeline is built before the first one runs -------------------------------------------

def test_every_pipeline_is_built_before_any_runs(beir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    monkeypatch.setattr(embedlab.Pipeline, "build", lambda self, *a, **k: built.append(self.name))
    text = experiment(beir, "a", "b", 'c|index = { name = "exact", metric = "cos" }')
    with pytest.raises(ConfigError, match=r"line 21: pipeline\[2\].index: pipeline 'c': exact: metric must be "
                                          r"one of"):
        run_experiment(parse_config(text, source="exp.toml"), progress=False)
    assert built == []  # nothing ran: the error came first


def test_unknown_component_and_metric_name_their_line(beir: Path) -> None:
    text = experiment(beir, 'a|reranker = "no-such-reranker"')
    with pytest.raises(embedlab.UnknownComponentError, match=r"line 11: pipeline\[0\].reranker: pipeline 'a'"):
        build_pipelines(parse_config(text, source="exp.toml"))
    text = experiment(beir, "a").replace('"R@10"', '"Recall@@10"')
    with pytest.raises(ConfigError, match=r"line 6: experiment.metrics: "):
        run_experiment(parse_config(text, source="exp.toml"), progress=False)


@pytest.mark.parametrize("edit, message", [
    ('split = "nope"', r"line 3: dataset.split: dataset 'data' has no split 'nope'; available: test"),
    ('split = "test"\ntrain_split = "dev"', r"line 4: dataset.train_split: dataset 'data' has no split 'dev'"),
    ('split = "test"\nid_whitespace = 5', r"line 4: dataset.id_whitespace: beir: id_whitespace must be one of"),
    ('split = "test"\ncolour = "red"', r"line 4: dataset.colour: .*'colour'"),
])
def test_dataset_errors_name_the_key_and_its_line(beir: Path, edit: str, message: str) -> None:
    text = experiment(beir, "a").replace('split = "test"', edit)
    with pytest.raises(embedlab.EmbedlabError, match=message):
        run_experiment(parse_config(text, source="exp.toml"), progress=False)


def test_a_failing_pipeline_leaves_the_others(beir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = embedlab.Pipeline.build

    def build(self, corpus, train=None):
        if self.name == "b":
            raise RuntimeError("disk on fire")
        return original(self, corpus, train=train)

    monkeypatch.setattr(embedlab.Pipeline, "build", build)
    config = parse_config(experiment(beir, "a", "b", "c", extra='baseline = "a"\n'), source="exp.toml")
    result = run_experiment(config, progress=False)
    assert [o.name for o in result.outcomes] == ["a", "c"]
    assert [str(f) for f in result.failures] == ["pipeline 'b' failed: RuntimeError: disk on fire"]
    assert {c.pipeline for c in result.comparisons} == {"c"}
    assert result.to_json()["failures"] == [{"pipeline": "b", "error": "RuntimeError: disk on fire"}]


def test_k_and_cutoffs_are_bounded_by_the_corpus(beir: Path) -> None:
    config = parse_config(experiment(beir, "a", extra="k = 1000000000000\n").replace('"R@10"', '"R@99999999999"'),
                          source="exp.toml")
    with pytest.warns(UserWarning, match="corpus has 5 documents"):
        result = run_experiment(config, progress=False)
    assert result.outcomes[0].ranking.k == 5 and result.outcomes[0].evaluation["R@99999999999"] == 1.0


def test_pipeline_search_bounds_k() -> None:
    corpus = embedlab.Corpus([i for i, _ in CORPUS], [t for _, t in CORPUS])
    pipeline = embedlab.Pipeline.from_names(encoder={"name": "hashing", "dim": 16})
    pipeline.build(corpus)
    ranking = pipeline.search(embedlab.Queries(["q"], ["apples"]), k=10**15)
    assert ranking.k == 5
    with pytest.raises(embedlab.InvalidInputError, match="k must be a positive integer"):
        pipeline.search(embedlab.Queries(["q"], ["apples"]), k=0)
