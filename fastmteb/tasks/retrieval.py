"""Retrieval, Reranking and InstructionRetrieval (mteb ``AbsTaskRetrieval`` + ``RetrievalEvaluator``).

Full-corpus mode: the top ``max(k_values)`` documents per query by cosine similarity
(``kernels.sharded_topk``; ties: document id descending, as mteb's heap and pytrec_eval). Reranking mode
(the data has ``top_ranked``): each query's candidates only, all kept when there are at most
``max(k_values)``. Similarity is the cosine for every encoder (fastmteb's encoders all score by
cosine; a dot-product model would need ``metric="dot"``).

Params: ``ignore_identical_ids`` (False; applied after the top-k cut, as mteb), ``k_values``
((1, 3, 5, 10, 20, 100, 1000)), ``skip_first_result`` (False), ``max_over_subqueries`` (False;
MindSmallReranking), ``task_specific_scores`` (None | "robustness_at_10" | "paired_accuracy").
Requests: ``queries`` (prompt type "query": text, then " " + instruction when there is one; a
conversation — a list of turns — flattened as mteb does, see ``_conversation``) and
``corpus`` (prompt type "document": ``(title + " " + text).strip()``; in reranking mode only the
documents some query ranks).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from fastmteb import kernels
from fastmteb.kernels import Communicator, QrelsCSR
from fastmteb.tasks._common import TaskTypeError, column, param, string_order_rank
from fastmteb.tasks._conversation import conversation_texts, is_conversation
from fastmteb.tasks._mteb_task import MtebTaskReader, own_definition, source_contains
from fastmteb.tasks.base import TaskMetadata, TextRequest

_ABSTENTION_RATES = np.linspace(0, 1, 11)[:-1]
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 spells it trapz
_CONFIDENCES = ("max", "std", "diff1")
# "mteb_hook": any other task_specific_scores, the task's own hook run by tasks.task_scores_bridge
_TASK_SCORES = (None, "max_over_subqueries", "robustness_at_10", "paired_accuracy", "p_mrr", "mteb_hook")
_RUN_BLOCK_ENTRIES = 1 << 24  # entries of one padded run block handed to the ranking kernel


@dataclass(frozen=True)
class Run:
    """A ranked result list per query in CSR form, each query's documents best first."""

    indptr: np.ndarray  # int64 [n_queries + 1]
    docs: np.ndarray  # int64 [nnz] corpus indices
    scores: np.ndarray  # float32 [nnz]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)


@dataclass(frozen=True)
class RetrievalPrepared:
    query_ids: list[str]
    query_texts: list[str]
    corpus_ids: list[str]  # every corpus id (the run's document indices point here)
    corpus_texts: list[str]  # texts of ``corpus_rows`` (the request)
    corpus_rows: np.ndarray  # int64: corpus indices that are encoded, ascending
    tie_rank: np.ndarray  # int64 [n_corpus]: string-order rank of each corpus id
    qrels: QrelsCSR  # rows = queries; documents absent from the corpus get indices >= n_corpus
    identical: np.ndarray | None  # int64 [n_queries]: corpus index of the doc whose id == query id, or -1
    candidate_groups: list[tuple[np.ndarray, np.ndarray]] | None  # reranking: (query rows, corpus indices)
    k_values: tuple[int, ...]
    skip_first_result: bool
    task_scores: str | None
    # p-MRR (FollowIR): per base query id, (row of "{id}-og", row of "{id}-changed", corpus
    # indices of the documents whose relevance the instruction changed; -1 = not in the corpus)
    changed_documents: list[tuple[int, int, np.ndarray]] | None = None
    hook_context: Any = None  # task_scores == "mteb_hook": task_scores_bridge.HookContext


