r"""Retrieval ranking metrics with pytrec_eval's (trec_eval 9) and mteb 2.x's exact semantics:
``fastmteb.kernels.ranking_metrics``.

For a query with judgments :math:`g(d)` (integer grades; *positive* means :math:`g(d) > 0`, i.e.
``>= 1`` = pytrec_eval's ``relevance_level``), :math:`R` positives, and retrieved documents ranked
:math:`r = 1, 2, \dots` by **float32 score descending, then document id (bytewise string order)
descending** — trec_eval's order, which mteb's MRR also uses:

.. math::
    \mathrm{nDCG@k} = \frac{\sum_{r \le k} g(d_r)^{+} / \log_2(r + 1)}
                          {\sum_{i=1}^{\min(k, R)} g^{*}_i / \log_2(i + 1)}, \qquad
    \mathrm{MAP@k} = \frac{1}{R} \sum_{r \le k,\ g(d_r) > 0} \mathrm{P@r},

    \mathrm{recall@k} = \frac{|\{r \le k : g(d_r) > 0\}|}{R}, \quad
    \mathrm{P@k} = \frac{|\{r \le k : g(d_r) > 0\}|}{k}, \quad
    \mathrm{hit\_rate@k} = [\exists\, r \le k : g(d_r) > 0], \quad
    \mathrm{MRR@k} = \frac{1}{\min\{r \le k : g(d_r) > 0\}}\ (0 \text{ if none})

with linear gains (negative grades count 0), :math:`g^{*}` the positive grades of *all* judged
documents sorted descending (documents missing from the corpus or the run included), MAP divided by
all :math:`R` (not :math:`\min(R, k)`), P@k divided by k even when fewer than k documents were
retrieved, and every ratio with :math:`R = 0` equal to 0. The arithmetic follows trec_eval's
operation order, so values match pytrec_eval to the last bit in practice (tested to 1e-12).

Which queries are scored: pytrec_eval's rule — a query of the run that has at least one judgment
(of any grade). A query whose judgments are all ``<= 0`` is scored (all zeros); a query with no
judgments, or missing from the qrels, is skipped. mteb drops queries without judgments when it
loads a task, so its MRR (computed over every run query) averages the same set.

``means``: ``sum(values) / len(values)`` over the scored queries in their order, computed exactly as
the running Python's ``sum`` does on a list of floats (plain left-to-right before Python 3.12,
Neumaier-compensated from 3.12 on), i.e. bit-identical to mteb's value *before* its
``round(., 5)`` (ndcg/map/recall/precision/hit_rate; MRR is not rounded by mteb). Rounding belongs
to the task layer.

Scores: pytrec_eval compares scores at float32, so float64 scores that round to the same float32
tie (then the id decides). mteb's MRR sorts the Python floats themselves; for float64 scores that
are not exactly float32 the MRR keys therefore use the float64 order (a second pass of the kernel),
everything else the float32 order.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain, compress
from typing import Union

import numpy as np

from fastmteb.kernels._numba import ranking as _nb
from fastmteb.kernels._numba.common import float32_exact

DEFAULT_K_VALUES = (1, 3, 5, 10, 20, 100, 1000)
METRIC_PREFIXES = ("ndcg", "map", "recall", "precision", "mrr", "hit_rate")  # mteb's key order
_KERNEL_AXIS = {
    "ndcg": _nb.NDCG,
    "map": _nb.MAP,
    "recall": _nb.RECALL,
    "precision": _nb.PRECISION,
    "mrr": _nb.MRR,
    "hit_rate": _nb.HIT_RATE,
}
_PYTHON_SUM_IS_COMPENSATED = sys.version_info >= (3, 12)
_MAX_UNICODE_SORT_BYTES = 1 << 30  # above this doc_tie_rank sorts Python strings instead

QrelsDict = Mapping[str, Mapping[str, int]]
RunDict = Mapping[str, Mapping[str, float]]


class RankingInputError(ValueError):
    """Bad input to ``ranking_metrics`` / ``QrelsCSR``: the message names the field and the fix."""


# --------------------------------------------------------------------------- qrels


@dataclass(frozen=True, eq=False)
class QrelsCSR:
    """Relevance judgments of ``nq`` queries over a corpus of ``n_docs`` documents, CSR by query.

    Row ``i`` (query ``i``) judges ``doc_index[indptr[i]:indptr[i + 1]]`` with
    ``grade[indptr[i]:indptr[i + 1]]``. Grades are trec grades: ``> 0`` relevant (gain = grade in
    nDCG), ``0`` judged non-relevant, ``< 0`` non-relevant with gain 0. Judged documents that are
    not in the corpus get indices ``>= n_docs`` (see ``from_dict``): no run can retrieve them, but
    they still count in R and in the ideal DCG, as in pytrec_eval.

    Attributes:
        indptr: int64 ``[nq + 1]``, non-decreasing, ``indptr[0] == 0``.
        doc_index: int64 ``[nnz]``, non-negative, unique within a row.
        grade: int32 ``[nnz]``.
    """

    indptr: np.ndarray
    doc_index: np.ndarray
    grade: np.ndarray

    def __post_init__(self) -> None:
        indptr = _as_int_array(self.indptr, "QrelsCSR.indptr", np.int64)
        doc_index = _as_int_array(self.doc_index, "QrelsCSR.doc_index", np.int64)
        grade = _as_int_array(self.grade, "QrelsCSR.grade", np.int32)
        if indptr.shape[0] < 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise RankingInputError(
                "QrelsCSR.indptr must start at 0 and be non-decreasing ([nq + 1] row offsets)"
            )
        if indptr[-1] != doc_index.shape[0] or doc_index.shape != grade.shape:
            raise RankingInputError(
                f"QrelsCSR: indptr[-1] = {indptr[-1]} but doc_index has {doc_index.shape[0]} and "
                f"grade {grade.shape[0]} entries; all three must agree"
            )
        if doc_index.size and doc_index.min() < 0:
            raise RankingInputError(
                "QrelsCSR.doc_index must be >= 0 (documents are corpus indices)"
            )
        object.__setattr__(self, "indptr", indptr)
        object.__setattr__(self, "doc_index", doc_index)
        object.__setattr__(self, "grade", grade)

    @property
    def n_queries(self) -> int:
        return self.indptr.shape[0] - 1

    @classmethod
    def from_dict(
        cls,
        qrels: QrelsDict,
        query_ids: Sequence[str],
        doc_ids: Union[Sequence[str], Mapping[str, int]],
    ) -> QrelsCSR:
        """Build from pytrec-style ``{query_id: {doc_id: grade}}``.

        Row ``i`` holds the judgments of ``query_ids[i]`` (none if it is not in ``qrels``; qrels
        queries not listed are ignored). ``doc_ids`` is the corpus (index ``j`` = ``doc_ids[j]``),
        or a ready ``{doc_id: index}`` mapping. Judged ids absent from the corpus get indices
        ``len(doc_ids), len(doc_ids) + 1, ...`` in order of first appearance.
        """
        if isinstance(doc_ids, Mapping):
            doc_position = doc_ids
        else:
            doc_position = {doc_id: j for j, doc_id in enumerate(doc_ids)}
            if len(doc_position) != len(doc_ids):
                raise RankingInputError("doc_ids contains duplicate ids; corpus ids must be unique")
        rows = [qrels.get(query_id) or {} for query_id in query_ids]
        counts = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        judged_ids = list(chain.from_iterable(rows))
        grades = _grades_array(chain.from_iterable(row.values() for row in rows), len(judged_ids))
        positions = list(map(doc_position.get, judged_ids))
        n_docs = len(doc_position)
        absent: dict[str, int] = {}
        for i in [i for i, position in enumerate(positions) if position is None]:
            positions[i] = absent.setdefault(judged_ids[i], n_docs + len(absent))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr, np.asarray(positions, dtype=np.int64).reshape(-1), grades)

    @cached_property
    def _positives(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, doc_index, grade) of the positive judgments, ascending doc_index per row."""
        row_of = np.repeat(np.arange(self.n_queries, dtype=np.int64), np.diff(self.indptr))
        order = np.lexsort((self.doc_index, row_of))
        sorted_rows, sorted_docs = row_of[order], self.doc_index[order]
        same_pair = (sorted_rows[1:] == sorted_rows[:-1]) & (sorted_docs[1:] == sorted_docs[:-1])
        repeated = np.flatnonzero(same_pair)
        if repeated.size:
            raise RankingInputError(
                f"QrelsCSR row {int(sorted_rows[repeated[0]])} judges document "
                f"{int(sorted_docs[repeated[0]])} twice; give each (query, document) one grade"
            )
        keep = order[self.grade[order] > 0]
        indptr = np.zeros(self.n_queries + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_of[keep], minlength=self.n_queries), out=indptr[1:])
        return indptr, self.doc_index[keep], self.grade[keep].astype(np.int64)


