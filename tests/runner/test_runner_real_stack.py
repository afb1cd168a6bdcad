"""The runner on the real registry, loader, task types, TextPool and CallableEncoder: a plain
callable model on a tiny local copy of STSBenchmark, checked against scipy and read by mteb."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import fastmteb
from fastmteb.results import load_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toy_models import bag_of_words  # noqa: E402



@pytest.fixture
def tiny_sts(tmp_path) -> Path:
    rows = [
        {
            "sentence1": "A man plays a guitar.",
            "sentence2": "A man is playing the guitar.",
            "score": 4.6,
        },
        {"sentence1": "A cat sleeps.", "sentence2": "The stock market fell.", "score": 0.0},
        {
            "sentence1": "Two dogs run on grass.",
            "sentence2": "Dogs are running in a field.",
            "score": 3.8,
        },
        {
            "sentence1": "A woman slices an onion.",
            "sentence2": "A woman is cutting an onion.",
            "score": 4.9,
        },
        {"sentence1": "The sky is blue.", "sentence2": "A man plays a guitar.", "score": 0.2},
        {
            "sentence1": "Kids play football.",
            "sentence2": "Children are playing soccer.",
            "score": 4.1,
        },
        {"sentence1": "A cat sleeps.", "sentence2": "A cat is sleeping on the sofa.", "score": 3.5},
        {"sentence1": "Prices rose sharply.", "sentence2": "The sky is blue.", "score": 0.1},
    ]
    folder = tmp_path / "data" / "STSBenchmark"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "data"


def test_callable_model_on_local_sts_matches_scipy_and_loads_in_mteb(tmp_path, tiny_sts):
    from scipy.stats import spearmanr
    from sklearn.metrics.pairwise import paired_cosine_distances

    try:
        run = fastmteb.evaluate(
            bag_of_words,
            ["STSBenchmark"],
            output_folder=tmp_path / "results",
            data_dir=tiny_sts,
            progress=False,
        )
    except fastmteb.TaskFailedError as e:  # pragma: no cover - another helper's part not landed yet
        if isinstance(e.__cause__, NotImplementedError):
            pytest.skip(f"STS scoring not implemented yet: {e}")
        raise
    (result,) = run
    rows = [
        json.loads(line)
        for line in (tiny_sts / "STSBenchmark" / "test.jsonl").read_text().splitlines()
    ]
    a = bag_of_words([r["sentence1"] for r in rows])
    b = bag_of_words([r["sentence2"] for r in rows])
    # mteb's STS: 1 - sklearn paired cosine distance (rows 2 and 8 are a float32 near-tie: the way
    # the cosine is computed decides their order, so the oracle must compute it as mteb does)
    cosine = 1 - paired_cosine_distances(a, b)
    expected = spearmanr([r["score"] for r in rows], cosine).statistic
    assert result.scores["test"][0]["main_score"] == pytest.approx(round(expected, 6), abs=1e-9)

    # no revision: the folder is named by the model fingerprint (see fastmteb.provenance)
    assert run.output_dir.parent == tmp_path / "results" / "bag_of_words"
    assert run.output_dir.name.startswith("fp-")
    path = run.output_dir / "STSBenchmark.json"
    mteb_result = pytest.importorskip("mteb.results.task_result").TaskResult.from_disk(path)
    assert mteb_result.get_score() == result.get_score()

    again = fastmteb.evaluate(
        bag_of_words,
        ["STSBenchmark"],
        output_folder=tmp_path / "results",
        data_dir=tiny_sts,
        progress=False,
    )
    assert again.skipped == ["STSBenchmark"] and again[0].scores == result.scores


def test_missing_split_is_a_named_error_and_writes_nothing(tmp_path, tiny_sts):
    (tiny_sts / "STSBenchmark" / "test.jsonl").rename(tiny_sts / "STSBenchmark" / "dev.jsonl")
    run = fastmteb.evaluate(
        bag_of_words,
        ["STSBenchmark"],
        output_folder=tmp_path / "results",
        data_dir=tiny_sts,
        progress=False,
        raise_error=False,
    )
    (failure,) = run.failures
    assert (
        failure.task_name == "STSBenchmark" and failure.phase == "load" and "test" in failure.error
    )
    assert not list((tmp_path / "results").rglob("*.json"))


def test_encoding_time_is_shared_by_encoded_tokens_not_characters(tmp_path, tiny_sts, tiny_bert, monkeypatch):
    """A task of texts cut at the model's max length pays for the tokens encoded, not for the
    characters it sent (which once charged it several times its real encoding cost)."""
    import fastmteb.runner.prepared as prepared
    from fastmteb.encoding import EncodeContext, load_encoder
    from fastmteb.runner import prepare_run

    long_rows = [
        {"sentence1": "word " * 2000 + str(i), "sentence2": "other " * 1500 + str(i), "score": float(i % 5)}
        for i in range(4)
    ]
    folder = tiny_sts / "SICK-R"
    folder.mkdir()
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in long_rows))
    encoder = load_encoder(str(tiny_bert), device="cpu", dtype="float32")
    run = prepare_run(encoder, ["STSBenchmark", "SICK-R"], data_dir=tiny_sts)
    run.embed()
    costs = {task.meta.name: task.encode_cost for task in run.tasks}
    assert costs["SICK-R"] == 8 * encoder.max_length  # every text truncated to the max length
    rows = [json.loads(line) for line in (tiny_sts / "STSBenchmark" / "test.jsonl").read_text().splitlines()]
    short_texts = [r["sentence1"] for r in rows] + [r["sentence2"] for r in rows]  # repeats count for each request
    tokens = encoder.tokenize(short_texts, EncodeContext("STSBenchmark", "STS"))
    assert costs["STSBenchmark"] == sum(len(ids) for ids in tokens) < costs["SICK-R"] / 10
    shares: dict[str, float] = {}
    original = prepared._score_task

    def score_task(task, *args, **kwargs):
        shares[task.meta.name] = args[-1]  # the encode_share argument
        return original(task, *args, **kwargs)

    monkeypatch.setattr(prepared, "_score_task", score_task)
    results = {meta.name: outcome for meta, outcome in run.scored()}
    assert set(results) == set(shares) == {"STSBenchmark", "SICK-R"}
    encoding = run.encode_phase["end"] - run.encode_phase["start"]
    total = sum(costs.values())
    for name, share in shares.items():
        assert share == pytest.approx(encoding * costs[name] / total, rel=1e-12)
        assert results[name].evaluation_time >= share


# --------------------------------------------------------------------------------------------
# Provenance and resume with real models and data


def _retrained_copy(tiny_bert: Path, folder: Path, seed: int) -> Path:
    """``folder`` holds tiny_bert's tokenizer and other random weights (another training run)."""
    import shutil

    import torch
    from transformers import BertModel

    folder.mkdir(parents=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny_bert / name, folder / name)
    model = BertModel.from_pretrained(tiny_bert)
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    model.save_pretrained(folder)
    return folder