class Retrieval(MtebTaskReader):
    """One object serves the retrieval-family types; ``name`` is the type it was made for."""

    # Runner flag: queries/corpus/qrels data, corpus-sharded search (scored on every rank).
    retrieval = True

    # requests score() accepts as a lazy row source (a spilled pool's ``RowView``, past
    # max_embedding_memory): kernels.sharded_topk streams the corpus from it block by block
    lazy_requests = ("corpus",)

    mteb_abstasks = ("AbsTaskRetrieval",)
    # (text in a task's own task_specific_scores source, fastmteb's scorer, the score key it adds)
    mteb_task_score_markers = (
        ("evaluate_p_mrr_change", "p_mrr", "p-MRR"),
        ("robustness_at_10", "robustness_at_10", "robustness_at_10"),
        ("paired_accuracy", "paired_accuracy", "paired_accuracy"),
    )

    def __init__(self, name: str = "Retrieval") -> None:
        self.name = name

    def mteb_params(self, task: Any) -> dict[str, Any]:
        p: dict[str, Any] = {
            "ignore_identical_ids": task.ignore_identical_ids,
            "k_values": tuple(task.k_values),
            "skip_first_result": task.skip_first_result,
        }
        if task.metadata.main_score.startswith("max_over_subqueries"):
            p["max_over_subqueries"] = True
        extra = own_definition(task, "task_specific_scores")
        kind = self._mteb_task_scores_kind(extra)
        if kind is not None:
            p["task_specific_scores"] = kind
        elif extra is not None and not p.get("max_over_subqueries"):
            # metrics of this task's own (e.g. capped recall, level scores): its own hook is
            # called with fastmteb's results (fastmteb.tasks.task_scores_bridge)
            p["task_specific_scores"] = "mteb_hook"
        return p

    def mteb_unsupported_reason(self, task: Any) -> str | None:
        main_score = task.metadata.main_score
        if main_score not in self._mteb_score_keys(task):
            return f"main score {main_score!r} is a task-specific metric fastmteb does not compute"
        return None

    def _mteb_score_keys(self, task: Any) -> set[str]:
        """The score keys fastmteb's retrieval scorer can give this task."""
        keys = {
            f"{family}_at_{k}"
            for family in ("ndcg", "map", "recall", "precision", "mrr", "hit_rate")
            for k in task.k_values
        }
        keys |= {f"max_over_subqueries_{key}" for key in keys} | {"accuracy"}
        kind = self._mteb_task_scores_kind(own_definition(task, "task_specific_scores"))
        keys |= {key for _, k, key in self.mteb_task_score_markers if k == kind}
        return keys

    def _mteb_task_scores_kind(self, extra: Any) -> str | None:
        if extra is not None:
            for marker, kind, _ in self.mteb_task_score_markers:
                if source_contains(extra, marker):
                    return kind
        return None

    def prepare(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str) -> RetrievalPrepared:
        for part in ("corpus", "queries", "qrels"):
            if part not in raw:
                raise TaskTypeError(
                    f"task {meta.name!r}: retrieval data has no {part!r} (have {sorted(raw)}); "
                    "load_raw must return corpus, queries and qrels for the split"
                )
        corpus_ids = [str(x) for x in column(meta, raw["corpus"], "id", "corpus")]
        corpus_texts = _document_texts(meta, raw["corpus"])
        doc_index = {doc: i for i, doc in enumerate(corpus_ids)}

        qrels: dict[str, dict[str, int]] = defaultdict(dict)
        qrel_columns = [column(meta, raw["qrels"], name, "qrels") for name in ("query-id", "corpus-id", "score")]
        for qid, doc, grade in zip(*qrel_columns):
            qrels[str(qid)][str(doc)] = int(grade)

        query_ids_all = [str(x) for x in column(meta, raw["queries"], "id", "queries")]
        query_texts_all = _query_texts(meta, raw, query_ids_all)
        keep = [i for i, qid in enumerate(query_ids_all) if qrels.get(qid)]
        query_ids = [query_ids_all[i] for i in keep]
        if not query_ids:
            raise TaskTypeError(f"task {meta.name!r}: no query of split {split!r} has relevance judgments")

        missing: dict[str, int] = {}
        indptr, docs, grades = [0], [], []
        for qid in query_ids:
            for doc, grade in qrels[qid].items():
                index = doc_index.get(doc)
                if index is None:  # judged but not in the corpus: still counts in R and the ideal DCG
                    index = missing.setdefault(doc, len(corpus_ids) + len(missing))
                docs.append(index)
                grades.append(grade)
            indptr.append(len(docs))
        qrels_csr = QrelsCSR(
            indptr=np.asarray(indptr, dtype=np.int64),
            doc_index=np.asarray(docs, dtype=np.int64),
            grade=np.asarray(grades, dtype=np.int32),
        )

        groups = None
        if raw.get("top_ranked") is not None:
            groups = _candidate_groups(meta, raw["top_ranked"], query_ids, doc_index)
        if groups is None:
            corpus_rows = np.arange(len(corpus_ids), dtype=np.int64)
        else:
            used = [cands for _, cands in groups]
            corpus_rows = np.unique(np.concatenate(used)) if used else np.zeros(0, dtype=np.int64)
        identical = None
        if param(meta, "ignore_identical_ids", False):
            identical = np.asarray([doc_index.get(qid, -1) for qid in query_ids], dtype=np.int64)
        task_scores = param(meta, "task_specific_scores", None)
        if param(meta, "max_over_subqueries", False):
            task_scores = "max_over_subqueries"
        if task_scores not in _TASK_SCORES:
            raise TaskTypeError(
                f"task {meta.name!r}: unsupported task_specific_scores {task_scores!r}; fastmteb "
                f"implements {[name for name in _TASK_SCORES if name]}"
            )
        changed_documents = None
        if task_scores == "p_mrr":
            changed_documents = _changed_documents(meta, raw, query_ids, doc_index)
        hook_context = None
        if task_scores == "mteb_hook":
            from fastmteb.tasks import task_scores_bridge

            hook_context = task_scores_bridge.context(split, subset, qrels)
        return RetrievalPrepared(
            query_ids=query_ids,
            query_texts=[query_texts_all[i] for i in keep],
            corpus_ids=corpus_ids,
            corpus_texts=[corpus_texts[i] for i in corpus_rows],
            corpus_rows=corpus_rows,
            tie_rank=string_order_rank(corpus_ids),
            qrels=qrels_csr,
            identical=identical,
            candidate_groups=groups,
            k_values=tuple(param(meta, "k_values", kernels.DEFAULT_K_VALUES)),
            skip_first_result=bool(param(meta, "skip_first_result", False)),
            task_scores=task_scores,
            changed_documents=changed_documents,
            hook_context=hook_context,
        )

    def requests(self, prepared: RetrievalPrepared) -> dict[str, TextRequest]:
        return {
            "queries": TextRequest(prepared.query_texts, "query"),
            "corpus": TextRequest(prepared.corpus_texts, "document"),
        }

    def score(
        self,
        meta: TaskMetadata,
        prepared: RetrievalPrepared,
        embeddings: Mapping[str, Any],
        *,
        communicator: Communicator | None = None,
    ) -> dict:
        """mteb's retrieval score dict: ndcg/map/recall (rounded to 5 decimals), accuracy,
        precision, mrr (unrounded), nAUC of every per-query metric, hit_rate, then task extras.

        ``communicator``: the ranks the full-corpus search is split over (the runner passes its
        ``fastmteb.distributed`` context; every rank then calls ``score``); None: this process."""
        queries = _device_embedding(meta, embeddings, "queries", len(prepared.query_ids))
        corpus = _device_embedding(meta, embeddings, "corpus", len(prepared.corpus_rows))
        run = search(prepared, queries, corpus, communicator)
        if prepared.identical is not None:
            run = _drop(run, run.docs == np.repeat(prepared.identical, run.lengths))
        ranked = run  # what mteb hands task_specific_scores: identical ids dropped, first result kept
        if prepared.skip_first_result:
            first = np.zeros(run.docs.shape[0], dtype=bool)
            first[run.indptr[:-1][run.lengths > 0]] = True
            run = _drop(run, first)
        per_query = query_metrics(prepared.qrels, run, prepared.k_values, prepared.tie_rank)
        out = score_dict(per_query, confidences(run), prepared.k_values)
        if prepared.task_scores == "max_over_subqueries":
            merged_run, merged_qrels = _merge_subqueries(prepared, run)
            merged = query_metrics(merged_qrels, merged_run, prepared.k_values, prepared.tie_rank)
            for key, value in score_dict(merged, confidences(merged_run), prepared.k_values).items():
                out[f"max_over_subqueries_{key}"] = value
        elif prepared.task_scores == "robustness_at_10":
            out["robustness_at_10"] = _robustness_at_10(prepared.query_ids, per_query["ndcg_at_10"])
        elif prepared.task_scores == "paired_accuracy":
            out["paired_accuracy"] = _paired_accuracy(prepared.query_ids, per_query["recall_at_1"])
        elif prepared.task_scores == "p_mrr":
            out.update(_followir_scores(prepared, ranked, run, per_query))
        elif prepared.task_scores == "mteb_hook":
            from fastmteb.tasks import task_scores_bridge

            out.update(task_scores_bridge.hook_scores(meta, prepared, ranked, per_query))
        return out


