"""Token-budget batching: every text once, budget respected, order restored, OOM back-off."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastmteb.encoding.batching import (
    MIN_BATCH_ROWS,
    EncodeStats,
    length_order,
    pad_token_ids,
    plan_batches,
    run_token_batches,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 300), min_size=1, max_size=400),
    st.integers(1, 5000),
    st.floats(0.0, 1.0),
)
def test_plan_batches_covers_each_text_once_within_budget(lengths, budget, max_waste):
    lengths = np.array(lengths)
    batches = plan_batches(lengths, budget, max_waste)
    covered = np.concatenate(batches)
    assert sorted(covered.tolist()) == list(range(len(lengths)))
    for batch in batches:
        padded = lengths[batch].max() * len(batch)
        assert padded <= budget or len(batch) == 1
        assert lengths[batch[0]] == lengths[batch].max()  # longest first inside the batch
        if len(batch) > MIN_BATCH_ROWS:
            assert 1 - lengths[batch].sum() / padded <= max_waste + 1e-12
    firsts = [lengths[b[0]] for b in batches]
    assert firsts == sorted(firsts, reverse=True)


def test_length_order_is_stable_for_ties():
    assert length_order(np.array([3, 5, 3, 5, 1])).tolist() == [1, 3, 0, 2, 4]


def test_pad_token_ids_left_and_right():
    seqs = [np.array([7, 8, 9]), np.array([5])]
    ids, mask = pad_token_ids(seqs, pad_id=0)
    assert ids.tolist() == [[7, 8, 9], [5, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = pad_token_ids(seqs, pad_id=-1, padding_side="left")
    assert ids.tolist() == [[7, 8, 9], [-1, -1, 5]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def _sum_forward(batch):
    """Row = (sum of real ids, real length): lets the test check which text landed in which row."""
    ids, mask = batch.input_ids, batch.attention_mask
    return torch.stack([(ids * mask).sum(1), mask.sum(1)], dim=1).float()


def _random_sequences(rng, n):
    return [rng.integers(1, 1000, size=rng.integers(1, 120)) for _ in range(n)]


def test_run_token_batches_restores_input_order():
    rng = np.random.default_rng(0)
    seqs = _random_sequences(rng, 500)
    stats = EncodeStats()
    out = run_token_batches(seqs, _sum_forward, budget=700, pad_id=0, stats=stats)
    expected = np.array([[s.sum(), len(s)] for s in seqs], dtype=np.float32)
    np.testing.assert_array_equal(out, expected)
    assert stats.texts == 500 and stats.tokens == sum(len(s) for s in seqs)
    assert stats.padded_tokens >= stats.tokens and stats.batches > 1


def test_oom_halves_budget_retries_and_warns_once():
    rng = np.random.default_rng(1)
    seqs = _random_sequences(rng, 300)
    calls = []

    def forward(batch):
        calls.append(batch.padded_tokens)
        if batch.padded_tokens > 1000:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return _sum_forward(batch)

    stats = EncodeStats()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = run_token_batches(seqs, forward, budget=8000, pad_id=0, stats=stats)
    oom_warnings = [w for w in caught if "out of memory" in str(w.message)]
    assert len(oom_warnings) == 1
    assert stats.oom_retries >= 3 and stats.final_budget <= 1000
    np.testing.assert_array_equal(
        out, np.array([[s.sum(), len(s)] for s in seqs], dtype=np.float32)
    )


@pytest.mark.filterwarnings("ignore:fastmteb. out of memory")
def test_other_errors_propagate_and_single_row_oom_is_not_retried():
    def broken(batch):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_token_batches([np.array([1, 2])], broken, budget=10, pad_id=0)

    def always_oom(batch):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        run_token_batches([np.array([1, 2]), np.array([3])], always_oom, budget=10, pad_id=0)


def test_bad_budget_is_a_clear_error():
    with pytest.raises(ValueError, match="budget"):
        plan_batches(np.array([1, 2]), 0)


def test_oom_memory_is_released_before_on_oom_runs():
    """on_oom (torch.cuda.empty_cache on a GPU) must run after the failed batch's exception and the
    activations its traceback holds are gone, or it cannot give their memory back."""
    import gc
    import weakref

    activations = []

    def forward(batch):
        if batch.padded_tokens > 4:
            big = torch.ones(1000)  # stands for the activations of the failed forward pass
            activations.append(weakref.ref(big))
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return _sum_forward(batch)

    alive_at_on_oom = []

    def on_oom():
        gc.collect()
        alive_at_on_oom.append(any(ref() is not None for ref in activations))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_token_batches([np.array([1, 2, 3])] * 4, forward, budget=12, pad_id=0, on_oom=on_oom)
    assert alive_at_on_oom and not any(alive_at_on_oom)


@pytest.mark.parametrize(
    "message",
    [
        "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
        "cuDNN error: CUDNN_STATUS_ALLOC_FAILED",
        "CUDA error: out of memory",
    ],
)
def test_cublas_and_cudnn_allocation_failures_back_off_like_an_oom(message):
    failures = []

    def forward(batch):
        if batch.padded_tokens > 4:
            failures.append(batch.padded_tokens)
            raise RuntimeError(message)
        return _sum_forward(batch)

    with pytest.warns(RuntimeWarning, match="out of memory"):
        out = run_token_batches([np.array([1, 2, 3])] * 4, forward, budget=12, pad_id=0)
    assert failures and out.shape == (4, 2)
