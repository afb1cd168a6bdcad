"""fastmteb.kernels.spearman / pearson against scipy.stats and mteb's STS scoring."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastmteb.kernels import pearson, spearman
from fastmteb.kernels.correlation import _pearson_torch, _spearman_torch

TOLERANCE = 1e-12


def scipy_columns(function, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The scipy statistic per column, broadcasting a 1-D side."""
    columns = y.shape[1] if y.ndim == 2 else x.shape[1]
    pick = lambda a, j: a[:, j] if a.ndim == 2 else a  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([function(pick(x, j), pick(y, j)).statistic for j in range(columns)])


def sts_like(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gold scores on a 0.2 grid (many ties, float64) and float32 cosine-like predictions."""
    gold = np.round(rng.uniform(0, 5, n) / 0.2) * 0.2 / 5
    predicted = (gold + rng.normal(0, 0.3, n)).astype(np.float32)
    return gold, predicted


@pytest.mark.parametrize("n", [2, 3, 17, 511, 512, 5000, 70_000])
@pytest.mark.parametrize("kind", ["float64", "float32", "sts", "ties"])
def test_random_vectors_match_scipy(n: int, kind: str) -> None:
    rng = np.random.default_rng(n)
    if kind == "sts":
        x, y = sts_like(rng, n)
    else:
        x = rng.standard_normal(n)
        y = x + rng.standard_normal(n)
        if kind == "float32":
            x, y = x.astype(np.float32), y.astype(np.float32)
        if kind == "ties":
            x, y = np.round(x), np.round(y * 3) / 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n=2 with ties can be constant
        expected_rho = scipy.stats.spearmanr(x, y).statistic
        got_rho = spearman(x, y)
    assert isinstance(got_rho, float)
    np.testing.assert_allclose(got_rho, expected_rho, rtol=0, atol=TOLERANCE)
    if kind != "float32":  # scipy computes two float32 inputs in float32; we use float64
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected_r = scipy.stats.pearsonr(x, y).statistic
            got_r = pearson(x, y)
        np.testing.assert_allclose(got_r, expected_r, rtol=0, atol=TOLERANCE)
    else:
        np.testing.assert_allclose(
            pearson(x, y), scipy.stats.pearsonr(x.astype(float), y.astype(float)).statistic,
            rtol=0, atol=TOLERANCE,
        )


def test_float64_keys_sharing_high_bits_sort_exactly() -> None:
    """Values equal in their top 44 bits (they differ only in the last mantissa bits) force the
    radix sort to refine runs on the full key, both by insertion (short runs) and argsort."""
    rng = np.random.default_rng(3)
    base = 1.0 + np.arange(60_000) * 2.0**-50  # runs of ~1000 words sharing the kept bits
    x = rng.permutation(base)
    y = x + rng.normal(0, 2.0**-46, x.size)
    short_runs = rng.permutation(np.repeat(rng.random(10_000), 2) + np.tile([0, 2.0**-52], 10_000))
    for a, b in ((x, y), (short_runs, rng.random(short_runs.size))):
        assert abs(spearman(a, b) - scipy.stats.spearmanr(a, b).statistic) <= TOLERANCE


@pytest.mark.parametrize(
    "function, oracle", [(spearman, scipy.stats.spearmanr), (pearson, scipy.stats.pearsonr)]
)
def test_batched_columns_match_scipy_per_column(function, oracle) -> None:
    rng = np.random.default_rng(7)
    n, m = 300, 5
    x_matrix = rng.standard_normal((n, m))
    y_matrix = x_matrix + rng.standard_normal((n, m))
    y_matrix[:, 2] = np.round(y_matrix[:, 2])
    x_vector = rng.standard_normal(n)
    for x, y in ((x_matrix, y_matrix), (x_vector, y_matrix), (y_matrix, x_vector)):
        got = function(x, y)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == (m,)
        np.testing.assert_allclose(got, scipy_columns(oracle, x, y), rtol=0, atol=TOLERANCE)


def test_mteb_sts_scores_are_reproduced() -> None:
    """mteb's AbsTaskSTS._calculate_scores (scipy on gold vs cosine/manhattan/euclidean)."""
    from mteb.abstasks.sts import AbsTaskSTS

    rng = np.random.default_rng(11)
    first, second = rng.standard_normal((2, 400, 32)).astype(np.float32)
    second = first + 1.5 * second
    gold = list(np.round(rng.uniform(0, 5, 400) / 0.2) * 0.2 / 5)
    from sklearn.metrics.pairwise import (
        paired_cosine_distances,
        paired_euclidean_distances,
        paired_manhattan_distances,
    )

    scores = {
        "cosine_scores": 1 - paired_cosine_distances(first, second),
        "manhattan_distances": -paired_manhattan_distances(first, second),
        "euclidean_distances": -paired_euclidean_distances(first, second),
        "similarity_scores": None,
    }
    expected = AbsTaskSTS._calculate_scores(None, scores, gold)
    for name, key in (("cosine", "cosine_scores"), ("manhattan", "manhattan_distances"),
                      ("euclidean", "euclidean_distances")):
        assert abs(spearman(gold, scores[key]) - expected[f"{name}_spearman"]) <= TOLERANCE
        assert abs(pearson(gold, scores[key]) - expected[f"{name}_pearson"]) <= TOLERANCE


def test_constant_input_gives_nan_with_scipy_warning() -> None:
    for x, y in (([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])):
        for function in (spearman, pearson):
            with pytest.warns(scipy.stats.ConstantInputWarning):
                assert np.isnan(function(x, y))
    with pytest.warns(scipy.stats.ConstantInputWarning):
        got = spearman(np.arange(4.0), np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]]))
    assert got[0] == pytest.approx(1.0) and np.isnan(got[1])


