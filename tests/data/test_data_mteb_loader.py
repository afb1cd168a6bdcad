"""mteb's own ``load_data()`` path, offline: ``datasets.load_dataset`` (and the hub listing calls)
are replaced by a reader of local rows shaped as the hub stores them, so mteb's loaders, custom
``load_data`` methods and ``dataset_transform`` run for real. The rows fastmteb gets from that path
must equal what the ``--data-dir`` path gives on the same rows (../shared/data, or synthetic rows
for Regression and MultilabelClassification), for one task of each type and for a task with its own
``load_data`` (TurkicClassification).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

mteb = pytest.importorskip("mteb")

from datasets import Dataset, DatasetDict

from fastmteb.data.loading import load_raw, load_raw_with_mteb
from fastmteb.data.transforms import column_values, stratified_subsampling
from fastmteb.tasks.registry import get_task


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _ds(rows: list[dict], rename: dict[str, str] | None = None, drop=()) -> Dataset:
    rename = rename or {}
    columns = [c for c in rows[0] if c not in drop]
    return Dataset.from_dict({rename.get(c, c): [r[c] for r in rows] for c in columns})


class FakeHub:
    """{path: {config: DatasetDict}} served through the functions mteb and datasets call."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, DatasetDict]] = {}
        self.calls: list[tuple] = []

    def add(self, path: str, config: str, splits: dict[str, Dataset]) -> None:
        self.repos.setdefault(path, {})[config] = DatasetDict(splits)

    def load_dataset(self, path, name=None, split=None, revision=None, **kwargs):
        self.calls.append((path, name, split))
        dd = self.repos[path][name or "default"]
        return dd[split] if split is not None else dd

    def config_names(self, path, revision=None, **kwargs):
        return list(self.repos[path])

    def split_names(self, path, config_name=None, revision=None, **kwargs):
        return list(self.repos[path][config_name or "default"])


@pytest.fixture
def hub(monkeypatch):
    import datasets
    import mteb.abstasks.retrieval_dataset_loaders as retrieval_loaders
    from mteb.abstasks import abstask

    from fastmteb.data import loading

    fake = FakeHub()
    monkeypatch.setattr(datasets, "load_dataset", fake.load_dataset)
    monkeypatch.setattr(abstask, "load_dataset", fake.load_dataset)
    monkeypatch.setattr(retrieval_loaders, "load_dataset", fake.load_dataset)
    monkeypatch.setattr(retrieval_loaders, "get_dataset_config_names", fake.config_names)
    monkeypatch.setattr(retrieval_loaders, "get_dataset_split_names", fake.split_names)
    loading._MTEB_LOADED.clear()
    yield fake
    loading._MTEB_LOADED.clear()


def _assert_same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].column_names == want[key].column_names, key
        for column in want[key].column_names:
            assert column_values(got[key], column) == column_values(want[key], column), (
                key,
                column,
            )


def test_sts(hub, shared_data, tmp_path):
    # Assin2STS's own dataset_transform renames premise/hypothesis/relatedness_score.
    source = shared_data / "STSBenchmark" / "test.jsonl"
    meta = get_task("Assin2STS")
    assert meta.mteb_loader
    renamed = {"sentence1": "premise", "sentence2": "hypothesis", "score": "relatedness_score"}
    hub.add(meta.hf_path, "default", {"test": _ds(_rows(source), renamed)})
    got = load_raw(meta, "default", "test")  # an mteb_loader task without data_dir: mteb's path
    assert hub.calls
    (tmp_path / "Assin2STS").mkdir()
    (tmp_path / "Assin2STS" / "test.jsonl").write_bytes(source.read_bytes())
    _assert_same(got, load_raw(meta, "default", "test", data_dir=tmp_path))


def test_classification(hub, shared_data):
    meta = get_task("Banking77Classification")
    folder = shared_data / "Banking77Classification"
    hub.add(
        meta.hf_path, "default", {s: _ds(_rows(folder / f"{s}.jsonl")) for s in ("train", "test")}
    )
    _assert_same(
        load_raw_with_mteb(meta, "default", "test"),
        load_raw(meta, "default", "test", data_dir=shared_data),
    )


def test_clustering_runs_mteb_dataset_transform(hub, shared_data):
    # SIB200ClusteringS2S: mteb concatenates train+validation+test and class-encodes the labels.
    meta = get_task("SIB200ClusteringS2S")
    folder = shared_data / "SIB200Classification" / "eng_Latn"
    splits = {
        s: _ds(_rows(folder / f"{s}.jsonl"), {"label": "category"})
        for s in ("train", "validation", "test")
    }
    hub.add(meta.hf_path, "eng_Latn", splits)
    _assert_same(
        load_raw_with_mteb(meta, "eng_Latn", "test"),
        load_raw(meta, "eng_Latn", "test", data_dir=shared_data),
    )


