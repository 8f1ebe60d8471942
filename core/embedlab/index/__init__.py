"""The core's exact index and the shared exact multi-vector (MaxSim) scoring."""

from embedlab.index.exact import ExactIndex
from embedlab.index.maxsim import maxsim_scores
from embedlab.index.topk import TopK

__all__ = ["ExactIndex", "TopK", "maxsim_scores"]
