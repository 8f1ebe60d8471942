"""The teacher of LG-ANNA's soft labels and margin filter: any installed reranker (the yes/no
cross-encoder of embedlab-qwen3, ``maxsim``...), scores memoised by embedlab-train's
``RerankerScores``."""

from __future__ import annotations

from typing import Any

from embedlab_train import RerankerScores
from embedlab_train.components import component_spec


def teacher_spec(value: Any) -> str | dict[str, Any]:
    """attrs converter: a reranker name or ``{name = ..., ...}`` table."""
    return component_spec(value, "teacher")


def build_teacher(spec: str | dict[str, Any], owner: str) -> RerankerScores:
    """The installed reranker ``spec`` wrapped for memoised pair scores (an unknown name raises
    ``UnknownComponentError`` listing the installed rerankers)."""
    from embedlab.errors import ConfigError
    from embedlab.pipeline import create_component

    try:
        reranker = create_component("reranker", spec)
    except ConfigError as error:
        raise ConfigError(f"{owner}: teacher {spec!r}: {error}") from None
    return RerankerScores(reranker)
