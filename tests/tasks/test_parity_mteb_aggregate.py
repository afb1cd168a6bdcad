"""Level-1 parity, aggregate tasks (mteb's ``AbsTaskAggregate``): same part data, same FakeEncoder vectors.

mteb side: ``mteb.evaluate`` on the aggregate whose parts hold small in-memory data; it evaluates the
parts and combines them. fastmteb side: ``fastmteb.evaluate(tasks=[aggregate name])`` with the parts'
rows served from memory; the parts run as ordinary fastmteb tasks in one text pool and the aggregate
is combined from their results. Every key of the aggregate's entry (and of each part) must match.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import mteb_oracle as mo  # noqa: E402

mteb = pytest.importorskip("mteb")

from fastmteb import runner  # noqa: E402


def _part_data(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    corpus = [{"id": f"d{i}", "title": "", "text": mo.sentence(rng, (3, 9))} for i in range(40)]
    queries = [{"id": f"q{i}", "text": mo.sentence(rng, (1, 4))} for i in range(9)]
    qrels = [
        {"query-id": q["id"], "corpus-id": f"d{int(d)}", "score": 1}
        for q in queries
        for d in rng.choice(40, size=int(rng.integers(1, 4)), replace=False)
    ]
    return {"corpus": corpus, "queries": queries, "qrels": qrels}


def _mteb_aggregate(name: str, data: dict) -> object:
    agg = mteb.get_task(name)
    parts = [mo.mteb_task(t.metadata.name, data[t.metadata.name]) for t in agg.metadata.tasks]
    agg.metadata = agg.metadata.model_copy(update={"tasks": parts})
    agg.tasks = parts
    agg.taskname_to_task = {t.metadata.name: t for t in parts}
    return agg


def _fake(texts):
    return mo.fake_embeddings(texts)


def test_aggregate_matches_mteb(tmp_path):
    name = "CQADupstackRetrieval"
    part_names = [t.metadata.name for t in mteb.get_task(name).metadata.tasks]
    data = {part: _part_data(seed) for seed, part in enumerate(part_names)}

    with mo._thread_limit(True):
        outcome = mteb.evaluate(
            mo.FakeEncoder(),
            _mteb_aggregate(name, data),
            cache=None,
            co2_tracker=False,
            show_progress_bar=False,
            overwrite_strategy="always",
        )
    by_name = {r.task_name: r for r in outcome.task_results}
    expected = by_name[name]

    collaborators = dataclasses.replace(
        runner.Collaborators.default(),
        load_raw=lambda meta, subset, split, *, data_dir: mo.fastmteb_raw(data[meta.name]),
    )
    results = runner.evaluate(
        _fake, [name], output_folder=tmp_path, progress=False, collaborators=collaborators
    )
    got = {r.task_name: r for r in results}
    assert list(got) == [*part_names, name]

    compared = 0
    for split, entries in expected.scores.items():
        (want,) = entries
        (have,) = got[name].scores[split]
        assert set(want) == set(have)
        assert have["languages"] == want["languages"] and have["hf_subset"] == want["hf_subset"]
        numeric = {k: v for k, v in want.items() if k not in ("hf_subset", "languages", "mteb_version")}
        mo.assert_same_scores(numeric, {k: have[k] for k in numeric})
        compared += len(numeric)
    assert compared == 2  # ndcg_at_10 and main_score
    # (each part's own parity is tests/tasks/test_parity_mteb_retrieval.py's)
    # the file is mteb's TaskResult for the aggregate, loadable by mteb
    files = list(tmp_path.rglob(f"{name}.json"))
    assert len(files) == 1
    on_disk = json.loads(files[0].read_text())
    assert on_disk["task_name"] == name and on_disk["scores"]["test"][0]["hf_subset"] == "default"
    loaded = mteb.TaskResult.from_disk(files[0])
    assert loaded.get_score() == pytest.approx(expected.get_score(), abs=1e-6)

    # a rerun reads the parts back (resume) and combines them again: the same file
    again = runner.evaluate(
        _fake, [name], output_folder=tmp_path, progress=False, collaborators=collaborators
    )
    assert set(again.skipped) == set(part_names)
    assert {r.task_name: r for r in again}[name].scores == got[name].scores


def test_aggregate_fails_when_a_part_fails(tmp_path):
    name = "CQADupstack-NL"
    part_names = [t.metadata.name for t in mteb.get_task(name).metadata.tasks]
    broken = part_names[3]

    def load_raw(meta, subset, split, *, data_dir):
        if meta.name == broken:
            raise OSError("no data here")
        return mo.fastmteb_raw(_part_data(len(meta.name)))

    collaborators = dataclasses.replace(runner.Collaborators.default(), load_raw=load_raw)
    results = runner.evaluate(
        _fake, [name], output_folder=tmp_path, progress=False, raise_error=False,
        collaborators=collaborators,
    )
    assert [r.task_name for r in results] == [p for p in part_names if p != broken]
    assert [(f.task_name, f.phase) for f in results.failures] == [(broken, "load"), (name, "score")]
    assert broken in results.failures[1].error
    assert not list(tmp_path.rglob(f"{name}.json"))
