"""The device-resident run (``resident=True``) scores every task type as the numpy path does.

The same prepared tasks (the shared data, subsampled, plus tiny local Regression and
MultilabelClassification tasks) are embedded by a tiny BERT and scored twice: on the numpy path
(``resident=False``, Numba kernels) and resident on the CPU under ``kernels.use_backend("triton")``,
which sends every tensor down the GPU code path (Triton top-k, interpreted here; torch
correlations and threshold sweeps; torch paired scores). A spy on each task type checks that the
resident run hands ``score`` torch tensors and that the Triton search runs.

On the CPU the resident path encodes the same batches, so the vectors are bitwise equal; the
scores then differ only where the device path sums in another order (float32 paired distances in
torch instead of sklearn's einsum, the Triton tile products instead of one BLAS call, float64
correlation sums in torch): a few ulps of float32, far below 1e-6 on every metric unless two
scores are near-tied (the data here has no such tie, and the assertion would show one).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import fastmteb
from fastmteb import kernels
from fastmteb.callbacks import FixedSubsample
from fastmteb.encoding import load_encoder
from fastmteb.kernels._triton import search as triton_search
from fastmteb.runner import prepare_run
from fastmteb.tasks import types as task_types
from fastmteb.tasks.base import TaskMetadata

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
TOLERANCE = 1e-6  # see the module docstring

# (shared task, the subsets it is narrowed to): one task per type the shared data has
SHARED_TASKS = {
    "SciFact": None,  # Retrieval
    "SciFactReranking": None,  # Reranking
    "BIOSSES": None,  # STS
    "TwitterURLCorpus": None,  # PairClassification
    "SummEvalSummarization.v2": None,  # Summarization
    "Tatoeba": ("deu-eng",),  # BitextMining
    "SIB200Classification": ("eng_Latn",),  # Classification
    "SIB200ClusteringS2S": ("eng_Latn",),  # Clustering
}


def _local_task(name: str, type_name: str, main_score: str, **params: Any) -> TaskMetadata:
    return TaskMetadata(
        name=name, type=type_name, hf_path=f"local/{name}", hf_revision="0",
        main_score=main_score, eval_splits=("test",), languages={"default": ("eng-Latn",)},
        local_dir=name, params=params,
    )


def _write_local_tasks(data_dir: Path) -> list[TaskMetadata]:
    """Regression and MultilabelClassification, which the shared data has no task of."""
    words = ["red", "green", "blue", "cat", "dog", "fish", "runs", "sleeps", "eats", "big"]
    rng = np.random.default_rng(0)

    def sentence() -> tuple[str, list[int]]:
        picked = rng.choice(len(words), size=4, replace=False)
        return " ".join(words[i] for i in picked), sorted(int(i) % 3 for i in picked[:2])

    for name, row in (
        ("TinyRegression", lambda text, labels: {"text": text, "value": float(sum(labels) + len(text) % 3)}),
        ("TinyMultilabel", lambda text, labels: {"text": text, "label": sorted(set(labels))}),
    ):
        folder = data_dir / name
        folder.mkdir(parents=True)
        for split, n in (("train", 60), ("test", 20)):
            rows = [row(*sentence()) for _ in range(n)]
            (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [
        _local_task("TinyRegression", "Regression", "kendalltau", n_experiments=2),
        _local_task("TinyMultilabel", "MultilabelClassification", "accuracy", n_experiments=2,
                    samples_per_label=4),
    ]


class _ScoreSpy:
    """A task type whose ``score`` records the types of its inputs and its raw metrics."""

    def __init__(self, inner: Any, seen: list) -> None:
        self._inner, self._seen = inner, seen

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def score(self, meta: TaskMetadata, prepared: Any, embeddings: Any, **kwargs: Any) -> dict:
        out = self._inner.score(meta, prepared, embeddings, **kwargs)
        self._seen.append((meta.name, {type(v) for v in embeddings.values()}, out))
        return out


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Every number of a (nested) score dict under a dotted key."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): value}


@pytest.fixture(scope="module")
def prepared_run(tiny_bert, tmp_path_factory, shared_data):
    data_dir = tmp_path_factory.mktemp("resident-data")
    for name in SHARED_TASKS:  # the shared tasks, beside the two local ones
        folder = "SummEval" if name == "SummEvalSummarization.v2" else name
        if name != "SciFactReranking":
            (data_dir / folder).symlink_to(shared_data / folder)
    (data_dir / "derived").symlink_to(shared_data / "derived")
    metas = [fastmteb.get_task(name) for name in SHARED_TASKS]
    metas = [m.narrowed(m.eval_splits, SHARED_TASKS[m.name] or m.hf_subsets) for m in metas]
    metas += _write_local_tasks(data_dir)
    seen: list = []
    patched = {name: _ScoreSpy(tt, seen) for name, tt in task_types.TASK_TYPE_OBJECTS.items()}
    with pytest.MonkeyPatch.context() as patch:
        for name, spy in patched.items():
            patch.setitem(task_types.TASK_TYPE_OBJECTS, name, spy)
        encoder = load_encoder(str(tiny_bert), device="cpu", dtype="float32")
        run = prepare_run(encoder, metas, data_dir=data_dir,
                          raw_transform=FixedSubsample(max_samples=40, max_corpus=150))
    assert not run.failures, run.failures
    return run, seen


def _scores(run: Any, seen: list) -> dict[str, tuple[set, dict]]:
    seen.clear()
    failures = [outcome for _, outcome in run.scored() if isinstance(outcome, fastmteb.TaskFailure)]
    assert not failures, [f.error for f in failures]
    return {name: (kinds, out) for name, kinds, out in seen}


@pytest.mark.skipif(not INTERPRETED, reason="the Triton path on CPU tensors needs TRITON_INTERPRET=1")
def test_resident_run_scores_every_task_type_as_the_numpy_path(prepared_run, monkeypatch):
    run, seen = prepared_run
    types = {task.meta.type for task in run.tasks}
    assert types >= {"Retrieval", "Reranking", "STS", "PairClassification", "Summarization",
                     "BitextMining", "Classification", "MultilabelClassification", "Regression",
                     "Clustering"}

    numpy_vectors = run.embed(reencode=True, resident=False)
    assert isinstance(numpy_vectors, np.ndarray)
    numpy_vectors = numpy_vectors.copy()
    expected = _scores(run, seen)

    triton_calls = []
    real_topk = triton_search.topk_cuda
    monkeypatch.setattr(triton_search, "topk_cuda",
                        lambda *a, **k: triton_calls.append(a[0].device) or real_topk(*a, **k))
    vectors = run.embed(reencode=True, resident=True)
    assert isinstance(vectors, torch.Tensor) and vectors.dtype == torch.float32
    assert torch.equal(vectors, torch.from_numpy(numpy_vectors))  # same batches: bitwise
    with kernels.use_backend("triton"):
        got = _scores(run, seen)

    assert set(got) == set(expected) == {task.meta.name for task in run.tasks}
    for name, (kinds, out) in got.items():
        assert kinds == {torch.Tensor}, (name, kinds)
        assert expected[name][1].keys() == out.keys(), name
        want, have = _flat(expected[name][1]), _flat(out)
        for key, value in want.items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(have[key]), (name, key)
            elif isinstance(value, (int, float)) and value is not None:
                assert have[key] == pytest.approx(value, abs=TOLERANCE, rel=0), (name, key)
            else:
                assert have[key] == value, (name, key)
    # retrieval, reranking's candidates are scored in torch; SciFact's and Tatoeba's searches
    # went through Triton on the CPU tensors
    assert triton_calls and all(device.type == "cpu" for device in triton_calls)
    assert all(kinds == {np.ndarray} for kinds, _ in expected.values())


def test_auto_is_the_numpy_path_on_the_cpu(prepared_run):
    run, _ = prepared_run
    assert isinstance(run.embed(), np.ndarray)  # resident=None: numpy for a CPU encoder
    assert isinstance(run.embed(resident=True), torch.Tensor)
    assert isinstance(run.embed(resident=None), np.ndarray)  # moved back once, not re-encoded


def test_triton_backend_on_cpu_tensors_needs_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    queries = torch.eye(3)
    with kernels.use_backend("triton"), pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        kernels.topk(queries, queries, 1)
    scores, indices = kernels.topk(queries, queries, 1)  # auto: Numba for CPU tensors
    assert indices[:, 0].tolist() == [0, 1, 2] and isinstance(scores, torch.Tensor)
    with pytest.raises(ValueError, match="unknown kernel backend"):
        with kernels.use_backend("cuda"):
            pass
