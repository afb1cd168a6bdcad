"""The hub code path (datasets.load_dataset / get_dataset_config_names) run for real on tiny
Hugging Face-style dataset folders, checked against mteb's own loader and dataset transforms."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from fastmteb.data.loading import TaskDataError, load_raw
from fastmteb.data.transforms import apply_transform
from fastmteb.tasks.registry import get_task


@pytest.fixture(autouse=True)
def _isolated_hf_cache(tmp_path, monkeypatch):
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")


def _hub(name: str, repo) -> object:
    """The task's metadata pointed at a local dataset repo, with no local/bundled copy."""
    return replace(get_task(name), hf_path=str(repo), local_dir=None)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _write_repo(root: Path, configs: dict[str, dict[str, list[dict]]]) -> Path:
    """A dataset repo folder: README.md YAML ``configs`` + one JSONL per (config, split)."""
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split, rows in splits.items():
            rel = f"{config}/{split}.jsonl"
            _write_jsonl(root / rel, rows)
            lines += [f"  - split: {split}", f"    path: {rel}"]
    lines.append("---")
    (root / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _retrieval_repo(
    root: Path, *, with_top_ranked: bool = False, with_instruction: bool = False
) -> Path:
    configs = {
        "corpus": {
            "corpus": [{"_id": 10 + i, "title": f"t{i}", "text": f"doc {i}"} for i in range(5)]
        },
        "queries": {"queries": [{"_id": q, "text": f"query {q}"} for q in ("q1", "q2", "q3")]},
        "default": {
            "test": [
                {"query-id": "q1", "corpus-id": 10, "score": 1},
                {"query-id": "q1", "corpus-id": 11, "score": 2.0},
                {"query-id": "q3", "corpus-id": 12, "score": 0},
            ],
            "dev": [{"query-id": "q2", "corpus-id": 13, "score": 1}],
        },
    }
    if with_top_ranked:
        configs["top_ranked"] = {
            "test": [
                {"query-id": "q1", "corpus-ids": [10, 11, 14]},
                {"query-id": "q3", "corpus-ids": [12, 13]},
            ]
        }
    if with_instruction:
        configs["instruction"] = {
            "test": [{"query-id": q, "instruction": f"do {q}"} for q in ("q1", "q2", "q3")]
        }
    return _write_repo(root, configs)


def test_hub_retrieval_matches_mteb_loader(tmp_path):
    pytest.importorskip("mteb")
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalDatasetLoader

    repo = _retrieval_repo(tmp_path / "repo", with_top_ranked=True, with_instruction=True)
    meta = _hub("SciFact", str(repo))
    ours = load_raw(meta, "default", "test")
    theirs = RetrievalDatasetLoader(str(repo), meta.hf_revision, split="test").load()
    assert ours["corpus"]["id"] == theirs["corpus"]["id"] == [str(10 + i) for i in range(5)]
    assert ours["corpus"]["text"] == theirs["corpus"]["text"]
    assert ours["queries"]["id"] == theirs["queries"]["id"] == ["q1", "q3"]
    assert ours["queries"]["instruction"] == theirs["queries"]["instruction"]
    grouped: dict = {}
    for q, d, s in zip(
        ours["qrels"]["query-id"], ours["qrels"]["corpus-id"], ours["qrels"]["score"], strict=True
    ):
        grouped.setdefault(q, {})[d] = s
    assert grouped == theirs["relevant_docs"]
    assert ours["qrels"].features["score"].dtype == "int32"
    top = dict(zip(ours["top_ranked"]["query-id"], ours["top_ranked"]["corpus-ids"], strict=True))
    assert top == theirs["top_ranked"]


def test_hub_followir_qrel_diff_matches_mteb_loading(tmp_path):
    """FollowIR's qrel_diff config (split "qrel_diff") is read as mteb's task_specific_scores reads it."""
    import datasets

    repo = _retrieval_repo(tmp_path / "repo", with_top_ranked=True)
    diff_rows = [{"query-id": "q1", "corpus-ids": [11, 14]}, {"query-id": "q3", "corpus-ids": []}]
    _write_jsonl(repo / "qrel_diff" / "qrel_diff.jsonl", diff_rows)
    readme = (repo / "README.md").read_text(encoding="utf-8").rstrip("-\n")
    readme += "\n- config_name: qrel_diff\n  data_files:\n  - split: qrel_diff\n    path: qrel_diff/qrel_diff.jsonl\n---\n"
    (repo / "README.md").write_text(readme, encoding="utf-8")
    meta = _hub("Core17InstructionRetrieval", str(repo))
    ours = load_raw(meta, "default", "test")
    theirs = datasets.load_dataset(str(repo), "qrel_diff", split="qrel_diff", revision=meta.hf_revision)
    ours_diff = dict(zip(ours["qrel_diff"]["query-id"], ours["qrel_diff"]["corpus-ids"], strict=True))
    assert ours_diff == {"q1": ["11", "14"], "q3": []}
    assert {r["query-id"]: [str(d) for d in r["corpus-ids"]] for r in theirs} == ours_diff


def test_hub_retrieval_split_fallback_and_missing_split(tmp_path):
    repo = _retrieval_repo(tmp_path / "repo")
    meta = _hub("SciFact", str(repo))
    dev = load_raw(
        meta, "default", "dev"
    )  # corpus/queries have one split each -> used for any split
    assert dev["queries"]["id"] == ["q2"]
    with pytest.raises(TaskDataError, match=r"SciFact.*split 'validation'.*fix"):
        load_raw(meta, "default", "validation")


def test_hub_monolingual_and_pair_unpacking(tmp_path):
    repo = _write_repo(
        tmp_path / "pairs",
        {
            "default": {
                "test": [{"sent1": ["a", "b", "c"], "sent2": ["x", "y", "z"], "labels": [1, 0, 1]}]
            }
        },
    )
    meta = _hub("TwitterURLCorpus", str(repo))
    raw = load_raw(meta, "default", "test")
    assert raw["test"].to_dict() == {
        "sentence1": ["a", "b", "c"],
        "sentence2": ["x", "y", "z"],
        "labels": [1, 0, 1],
    }


def test_hub_multilingual_name_and_fast_loading(tmp_path):
    rows = {
        "train": [{"text": f"t{i}", "label": i % 2} for i in range(6)],
        "validation": [{"text": "v", "label": 0}],
        "test": [{"text": "z", "label": 1}],
    }
    repo = _write_repo(tmp_path / "ml", {"en": rows, "de": {k: v[:1] for k, v in rows.items()}})
    meta = _hub("AmazonCounterfactualClassification", str(repo))
    raw = load_raw(meta, "en", "test")
    assert list(raw) == ["train", "validation", "test"] and len(raw["train"]) == 6

    merged = [
        {"sentence1": f"s{i}", "sentence2": f"t{i}", "score": float(i), "lang": lang}
        for i, lang in enumerate(["en-en", "ko-ko", "en-en", "en-de"])
    ]
    repo = _write_repo(tmp_path / "sts17", {"default": {"test": merged}})
    sts17 = _hub("STS17", str(repo))
    assert sts17.params["fast_loading"]
    raw = load_raw(sts17, "en-en", "test")
    assert raw["test"].to_dict() == {
        "sentence1": ["s0", "s2"],
        "sentence2": ["t0", "t2"],
        "score": [0.0, 2.0],
    }


def test_hub_unreachable_is_a_task_data_error(tmp_path):
    meta = _hub("STS12", str(tmp_path / "does-not-exist"))
    with pytest.raises(TaskDataError, match="STS12.*fix"):
        load_raw(meta, "default", "test")
    derived = replace(get_task("SciFactReranking"), local_dir=None)
    with pytest.raises(TaskDataError, match="derived data"):
        load_raw(derived, "default", "test")


# ---------------------------------------------------------------- transforms vs mteb's own


def _mteb_transformed(name: str, dataset):
    mteb = pytest.importorskip("mteb")
    task = mteb.get_task(name)
    task.dataset = dataset
    task.dataset_transform()
    return task


def _clustering_sets(
    rng: random.Random, n_sets: int, per_set: int, labels: list[str]
) -> DatasetDict:
    rows = {"sentences": [], "labels": []}
    for s in range(n_sets):
        rows["sentences"].append([f"doc {s}-{i} {rng.random():.6f}" for i in range(per_set)])
        rows["labels"].append([rng.choice(labels) for _ in range(per_set)])
    return DatasetDict({"test": Dataset.from_dict(rows)})


@pytest.mark.parametrize(
    ("name", "labels", "per_set"),
    [
        ("StackExchangeClustering.v2", [f"site{i}" for i in range(12)], 700),
        ("StackExchangeClusteringP2P.v2", [f"site{i}" for i in range(40)] + ["solo1", "solo2"], 30),
        (
            "ArXivHierarchicalClusteringS2S",
            ["cs.AI", "cs.CL", "math.PR", "physics", "q-bio.GN"],
            700,
        ),
        ("MedrxivClusteringS2S.v2", ["a", "b", "c"], 20),
    ],
)
def test_clustering_transforms_equal_mteb(name, labels, per_set):
    rng = random.Random(7)
    data = _clustering_sets(rng, 4, per_set, labels)
    if name.endswith("P2P.v2"):  # make two labels singletons
        data = DatasetDict(
            {
                "test": Dataset.from_dict(
                    {
                        "sentences": list(data["test"]["sentences"]) + [["only a", "only b"]],
                        "labels": list(data["test"]["labels"]) + [["solo1", "solo2"]],
                    }
                )
            }
        )
    theirs = _mteb_transformed(name, DatasetDict(data))
    ours = apply_transform(get_task(name), DatasetDict(data))
    assert ours["test"].to_dict() == theirs.dataset["test"].to_dict()


def test_toxic_and_sib200_transforms_equal_mteb():
    rng = random.Random(3)

    def rows(n):
        return Dataset.from_dict(
            {
                "text": [f"c{i}" for i in range(n)],
                "label": [int(rng.random() < 0.1) for _ in range(n)],
            }
        )

    data = DatasetDict({"train": rows(100), "test": rows(3000)})
    theirs = _mteb_transformed("ToxicConversationsClassification", DatasetDict(data))
    ours = apply_transform(get_task("ToxicConversationsClassification"), DatasetDict(data))
    assert len(ours["test"]) == 2048
    assert ours["test"].to_dict() == theirs.dataset["test"].to_dict()

    topics = ["science", "sports", "travel", "health"]

    def split(n, o):
        return Dataset.from_dict(
            {
                "index_id": list(range(o, o + n)),
                "category": [topics[(i * 7) % 4] for i in range(n)],
                "text": [f"s{o + i}" for i in range(n)],
            }
        )

    sib = {
        "eng_Latn": DatasetDict(
            {"train": split(20, 0), "validation": split(5, 20), "test": split(6, 25)}
        )
    }
    mteb = pytest.importorskip("mteb")
    task = mteb.get_task("SIB200ClusteringS2S", eval_splits=["test"], hf_subsets=["eng_Latn"])
    task.dataset = {k: DatasetDict(v) for k, v in sib.items()}
    task.dataset_transform()
    ours = apply_transform(get_task("SIB200ClusteringS2S"), DatasetDict(sib["eng_Latn"]))
    assert ours["test"].to_dict() == task.dataset["eng_Latn"]["test"].to_dict()


def test_old_format_reranking_equals_mteb_converter(tmp_path, monkeypatch):
    mteb = pytest.importorskip("mteb")
    from mteb.abstasks.text import reranking

    class OldFormat(reranking.AbsTaskReranking):
        metadata = mteb.get_task("AskUbuntuDupQuestions").metadata

    monkeypatch.setattr(reranking, "OLD_FORMAT_RERANKING_TASKS", ["AskUbuntuDupQuestions"])
    rows = [
        {"query": "q0", "positive": ["p0"], "negative": ["n0", "n1"]},
        {"query": "dropped", "positive": [], "negative": ["n"]},
        {"query": "q2", "positive": ["p1", "p2"], "negative": ["n2"]},
    ]
    task = OldFormat()
    task.transform_old_dataset_format(DatasetDict({"test": Dataset.from_list(rows)}))
    theirs = task.dataset["default"]["test"]
    folder = tmp_path / "derived" / "SciFactReranking"
    _write_jsonl(folder / "test.jsonl", rows)
    ours = load_raw(get_task("SciFactReranking"), "default", "test", data_dir=tmp_path)
    assert ours["corpus"].to_list() == theirs["corpus"].to_list()
    assert ours["queries"].to_list() == theirs["queries"].to_list()
    assert dict(
        zip(ours["top_ranked"]["query-id"], ours["top_ranked"]["corpus-ids"], strict=True)
    ) == dict(theirs["top_ranked"])
    grouped: dict = {}
    for q, d, s in zip(
        ours["qrels"]["query-id"], ours["qrels"]["corpus-id"], ours["qrels"]["score"], strict=True
    ):
        grouped.setdefault(q, {})[d] = s
    assert grouped == {k: dict(v) for k, v in theirs["relevant_docs"].items()}
