"""fastmteb.kernels — the array kernels every task type scores through.

One public, typed, documented entry per operation. Each dispatches on where its input lives:
Triton for CUDA tensors, Numba for CPU arrays; ``use_backend`` overrides that choice (e.g. forces
the Triton path onto CPU tensors under ``TRITON_INTERPRET=1``). Plain numpy/torch references for
the tests live in ``fastmteb.kernels.reference``. Kernels know nothing of tasks.
"""

from fastmteb.kernels.backend import current_backend, use_backend
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
    "current_backend",
    "doc_tie_rank",
    "pair_sweep",
    "pearson",
    "ranking_metrics",
    "spearman",
    "topk",
    "use_backend",
]
