"""Built-in datasets: BEIR-format folders and the generated ``python-stdlib`` dataset.

A TOML experiment names its dataset in a ``[dataset]`` table, resolved by
:func:`load_dataset_spec`::

    [dataset]
    name = "python-stdlib"      # any registered dataset (`embedlab datasets` lists them)
    limit = 2000                # ...and its parameters

    [dataset]
    path = "../shared/data/scifact/beir"   # a BEIR folder
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from embedlab.dataset import Dataset
from embedlab.datasets.beir import load_beir
from embedlab.datasets.digits import digits
from embedlab.datasets.saved import is_saved_dataset, load_saved_dataset, save_dataset
from embedlab.datasets.scenes import synthetic_scenes
from embedlab.datasets.stdlib import python_stdlib
from embedlab.errors import ConfigError

#: Datasets the core registers: name -> factory returning a :class:`Dataset`.
BUILTIN_DATASETS: dict[str, Callable[..., Dataset]] = {"beir": load_beir, "python-stdlib": python_stdlib,
                                                       "scenes": synthetic_scenes, "digits": digits}


def load_dataset_spec(name: str | None = None, path: str | Path | None = None, **params: Any) -> Dataset:
    """The dataset a ``[dataset]`` table describes: ``name`` (a registered dataset, built with
    ``params``) or ``path`` (a folder written by :func:`save_dataset`, or a BEIR folder: same as
    ``name = "beir"``)."""
    import embedlab

    if name is None and path is not None and not params and is_saved_dataset(path):
        return load_saved_dataset(path)
    if name is None:
        if path is None:
            raise ConfigError('[dataset] needs name = "<dataset>" (one of `embedlab datasets`) or '
                              'path = "<BEIR folder>"')
        name = "beir"
    if path is not None:
        params["path"] = path
    spec = embedlab.registry().spec("dataset", name)
    try:
        inspect.signature(spec.factory).bind(**params)
    except TypeError as error:
        accepted = ", ".join(inspect.signature(spec.factory).parameters) or "none"
        raise ConfigError(f"[dataset] {name!r}: {error}; accepted parameters: {accepted}") from None
    return spec.factory(**params)


__all__ = ["BUILTIN_DATASETS", "digits", "load_beir", "load_dataset_spec", "load_saved_dataset", "python_stdlib",
           "save_dataset", "synthetic_scenes"]