# ---------------------------------------------------------------- text assembly (prepare)


def _document_texts(meta: TaskMetadata, corpus: Any) -> list[str]:
    """mteb's ``_corpus_to_dict``: ``(title + " " + text).strip()`` if the title is non-empty, else ``text.strip()``."""
    texts = column(meta, corpus, "text", "corpus")
    names = corpus.column_names if hasattr(corpus, "column_names") else list(corpus)
    if "title" not in names:
        return [text.strip() for text in texts]
    titles = column(meta, corpus, "title", "corpus")
    return [(title + " " + text).strip() if title else text.strip() for title, text in zip(titles, texts)]


def _query_texts(meta: TaskMetadata, raw: Mapping[str, Any], query_ids: list[str]) -> list[str]:
    """Query text, then ``" " + instruction`` when the query has one (mteb appends, unstripped).

    Conversational queries (lists of turns, mteb tests the first row) are flattened by
    ``_conversation.conversation_texts``, any instruction in front (``_convert_conv_history_to_query``).
    """
    queries = raw["queries"]
    texts = column(meta, queries, "text", "queries")
    conversational = bool(texts) and is_conversation(texts[0])
    if texts and not conversational and not isinstance(texts[0], str):
        raise TaskTypeError(
            f"task {meta.name!r}: query text must be a string or a list of turns, got "
            f"{type(texts[0]).__name__}; fix the queries in the dataset transform"
        )
    names = queries.column_names if hasattr(queries, "column_names") else list(queries)
    if "instruction" in names:
        instructions = column(meta, queries, "instruction", "queries")
    elif raw.get("instruction") is not None:
        by_id = dict(zip(
            (str(x) for x in column(meta, raw["instruction"], "query-id", "instruction")),
            column(meta, raw["instruction"], "instruction", "instruction"),
        ))
        instructions = [by_id.get(qid) for qid in query_ids]
    else:
        instructions = None
    if conversational:
        return conversation_texts(meta.name, texts, instructions)
    if instructions is None:
        return texts
    return [
        text + " " + instruction if instruction is not None else text
        for text, instruction in zip(texts, instructions)
    ]