def test_pair_classification(hub, shared_data):
    meta = get_task("TwitterURLCorpus")
    rows = _rows(shared_data / "TwitterURLCorpus" / "test.jsonl")
    hub.add(
        meta.hf_path,
        "default",
        {"test": _ds(rows, {"sentence1": "sent1", "sentence2": "sent2", "label": "labels"})},
    )
    _assert_same(
        load_raw_with_mteb(meta, "default", "test"),
        load_raw(meta, "default", "test", data_dir=shared_data),
    )


def test_retrieval(hub, shared_data):
    meta = get_task("SciFact")
    folder = shared_data / "SciFact"
    qrels_lines = (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]
    qrels = [line.split("\t") for line in qrels_lines if line]
    hub.add(meta.hf_path, "corpus", {"corpus": _ds(_rows(folder / "corpus.jsonl"))})
    hub.add(meta.hf_path, "queries", {"queries": _ds(_rows(folder / "queries.jsonl"))})
    hub.add(
        meta.hf_path,
        "default",
        {
            "test": Dataset.from_dict(
                {
                    "query-id": [q for q, _, _ in qrels],
                    "corpus-id": [d for _, d, _ in qrels],
                    "score": [int(s) for _, _, s in qrels],
                }
            )
        },
    )
    got = load_raw_with_mteb(meta, "default", "test")
    want = load_raw(meta, "default", "test", data_dir=shared_data)
    for key in ("corpus", "queries"):
        for column in ("id", "text"):
            assert column_values(got[key], column) == column_values(want[key], column)
    pairs = lambda raw: sorted(
        zip(
            *(column_values(raw["qrels"], c) for c in ("query-id", "corpus-id", "score")),
            strict=True,
        )
    )
    assert pairs(got) == pairs(want)
    assert column_values(got["corpus"], "title") == column_values(want["corpus"], "title")


def test_summarization(hub, shared_data):
    meta = get_task("SummEvalSummarization.v2")
    hub.add(meta.hf_path, "default", {"test": _ds(_rows(shared_data / "SummEval" / "test.jsonl"))})
    _assert_same(
        load_raw_with_mteb(meta, "default", "test"),
        load_raw(meta, "default", "test", data_dir=shared_data),
    )


def test_bitext_mining_fast_loading(hub, shared_data):
    # Tatoeba loads every subset from one config with a ``lang`` column (mteb's fast_load).
    meta = get_task("Tatoeba")
    rows = []
    for subset in ("deu-eng", "fra-eng"):
        rows += [
            {**r, "lang": subset} for r in _rows(shared_data / "Tatoeba" / subset / "test.jsonl")
        ]
    hub.add(meta.hf_path, "default", {"test": _ds(rows)})
    for subset in ("deu-eng", "fra-eng"):
        _assert_same(
            load_raw_with_mteb(meta, subset, "test"),
            load_raw(meta, subset, "test", data_dir=shared_data),
        )
    assert len(hub.calls) == 1  # every subset comes from one load


def test_custom_load_data(hub, shared_data, tmp_path):
    """TurkicClassification has its own load_data: one config for three languages, columns
    renamed, labels with under 20 rows dropped, a stratified 2048-row subsample of ``train``."""
    meta = get_task("TurkicClassification")
    assert meta.mteb_loader and meta.eval_splits == ("train",)
    banking = _rows(shared_data / "Banking77Classification" / "test.jsonl")  # 3,080 rows
    hub_rows = [
        {"processed_text": r["text"], "category": r["label"], "lang": lang}
        for lang in ("ky", "kk")
        for r in banking
    ]
    hub.add(meta.hf_path, "default", {"train": _ds(hub_rows)})
    got = load_raw(meta, "ky", "train")
    assert len(got["train"]) == 2048

    # The same rows as a --data-dir folder: fastmteb's own stratified subsample of the filtered
    # rows must pick exactly the rows mteb's did.
    ky = DatasetDict({"train": _ds(banking)})
    expected = stratified_subsampling(ky, splits=("train",), label="label")["train"]
    names = expected.features["label"].names
    folder = tmp_path / "TurkicClassification" / "ky"
    folder.mkdir(parents=True)
    with (folder / "train.jsonl").open("w", encoding="utf-8") as handle:
        for text, label in zip(
            column_values(expected, "text"), column_values(expected, "label"), strict=True
        ):
            handle.write(json.dumps({"text": text, "label": names[label]}) + "\n")
    want = load_raw(meta, "ky", "train", data_dir=tmp_path)
    assert column_values(got["train"], "text") == column_values(want["train"], "text")
    got_labels = column_values(got["train"], "label")
    got_names = got["train"].features["label"].names
    assert [got_names[i] for i in got_labels] == column_values(want["train"], "label")