def doc_tie_rank(doc_ids: Sequence[str]) -> np.ndarray:
    """Rank of each id under bytewise (UTF-8 = code point) string order: ``rank[j]`` is the
    position of ``doc_ids[j]`` in ``sorted(doc_ids)``. Pass it as ``doc_rank`` (and to
    ``kernels.topk``'s ``tie_rank``) so that ties break on an integer exactly as trec_eval's
    ``strcmp`` does. Raises on duplicate ids.
    """
    ids = list(doc_ids)
    n = len(ids)
    rank = np.empty(n, dtype=np.int64)
    if n == 0:
        return rank
    if not all(isinstance(doc_id, str) for doc_id in ids):
        raise RankingInputError("doc_ids must be strings (pytrec_eval compares ids as strings)")
    longest = max(map(len, ids))
    if n * max(longest, 1) * 4 <= _MAX_UNICODE_SORT_BYTES:
        as_array = np.array(ids, dtype=f"<U{max(longest, 1)}")
        order = np.argsort(as_array, kind="stable")
        duplicated = np.flatnonzero(as_array[order[1:]] == as_array[order[:-1]])
    else:
        order = np.array(sorted(range(n), key=ids.__getitem__), dtype=np.int64)
        duplicated = np.flatnonzero([ids[a] == ids[b] for a, b in zip(order[1:], order[:-1])])
    if duplicated.size:
        raise RankingInputError(
            f"doc_ids contains the id {ids[order[duplicated[0]]]!r} twice; "
            "corpus ids must be unique"
        )
    rank[order] = np.arange(n, dtype=np.int64)
    return rank


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class RankingMetrics:
    """Per-query values and means of every metric, under mteb's key names.

    Attributes:
        per_query: ``"ndcg_at_10"`` etc. -> float64 ``[n_evaluated]``, in ``query_index`` order.
        means: the same keys -> unrounded mean (``sum(values) / n`` as Python computes it, i.e.
            what mteb computes before ``round(., 5)``).
        query_ids: dict form: the evaluated query ids in pytrec_eval's output order (= run
            order). ``None`` for the array form.
        query_index: int64 ``[n_evaluated]``: the row of each evaluated query in the run (array
            form) or its position in the run dict's iteration order (dict form).
    """

    per_query: dict[str, np.ndarray]
    means: dict[str, float]
    query_ids: list[str] | None
    query_index: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def metric_keys(k_values: Sequence[int] = DEFAULT_K_VALUES) -> list[str]:
    """mteb's key names, in mteb's order: ``ndcg_at_k`` for every k, then map, recall, precision,
    mrr, hit_rate."""
    ks = _normalise_k_values(k_values)
    return [f"{prefix}_at_{k}" for prefix in METRIC_PREFIXES for k in ks]