def test_signed_zeros_are_one_tie() -> None:
    x = np.array([0.0, -0.0, 1.0, -1.0, 0.0, 2.0])
    y = np.array([3.0, 1.0, 2.0, 0.0, 5.0, 4.0])
    assert abs(spearman(x, y) - scipy.stats.spearmanr(x, y).statistic) <= TOLERANCE


def test_infinities_rank_in_spearman_but_pearson_rejects_them() -> None:
    x = np.array([-np.inf, 1.0, 2.0, np.inf, 3.0])
    y = np.array([1.0, 2.0, 3.0, 5.0, 4.0])
    assert abs(spearman(x, y) - scipy.stats.spearmanr(x, y).statistic) <= TOLERANCE
    with pytest.raises(ValueError, match="inf"):
        pearson(x, y)


def test_small_n_follows_scipy() -> None:
    assert np.isnan(spearman([1.0], [2.0]))  # scipy: nan, no warning
    with pytest.raises(ValueError, match="at least 2"):
        pearson([1.0], [2.0])
    assert spearman([1.0, 2.0], [3.0, 4.0]) == pytest.approx(1.0, abs=TOLERANCE)
    assert pearson([1.0, 2.0], [4.0, 3.0]) == pytest.approx(-1.0, abs=TOLERANCE)


def test_nearly_constant_input_warns_like_scipy() -> None:
    x = np.array([1.0, 1.0 + 2.0**-52, 1.0, 1.0])
    with pytest.warns(scipy.stats.NearConstantInputWarning):
        pearson(x, [1.0, 2.0, 3.0, 4.0])


def test_huge_values_do_not_overflow_pearson() -> None:
    x = np.array([-5e210, 5e210, 3e200, -3e200])
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert abs(pearson(x, y) - scipy.stats.pearsonr(x, y).statistic) <= TOLERANCE


@pytest.mark.parametrize("function", [spearman, pearson])
def test_bad_input_raises_clear_errors(function) -> None:
    with pytest.raises(ValueError, match="NaN"):
        function([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        function(np.ones(3), np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 0.0]]))
    with pytest.raises(ValueError, match="same number"):
        function([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="same shape"):
        function(np.ones((3, 2)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="empty"):
        function([], [])
    with pytest.raises(ValueError, match="1-D"):
        function(np.ones((2, 2, 2)), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="real"):
        function(["a", "b"], [1.0, 2.0])


def test_torch_path_equals_numba_path() -> None:
    """The CUDA code path, run on CPU tensors."""
    rng = np.random.default_rng(5)
    gold, predicted = sts_like(rng, 2000)
    matrix = np.stack([predicted, -predicted, np.round(predicted, 1)], axis=1).astype(np.float64)
    for x, y in ((gold, predicted.astype(np.float64)), (gold, matrix)):
        np.testing.assert_allclose(
            _spearman_torch(torch.from_numpy(x), torch.from_numpy(y)), spearman(x, y),
            rtol=0, atol=TOLERANCE,
        )
        np.testing.assert_allclose(
            _pearson_torch(torch.from_numpy(x), torch.from_numpy(y)), pearson(x, y),
            rtol=0, atol=TOLERANCE,
        )
    with pytest.warns(scipy.stats.ConstantInputWarning):
        assert np.isnan(_spearman_torch(torch.ones(4), torch.arange(4.0)))
    with pytest.raises(ValueError, match="NaN"):
        _spearman_torch(torch.tensor([1.0, float("nan")]), torch.ones(2))


def test_torch_cpu_tensors_take_the_numba_path() -> None:
    x = torch.arange(10.0)
    assert spearman(x, x.flip(0)) == pytest.approx(-1.0, abs=TOLERANCE)


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64, st.integers(2, 40),
        elements=st.sampled_from([-1.5, -0.0, 0.0, 0.25, 1.0, 7.0, 1e300]),
    ),
    st.randoms(use_true_random=False),
)
def test_hypothesis_heavy_ties_match_scipy(x: np.ndarray, random) -> None:
    y = np.array([random.choice([0.0, 1.0, 2.0, -3.0]) for _ in range(x.size)])
    expected = scipy_columns(scipy.stats.spearmanr, x[:, None], y[:, None])[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = spearman(x, y)
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert abs(got - expected) <= TOLERANCE


@pytest.mark.gpu
def test_cuda_tensors_match_scipy() -> None:
    rng = np.random.default_rng(9)
    gold, predicted = sts_like(rng, 10_000)
    x, y = torch.from_numpy(gold).cuda(), torch.from_numpy(predicted).cuda()
    assert abs(spearman(x, y) - scipy.stats.spearmanr(gold, predicted).statistic) <= TOLERANCE
    expected = scipy.stats.pearsonr(gold, predicted.astype(float)).statistic
    assert abs(pearson(x, y) - expected) <= TOLERANCE


def test_threaded_driver_matches_scipy(monkeypatch) -> None:
    """Rows shared among threads (normally only for large inputs) give the same numbers."""
    from fastmteb.kernels._numba import stats

    monkeypatch.setattr(stats, "_THREADED_MIN_ELEMENTS", 0)
    rng = np.random.default_rng(12)
    gold, predicted = sts_like(rng, 3000)
    matrix = np.stack([predicted, np.round(predicted, 1), -predicted, gold], axis=1)
    expected = scipy.stats.spearmanr(gold, predicted).statistic
    assert abs(spearman(gold, predicted) - expected) <= TOLERANCE
    for function, oracle in ((spearman, scipy.stats.spearmanr), (pearson, scipy.stats.pearsonr)):
        np.testing.assert_allclose(
            function(gold, matrix), scipy_columns(oracle, gold, matrix.astype(np.float64)),
            rtol=0, atol=TOLERANCE,
        )
