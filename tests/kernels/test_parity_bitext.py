"""fastmteb.kernels.bitext_mine against mteb's bitext evaluator and sklearn's weighted metrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from datasets import Dataset
from mteb._evaluators.text.bitext_mining_evaluator import BitextMiningEvaluator
from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining
from mteb.timing import TimingStack
from sentence_transformers.util import cos_sim
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from fastmteb.kernels import BitextResult, bitext_mine
from fastmteb.kernels.bitext import _scored


class LookupModel:
    """An mteb encoder whose embeddings are given: text -> row; cosine similarity (s-t default)."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def encode(self, dataloader, **_: object) -> np.ndarray:
        return np.stack([self.table[text] for batch in dataloader for text in batch["text"]])

    def similarity(self, first, second):
        return cos_sim(first, second)


def mteb_bitext(source: np.ndarray, target: np.ndarray, gold=None) -> tuple[np.ndarray, dict]:
    """mteb's evaluator (nearest neighbours) and its task's metric code on given embeddings."""
    table = {f"s{i}": row for i, row in enumerate(source)}
    table.update({f"t{j}": row for j, row in enumerate(target)})
    columns = {"sentence1": [f"s{i}" for i in range(len(source))]}
    columns["sentence2"] = [f"t{j}" for j in range(len(target))][: len(source)]
    evaluator = BitextMiningEvaluator(
        Dataset.from_dict(columns), task_metadata=None, hf_split="test", hf_subset="default",
        pair_columns=[("sentence1", "sentence2")], timer=TimingStack(),
    )
    # the evaluator encodes each column of the dataset; a longer target corpus (BUCC) is
    # supplied by patching the second column's texts
    evaluator.sentences = {"sentence1": columns["sentence1"],
                           "sentence2": [f"t{j}" for j in range(len(target))]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        neighbours = evaluator(LookupModel(table), encode_kwargs={"batch_size": 512})
    matches = neighbours["sentence1-sentence2"]
    gold_pairs = list(zip(range(len(source)), range(len(source)))) if gold is None else gold
    metrics = AbsTaskBitextMining._compute_metrics(None, matches, gold_pairs)
    return np.array([match["corpus_id"] for match in matches]), metrics


def assert_metrics(got: BitextResult, expected: dict) -> None:
    for name in ("accuracy", "precision", "recall", "f1"):
        assert abs(getattr(got, name) - expected[name]) <= 1e-12, name


@pytest.fixture(scope="module")
def noisy_translations() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    source = rng.standard_normal((400, 24)).astype(np.float32)
    target = (source + 0.9 * rng.standard_normal(source.shape)).astype(np.float32)
    return source, target


def test_nearest_neighbours_match_mteb(noisy_translations) -> None:
    source, target = noisy_translations
    expected_predictions, expected = mteb_bitext(source, target)
    got = bitext_mine(source, target)
    assert 0.3 < got.accuracy < 0.99  # errors exist, so precision/F1 weighting is exercised
    np.testing.assert_array_equal(got.predictions, expected_predictions)
    assert got.predictions.dtype == np.int64
    assert_metrics(got, expected)


def test_bucc_like_gold_pairs_and_larger_corpus_match_mteb() -> None:
    rng = np.random.default_rng(1)
    target = rng.standard_normal((300, 16)).astype(np.float32)
    gold_targets = rng.permutation(300)[:120]
    source = (target[gold_targets] + 0.8 * rng.standard_normal((120, 16))).astype(np.float32)
    gold_pairs = [(i, int(j)) for i, j in enumerate(gold_targets)]
    expected_predictions, expected = mteb_bitext(source, target, gold=gold_pairs)
    got = bitext_mine(source, target, gold=gold_pairs)
    np.testing.assert_array_equal(got.predictions, expected_predictions)
    assert_metrics(got, expected)
    assert_metrics(bitext_mine(source, target, gold=gold_targets), expected)


def test_exact_ties_go_to_the_lowest_target_index() -> None:
    rng = np.random.default_rng(2)
    source = rng.standard_normal((50, 8)).astype(np.float32)
    source /= np.linalg.norm(source, axis=1, keepdims=True)  # each row's best match is itself
    target = np.concatenate([source[:25], source[:25], source[25:]])  # rows j and j+25 identical
    got = bitext_mine(source, target, metric="dot")
    assert (got.predictions[:25] == np.arange(25)).all()
    got_cosine = bitext_mine(source, target, block_size=7)
    np.testing.assert_array_equal(got_cosine.predictions, got.predictions)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 40, 500)
    predictions = np.where(rng.random(500) < 0.6, labels, rng.integers(0, 60, 500))
    got = _scored(predictions, labels)
    assert got.accuracy == pytest.approx(accuracy_score(labels, predictions), abs=1e-12)
    for name, function in (("precision", precision_score), ("recall", recall_score),
                           ("f1", f1_score)):
        expected = function(labels, predictions, zero_division=0, average="weighted")
        assert abs(getattr(got, name) - expected) <= 1e-12, name