def ranking_metrics(
    qrels: Union[QrelsCSR, QrelsDict],
    run: Union[np.ndarray, RunDict],
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    *,
    run_scores: np.ndarray | None = None,
    doc_rank: np.ndarray | None = None,
) -> RankingMetrics:
    r"""nDCG@k, MAP@k, recall@k, P@k, MRR@k and hit-rate@k per query and averaged (module doc:
    formulas, tie order, which queries count, how means are summed).

    Two input forms:

    - **dict** (what mteb hands pytrec_eval): ``qrels`` ``{qid: {doc_id: int grade}}``, ``run``
      ``{qid: {doc_id: score}}``. Scored queries: those of ``run`` with at least one judgment, in
      run order (``RankingMetrics.query_ids``).
    - **array**: ``qrels`` a :class:`QrelsCSR` whose row ``i`` is the query of run row ``i``;
      ``run`` int64 ``[nq, k]`` corpus indices (``-1`` pads the end of a row: fewer retrieved);
      ``run_scores`` float32 ``[nq, k]`` (float64 is accepted: pytrec measures use its float32
      rounding, MRR the float64 order, as mteb); ``doc_rank`` int64 ``[n_docs]``, the tie order of
      every corpus document (:func:`doc_tie_rank` of the ids; higher wins a tie). Rows need not be
      sorted. Scored rows: those with at least one judgment (``RankingMetrics.query_index``).

    Raises:
        RankingInputError (a ValueError): NaN score, duplicate document in a run row, ``-1``
            padding before a real entry, document index outside ``[0, n_docs)``, tie ranks that
            are not unique, shape/dtype mismatch, non-integer grades, bad ``k_values``, or no
            query to score.
    """
    ks = _normalise_k_values(k_values)
    if isinstance(qrels, QrelsCSR):
        return _array_form(qrels, run, ks, run_scores, doc_rank)
    if isinstance(qrels, Mapping) and isinstance(run, Mapping):
        if run_scores is not None or doc_rank is not None:
            raise RankingInputError(
                "run_scores/doc_rank belong to the array form; the dict form takes scores and ids "
                "from the run dict"
            )
        return _dict_form(qrels, run, ks)
    raise RankingInputError(
        "ranking_metrics takes either (QrelsCSR, int64 [nq, k] run, run_scores=..., doc_rank=...) "
        f"or (qrels dict, run dict); got qrels={type(qrels).__name__}, run={type(run).__name__}"
    )