def test_same_folder_name_other_weights_is_scored_again(tmp_path, tiny_sts, tiny_bert, caplog):
    """The reported bug: ./mA/final then ./mB/final into one output folder read back mA's score."""
    import logging

    out = tmp_path / "results"
    options = dict(output_folder=out, data_dir=tiny_sts, progress=False, device="cpu")
    model_a = _retrained_copy(tiny_bert, tmp_path / "mA" / "final", seed=1)
    model_b = _retrained_copy(tiny_bert, tmp_path / "mB" / "final", seed=2)
    first = fastmteb.evaluate(str(model_a), ["STSBenchmark"], **options)
    second = fastmteb.evaluate(str(model_b), ["STSBenchmark"], **options)
    fresh_b = fastmteb.evaluate(str(model_b), ["STSBenchmark"], **{**options, "output_folder": tmp_path / "fresh"})

    assert second.skipped == [] and second[0].get_score() == fresh_b[0].get_score()
    assert second[0].get_score() != first[0].get_score()
    assert first.output_dir != second.output_dir and first.output_dir.parent == second.output_dir.parent
    assert sorted(load_results(out)) == sorted(f"final@{r.output_dir.name}" for r in (first, second))

    # retrained in place: model A's folder now holds other weights
    _retrained_copy(tiny_bert, tmp_path / "mA2" / "final", seed=3)
    for path in (tmp_path / "mA2" / "final").iterdir():
        path.replace(model_a / path.name)
    third = fastmteb.evaluate(str(model_a), ["STSBenchmark"], **options)
    assert third.skipped == [] and third.output_dir not in (first.output_dir, second.output_dir)

    # the same weights at another dtype: same folder, evaluated again, the reason said
    with caplog.at_level(logging.WARNING, logger="fastmteb"):
        bf16 = fastmteb.evaluate(str(model_b), ["STSBenchmark"], dtype="bfloat16", **options)
    assert bf16.output_dir == second.output_dir and bf16.skipped == []
    assert "dtype 'float32' -> 'bfloat16'" in bf16.reevaluated["STSBenchmark"]
    assert "STSBenchmark" in caplog.text and "'bfloat16'" in caplog.text
    # and a different batch budget resumes
    again = fastmteb.evaluate(str(model_b), ["STSBenchmark"], dtype="bfloat16", batch_tokens=512, **options)
    assert again.skipped == ["STSBenchmark"]


