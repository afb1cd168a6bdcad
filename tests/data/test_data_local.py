"""The local-folder loader on every dataset of shared/data (row counts from its MANIFEST.md),
and the bundled copy against the shared one."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from fastmteb.data.loading import BUNDLED_DIR, bundled_source, load_raw
from fastmteb.tasks.registry import BENCHMARKS, get_benchmark, get_task

from shared_data import SHARED_DATA as SHARED, needs_shared_data

pytestmark = needs_shared_data

# (task, subset) -> rows per split, from shared/data/MANIFEST.md.
SPLIT_COUNTS = {
    ("STSBenchmark", "default"): {"test": 1379},
    ("STS12", "default"): {"test": 3108},
    ("STS13", "default"): {"test": 1500},
    ("STS14", "default"): {"test": 3750},
    ("STS15", "default"): {"test": 3000},
    ("STS16", "default"): {"test": 1186},
    ("SICK-R", "default"): {"test": 9927},
    ("BIOSSES", "default"): {"test": 100},
    ("Banking77Classification", "default"): {"train": 10003, "test": 3080},
    ("EmotionClassification", "default"): {"train": 16000, "validation": 2000, "test": 2000},
    ("AmazonCounterfactualClassification", "en"): {"train": 4018, "validation": 335, "test": 670},
    ("AmazonCounterfactualClassification", "en-ext"): {
        "train": 8000,
        "validation": 666,
        "test": 1334,
    },
    ("SIB200Classification", "eng_Latn"): {"train": 701, "validation": 99, "test": 204},
    ("SIB200ClusteringS2S", "eng_Latn"): {"test": 1004},  # flattened: one row per sentence
    ("MasakhaNEWSClusteringS2S", "eng"): {"test": 1},  # legacy: one cluster set
    ("MasakhaNEWSClusteringP2P", "eng"): {"test": 1},
    ("TwitterURLCorpus", "default"): {"test": 9334},
    ("SummEvalSummarization.v2", "default"): {"test": 100},
}


@pytest.mark.parametrize(("name", "subset"), list(SPLIT_COUNTS))
def test_local_split_counts(name, subset):
    meta = get_task(name)
    raw = load_raw(meta, subset, "test", data_dir=SHARED)
    assert {k: len(v) for k, v in raw.items()} == SPLIT_COUNTS[name, subset]


def test_local_columns_and_values():
    sts = load_raw(get_task("SICK-R"), "default", "test", data_dir=SHARED)["test"]
    assert sts.column_names == ["sentence1", "sentence2", "score"]
    assert min(sts["score"]) == 1 and max(sts["score"]) == 5
    pairs = load_raw(get_task("TwitterURLCorpus"), "default", "test", data_dir=SHARED)["test"]
    assert (
        pairs.column_names == ["sentence1", "sentence2", "labels"] and sum(pairs["labels"]) == 1821
    )
    emotion = load_raw(get_task("EmotionClassification"), "default", "test", data_dir=SHARED)[
        "test"
    ]
    assert {emotion["label"].count(k) for k in ("sadness", "joy")} == {581, 695}  # strings kept
    legacy = load_raw(get_task("MasakhaNEWSClusteringP2P"), "eng", "test", data_dir=SHARED)["test"]
    assert len(legacy[0]["sentences"]) == 948 and len(set(legacy[0]["labels"])) == 6
    fast = load_raw(get_task("SIB200ClusteringS2S"), "eng_Latn", "test", data_dir=SHARED)["test"]
    assert len(set(fast["labels"])) == 7
    summ = load_raw(get_task("SummEvalSummarization.v2"), "default", "test", data_dir=SHARED)[
        "test"
    ]
    assert sum(len(r) for r in summ["human_summaries"]) == 1100
    assert sum(len(r) for r in summ["machine_summaries"]) == 1600


def test_local_tatoeba_all_112_subsets():
    meta = get_task("Tatoeba")
    total = 0
    for subset in meta.hf_subsets:
        raw = load_raw(meta, subset, "test", data_dir=SHARED)
        assert raw["test"].column_names == ["sentence1", "sentence2"]
        total += len(raw["test"])
    assert len(meta.hf_subsets) == 112 and total == 88877


def test_local_scifact_beir():
    raw = load_raw(get_task("SciFact"), "default", "test", data_dir=SHARED)
    assert {k: len(v) for k, v in raw.items()} == {"corpus": 5183, "queries": 300, "qrels": 339}
    assert raw["qrels"].features["score"].dtype == "int32"
    assert raw["corpus"].column_names == ["id", "title", "text"]
    assert set(raw["queries"]["id"]) == set(raw["qrels"]["query-id"])


def test_local_scifact_reranking_old_format_ids():
    raw = load_raw(get_task("SciFactReranking"), "default", "test", data_dir=SHARED)
    assert len(raw["queries"]) == 300 and len(raw["corpus"]) == 339 + 5700
    assert sum(raw["qrels"]["score"]) == 339
    first = raw["top_ranked"][0]
    assert first["query-id"] == "test_query0"
    assert first["corpus-ids"][0] == "apositive_test_query0_00000"
    assert first["corpus-ids"][-1] == "negative_test_query0_00018"


def _read_rows(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_bundled_files_equal_shared_rows():
    files = [
        p for p in BUNDLED_DIR.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".gz", ".tsv")
    ]
    assert len(files) >= 15
    for path in files:
        rel = path.relative_to(BUNDLED_DIR)
        shared = SHARED / (str(rel)[: -len(".gz")] if path.suffix == ".gz" else rel)
        if path.suffix == ".tsv":
            assert path.read_bytes() == shared.read_bytes(), rel
        else:
            assert _read_rows(path) == _read_rows(shared), rel


def test_bundled_benchmark_loads_without_data_dir():
    assert (BUNDLED_DIR / "ATTRIBUTION.md").is_file()
    for meta in get_benchmark("fastmteb-mini"):
        for subset in meta.hf_subsets:
            assert bundled_source(meta, subset) is not None, (meta.name, subset)
    assert len(BENCHMARKS["fastmteb-mini"]) == 9
    raw = load_raw(get_task("SciFact"), "default", "test")
    assert len(raw["corpus"]) == 5183
    # A subset the package does not ship falls through to the hub (offline here -> TaskDataError).
    assert bundled_source(get_task("Tatoeba"), "ara-eng") is None


def test_a_folder_with_some_subsets_evaluates_those(tmp_path, shared_data, caplog):
    """Tatoeba has 112 subsets; a folder with two of them evaluates those two and says so."""
    import logging
    import shutil

    from fastmteb.data.loading import local_selection
    from fastmteb.runner import Collaborators
    from fastmteb.runner.api import _local_selection, _partial_local_data

    for subset in ("deu-eng", "fra-eng"):
        shutil.copytree(shared_data / "Tatoeba" / subset, tmp_path / "Tatoeba" / subset)
    tatoeba = get_task("Tatoeba")
    kept = local_selection(tatoeba, tmp_path)
    assert kept.hf_subsets == ("deu-eng", "fra-eng") and set(kept.languages) == set(kept.hf_subsets)
    assert local_selection(tatoeba, shared_data) is tatoeba  # every subset present: unchanged
    # Splits too: AmazonCounterfactual's en subset without validation.jsonl evaluates test only.
    amazon = get_task("AmazonCounterfactualClassification")
    folder = tmp_path / "AmazonCounterfactualClassification" / "en"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        shutil.copy(shared_data / amazon.name / "en" / f"{split}.jsonl", folder)
    narrowed = local_selection(amazon, tmp_path)
    assert narrowed.hf_subsets == ("en",) and narrowed.eval_splits == ("test",)
    with caplog.at_level(logging.WARNING, logger="fastmteb"):
        metas = _local_selection([tatoeba, get_task("SciFact")], tmp_path, Collaborators.default())
    assert "Tatoeba" in caplog.text and "2 of 112 subset(s)" in caplog.text
    assert _partial_local_data([tatoeba, get_task("SciFact")], metas) == {
        "Tatoeba": {"subsets": ["deu-eng", "fra-eng"], "splits": ["test"]}
    }
    raw = load_raw(metas[0], "fra-eng", "test", data_dir=tmp_path)
    assert len(raw["test"]) == 1000


def test_each_result_file_names_the_part_of_its_own_data_that_was_evaluated(tmp_path, shared_data):
    """A run over a partial folder: each task's file (its 'fastmteb' provenance) and its
    run_settings row name that task's evaluated subsets/splits, and no other task's."""
    import json
    import shutil
    import sys
    from pathlib import Path

    import fastmteb
    from fastmteb.encoding import CallableEncoder

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from toy_models import bag_of_words

    for subset in ("deu-eng", "fra-eng"):
        shutil.copytree(shared_data / "Tatoeba" / subset, tmp_path / "data" / "Tatoeba" / subset)
    shutil.copytree(shared_data / "BIOSSES", tmp_path / "data" / "BIOSSES")
    out = tmp_path / "out"
    fastmteb.evaluate(
        model=CallableEncoder(bag_of_words, name="bow"), tasks=["Tatoeba", "BIOSSES"],
        data_dir=str(tmp_path / "data"), output_folder=str(out), progress=False,
    )
    tatoeba = json.loads(next(out.rglob("Tatoeba.json")).read_text())
    biosses = json.loads(next(out.rglob("BIOSSES.json")).read_text())
    assert tatoeba["fastmteb"]["partial_local_data"] == {"subsets": ["deu-eng", "fra-eng"], "splits": ["test"]}
    assert "partial_local_data" not in biosses["fastmteb"]  # BIOSSES is whole
    assert "partial_local_data" not in tatoeba["fastmteb"]["settings"]
    assert sorted(e["hf_subset"] for e in tatoeba["scores"]["test"]) == ["deu-eng", "fra-eng"]
    rows = [json.loads(line) for line in next(out.rglob("run_settings.jsonl")).read_text().splitlines()]
    by_task = {row["task"]: row for row in rows}
    assert by_task["Tatoeba"]["encode_kwargs"]["partial_local_data"]["subsets"] == ["deu-eng", "fra-eng"]
    assert "partial_local_data" not in by_task["BIOSSES"]["encode_kwargs"]
