"""Level-1 parity, Retrieval with conversational queries (lists of turns), e.g. TopiOCQA / StatcanDialogue.

mteb flattens each conversation in ``_create_dataloaders._convert_conv_history_to_query`` ("role: content; ..."
for dict turns, "; "-joined strings otherwise, the instruction in front); fastmteb must embed the same strings.
Cases: {role, content} turns on TopiOCQA's own class, plain string turns, turns with an instruction field,
repeated conversations, reranking with top_ranked; a null instruction fails in mteb and fails clearly here.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
pytest.importorskip("mteb", reason="the oracle (mteb) is not installed")
import mteb_oracle as mo  # noqa: E402

_ROLES = ("user", "assistant")


def _conversation(rng: np.random.Generator, turns: str) -> list:
    n = int(rng.integers(1, 5))
    if turns == "strings":
        return [mo.sentence(rng, (1, 5)) for _ in range(n)]
    return [{"role": _ROLES[i % 2], "content": mo.sentence(rng, (1, 5))} for i in range(n)]


def _data(
    seed: int,
    n_docs: int,
    n_queries: int,
    turns: str,
    *,
    instruction: bool = False,
    null_at: int = -1,
) -> dict:
    rng = np.random.default_rng(seed)
    corpus = [
        {
            "id": f"d{i}",
            "title": "" if i % 3 else mo.sentence(rng, (1, 3)),
            "text": mo.sentence(rng, (3, 10)),
        }
        for i in range(n_docs)
    ]
    queries = []
    for i in range(n_queries):
        # every 6th conversation repeats an earlier one (same text -> same embedding -> tied rankings)
        text = queries[i // 2]["text"] if i % 6 == 5 else _conversation(rng, turns)
        row = {"id": f"q{i}", "text": text}
        if instruction:
            row["instruction"] = None if i == null_at else mo.sentence(rng, (2, 4))
        queries.append(row)
    qrels = [
        {"query-id": q["id"], "corpus-id": f"d{d}", "score": int(rng.integers(0, 3))}
        for q in queries
        for d in rng.choice(n_docs, size=int(rng.integers(1, 4)), replace=False)
    ]
    return {"corpus": corpus, "queries": queries, "qrels": qrels}


def _check(task_name: str, data: dict, split: str = "test", **task_kwargs) -> dict:
    task = mo.mteb_task(task_name, data, **task_kwargs)
    expected = mo.run_mteb(task, mo.FakeEncoder())[split]["default"]
    meta = mo.fastmteb_meta(task)
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data), split)
    mo.assert_same_scores(expected, actual)
    return expected


@pytest.mark.parametrize("turns", ["dicts", "strings"])
def test_conversational_retrieval_matches_mteb(turns):
    """TopiOCQA's class (split ``validation``) with role/content turns, and the generic template with strings."""
    if turns == "dicts":
        _check("TopiOCQA", _data(60, 200, 36, turns), split="validation")
    else:
        _check("Retrieval", _data(61, 200, 36, turns))


def test_conversational_queries_with_instructions_match_mteb():
    """An instruction field goes in front of the flattened conversation."""
    _check("Retrieval", _data(62, 150, 32, "dicts", instruction=True))


def test_null_instruction_fails_in_mteb_and_clearly_here():
    from fastmteb.tasks.types import TaskTypeError, get_task_type

    data = _data(66, 30, 8, "dicts", instruction=True, null_at=3)
    task = mo.mteb_task("Retrieval", data)
    with pytest.raises(ValueError, match="Found None in batch for key 'instruction'"):
        mo.run_mteb(task, mo.FakeEncoder())
    with pytest.raises(TaskTypeError, match="null instruction"):
        get_task_type("Retrieval").prepare(
            mo.fastmteb_meta(task), mo.fastmteb_raw(data), "test", "default"
        )


def test_conversational_reranking_matches_mteb():
    data = _data(63, 100, 24, "dicts")
    rng = np.random.default_rng(64)
    judged: dict[str, list[str]] = {}
    for row in data["qrels"]:
        judged.setdefault(row["query-id"], []).append(row["corpus-id"])
    data["top_ranked"] = [
        {
            "query-id": q["id"],
            "corpus-ids": list(
                dict.fromkeys(
                    judged[q["id"]][:2] + [f"d{i}" for i in rng.choice(100, 12, replace=False)]
                )
            ),
        }
        for q in data["queries"]
    ]
    _check("Reranking", data)


def test_fastmteb_embeds_the_strings_mteb_embeds():
    """The query strings themselves, as mteb's encoder received them (not only the scores)."""
    from fastmteb.tasks.types import get_task_type

    data = _data(65, 40, 12, "dicts", instruction=True)
    task = mo.mteb_task("Retrieval", data)
    seen: list[str] = []

    class Recording(mo.FakeEncoder):
        def encode(self, inputs, *, prompt_type=None, **kwargs):
            if getattr(prompt_type, "value", prompt_type) == "query":
                seen.extend(t for batch in inputs for t in batch["text"])
            return super().encode(inputs, prompt_type=prompt_type, **kwargs)

    mo.run_mteb(task, Recording())
    meta = mo.fastmteb_meta(task)
    prepared = get_task_type("Retrieval").prepare(meta, mo.fastmteb_raw(data), "test", "default")
    assert prepared.query_texts == seen
    assert all(" user: " in t for t in seen)


def test_malformed_conversations_raise_clear_errors():
    from fastmteb.tasks._conversation import conversation_to_text
    from fastmteb.tasks.types import TaskTypeError

    assert conversation_to_text("T", ["a", "b"]) == "a; b"
    assert (
        conversation_to_text("T", [{"role": "user", "content": "hi"}], "Find:") == "Find: user: hi"
    )
    for bad in ([], [{"role": "user"}], ["a", {"role": "user", "content": "x"}], [1, 2]):
        with pytest.raises(TaskTypeError, match="task 'T'"):
            conversation_to_text("T", bad)
