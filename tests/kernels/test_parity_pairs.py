"""fastmteb.kernels.pair_sweep against mteb's pair-classification metric code and sklearn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from mteb.abstasks.pair_classification import AbsTaskPairClassification
from sklearn.metrics import average_precision_score

from fastmteb.kernels import PairSweep, pair_sweep
from fastmteb.kernels.pairs import _pair_sweep_torch


class MtebMetrics:
    """mteb's methods (they do not use ``self``) on a bare object."""

    _compute_metrics_values = AbsTaskPairClassification._compute_metrics_values
    _find_best_acc_and_threshold = AbsTaskPairClassification._find_best_acc_and_threshold
    _find_best_f1_and_threshold = AbsTaskPairClassification._find_best_f1_and_threshold


MTEB = MtebMetrics()


def mteb_sweep(scores: np.ndarray, labels: np.ndarray, higher_is_better: bool) -> PairSweep:
    """What mteb computes, given the scores as the Python floats it receives."""
    score_list = np.asarray(scores).tolist()
    label_array = np.asarray(labels, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when there is no positive pair
        reported = MTEB._compute_metrics_values(score_list, label_array, higher_is_better)
    accuracy, accuracy_threshold = MTEB._find_best_acc_and_threshold(
        score_list, label_array, higher_is_better
    )
    f1, precision, recall, f1_threshold = MTEB._find_best_f1_and_threshold(
        score_list, label_array, higher_is_better
    )
    assert reported["accuracy"] == accuracy and reported["f1"] == f1
    return PairSweep(
        float(accuracy), float(accuracy_threshold), float(f1), float(f1_threshold),
        float(precision), float(recall), reported["ap"],
    )


def assert_same(got: PairSweep, expected: PairSweep) -> None:
    """Everything but AP bit-identical (same float operations); AP to 1e-12 (summation order)."""
    for field in ("accuracy", "accuracy_threshold", "f1", "f1_threshold", "precision", "recall"):
        assert getattr(got, field) == getattr(expected, field), field
    assert abs(got.ap - expected.ap) <= 1e-12


def random_case(n: int, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    if kind == "separable":
        scores = rng.normal(0, 1, n) + 1.5 * labels
    elif kind == "float32":
        scores = (rng.normal(0, 1, n) + labels).astype(np.float32)
    elif kind == "ties":
        scores = np.round(rng.normal(0, 1, n) + labels, 1)
    elif kind == "all_equal":
        scores = np.full(n, 0.7)
    elif kind == "positives_only":
        labels = np.ones(n, dtype=np.int64)
        scores = np.round(rng.random(n), 2)
    elif kind == "negatives_only":
        labels = np.zeros(n, dtype=np.int64)
        scores = np.round(rng.random(n), 2)
    else:
        raise AssertionError(kind)
    return scores, labels


@pytest.mark.parametrize("n", [1, 2, 3, 10, 600, 20_000])
@pytest.mark.parametrize(
    "kind", ["separable", "float32", "ties", "all_equal", "positives_only", "negatives_only"]
)
@pytest.mark.parametrize("higher_is_better", [True, False])
def test_matches_mteb(n: int, kind: str, higher_is_better: bool) -> None:
    scores, labels = random_case(n, kind, seed=n)
    assert_same(
        pair_sweep(scores, labels, higher_is_better=higher_is_better),
        mteb_sweep(scores, labels, higher_is_better),
    )


def test_ap_is_sklearn_on_negated_distances() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 5000)
    distances = np.round(rng.gamma(2.0, 1.0, 5000) - labels, 2)
    expected = average_precision_score(labels, -distances)
    assert abs(pair_sweep(distances, labels, higher_is_better=False).ap - expected) <= 1e-12
    assert abs(pair_sweep(-distances, labels).ap - expected) <= 1e-12


def test_two_pairs_by_hand() -> None:
    # descending: (0.9, 1), (0.1, 0): the one cut gives accuracy 1, F1 1, threshold 0.5
    assert pair_sweep([0.1, 0.9], [0, 1]) == PairSweep(1.0, 0.5, 1.0, 0.5, 1.0, 1.0, 1.0)
    # tied scores: no cut at all, mteb keeps its initial values
    assert pair_sweep([0.3, 0.3], [0, 1]) == PairSweep(0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.5)


def test_rows_of_several_scoring_functions() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 800)
    rows = np.stack([rng.normal(size=800) + labels, np.round(rng.normal(size=800) - labels, 1)])
    got = pair_sweep(rows, labels, higher_is_better=False)
    assert isinstance(got, list) and len(got) == 2
    for row, sweep in zip(rows, got):
        assert_same(sweep, mteb_sweep(row, labels, False))


def test_bool_labels_and_torch_cpu_inputs() -> None:
    scores, labels = random_case(300, "ties", seed=4)
    expected = mteb_sweep(scores, labels, True)
    got = pair_sweep(torch.from_numpy(scores), torch.from_numpy(labels.astype(bool)))
    assert_same(got, expected)


@pytest.mark.parametrize("kind", ["separable", "ties", "all_equal", "negatives_only"])
@pytest.mark.parametrize("higher_is_better", [True, False])
def test_torch_path_matches_mteb(kind: str, higher_is_better: bool) -> None:
    """The CUDA code path, run on CPU tensors."""
    for n in (1, 2, 500):
        scores, labels = random_case(n, kind, seed=n + 1)
        got = _pair_sweep_torch(
            torch.from_numpy(np.asarray(scores)), torch.from_numpy(labels),
            higher_is_better=higher_is_better,
        )
        assert_same(got, mteb_sweep(scores, labels, higher_is_better))
    rows = np.stack([scores, scores[::-1]])
    got_rows = _pair_sweep_torch(torch.from_numpy(rows), torch.from_numpy(labels),
                                 higher_is_better=higher_is_better)
    assert [g.ap for g in got_rows] == pytest.approx(
        [mteb_sweep(r, labels, higher_is_better).ap for r in rows], abs=1e-12
    )


def test_bad_input_raises_clear_errors() -> None:
    with pytest.raises(ValueError, match="NaN or inf"):
        pair_sweep([0.1, np.nan, 0.3], [0, 1, 0])
    with pytest.raises(ValueError, match="0 \\(dissimilar\\) or 1"):
        pair_sweep([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="one entry per pair"):
        pair_sweep([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        pair_sweep([], [])
    with pytest.raises(ValueError, match="NaN or inf"):
        _pair_sweep_torch(torch.tensor([0.1, float("nan")]), torch.tensor([0, 1]),
                          higher_is_better=True)


@pytest.mark.gpu
def test_cuda_tensors_match_mteb() -> None:
    scores, labels = random_case(20_000, "ties", seed=8)
    got = pair_sweep(torch.from_numpy(scores).cuda(), torch.from_numpy(labels).cuda())
    assert_same(got, mteb_sweep(scores, labels, True))


def test_threaded_driver_matches_mteb(monkeypatch) -> None:
    """Rows shared among threads (normally only for large inputs) give the same numbers."""
    from fastmteb.kernels._numba import stats

    monkeypatch.setattr(stats, "_THREADED_MIN_ELEMENTS", 0)
    scores, labels = random_case(700, "ties", seed=13)
    rows = np.stack([scores, -scores, scores * 3, np.round(scores)])
    for row, sweep in zip(rows, pair_sweep(rows, labels)):
        assert_same(sweep, mteb_sweep(row, labels, True))