# --------------------------------------------------------------------------- array form


def _array_form(
    qrels: QrelsCSR,
    run: np.ndarray,
    ks: tuple[int, ...],
    run_scores: np.ndarray | None,
    doc_rank: np.ndarray | None,
) -> RankingMetrics:
    if run_scores is None or doc_rank is None:
        raise RankingInputError(
            "the array form needs run_scores (float32 [nq, k]) and doc_rank (int64 [n_docs], "
            "see doc_tie_rank)"
        )
    run = np.asarray(run)
    if run.ndim != 2 or run.dtype.kind not in "iu":
        raise RankingInputError(
            f"run must be an integer [nq, k] array, got {run.dtype} {run.shape}"
        )
    run = np.ascontiguousarray(run, dtype=np.int64)
    scores = np.asarray(run_scores)
    if scores.shape != run.shape or scores.dtype.kind != "f":
        raise RankingInputError(
            f"run_scores must be a float array of the run's shape {run.shape}, "
            f"got {scores.dtype} {scores.shape}"
        )
    doc_rank = np.asarray(doc_rank)
    if doc_rank.ndim != 1 or doc_rank.dtype.kind not in "iu":
        raise RankingInputError("doc_rank must be a 1-D integer array [n_docs] (see doc_tie_rank)")
    doc_rank = np.ascontiguousarray(doc_rank, dtype=np.int64)
    if doc_rank.shape[0] >= 2**32 - 1:
        raise RankingInputError("corpora of 2**32 - 1 documents or more are not supported")
    n_queries, width = run.shape
    if qrels.n_queries != n_queries:
        raise RankingInputError(
            f"qrels has {qrels.n_queries} query rows but the run has {n_queries}; row i of the run "
            "must be query i of the qrels"
        )
    rows = np.flatnonzero(np.diff(qrels.indptr) > 0)
    row_start = np.arange(n_queries, dtype=np.int64) * width
    row_cap = np.full(n_queries, width, dtype=np.int64)
    flat_doc = run.reshape(-1)

    def score(order_scores: np.ndarray, wanted_rows: np.ndarray) -> np.ndarray:
        out = np.zeros((n_queries, _nb.N_METRICS, len(ks)))
        status = np.zeros(n_queries, dtype=np.int8)
        _nb.score_rows(
            wanted_rows, row_start, row_cap, flat_doc, False, True,
            np.ascontiguousarray(order_scores).reshape(-1), doc_rank, *qrels._positives,
            np.asarray(ks, dtype=np.int64), out, status,
        )  # fmt: skip
        _raise_on_status(status, wanted_rows, lambda row: f"run row {row}")
        return out

    out = score(scores.astype(np.float32, copy=False), rows)
    if scores.dtype == np.float64 and not float32_exact(scores.reshape(-1)):
        out[:, _nb.MRR] = score(scores, rows)[:, _nb.MRR]
    return _collect(out, rows, ks, None)


