"""The published LIMIT-small dataset (46 documents, 1000 queries, 2 relevant documents each).

The files are not shipped with the plugin: they are read from a folder holding ``corpus.jsonl``,
``queries.jsonl`` and ``qrels.jsonl`` (google-deepmind/limit ``data/limit-small``). The folder is, in
order: the ``path`` parameter, the ``EMBEDLAB_LIMIT_SMALL`` environment variable, then
``<repo>/../shared/data/limit-small`` beside the embedlab checkout this plugin was installed from, then
``../shared/data/limit-small`` relative to the current directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from embedlab.dataset import Dataset
from embedlab.datasets import load_beir
from embedlab.errors import InvalidInputError

NAME = "limit-small"
ENV_VAR = "EMBEDLAB_LIMIT_SMALL"
FILES = ("corpus.jsonl", "queries.jsonl", "qrels.jsonl")


def _checkout_candidate() -> Path:
    """``<repo>/../shared/data/limit-small`` for ``<repo>/plugins/limit/src/embedlab_limit/``."""
    repo = Path(__file__).resolve().parents[4]
    return repo.parent / "shared" / "data" / NAME


def candidates(path: str | Path | None = None) -> list[Path]:
    """Folders tried, in order, for the LIMIT-small files."""
    if path is not None:
        return [Path(path).expanduser()]
    found = [Path(os.environ[ENV_VAR]).expanduser()] if os.environ.get(ENV_VAR) else []
    return [*found, _checkout_candidate(), Path.cwd().parent / "shared" / "data" / NAME]


def locate(path: str | Path | None = None) -> Path:
    """The first candidate folder that holds the three LIMIT-small files."""
    tried = candidates(path)
    for folder in tried:
        if all((folder / name).is_file() for name in FILES):
            return folder
    listing = ", ".join(str(p) for p in tried)
    raise InvalidInputError(
        f"{NAME}: no folder with {', '.join(FILES)} found (tried: {listing}). Get data/limit-small from "
        f"github.com/google-deepmind/limit and pass path=\"<folder>\", or set {ENV_VAR}=<folder> (in an "
        f"experiment TOML, [dataset] path = \"<folder>\" reads the same files as a BEIR folder).")


def limit_small(path: str | Path | None = None) -> Dataset:
    """LIMIT-small (Weller et al., 2025): 46 people listing liked things, 1000 "Who likes X?" queries,
    split ``test``. ``path`` overrides where the files are read from. Document ids are the people's
    names with whitespace replaced by ``_`` so that rankings can be written as TREC runs."""
    folder = locate(path)
    dataset = load_beir(folder, id_whitespace="underscore")
    metadata = {**dataset.metadata, "source": "google-deepmind/limit data/limit-small (CC BY 4.0)",
                "ids": "document ids are the people's names with spaces replaced by '_'"}
    return Dataset(NAME, dataset.corpus, dataset.queries, dataset.qrels, metadata)


def trec_safe(identifier: str) -> str:
    """``"Geneva Durben"`` -> ``"Geneva_Durben"``: TREC run files cannot hold ids with whitespace."""
    return re.sub(r"\s+", "_", identifier.strip())