def _candidate_groups(
    meta: TaskMetadata, top_ranked: Any, query_ids: list[str], doc_index: dict[str, int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Queries grouped by identical candidate lists (MindSmall sub-queries share their impression's),
    so each group is scored with one matrix product. Candidates keep their first occurrence."""
    ranked = dict(zip(
        (str(x) for x in column(meta, top_ranked, "query-id", "top_ranked")),
        column(meta, top_ranked, "corpus-ids", "top_ranked"),
    ))
    by_candidates: dict[tuple[int, ...], list[int]] = {}
    for row, qid in enumerate(query_ids):
        candidates = ranked.get(qid) or []
        try:
            indices = tuple(dict.fromkeys(doc_index[str(doc)] for doc in candidates))
        except KeyError as error:
            raise TaskTypeError(
                f"task {meta.name!r}: top_ranked of query {qid!r} names document {error.args[0]!r}, "
                "which is not in the corpus"
            ) from None
        by_candidates.setdefault(indices, []).append(row)
    return [
        (np.asarray(rows, dtype=np.int64), np.asarray(cands, dtype=np.int64))
        for cands, rows in by_candidates.items()
    ]


# ---------------------------------------------------------------- search (score)


def _device_embedding(meta: TaskMetadata, embeddings: Mapping[str, Any], name: str, n_rows: int) -> Any:
    """Like ``_common.embedding`` but keeps torch tensors where they are (topk runs on their device)."""
    if name not in embeddings:
        raise TaskTypeError(
            f"task {meta.name!r}: embeddings has no entry {name!r} (have {sorted(embeddings)}); "
            "pass one array per request returned by requests()"
        )
    array = embeddings[name]
    if not hasattr(array, "shape"):  # arrays, tensors and lazy row sources (a spilled corpus) stay
        array = np.asarray(array)
    if array.ndim != 2 or array.shape[0] != n_rows:
        raise TaskTypeError(
            f"task {meta.name!r}: embeddings[{name!r}] has shape {tuple(array.shape)}, expected "
            f"[{n_rows}, dim] (one row per text of the request, in order)"
        )
    return array


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _tensor(x: Any) -> torch.Tensor:
    """A tensor as it is; anything else (an array, a spilled corpus) read into a CPU tensor."""
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))


def search(prepared: RetrievalPrepared, queries: Any, corpus: Any,
           communicator: Communicator | None = None) -> Run:
    """The ranked run: top ``max(k_values)`` by cosine, best first, ties by document id descending.

    The full-corpus search is ``kernels.sharded_topk`` (rows normalised as mteb's cos_sim, so the
    float32 scores are mteb's to the bit), split over ``communicator``'s ranks when given;
    reranking is computed whole on every rank.
    """
    top_k = max(prepared.k_values)
    if prepared.candidate_groups is not None:
        return _rerank(prepared, queries, corpus, top_k)
    tie_rank = prepared.tie_rank[prepared.corpus_rows]
    scores, local = kernels.sharded_topk(queries, corpus, top_k, communicator=communicator,
                                         tie_rank=tie_rank)
    scores, local = _numpy(scores), _numpy(local)
    n_queries, width = local.shape
    return Run(
        indptr=np.arange(n_queries + 1, dtype=np.int64) * width,
        docs=prepared.corpus_rows[local.reshape(-1)],
        scores=scores.reshape(-1).astype(np.float32, copy=False),
    )


def _rerank(prepared: RetrievalPrepared, queries: Any, corpus: Any, top_k: int) -> Run:
    """Cosine of each query with its own candidates (mteb: ``model.similarity(q, candidates)``)."""
    q_unit, d_unit = kernels.unit_rows(_tensor(queries)), kernels.unit_rows(_tensor(corpus))
    position = np.full(prepared.tie_rank.shape[0], -1, dtype=np.int64)
    position[prepared.corpus_rows] = np.arange(prepared.corpus_rows.shape[0])
    n_queries = len(prepared.query_ids)
    lengths = np.zeros(n_queries, dtype=np.int64)
    for rows, cands in prepared.candidate_groups:
        lengths[rows] = min(cands.shape[0], top_k)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    docs = np.empty(indptr[-1], dtype=np.int64)
    scores = np.empty(indptr[-1], dtype=np.float32)
    for rows, cands in prepared.candidate_groups:
        if cands.shape[0] == 0:
            continue
        cand_unit = d_unit[torch.as_tensor(position[cands], device=d_unit.device)]
        # one product per query, mteb's float32 shapes exactly: a [2, d] x [d, n] product may round
        # differently from two [1, d] x [d, n] ones and flip a near-tie (FollowIR's "-og"/"-changed"
        # pairs and MindSmall's sub-queries share candidate lists)
        block = np.vstack([_numpy(q_unit[int(row) : int(row) + 1] @ cand_unit.T) for row in rows])
        if np.isnan(block).any():
            raise TaskTypeError("NaN similarity in reranking: the embeddings contain NaN; check the encoder output")
        ties = np.broadcast_to(prepared.tie_rank[cands], block.shape)
        order = np.lexsort((-ties, -block), axis=-1)[:, :top_k]
        kept = order.shape[1]
        targets = indptr[rows][:, None] + np.arange(kept)[None, :]
        docs[targets] = cands[order]
        scores[targets] = np.take_along_axis(block, order, axis=1)
    return Run(indptr=indptr, docs=docs, scores=scores)


def _drop(run: Run, mask: np.ndarray) -> Run:
    """The run without the entries where ``mask`` is True (order kept)."""
    if not mask.any():
        return run
    lengths = run.lengths
    removed = np.bincount(np.repeat(np.arange(lengths.shape[0]), lengths)[mask], minlength=lengths.shape[0])
    indptr = run.indptr - np.concatenate([[0], np.cumsum(removed)])
    return Run(indptr=indptr.astype(np.int64), docs=run.docs[~mask], scores=run.scores[~mask])


# ---------------------------------------------------------------- metrics


def query_metrics(qrels: QrelsCSR, run: Run, k_values: Sequence[int], tie_rank: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query float64 metrics (``ndcg_at_K``, ``map_at_K``, ``recall_at_K``, ``precision_at_K``,
    ``mrr_at_K``, ``hit_rate_at_K``) from ``kernels.ranking_metrics``, one value per query.

    The run goes to the kernel as -1-padded ``[rows, width]`` blocks of at most
    ``_RUN_BLOCK_ENTRIES`` entries, so a long ragged run (MindSmall) never needs one huge array.
    """
    lengths = run.lengths
    n_queries = lengths.shape[0]
    width = max(int(lengths.max()) if n_queries else 0, 1)
    step = max(1, _RUN_BLOCK_ENTRIES // width)
    parts: dict[str, list[np.ndarray]] = defaultdict(list)
    for start in range(0, n_queries, step):
        stop = min(start + step, n_queries)
        rows = stop - start
        docs = np.full((rows, width), -1, dtype=np.int64)
        scores = np.zeros((rows, width), dtype=np.float32)
        local = np.repeat(np.arange(rows), lengths[start:stop])
        row_offset = np.repeat(run.indptr[start:stop] - run.indptr[start], lengths[start:stop])
        column_of = np.arange(local.shape[0]) - row_offset
        entries = slice(run.indptr[start], run.indptr[stop])
        docs[local, column_of] = run.docs[entries]
        scores[local, column_of] = run.scores[entries]
        q0, q1 = qrels.indptr[start], qrels.indptr[stop]
        block_qrels = QrelsCSR(qrels.indptr[start : stop + 1] - q0, qrels.doc_index[q0:q1], qrels.grade[q0:q1])
        result = kernels.ranking_metrics(block_qrels, docs, tuple(k_values), run_scores=scores, doc_rank=tie_rank)
        for name, values in result.per_query.items():
            parts[name].append(np.asarray(values, dtype=np.float64))
    return {name: np.concatenate(values) for name, values in parts.items()}


def confidences(run: Run) -> dict[str, np.ndarray]:
    """mteb's ``confidence_scores`` per query over all returned scores (0 for an empty result):
    ``max`` = top score, ``std`` = population std (float64), ``diff1`` = top1 - top2 (0 if < 2)."""
    lengths = run.lengths
    n = lengths.shape[0]
    values = run.scores.astype(np.float64)
    top = np.zeros(n)
    has = lengths > 0
    top[has] = values[run.indptr[:-1][has]]
    diff1 = np.zeros(n)
    two = lengths > 1
    diff1[two] = top[two] - values[run.indptr[:-1][two] + 1]
    std = np.zeros(n)
    for length in np.unique(lengths[has]):
        rows = np.flatnonzero(lengths == length)
        block = values[run.indptr[rows][:, None] + np.arange(length)[None, :]]
        std[rows] = np.std(block, axis=1)
    return {"max": top, "std": std, "diff1": diff1}


def _abstention_curve(conf: np.ndarray, metric: np.ndarray) -> np.ndarray:
    """mteb's abstention curve (ties in confidence share their group's mean metric, #5613)."""
    if conf.size == 0:
        return np.full(len(_ABSTENTION_RATES), np.nan)
    order = np.argsort(conf, kind="stable")
    sorted_conf, sorted_metric = conf[order], metric[order]
    starts = np.flatnonzero(np.r_[True, sorted_conf[1:] != sorted_conf[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_conf)])
    sorted_metric = np.repeat(np.add.reduceat(sorted_metric, starts) / sizes, sizes)
    curve = np.zeros(len(_ABSTENTION_RATES))
    for i, rate in enumerate(_ABSTENTION_RATES):
        curve[i] = sorted_metric[min(round(rate * order.shape[0]), len(conf) - 1):].mean()
    return curve


def nauc(conf: np.ndarray, metric: np.ndarray, oracle: np.ndarray | None = None) -> float:
    r"""Normalised area under the abstention curve (arXiv 2402.12997), as mteb.

    .. math:: \text{nAUC} = \frac{\text{AUC}(c) - \text{AUC}_\text{flat}}{\text{AUC}(\text{oracle}) - \text{AUC}_\text{flat}}

    with the curves over abstention rates 0, 0.1, ..., 0.9 (trapezoids, as ``sklearn.metrics.auc``)
    and NaN when oracle = flat. ``oracle`` (the metric's own abstention curve) may be passed in when
    several confidences are scored against one metric.
    """
    curve = _abstention_curve(conf, metric)
    oracle = _abstention_curve(metric, metric) if oracle is None else oracle
    oracle_auc = _trapezoid(oracle, _ABSTENTION_RATES)
    flat = oracle[0] * (_ABSTENTION_RATES[-1] - _ABSTENTION_RATES[0])
    if oracle_auc == flat:
        return np.nan
    return (_trapezoid(curve, _ABSTENTION_RATES) - flat) / (oracle_auc - flat)


def _mean(values: np.ndarray) -> float:
    # the builtin sum over Python floats, as mteb (same interpreter, same summation)
    return sum(values.tolist()) / len(values)


def score_dict(per_query: Mapping[str, np.ndarray], conf: Mapping[str, np.ndarray], k_values: Sequence[int]) -> dict:
    """mteb's ``make_score_dict`` key order and rounding from per-query metrics and confidences:
    means of ndcg/map/recall/precision/hit_rate rounded to 5 decimals, ``accuracy`` = recall@1,
    MRR unrounded, nAUC per (metric, k, confidence) for ndcg, map, recall, precision, then mrr."""
    rounded = {
        family: {k: round(_mean(per_query[f"{family}_at_{k}"]), 5) for k in k_values}
        for family in ("ndcg", "map", "recall", "precision", "hit_rate")
    }
    out: dict[str, Any] = {}
    for family in ("ndcg", "map", "recall"):
        out.update({f"{family}_at_{k}": rounded[family][k] for k in k_values})
    out["accuracy"] = rounded["recall"][1]
    out.update({f"precision_at_{k}": rounded["precision"][k] for k in k_values})
    out.update({f"mrr_at_{k}": _mean(per_query[f"mrr_at_{k}"]) for k in k_values})
    for family in ("ndcg", "map", "recall", "precision", "mrr"):
        for k in k_values:
            metric = per_query[f"{family}_at_{k}"]
            oracle = _abstention_curve(metric, metric)
            for name in _CONFIDENCES:
                out[f"nauc_{family}_at_{k}_{name}"] = float(nauc(conf[name], metric, oracle))
    out.update({f"hit_rate_at_{k}": rounded["hit_rate"][k] for k in k_values})
    return out


# ---------------------------------------------------------------- task-specific scores


def _merge_subqueries(prepared: RetrievalPrepared, run: Run) -> tuple[Run, QrelsCSR]:
    """mteb's ``max_over_subqueries``: queries grouped by the id before the last "_"; per group,
    each document's max score over its sub-queries, and the qrels of the group's last sub-query."""
    group_of: dict[str, int] = {}
    groups = np.asarray(
        [group_of.setdefault("_".join(qid.split("_")[:-1]), len(group_of)) for qid in prepared.query_ids],
        dtype=np.int64,
    )
    n_groups = len(group_of)
    last = np.zeros(n_groups, dtype=np.int64)
    last[groups] = np.arange(groups.shape[0])  # the last assignment per group wins
    entry_group = np.repeat(groups, run.lengths)
    # per (group, doc): the highest score first, then keep that first entry
    order = np.lexsort((-run.scores.astype(np.float64), run.docs, entry_group))
    g, d, s = entry_group[order], run.docs[order], run.scores[order]
    first = np.r_[True, (g[1:] != g[:-1]) | (d[1:] != d[:-1])]
    g, d, s = g[first], d[first], s[first]
    ranked = np.lexsort((-prepared.tie_rank[d], -s.astype(np.float64), g))
    g, d, s = g[ranked], d[ranked], s[ranked]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(g, minlength=n_groups))]).astype(np.int64)
    q = prepared.qrels
    starts, ends = q.indptr[last], q.indptr[last + 1]
    take = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]) if n_groups else np.zeros(0, np.int64)
    merged_qrels = QrelsCSR(
        indptr=np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64),
        doc_index=q.doc_index[take],
        grade=q.grade[take],
    )
    return Run(indptr=indptr, docs=d, scores=s), merged_qrels


