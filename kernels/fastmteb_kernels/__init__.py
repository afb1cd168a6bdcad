"""fastmteb.kernels — the array kernels every task type scores through.

One public, typed, documented entry per operation. Each dispatches on where its input lives:
Triton for CUDA tensors, Numba for CPU arrays. Plain numpy/torch references for the tests live in
``fastmteb.kernels.reference``. Kernels know nothing of tasks, and import nothing of fastmteb
outside ``fastmteb.kernels``.
"""

from fastmteb.kernels.bitext import BitextResult, bitext_mine
from fastmteb.kernels.correlation import pearson, spearman
from fastmteb.kernels.normalize import unit_rows
from fastmteb.kernels.pairs import PairSweep, pair_sweep
from fastmteb.kernels.ranking import (
    DEFAULT_K_VALUES,
    QrelsCSR,
    RankingMetrics,
    doc_tie_rank,
    ranking_metrics,
)
from fastmteb.kernels.search import SearchInputError, topk
from fastmteb.kernels.sharded import (
    Communicator,
    RowSource,
    corpus_shard_bounds,
    merge_topk,
    sharded_topk,
    unit_row_parts,
)

__all__ = [
    "DEFAULT_K_VALUES",
    "BitextResult",
    "Communicator",
    "PairSweep",
    "QrelsCSR",
    "RankingMetrics",
    "RowSource",
    "SearchInputError",
    "bitext_mine",
    "corpus_shard_bounds",
    "doc_tie_rank",
    "merge_topk",
    "pair_sweep",
    "pearson",
    "ranking_metrics",
    "sharded_topk",
    "spearman",
    "topk",
    "unit_row_parts",
    "unit_rows",
]
