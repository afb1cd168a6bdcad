"""Level-1 parity, FollowIR instruction reranking (p-MRR): same data and FakeEncoder embeddings as mteb.

mteb's Core17InstructionRetrieval reads its ``qrel_diff`` config from the hub inside
``task_specific_scores``; the test hands it the same rows fastmteb's loader would return.
Adversarial cases: a changed document absent from the candidates (rank = list length + 1), a
changed document absent from the corpus, a qrel_diff query without its '-changed' query (skipped by
both), an empty changed list, a repeated qrel_diff query id (last row wins), exact score ties.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
pytest.importorskip("mteb", reason="the oracle (mteb) is not installed")
import mteb_oracle as mo  # noqa: E402

TASK = "Core17InstructionRetrieval"


def _followir_data(seed: int, n_base: int = 12, n_docs: int = 90) -> dict:
    rng = np.random.default_rng(seed)
    corpus = [{"id": f"d{i}", "title": "", "text": mo.sentence(rng, (2, 9))} for i in range(n_docs)]
    for i in range(0, n_docs, 9):  # repeated texts -> tied scores
        corpus[i + 1]["text"] = corpus[i]["text"]
    queries, qrels, top_ranked, qrel_diff = [], [], [], []
    for b in range(n_base):
        base, instruction = mo.sentence(rng, (1, 4)), mo.sentence(rng, (2, 6))
        candidates = [f"d{d}" for d in rng.choice(n_docs, size=int(rng.integers(8, 20)), replace=False)]
        relevant = candidates[: int(rng.integers(2, 5))]
        still = relevant[: max(1, len(relevant) - 2)]
        changed = [d for d in relevant if d not in still]
        for suffix, text, judged in (("-og", base, relevant), ("-changed", base + " " + instruction, still)):
            if b == 3 and suffix == "-changed":
                continue  # the changed query is missing: mteb skips this qrel_diff row
            qid = f"q{b}{suffix}"
            queries.append({"id": qid, "text": text})
            top_ranked.append({"query-id": qid, "corpus-ids": candidates})
            qrels += [{"query-id": qid, "corpus-id": d, "score": 1} for d in judged]
            qrels.append({"query-id": qid, "corpus-id": candidates[-1], "score": 0})
        if b == 5:
            changed = changed + [f"d{(int(candidates[0][1:]) + 1) % n_docs}"]  # not among the candidates
        if b == 6:
            changed = changed + ["not-in-corpus"]
        if b == 7:
            changed = []
        qrel_diff.append({"query-id": f"q{b}", "corpus-ids": changed})
    qrel_diff.append({"query-id": "q2", "corpus-ids": [c["corpus-ids"][0] for c in top_ranked if c["query-id"] == "q2-og"]})
    qrel_diff.append({"query-id": "q-unknown", "corpus-ids": ["d1"]})
    return {"corpus": corpus, "queries": queries, "qrels": qrels, "top_ranked": top_ranked, "qrel_diff": qrel_diff}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_p_mrr_and_og_changed_scores_match_mteb(monkeypatch, seed):
    from mteb.tasks.instruction_reranking.eng import core17_instruction_retrieval

    data = _followir_data(seed)
    monkeypatch.setattr(core17_instruction_retrieval, "load_dataset", lambda *a, **k: data["qrel_diff"])
    mteb_data = {key: rows for key, rows in data.items() if key != "qrel_diff"}
    task = mo.mteb_task(TASK, mteb_data)
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]
    assert {"p-MRR", "og", "changed"} <= set(expected)

    meta = mo.fastmteb_meta(task, params={"task_specific_scores": "p_mrr"})
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data))
    mo.assert_same_scores(expected, actual)
    assert actual["p-MRR"] != 0.0  # the ranks moved: a constant 0 would hide a broken rank lookup


def test_registry_followir_tasks_score_p_mrr():
    from fastmteb.tasks.registry import get_task

    meta = get_task(TASK)
    assert (meta.type, meta.main_score, meta.params["task_specific_scores"]) == ("InstructionReranking", "p-MRR", "p_mrr")


def test_p_mrr_without_qrel_diff_is_a_clear_error():
    from fastmteb.tasks._common import TaskTypeError
    from fastmteb.tasks.registry import get_task
    from fastmteb.tasks.types import get_task_type

    data = _followir_data(4)
    raw = mo.fastmteb_raw({key: rows for key, rows in data.items() if key != "qrel_diff"})
    with pytest.raises(TaskTypeError, match="qrel_diff"):
        get_task_type("InstructionReranking").prepare(get_task(TASK), raw, "test", "default")