def test_single_row_and_all_wrong() -> None:
    only = bitext_mine(np.ones((1, 3)), np.ones((1, 3)))
    assert (only.predictions == [0]).all() and only.f1 == 1.0
    wrong = bitext_mine(np.eye(3), np.eye(3)[[1, 2, 0]])
    assert wrong.accuracy == wrong.precision == wrong.recall == wrong.f1 == 0.0


def margin_reference(source: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """Dense LASER ratio margin over each source's k nearest targets (float64)."""
    normalise = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    similarity = normalise(source.astype(np.float64)) @ normalise(target.astype(np.float64)).T
    forward = np.sort(similarity, axis=1)[:, -k:].sum(axis=1) / (2 * k)
    backward = np.sort(similarity, axis=0)[-k:, :].sum(axis=0) / (2 * k)
    margin = similarity / (forward[:, None] + backward[None, :])
    candidates = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(margin, candidates, axis=1).argmax(axis=1)
    return candidates[np.arange(len(source)), best]


def test_margin_matches_dense_reference(noisy_translations) -> None:
    source, target = noisy_translations
    for k in (1, 4):
        got = bitext_mine(source, target, method="margin", k=k, block_size=64)
        np.testing.assert_array_equal(got.predictions, margin_reference(source, target, k))
    nn = bitext_mine(source, target)
    assert (bitext_mine(source, target, method="margin", k=1).predictions == nn.predictions).all()


def test_margin_discounts_a_hub() -> None:
    """A target close to every source steals nearest-neighbour matches; the margin does not."""
    rng = np.random.default_rng(3)
    dim = 32
    common = np.eye(dim, dtype=np.float32)[0]  # every sentence shares this direction
    source = (common + rng.standard_normal((60, dim)) / np.sqrt(dim)).astype(np.float32)
    target = (source + 1.5 * rng.standard_normal((60, dim)) / np.sqrt(dim)).astype(np.float32)
    target[0] = common + 0.05 * rng.standard_normal(dim) / np.sqrt(dim)  # the hub
    nn = bitext_mine(source, target)
    margin = bitext_mine(source, target, method="margin", k=4)
    assert (nn.predictions == 0).sum() > 3 * (margin.predictions == 0).sum()
    assert margin.accuracy > nn.accuracy + 0.2


def test_torch_inputs_give_the_same_result(noisy_translations) -> None:
    source, target = noisy_translations
    got = bitext_mine(torch.from_numpy(source), torch.from_numpy(target), method="margin")
    np.testing.assert_array_equal(
        got.predictions, bitext_mine(source, target, method="margin").predictions
    )


def test_bad_input_raises_clear_errors() -> None:
    good = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="NaN or inf"):
        bitext_mine(np.full((3, 4), np.nan), good)
    with pytest.raises(ValueError, match="dimension"):
        bitext_mine(good, np.ones((3, 5)))
    with pytest.raises(ValueError, match="2-D"):
        bitext_mine(np.ones(4), good)
    with pytest.raises(ValueError, match="method"):
        bitext_mine(good, good, method="knn")
    with pytest.raises(ValueError, match="metric"):
        bitext_mine(good, good, metric="l2")
    with pytest.raises(ValueError, match="k must"):
        bitext_mine(good, good, method="margin", k=4)
    with pytest.raises(ValueError, match="gold"):
        bitext_mine(good, good, gold=[0, 1])
    with pytest.raises(ValueError, match="negative"):
        bitext_mine(good, good, gold=[0, -1, 2])


@pytest.mark.gpu
def test_cuda_tensors_match_mteb(noisy_translations) -> None:
    source, target = noisy_translations
    expected_predictions, expected = mteb_bitext(source, target)
    got = bitext_mine(torch.from_numpy(source).cuda(), torch.from_numpy(target).cuda())
    np.testing.assert_array_equal(got.predictions, expected_predictions)
    assert_metrics(got, expected)