def _robustness_at_10(query_ids: list[str], ndcg_10: np.ndarray) -> float:
    """InstructIR: per group of ids sharing the prefix before the first "_", the minimum nDCG@10; mean."""
    groups: dict[str, list[float]] = defaultdict(list)
    for qid, value in zip(query_ids, ndcg_10.tolist()):
        groups[qid.split("_")[0]].append(value)
    minima = [min(values) for values in groups.values()]
    return sum(minima) / len(minima)


def _paired_accuracy(query_ids: list[str], recall_1: np.ndarray) -> float:
    """NevIR: a pair ``{key}_q1``/``{key}_q2`` scores 1 when both have recall@1 = 1."""
    recall = dict(zip(query_ids, recall_1.tolist()))
    keys = {qid.split("_")[0] for qid in query_ids}
    paired = [1 if recall[f"{key}_q1"] == 1 and recall[f"{key}_q2"] == 1 else 0 for key in keys]
    return sum(paired) / len(paired)


# ---------------------------------------------------------------- FollowIR (p-MRR)


def _changed_documents(
    meta: TaskMetadata, raw: Mapping[str, Any], query_ids: list[str], doc_index: dict[str, int]
) -> list[tuple[int, int, np.ndarray]]:
    """(og row, changed row, changed documents) per ``qrel_diff`` row whose two queries both exist
    (mteb skips the others with a warning)."""
    if raw.get("qrel_diff") is None:
        raise TaskTypeError(
            f"task {meta.name!r}: p-MRR needs the 'qrel_diff' data (query-id, corpus-ids: the documents "
            "whose relevance the changed instruction altered); the loader found none for this split"
        )
    row_of = {qid: row for row, qid in enumerate(query_ids)}
    changed_by_query = dict(  # a repeated query id: the last row wins, as in mteb's dict
        zip(
            (str(x) for x in column(meta, raw["qrel_diff"], "query-id", "qrel_diff")),
            column(meta, raw["qrel_diff"], "corpus-ids", "qrel_diff"),
        )
    )
    pairs = []
    for qid, docs in changed_by_query.items():
        og, changed = row_of.get(qid + "-og"), row_of.get(qid + "-changed")
        if og is None or changed is None:
            continue
        indices = np.asarray([doc_index.get(str(doc), -1) for doc in docs or []], dtype=np.int64)
        pairs.append((og, changed, indices))
    return pairs