# --------------------------------------------------------------------------- dict form


def _dict_form(qrels: QrelsDict, run: RunDict, ks: tuple[int, ...]) -> RankingMetrics:
    run_ids = list(run)
    run_rows = list(run.values())
    judgments = [qrels.get(query_id) for query_id in run_ids]
    evaluated = [i for i, judged in enumerate(judgments) if judged]
    lengths = np.fromiter(map(len, run_rows), dtype=np.int64, count=len(run_rows))
    offsets = np.zeros(len(run_rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    n_entries = int(offsets[-1])
    try:
        scores = np.fromiter(
            chain.from_iterable(row.values() for row in run_rows), dtype=np.float64, count=n_entries
        )
    except (TypeError, ValueError) as error:
        raise RankingInputError(f"run scores must be numbers ({error})") from None
    if np.isnan(scores).any():
        entry = int(np.flatnonzero(np.isnan(scores))[0])
        query = int(np.searchsorted(offsets, entry, side="right")) - 1
        doc_id = list(run_rows[query])[entry - offsets[query]]
        raise RankingInputError(
            f"run[{run_ids[query]!r}][{doc_id!r}] is NaN; scores must be numbers "
            "(pytrec_eval would silently rank NaN last)"
        )
    if not evaluated:
        raise RankingInputError(
            "no query of the run has a judgment in qrels; nothing to score (mteb would divide by 0)"
        )

    # Positive judgments of the evaluated queries, and where the run retrieved them.
    eval_judgments = [judgments[i] for i in evaluated]
    eval_rows = [run_rows[i] for i in evaluated]
    counts = np.fromiter(map(len, eval_judgments), dtype=np.int64, count=len(evaluated))
    judged_ids = list(chain.from_iterable(eval_judgments))
    grades = _grades_array(chain.from_iterable(j.values() for j in eval_judgments), len(judged_ids))
    positive = grades > 0
    positive_row = np.repeat(np.arange(len(evaluated), dtype=np.int64), counts)[positive]
    positive_ids = list(compress(judged_ids, positive.tolist()))
    positive_score = np.array(
        [
            eval_rows[row].get(doc_id, math.nan)
            for row, doc_id in zip(positive_row.tolist(), positive_ids)
        ],
        dtype=np.float64,
    ).reshape(-1)
    row_start = offsets[evaluated]
    row_len = lengths[evaluated]
    position = _nb.locate_by_score(scores, row_start, row_len, positive_row, positive_score)
    for i in np.flatnonzero(position == -2).tolist():  # several entries share the exact score
        row = int(positive_row[i])
        position[i] = row_start[row] + list(eval_rows[row]).index(positive_ids[i])
    absent = position < 0
    position[absent] = n_entries + np.arange(int(absent.sum()), dtype=np.int64)
    order = np.lexsort((position, positive_row))
    pos_indptr = np.zeros(len(evaluated) + 1, dtype=np.int64)
    np.cumsum(np.bincount(positive_row, minlength=len(evaluated)), out=pos_indptr[1:])
    positives = (pos_indptr, position[order], grades[positive][order].astype(np.int64))

    # Tie keys are filled lazily, only for rows where a positive's score is tied (-1 = unknown).
    tie = np.full(n_entries, -1, dtype=np.int64)
    all_rows = np.arange(len(evaluated), dtype=np.int64)
    no_docs = np.empty(0, dtype=np.int64)
    k_array = np.asarray(ks, dtype=np.int64)

    def score(order_scores: np.ndarray) -> np.ndarray:
        out = np.zeros((len(evaluated), _nb.N_METRICS, len(ks)))
        status = np.zeros(len(evaluated), dtype=np.int8)
        wanted = all_rows
        while True:
            _nb.score_rows(
                wanted, row_start, row_len, no_docs, True, False, order_scores, tie, *positives,
                k_array, out, status,
            )  # fmt: skip
            needs_ties = wanted[status[wanted] == _nb.STATUS_NEEDS_TIE_RANK]
            if needs_ties.size == 0 or wanted is not all_rows:
                break
            for row in needs_ties.tolist():
                ids = list(eval_rows[row])
                by_id = sorted(range(len(ids)), key=ids.__getitem__)
                tie[row_start[row] + np.asarray(by_id, dtype=np.int64)] = np.arange(len(ids))
            wanted = needs_ties
        _raise_on_status(status, all_rows, lambda row: f"run[{run_ids[evaluated[row]]!r}]")
        return out

    with np.errstate(over="ignore"):
        scores32 = scores.astype(np.float32)
    out = score(scores32)
    if not float32_exact(scores):
        out[:, _nb.MRR] = score(scores)[:, _nb.MRR]
    query_ids = [run_ids[i] for i in evaluated]
    return _collect(out, all_rows, ks, query_ids, np.asarray(evaluated, dtype=np.int64))


# --------------------------------------------------------------------------- helpers


def _collect(
    out: np.ndarray,
    rows: np.ndarray,
    ks: tuple[int, ...],
    query_ids: list[str] | None,
    query_index: np.ndarray | None = None,
) -> RankingMetrics:
    if rows.size == 0:
        raise RankingInputError(
            "no run row has a judgment in qrels; nothing to score (mteb would divide by 0)"
        )
    per_query: dict[str, np.ndarray] = {}
    means: dict[str, float] = {}
    for prefix in METRIC_PREFIXES:
        for ki, k in enumerate(ks):
            values = np.ascontiguousarray(out[rows, _KERNEL_AXIS[prefix], ki])
            key = f"{prefix}_at_{k}"
            per_query[key] = values
            means[key] = float(_nb.python_sum_mean(values, _PYTHON_SUM_IS_COMPENSATED))
    return RankingMetrics(per_query, means, query_ids, rows if query_index is None else query_index)


_STATUS_MESSAGES = {
    _nb.STATUS_NAN_SCORE: "has a NaN score; scores must be numbers",
    _nb.STATUS_DOC_OUT_OF_RANGE: "has a document index outside [0, n_docs = len(doc_rank))",
    _nb.STATUS_PADDING_NOT_AT_END: "has -1 padding before a real entry; pad only the end of a row",
    _nb.STATUS_DUPLICATE_DOC: "retrieves the same document twice; a run lists each document once",
    _nb.STATUS_TIE_RANK_NOT_UNIQUE: (
        "has two documents with equal score and equal doc_rank; doc_rank must give every document "
        "its own rank (use doc_tie_rank on unique ids)"
    ),
    _nb.STATUS_NEEDS_TIE_RANK: "needed doc_rank to break a tie but found a negative doc_rank",
}


def _raise_on_status(status: np.ndarray, rows: np.ndarray, describe) -> None:
    bad = rows[status[rows] != _nb.STATUS_OK]
    if bad.size:
        row = int(bad[0])
        raise RankingInputError(f"{describe(row)} {_STATUS_MESSAGES[int(status[row])]}")


def _normalise_k_values(k_values: Sequence[int]) -> tuple[int, ...]:
    if isinstance(k_values, (int, np.integer)):
        k_values = (k_values,)
    ks: list[int] = []
    for k in k_values:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise RankingInputError(f"k_values must be positive integers, got {k!r}")
        if int(k) not in ks:
            ks.append(int(k))
    if not ks:
        raise RankingInputError("k_values is empty; give at least one cut-off, e.g. (10,)")
    return tuple(ks)


def _as_int_array(values, name: str, dtype) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise RankingInputError(
            f"{name} must be a 1-D integer array, got {array.dtype} {array.shape}"
        )
    if array.size and dtype == np.int32 and (array.min() < -(2**31) or array.max() >= 2**31):
        raise RankingInputError(f"{name} values must fit in int32")
    return np.ascontiguousarray(array, dtype=dtype)


def _grades_array(values, count: int) -> np.ndarray:
    grades = np.array(list(values), dtype=object if count == 0 else None).reshape(-1)
    if count == 0:
        return np.empty(0, dtype=np.int32)
    if grades.dtype.kind == "b":
        grades = grades.astype(np.int64)
    if grades.dtype.kind == "f" and np.all(np.isfinite(grades)):
        if np.all(grades == np.round(grades)):
            grades = grades.astype(np.int64)
    if grades.dtype.kind not in "iu":
        raise RankingInputError(
            "qrels grades must be integers (pytrec_eval's qrels are {query: {doc: int}})"
        )
    return _as_int_array(grades, "qrels grades", np.int32)
