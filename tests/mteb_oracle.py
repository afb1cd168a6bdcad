"""mteb 2.26.24 as an oracle: a deterministic fake encoder, mteb tasks fed from memory, and a runner.

Used by the level-1 parity tests (``tests/tasks/test_parity_mteb_*.py``: same embeddings, same data, every
metric equal) and by ``bench/parity_vs_mteb.py`` (level 2: real model, real data, main score within a
tolerance). Nothing here touches the Hugging Face hub.

Data is given in fastmteb's canonical layout (see ``fastmteb.data.loading``):

* retrieval family, one split: ``{"corpus": rows(id, title, text), "queries": rows(id, text),
  "qrels": rows(query-id, corpus-id, score), "top_ranked": rows(query-id, corpus-ids)}`` (top_ranked optional);
  old-format reranking: ``{split: rows(query, positive: list, negative: list)}`` with ``old_format=True``;
* every other type: ``{split: rows}`` with that type's columns.

``rows`` is a ``list[dict]`` or a ``datasets.Dataset``. mteb's own code does the conversion wherever it has
one (its retrieval loader's qrels grouping and query filtering, ``AbsTaskReranking.transform_old_dataset_format``,
the task's ``dataset_transform`` when ``hub_format=True``), so the oracle shares no code with fastmteb.
"""

from __future__ import annotations

import copy
import hashlib
import os
from typing import Any, Iterable, Mapping, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np
from datasets import Dataset, DatasetDict

import mteb
from mteb.abstasks.retrieval_dataset_loaders import RetrievalDatasetLoader
from mteb.abstasks.text import reranking as mteb_reranking
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.results.task_result import TaskResult

RETRIEVAL_FAMILY = ("Retrieval", "Reranking", "InstructionRetrieval", "InstructionReranking", "Any2AnyRetrieval")

# A real mteb task of each type whose class (and its defaults) is used when only a type is named.
TYPE_TEMPLATES: dict[str, str] = {
    "Retrieval": "SciFact",
    "Reranking": "AskUbuntuDupQuestions",
    "Classification": "Banking77Classification",
    "MultilabelClassification": "BrazilianToxicTweetsClassification",
    "Clustering": "BiorxivClusteringP2P.v2",
    "ClusteringLegacy": "TwentyNewsgroupsClustering",
    "PairClassification": "TwitterURLCorpus",
    "STS": "STSBenchmark",
    "Summarization": "SummEvalSummarization.v2",
    "BitextMining": "BornholmBitextMining",
    "Regression": "RuSciBenchCitedCountRegression",
}

FAKE_DIM = 32
_SHARED_VECTORS = 6  # texts whose hash falls in the shared bucket get one of these few vectors -> exact ties
_SHARED_FRACTION_BYTE = 32  # first hash byte below this (about 1 text in 8) -> shared bucket


def fake_embedding(text: str, dim: int = FAKE_DIM) -> np.ndarray:
    """Deterministic float32 vector for ``text``: standard normal, seeded by sha256(text).

    About one text in eight is mapped to one of six shared vectors, so different texts get identical
    embeddings (exact score ties in every task type); equal texts always get equal vectors.
    """
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    if digest[0] < _SHARED_FRACTION_BYTE:
        seed = [dim, digest[1] % _SHARED_VECTORS]
    else:
        seed = [dim, 1_000 + int.from_bytes(digest[1:9], "little")]
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def fake_embeddings(texts: Iterable[str], dim: int = FAKE_DIM) -> np.ndarray:
    """float32 ``[len(texts), dim]``, row i = ``fake_embedding(texts[i])``."""
    rows = [fake_embedding(t, dim) for t in texts]
    return np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)