def _ranks_in_run(run: Run, row: int, docs: np.ndarray) -> np.ndarray:
    """1-based rank of each of ``docs`` in query ``row``'s ranked list; absent -> list length + 1."""
    ranked = run.docs[run.indptr[row] : run.indptr[row + 1]]
    ranks = np.full(docs.shape[0], ranked.shape[0] + 1, dtype=np.float64)
    for i, doc in enumerate(docs):
        hit = np.flatnonzero(ranked == doc)
        if hit.shape[0]:
            ranks[i] = hit[0] + 1
    return ranks


def p_mrr(prepared: RetrievalPrepared, run: Run) -> float:
    r"""FollowIR's pairwise MRR change (Weller et al. 2024), mteb's ``calculate_pmrr``.

    For every document :math:`d` whose relevance the changed instruction altered, with rank
    :math:`o` under the original query and :math:`n` under the changed one (absent = list length + 1):

    .. math::
        s_d = \frac{n}{o} - 1 \;\text{if } o \ge n, \qquad s_d = 1 - \frac{o}{n} \;\text{otherwise},

    averaged per query, then over queries; positive when the documents move down.
    """
    per_query = []
    for og_row, changed_row, docs in prepared.changed_documents or []:
        if docs.shape[0] == 0:
            continue
        og = _ranks_in_run(run, og_row, docs)
        new = _ranks_in_run(run, changed_row, docs)
        per_doc = np.where(og >= new, (1 / og) / (1 / new) - 1, 1 - (1 / new) / (1 / og))
        per_query.append(per_doc.mean())
    if not per_query:
        raise TaskTypeError(
            "p-MRR: no qrel_diff query has both its '-og' and '-changed' query with judgments; "
            "check the query ids ('{id}-og', '{id}-changed') against qrel_diff's query-id"
        )
    return float(np.mean(per_query))


def _followir_scores(
    prepared: RetrievalPrepared, ranked: Run, run: Run, per_query: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """``p-MRR`` plus the full metric set of the original and of the changed queries (mteb's
    ``evaluate_p_mrr_change``)."""
    out: dict[str, Any] = {"p-MRR": p_mrr(prepared, ranked)}
    is_og = np.asarray([qid.endswith("-og") for qid in prepared.query_ids])
    conf = confidences(run)
    for name, rows in (("og", np.flatnonzero(is_og)), ("changed", np.flatnonzero(~is_og))):
        subset = {key: values[rows] for key, values in per_query.items()}
        out[name] = score_dict(subset, {key: values[rows] for key, values in conf.items()}, prepared.k_values)
    return out