def test_task_column_names_are_renamed_on_every_path(hub, shared_data, tmp_path):
    """UkrSedUASmallSTSv1's class reads ``query``/``passage``: hub rows with those names load
    through fastmteb's own loader, and mteb's, into the canonical sentence1/sentence2."""
    meta = get_task("UkrSedUASmallSTSv1")
    assert meta.params["columns"] == {"sentence1": "query", "sentence2": "passage"}
    assert not meta.mteb_loader
    rows = _rows(shared_data / "STSBenchmark" / "test.jsonl")[:50]
    hub.add(
        meta.hf_path,
        "default",
        {s: _ds(rows, {"sentence1": "query", "sentence2": "passage"}) for s in meta.eval_splits},
    )
    split = meta.eval_splits[0]
    via_fastmteb = load_raw(meta, "default", split)
    via_mteb = load_raw_with_mteb(meta, "default", split)
    (tmp_path / meta.name).mkdir()
    (tmp_path / meta.name / f"{split}.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    local = load_raw(meta, "default", split, data_dir=tmp_path)
    _assert_same(via_fastmteb, local)
    _assert_same(via_mteb, local)


def test_parallel_bitext_loads_once_for_every_language_pair(hub, shared_data):
    """NTREX-style tasks keep every language as a column of one dataset; mteb's own loader reads
    it once and each "xx-yy" subset takes its two columns."""
    meta = get_task("NTREXBitextMining")
    assert meta.params["parallel_subsets"] and meta.mteb_loader
    subset = meta.hf_subsets[0]
    first, second = subset.split("-")
    rows = _rows(shared_data / "Tatoeba" / "deu-eng" / "test.jsonl")[:40]
    languages = {lang for s in meta.hf_subsets[:3] for lang in s.split("-")}
    columns = {lang: [r["sentence1"] + f" {lang}" for r in rows] for lang in sorted(languages)}
    split = meta.eval_splits[0]
    hub.add(meta.hf_path, "default", {split: Dataset.from_dict(columns)})
    raws = [load_raw(meta, s, split) for s in meta.hf_subsets[:3]]
    assert len(hub.calls) == 1  # one load for all three pairs
    assert column_values(raws[0][split], first) == columns[first]
    assert column_values(raws[0][split], second) == columns[second]


def test_reranking_top_ranked(hub, shared_data):
    """A reranking task through mteb's loader: corpus, queries, qrels and the top_ranked
    candidates (rows of SciFactReranking's derived local data, served as AskUbuntu's hub)."""
    derived = get_task("SciFactReranking")
    local = load_raw(derived, "default", "test", data_dir=shared_data)
    meta = get_task("AskUbuntuDupQuestions")
    corpus = local["corpus"].rename_column("id", "_id")
    queries = local["queries"].rename_column("id", "_id")
    hub.add(meta.hf_path, "corpus", {"test": corpus})
    hub.add(meta.hf_path, "queries", {"test": queries})
    hub.add(meta.hf_path, "default", {"test": local["qrels"]})
    hub.add(meta.hf_path, "top_ranked", {"test": local["top_ranked"]})
    got = load_raw_with_mteb(meta, "default", "test")
    for key, column in (
        ("corpus", "id"),
        ("corpus", "text"),
        ("queries", "id"),
        ("queries", "text"),
    ):
        assert column_values(got[key], column) == column_values(local[key], column), key
    assert column_values(got["top_ranked"], "query-id") == column_values(
        local["top_ranked"], "query-id"
    )
    assert column_values(got["top_ranked"], "corpus-ids") == column_values(
        local["top_ranked"], "corpus-ids"
    )

    def triples(raw):
        return sorted(
            zip(*(column_values(raw["qrels"], c) for c in ("query-id", "corpus-id", "score")))
        )

    assert triples(got) == triples(local)


def _write_local(folder: Path, splits: dict[str, list[dict]]) -> None:
    folder.mkdir(parents=True)
    for split, rows in splits.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_regression(hub, tmp_path):
    # A multilingual task: one hub config per subset, one local subfolder per subset.
    meta = get_task("RuSciBenchCitedCountRegression")
    for n, subset in enumerate(meta.hf_subsets):
        splits = {
            split: [{"text": f"{subset} paper {i}", "value": float((i * 7 + n) % 13)} for i in range(40)]
            for split in ("train", "test")
        }
        hub.add(meta.hf_path, subset, {s: _ds(rows) for s, rows in splits.items()})
        _write_local(tmp_path / meta.local_dir / subset, splits)
    for subset in meta.hf_subsets:
        got = load_raw_with_mteb(meta, subset, "test")
        assert any(call[1] == subset for call in hub.calls)  # mteb's loader asked for this config
        assert len(got["test"]) == 40 and len(got["train"]) == 40
        _assert_same(got, load_raw(meta, subset, "test", data_dir=tmp_path))


def test_multilabel_classification(hub, tmp_path):
    meta = get_task("BrazilianToxicTweetsClassification")
    splits = {
        split: [{"text": f"tweet {split} {i}", "label": [i % 3, (i + 1) % 4] if i % 5 else []} for i in range(60)]
        for split in ("train", "test")
    }
    hub.add(meta.hf_path, "default", {s: _ds(rows) for s, rows in splits.items()})
    _write_local(tmp_path / meta.local_dir, splits)
    got = load_raw_with_mteb(meta, "default", "test")
    assert hub.calls and len(got["test"]) == 60
    assert column_values(got["test"], "label")[:2] == [[], [1, 2]]  # empty label sets survive
    _assert_same(got, load_raw(meta, "default", "test", data_dir=tmp_path))