class FakeEncoder(AbsEncoder):
    """A hash-based encoder that satisfies mteb 2.x's ``EncoderProtocol`` and is a plain callable.

    * mteb: ``encode(DataLoader, *, task_metadata, hf_split, hf_subset, prompt_type)`` reads the ``text``
      column of every batch; ``similarity``/``similarity_pairwise`` are cosine (mteb's ``cos_sim``).
    * fastmteb: ``encoder(list_of_texts) -> float32 [n, dim]``.

    ``calls`` records ``(task_name, hf_split, hf_subset, prompt_type, n_texts)`` for each mteb encode call.
    """

    def __init__(self, dim: int = FAKE_DIM) -> None:
        self.dim = dim
        self.model = None
        self.calls: list[tuple[str, str, str, str | None, int]] = []
        self.mteb_model_meta = ModelMeta.create_empty(
            overwrites={
                "name": "fastmteb-tests/fake-hash-encoder",
                "revision": "1",
                "similarity_fn_name": ScoringFunction.COSINE,
                "embed_dim": dim,
                "framework": [],
            }
        )

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return fake_embeddings(texts, self.dim)

    def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs) -> np.ndarray:
        texts: list[str] = []
        for batch in inputs:
            texts.extend(batch["text"])
        value = getattr(prompt_type, "value", prompt_type)
        self.calls.append((task_metadata.name, hf_split, hf_subset, value, len(texts)))
        return fake_embeddings(texts, self.dim)


# --------------------------------------------------------------------------------------------- tasks


def _as_dataset(rows: Any) -> Dataset:
    if isinstance(rows, Dataset):
        return rows
    rows = list(rows)
    if not rows:
        raise ValueError("mteb_oracle: an empty row list cannot become a datasets.Dataset; give at least one row")
    return Dataset.from_list(rows)


class _InMemoryRetrievalLoader(RetrievalDatasetLoader):
    """mteb's own retrieval loader (qrels cast to str/str/int32, polars grouping, query filtering), fed from memory."""

    def __init__(self, configs: Mapping[str, Dataset]) -> None:  # noqa: D107 - no hub access, unlike the parent
        self._configs = dict(configs)
        self.dataset_configs = list(configs)
        self.config = None
        self.split = "test"
        self.hf_repo = "in-memory"
        self.revision = "in-memory"
        self.trust_remote_code = False

    def _load_dataset_split(self, config: str, num_proc: int | None) -> Dataset:
        return self._configs[config]


def retrieval_split_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """mteb ``RetrievalSplitData`` from canonical rows, built by mteb's own loader code."""
    configs: dict[str, Dataset] = {
        "corpus": _as_dataset(data["corpus"]),
        "queries": _as_dataset(data["queries"]),
        "default": _as_dataset(data["qrels"]),
    }
    if data.get("top_ranked") is not None:
        configs["top_ranked"] = _as_dataset(data["top_ranked"])
    return _InMemoryRetrievalLoader(configs).load()


def _template_class(task_or_type: str) -> tuple[type, str | None]:
    """(mteb task class, type override) for a task name or a type name."""
    if task_or_type in TYPE_TEMPLATES:
        return type(mteb.get_task(TYPE_TEMPLATES[task_or_type])), task_or_type
    return type(mteb.get_task(task_or_type)), None