def test_data_dir_run_records_the_folder_and_file_hashes(tmp_path, tiny_sts, caplog):
    import hashlib
    import logging

    out = tmp_path / "results"
    run = fastmteb.evaluate(bag_of_words, ["STSBenchmark"], output_folder=out, data_dir=tiny_sts,
                            progress=False, batch_tokens=4096)
    record = json.loads((run.output_dir / "STSBenchmark.json").read_text())["fastmteb"]
    data_file = tiny_sts / "STSBenchmark" / "test.jsonl"
    sha = hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert record["data"]["source"] == "local"
    assert record["data"]["folder"] == (tiny_sts / "STSBenchmark").resolve().as_posix()
    assert record["data"]["files"] == {"test.jsonl": sha}
    assert len(record["data"]["sha256"]) == 64
    assert record["version"] == fastmteb.__version__
    assert record["settings"]["batch_tokens"] == 4096 and "device" in record["settings"]
    assert "dtype" in record["settings"]

    # the data changed: evaluated again, the file named
    data_file.write_text(data_file.read_text().replace("4.6", "1.2"))
    with caplog.at_level(logging.WARNING, logger="fastmteb"):
        again = fastmteb.evaluate(bag_of_words, ["STSBenchmark"], output_folder=out, data_dir=tiny_sts,
                                  progress=False)
    assert again.skipped == [] and "test.jsonl" in again.reevaluated["STSBenchmark"]
    assert "test.jsonl" in caplog.text
    # the same data in another folder is the same data: resumed
    moved = tmp_path / "elsewhere"
    tiny_sts.rename(moved)
    assert fastmteb.evaluate(bag_of_words, ["STSBenchmark"], output_folder=out, data_dir=moved,
                             progress=False).skipped == ["STSBenchmark"]
    # a local result is not reused for the hub's data
    problem = __import__("fastmteb.provenance", fromlist=["x"]).data_difference(
        record["data"], fastmteb.get_task("STSBenchmark"), None
    )
    assert problem and problem.startswith("data source was local")


def test_bundled_source_is_recorded_with_hashes():
    import hashlib

    from fastmteb import provenance
    from fastmteb.data.loading import BUNDLED_DIR, load_raw

    meta = fastmteb.get_task("SICK-R")
    with provenance.record_reads() as read:
        load_raw(meta, "default", "test")
    record = provenance.data_record(meta, None, read)
    assert record["source"] == "bundled" and record["folder"] == "fastmteb/data/bundled/SICK-R"
    assert record["files"] == {
        "test.jsonl": hashlib.sha256((BUNDLED_DIR / "SICK-R" / "test.jsonl").read_bytes()).hexdigest()
    }
    assert provenance.data_difference(record, meta, None) is None


def test_callables_of_one_name_holding_other_state_keep_their_own_results(tmp_path, tiny_sts):
    """Two toy models named alike whose "weights" differ (here the hashing width of a partial)
    are told apart by the callable's state, so the second is scored, not read back."""
    import functools

    from fastmteb.encoding import CallableEncoder

    out = tmp_path / "results"
    runs = [
        fastmteb.evaluate(CallableEncoder(functools.partial(bag_of_words, dim=dim), name="toy"),
                          ["STSBenchmark"], output_folder=out, data_dir=tiny_sts, progress=False)
        for dim in (8, 64, 8)
    ]
    assert [r.skipped for r in runs] == [[], [], ["STSBenchmark"]]
    assert runs[0].output_dir != runs[1].output_dir and runs[2].output_dir == runs[0].output_dir
    assert runs[0][0].get_score() != runs[1][0].get_score()
    assert len(load_results(out)) == 2


@pytest.mark.parametrize("resident, expected", [(False, None), (True, "cpu")])
def test_the_result_records_where_the_vectors_were_scored(tmp_path, tiny_sts, resident, expected):
    """``settings.resident``: the device of a resident run, null for host arrays; recorded only."""
    out = tmp_path / "results"
    run = fastmteb.evaluate(bag_of_words, ["STSBenchmark"], output_folder=out, data_dir=tiny_sts,
                            progress=False, resident=resident)
    record = json.loads((run.output_dir / "STSBenchmark.json").read_text())["fastmteb"]
    assert record["settings"]["resident"] == expected
    again = fastmteb.evaluate(bag_of_words, ["STSBenchmark"], output_folder=out, data_dir=tiny_sts,
                              progress=False, resident=not resident)
    assert again.skipped == ["STSBenchmark"]  # where the vectors lived does not block resume
