"""Clustering: mteb's v2 ``AbsTaskClustering`` ("fast", the default) and ``AbsTaskClusteringLegacy``.

Params: ``clustering`` ("fast" | "legacy"); fast: ``max_fraction_of_documents_to_embed`` (0.04),
``max_document_to_embed`` (None), ``max_documents_per_cluster`` (16384), ``n_clusters`` (10 rounds),
``k_mean_batch_size`` (512), ``max_depth`` (None).
Requests: ``sentences`` — fast: the sampled documents in sampling order; legacy: the sentences of
every cluster set with more than one label, concatenated in set order.

The fast variant draws from one ``random.Random(42)`` stream: ``sample`` of the documents in
``prepare``, then ``choices`` for every bootstrap round in ``score``. ``prepare`` stores the
generator state after the sample and ``score`` restores a fresh copy of it, so scoring the same
prepared task again draws the same bootstraps (mteb keeps one stream per task object and would
continue it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics.cluster import adjusted_mutual_info_score, v_measure_score

from fastmteb.tasks._common import (
    SEED,
    RowType,
    TaskTypeError,
    column,
    embedding,
    param,
    split_rows,
)
from fastmteb.tasks._mteb_task import MtebTaskReader, has_mteb_base, own_definition, source_contains
from fastmteb.tasks.base import TaskMetadata, TextRequest


@dataclass(frozen=True)
class FastClusteringPrepared:
    sentences: list[str]
    levels: list[tuple[np.ndarray, np.ndarray]]  # per level: (kept rows of ``sentences``, their labels)
    rng_state: tuple  # random.Random state right after the document sample
    rounds: int
    bootstrap_size: int
    batch_size: int


@dataclass(frozen=True)
class LegacyClusteringPrepared:
    sentences: list[str]
    sets: list[tuple[int, int, list[Any]] | None]  # per set: (start, end, labels) or None if <= 1 label


class Clustering(RowType, MtebTaskReader):
    columns = {"sentences": "str", "labels": "labels"}
    name = "Clustering"
    mteb_abstasks = ("AbsTaskClustering", "AbsTaskClusteringLegacy")
    mteb_columns = {
        "sentences": ("input_column_name", "sentences"),
        "labels": ("label_column_name", "labels"),
    }

    def mteb_params(self, task: Any) -> dict[str, Any]:
        if not has_mteb_base(task, "AbsTaskClustering"):
            return {"clustering": "legacy"}
        fraction = task.max_fraction_of_documents_to_embed
        transform = own_definition(task, "dataset_transform")
        if transform is not None and source_contains(transform, "max_fraction_of_documents_to_embed = None"):
            fraction = None  # the transform resets it after loading
        return {
            "clustering": "fast",
            "max_fraction_of_documents_to_embed": fraction,
            "max_document_to_embed": task.max_document_to_embed,
            "max_documents_per_cluster": task.max_documents_per_cluster,
            "n_clusters": task.n_clusters,
            "k_mean_batch_size": task.k_mean_batch_size,
            "max_depth": task.max_depth,
        }

    def schema(self, meta: TaskMetadata, subset: str) -> dict[str, str]:
        if param(meta, "clustering", "fast") == "legacy":  # one row per cluster set
            return {"sentences": "list[str]", "labels": "list"}
        return dict(self.columns)

    def prepare(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str) -> Any:
        rows = split_rows(meta, raw, split)
        variant = param(meta, "clustering", "fast")
        if variant == "legacy":
            return _prepare_legacy(meta, rows, split)
        if variant != "fast":
            raise TaskTypeError(f"task {meta.name!r}: params['clustering'] must be 'fast' or 'legacy', got {variant!r}")
        return _prepare_fast(meta, rows, split)

    def requests(self, prepared: Any) -> dict[str, TextRequest]:
        return {"sentences": TextRequest(prepared.sentences)}

    def score(self, meta: TaskMetadata, prepared: Any, embeddings: Mapping[str, Any]) -> dict:
        vectors = embedding(meta, embeddings, "sentences", len(prepared.sentences))
        if isinstance(prepared, LegacyClusteringPrepared):
            return _score_legacy(prepared, vectors)
        return _score_fast(prepared, vectors)


def _prepare_fast(meta: TaskMetadata, rows: Any, split: str) -> FastClusteringPrepared:
    fraction = param(meta, "max_fraction_of_documents_to_embed", 0.04)
    limit = param(meta, "max_document_to_embed", None)
    if fraction is not None and limit is not None:
        raise TaskTypeError(
            f"task {meta.name!r}: set only one of max_fraction_of_documents_to_embed and max_document_to_embed"
        )
    sentences = column(meta, rows, "sentences", f"split {split!r}")
    labels = column(meta, rows, "labels", f"split {split!r}")
    rng = random.Random(SEED)
    if fraction is not None or limit is not None:
        n_embed = min(len(sentences), int(fraction * len(sentences)) if fraction is not None else limit)
        chosen = rng.sample(range(len(sentences)), k=n_embed)
        sentences = [sentences[i] for i in chosen]
        labels = [labels[i] for i in chosen]
    hierarchy = [label if isinstance(label, list) else [label] for label in labels]
    depth = max(map(len, hierarchy))
    max_depth = param(meta, "max_depth", None)
    if max_depth is not None:
        depth = min(max_depth, depth)
    levels = []
    for level in range(depth):
        # as mteb: missing levels become -1, then numpy coerces the column; the "!= -1" filter
        # only drops them when the labels are numeric (string labels keep "-1" as a class)
        level_labels = np.array([label[level] if len(label) > level else -1 for label in hierarchy])
        valid = np.array([value != -1 for value in level_labels])
        levels.append((np.flatnonzero(valid), level_labels[valid]))
    return FastClusteringPrepared(
        sentences=sentences,
        levels=levels,
        rng_state=rng.getstate(),
        rounds=param(meta, "n_clusters", 10),
        bootstrap_size=param(meta, "max_documents_per_cluster", 16_384),
        batch_size=param(meta, "k_mean_batch_size", 512),
    )


def _score_fast(prepared: FastClusteringPrepared, vectors: np.ndarray) -> dict:
    """Per level and round: MiniBatchKMeans (k = distinct labels, batch 512, k-means++, n_init 1,
    seed 42) on ``max_documents_per_cluster`` rows drawn with replacement; V-measure and AMI.

    Keys: ``v_measures`` {"Level i": [rounds]}, ``v_measure``, ``v_measure_std``, ``ami_scores``,
    ``ami``, ``ami_std`` (mean and population std over all levels x rounds).
    """
    rng = random.Random()
    rng.setstate(prepared.rng_state)
    scores: dict[str, dict[str, list[float]]] = {"v_measure": {}, "ami": {}}
    for level, (rows, labels) in enumerate(prepared.levels):
        level_vectors = vectors[rows]
        kmeans = MiniBatchKMeans(
            n_clusters=np.unique(labels).size,
            batch_size=prepared.batch_size,
            init="k-means++",
            n_init=1,
            random_state=SEED,
        )
        name = f"Level {level}"
        scores["v_measure"][name], scores["ami"][name] = [], []
        for _ in range(prepared.rounds):
            drawn = rng.choices(range(len(rows)), k=prepared.bootstrap_size)
            assignment = kmeans.fit_predict(level_vectors[drawn])
            scores["v_measure"][name].append(float(v_measure_score(labels[drawn], assignment)))
            scores["ami"][name].append(float(adjusted_mutual_info_score(labels[drawn], assignment)))
    out: dict[str, Any] = {}
    for metric, by_level in scores.items():
        flat = [value for values in by_level.values() for value in values]
        out["v_measures" if metric == "v_measure" else f"{metric}_scores"] = by_level
        out[metric] = float(np.mean(flat))
        out[f"{metric}_std"] = float(np.std(flat))
    return out


def _prepare_legacy(meta: TaskMetadata, rows: Any, split: str) -> LegacyClusteringPrepared:
    sentences: list[str] = []
    sets: list[tuple[int, int, list[Any]] | None] = []
    all_labels = column(meta, rows, "labels", f"split {split!r}")
    for texts, labels in zip(column(meta, rows, "sentences", f"split {split!r}"), all_labels):
        if len(set(labels)) <= 1:
            sets.append(None)
            continue
        sets.append((len(sentences), len(sentences) + len(texts), list(labels)))
        sentences.extend(texts)
    return LegacyClusteringPrepared(sentences=sentences, sets=sets)


def _score_legacy(prepared: LegacyClusteringPrepared, vectors: np.ndarray) -> dict:
    """Per cluster set: MiniBatchKMeans (k = distinct labels, batch 500, n_init "auto", seed 42)
    on all its sentences, V-measure of ``labels_``; a set with <= 1 label scores 1.0 unencoded.

    Keys: ``v_measure`` (mean), ``v_measure_std`` (population std), ``v_measures`` (per set).
    """
    v_measures: list[float] = []
    for entry in prepared.sets:
        if entry is None:
            v_measures.append(1.0)
            continue
        start, end, labels = entry
        kmeans = MiniBatchKMeans(
            n_clusters=len(set(labels)), batch_size=500, n_init="auto", compute_labels=True, random_state=SEED
        )
        kmeans.fit(vectors[start:end])
        v_measures.append(v_measure_score(labels, kmeans.labels_.tolist()))
    return {"v_measure": np.mean(v_measures), "v_measure_std": np.std(v_measures), "v_measures": v_measures}