def mteb_task(
    task: str,
    data: Mapping[str, Any] | None = None,
    *,
    data_by_subset: Mapping[str, Mapping[str, Any]] | None = None,
    params: Mapping[str, Any] | None = None,
    name: str | None = None,
    eval_splits: Sequence[str] | None = None,
    main_score: str | None = None,
    old_format: bool = False,
    hub_format: bool = False,
):
    """An mteb task object whose data comes from memory instead of the hub.

    ``task`` is an mteb task name (its class, metadata and defaults are kept) or a type name from
    ``TYPE_TEMPLATES`` (a real task of that type stands in). ``params`` overrides class attributes by mteb's
    names (``samples_per_label``, ``n_experiments``, ``ignore_identical_ids``, ``max_fraction_of_documents_to_embed``,
    ``min_score``/``max_score``...). Give ``data`` for a single ``default`` subset or ``data_by_subset``.
    ``hub_format=True``: rows are in the hub's raw layout and the task's ``dataset_transform`` runs on them.
    """
    if (data is None) == (data_by_subset is None):
        raise ValueError("mteb_task: give exactly one of data= (default subset) or data_by_subset=")
    cls, type_override = _template_class(task)
    by_subset = dict(data_by_subset) if data_by_subset is not None else {"default": data}
    known = cls.metadata.hf_subsets  # keep mteb's subset order (fast clustering shares one RNG across subsets)
    subsets = sorted(by_subset, key=lambda s: (known.index(s), "") if s in known else (len(known), s))
    multilingual = subsets != ["default"]

    base = cls.metadata
    updates: dict[str, Any] = {"name": name or (base.name if type_override is None else f"Fake{type_override}")}
    if type_override is not None or name is not None:
        updates["superseded_by"] = None
    if type_override is not None or multilingual or base.is_multilingual:
        languages = list(base.hf_subsets_to_langscripts.values())[0]
        updates["eval_langs"] = {s: languages for s in subsets} if multilingual else list(languages)
    if eval_splits is not None:
        updates["eval_splits"] = list(eval_splits)
    if main_score is not None:
        updates["main_score"] = main_score
    metadata = base.model_copy(update=updates)
    attrs: dict[str, Any] = {"metadata": metadata, **dict(params or {})}
    if old_format:  # AbsTaskReranking's converter calls self._process_example
        attrs["_process_example"] = mteb_reranking.AbsTaskReranking._process_example
    task_cls = type(f"Oracle{cls.__name__}", (cls,), attrs)
    if old_format and metadata.name not in mteb_reranking.OLD_FORMAT_RERANKING_TASKS:
        mteb_reranking.OLD_FORMAT_RERANKING_TASKS.append(metadata.name)

    obj = task_cls()
    is_retrieval = metadata.type in RETRIEVAL_FAMILY
    if old_format:
        given = {s: DatasetDict({sp: _as_dataset(rows) for sp, rows in d.items()}) for s, d in by_subset.items()}
        mteb_reranking.AbsTaskReranking.transform_old_dataset_format(obj, given if multilingual else given["default"])
        obj.dataset = {s: dict(splits) for s, splits in obj.dataset.items()}
    elif is_retrieval:
        split = (eval_splits or metadata.eval_splits)[0]
        obj.dataset = {s: {split: retrieval_split_data(d)} for s, d in by_subset.items()}
    else:
        built = {s: DatasetDict({sp: _as_dataset(rows) for sp, rows in d.items()}) for s, d in by_subset.items()}
        obj.dataset = built if multilingual or metadata.is_multilingual else built["default"]
        if hub_format:
            obj.dataset_transform()
    obj.data_loaded = True
    return obj


# --------------------------------------------------------------------------------------------- running


def _thread_limit(single_thread: bool):
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1) if single_thread else nullcontext()


def round_like_mteb(scores: Any) -> Any:
    """A deep copy of ``scores`` with every float rounded to 6 decimals, as ``TaskResult.to_disk`` does."""
    wrapped = {"scores": copy.deepcopy(scores)}
    TaskResult._round_scores(TaskResult.model_construct(), wrapped, 6)
    return wrapped["scores"]


def run_mteb(
    task,
    model,
    *,
    batch_size: int = 32,
    rounded: bool = True,
    show_progress_bar: bool = False,
    single_thread: bool = True,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{split: {hf_subset: scores}}`` as ``mteb.evaluate`` computes them (no result cache, no hub).

    ``scores`` is mteb's per-subset dict with ``main_score``, ``hf_subset`` and ``languages`` removed, in mteb's
    key order; ``rounded=True`` applies the 6-decimal rounding mteb applies when it saves results.
    ``single_thread=True`` caps BLAS/OpenMP pools at one thread (sklearn's k-means and LR are 20-40x slower
    with oversubscribed OpenMP threads on a busy 2-core machine); the bench passes False.
    """
    with _thread_limit(single_thread):
        result = mteb.evaluate(
            model,
            task,
            cache=None,
            co2_tracker=False,
            show_progress_bar=show_progress_bar,
            encode_kwargs={"batch_size": batch_size, "show_progress_bar": show_progress_bar},
            overwrite_strategy="always",
        )
    if result.exceptions:
        raise RuntimeError(f"mteb failed on {task.metadata.name}: {result.exceptions}")
    (task_result,) = result.task_results
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for split, entries in task_result.scores.items():
        for entry in entries:
            scores = {k: v for k, v in entry.items() if k not in ("main_score", "hf_subset", "languages", "mteb_version")}
            scores = round_like_mteb(scores) if rounded else scores
            out.setdefault(split, {})[entry["hf_subset"]] = scores
    run_mteb.last_result = task_result  # type: ignore[attr-defined]
    return out


# --------------------------------------------------------------------------------------------- comparing


def diff_scores(expected: Any, actual: Any, *, tol: float = 1e-6, path: str = "") -> list[str]:
    """Every mismatch between mteb's ``expected`` scores and ``actual`` (keys, lengths, values; NaN == NaN)."""
    problems: list[str] = []
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{path}: expected a dict, got {type(actual).__name__}"]
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing:
            problems.append(f"{path}: missing keys {missing}")
        if extra:
            problems.append(f"{path}: unexpected keys {extra}")
        for key in expected:
            if key in actual:
                problems += diff_scores(expected[key], actual[key], tol=tol, path=f"{path}.{key}")
        return problems
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            return [f"{path}: expected a list of {len(expected)}, got {actual!r:.80}"]
        for i, (e, a) in enumerate(zip(expected, actual)):
            problems += diff_scores(e, a, tol=tol, path=f"{path}[{i}]")
        return problems
    if expected is None or actual is None:
        return [] if expected is actual else [f"{path}: expected {expected!r}, got {actual!r}"]
    try:
        e, a = float(expected), float(actual)
    except (TypeError, ValueError):
        return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]
    if np.isnan(e) or np.isnan(a):
        return [] if np.isnan(e) and np.isnan(a) else [f"{path}: expected {e!r}, got {a!r}"]
    return [] if abs(e - a) <= tol else [f"{path}: expected {e!r}, got {a!r} (delta {a - e:+.3g})"]


