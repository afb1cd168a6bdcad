"""fastmteb.kernels — the array kernels every task type scores through.

One public, typed, documented entry per operation. Each dispatches on where its input lives:
Triton for CUDA tensors, Numba for CPU arrays. Plain numpy/torch references for the tests live in
``fastmteb.kernels.reference``. Kernels know nothing of tasks.
"""

from fastmteb.kernels.bitext import BitextResult, bitext_mine
from fastmteb.kernels.correlation import pearson, spearman
from fastmteb.kernels.pairs import PairSweep, pair_sweep
from fastmteb.kernels.ranking import QrelsCSR, RankingMetrics, doc_tie_rank, ranking_metrics
from fastmteb.kernels.search import topk

__all__ = [
    "BitextResult",
    "PairSweep",
    "QrelsCSR",
    "RankingMetrics",
    "bitext_mine",
    "doc_tie_rank",
    "pair_sweep",
    "pearson",
    "ranking_metrics",
    "spearman",
    "topk",
]
