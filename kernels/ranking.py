"""STUB — being written (helper: ranking). Signature is the contract."""
from dataclasses import dataclass
@dataclass
class QrelsCSR:  # indptr int64 [nq+1], doc_index int32/int64 [nnz], grade int32 [nnz]
    indptr: object
    doc_index: object
    grade: object
@dataclass
class RankingMetrics:
    per_query: dict
    means: dict
def ranking_metrics(qrels, run, k_values=(1, 3, 5, 10, 20, 100, 1000), *, run_scores=None, doc_rank=None):
    raise NotImplementedError