# --------------------------------------------------------------------------------------------- fastmteb side


def fastmteb_meta(task, *, params: Mapping[str, Any] | None = None, local_dir: str | None = None):
    """fastmteb ``TaskMetadata`` mirroring an mteb task built by ``mteb_task`` (name, type, splits, subsets, params).

    ``params`` are the same mteb-named overrides given to ``mteb_task``, so both sides run one configuration.
    """
    from fastmteb.tasks.base import TaskMetadata

    m = task.metadata
    return TaskMetadata(
        name=m.name,
        type=m.type,
        hf_path="oracle/in-memory",
        hf_revision="0",
        main_score=m.main_score,
        eval_splits=tuple(m.eval_splits),
        hf_subsets=tuple(task.hf_subsets),
        multilingual=m.is_multilingual,
        local_dir=local_dir,
        params=dict(params or {}),
    )


def fastmteb_raw(data: Mapping[str, Any]) -> dict[str, Dataset]:
    """Canonical rows (lists of dicts) as ``datasets.Dataset`` values, qrels scores cast to int32 as the loader does."""
    from datasets import Value

    raw = {key: _as_dataset(rows) for key, rows in data.items() if rows is not None}
    if "qrels" in raw:
        raw["qrels"] = raw["qrels"].cast_column("score", Value("int32"))
    return raw


def fastmteb_scores(meta, raw: Mapping[str, Any], split: str = "test", subset: str = "default", encoder=None) -> dict:
    """fastmteb's score dict for one (split, subset): prepare -> requests -> embed with ``encoder`` -> score."""
    from fastmteb.tasks.types import get_task_type

    encoder = encoder or FakeEncoder()
    task_type = get_task_type(meta.type)
    with _thread_limit(True):
        prepared = task_type.prepare(meta, raw, split, subset)
        requests = task_type.requests(prepared)
        embeddings = {name: encoder(list(req.texts)) for name, req in requests.items()}
        return task_type.score(meta, prepared, embeddings)


def assert_same_scores(expected: Mapping[str, Any], actual: Mapping[str, Any], *, tol: float = 1e-6) -> None:
    """Every key mteb reports, in mteb's order, within ``tol`` after mteb's 6-decimal rounding (NaN == NaN)."""
    expected_r, actual_r = round_like_mteb(dict(expected)), round_like_mteb(dict(actual))
    problems = diff_scores(expected_r, actual_r, tol=tol + 1e-12)
    if not problems and list(expected_r) != list(actual_r):
        problems.append(f"key order differs: mteb {list(expected_r)[:8]}... fastmteb {list(actual_r)[:8]}...")
    if problems:
        shown = "\n  ".join(problems[:25])
        raise AssertionError(f"{len(problems)} mismatch(es) against mteb:\n  {shown}")


# --------------------------------------------------------------------------------------------- test data

_WORDS = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
    "upsilon phi chi psi omega river stone cloud light night market engine signal garden winter"
).split()


def sentence(rng: np.random.Generator, n_words: tuple[int, int] = (2, 7)) -> str:
    """A random sentence from a small vocabulary (so exact duplicates also occur naturally)."""
    k = int(rng.integers(n_words[0], n_words[1] + 1))
    return " ".join(rng.choice(_WORDS, size=k))
