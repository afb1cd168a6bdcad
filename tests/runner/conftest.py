"""Small fakes of the registry, data loader, task type, encoder and text pool, so that the runner
is tested on its own: every call is counted, every text is deterministic, nothing touches torch.
They reach the runner as its ``Collaborators``."""

from __future__ import annotations

import dataclasses
import functools
import weakref
import zlib
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import fastmteb.runner as runner
from fastmteb.encoding.base import EncodeContext
from fastmteb.runner import Collaborators, evaluate
from fastmteb.tasks.base import TaskMetadata, TextRequest

DIM = 8


def sts_meta(
    name: str, *, subsets: Sequence[str] = ("default",), splits: Sequence[str] = ("test",)
) -> TaskMetadata:
    return TaskMetadata(
        name=name,
        type="STS",
        hf_path=f"fake/{name.lower()}",
        hf_revision="rev-" + name.lower(),
        main_score="cosine_spearman",
        eval_splits=tuple(splits),
        hf_subsets=tuple(subsets),
        languages={s: ("eng-Latn",) for s in subsets},
        license="cc-by-4.0",
    )


def make_rows(seed: int, n: int = 12) -> list[dict[str, Any]]:
    """STS rows; the sentence pool is small so that texts repeat inside and across tasks."""
    rng = np.random.default_rng(seed)
    words = ["cat", "dog", "sits", "runs", "on", "the", "mat", "fast", "a", "red", "ball", "plays"]
    sentence = lambda: " ".join(rng.choice(words, size=rng.integers(2, 6)))  # noqa: E731
    return [
        {"sentence1": sentence(), "sentence2": sentence(), "score": float(rng.uniform(0, 5))}
        for _ in range(n)
    ]


class RawData(dict):
    """A dict that can be weak-referenced: tests check that raw data is freed once prepared."""


@dataclass
class Calls:
    load: Counter = field(default_factory=Counter)
    prepare: Counter = field(default_factory=Counter)
    score: Counter = field(default_factory=Counter)
    encoded_texts: list[str] = field(default_factory=list)
    raw_refs: list[weakref.ref] = field(default_factory=list)
    raw_alive_at_encoding: int | None = None


class FakeSTS:
    """An STS-like task type: cosine of the two sentences against the gold score."""

    name = "STS"

    def __init__(self, calls: Calls, fail_score: set[str], fail_prepare: set[str]) -> None:
        self.calls, self.fail_score, self.fail_prepare = calls, fail_score, fail_prepare

    def prepare(self, meta: TaskMetadata, raw: Any, split: str, subset: str) -> dict[str, Any]:
        self.calls.prepare[meta.name] += 1
        if meta.name in self.fail_prepare:
            raise ValueError(
                f"task {meta.name!r}: column 'score' is missing in split {split!r}; fix the data"
            )
        rows = raw[split]
        return {
            "s1": [r["sentence1"] for r in rows],
            "s2": [r["sentence2"] for r in rows],
            "gold": np.array([r["score"] for r in rows]),
        }

    def requests(self, prepared: dict[str, Any]) -> dict[str, TextRequest]:
        return {"sentence1": TextRequest(prepared["s1"]), "sentence2": TextRequest(prepared["s2"])}

    def score(
        self, meta: TaskMetadata, prepared: dict[str, Any], embeddings: dict[str, np.ndarray]
    ) -> dict:
        self.calls.score[meta.name] += 1
        if meta.name in self.fail_score:
            raise RuntimeError(f"scorer exploded on {meta.name}")
        a, b = embeddings["sentence1"], embeddings["sentence2"]
        assert a.shape == (len(prepared["s1"]), DIM) and a.dtype == np.float32
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        pearson = float(np.corrcoef(cos, prepared["gold"])[0, 1])
        ranks = lambda x: np.argsort(np.argsort(x)).astype(float)  # noqa: E731
        spearman = float(np.corrcoef(ranks(cos), ranks(prepared["gold"]))[0, 1])
        return {
            "cosine_pearson": pearson,
            "cosine_spearman": spearman,
            "manhattan_pearson": np.float64(
                pearson
            ),  # numpy scalars must be written as plain floats
            "pearson": np.float32(pearson),
            "spearman": spearman,
        }


def embed(text: str) -> np.ndarray:
    """Deterministic across processes (crc32, not hash())."""
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    return rng.standard_normal(DIM).astype(np.float32)


class FakeEncoder:
    name = "fake-org/fake-model"
    revision = "r1"
    fingerprint = "fake"

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def group_key(self, ctx: EncodeContext) -> Hashable:
        return ctx.prompt_type

    def encode(
        self, texts: Sequence[str], ctx: EncodeContext, *, progress: bool = False
    ) -> np.ndarray:
        self.calls.encoded_texts.extend(texts)
        return np.stack([embed(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)


class FakePool:
    """Dedups on (group key, text) like TextPool and encodes everything in one go."""

    def __init__(self, encoder: FakeEncoder, calls: Calls) -> None:
        self.encoder, self.calls = encoder, calls
        self.keys: dict[tuple[Hashable, str], int] = {}
        self.entries: list[tuple[str, EncodeContext]] = []

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, texts: Sequence[str], ctx: EncodeContext) -> np.ndarray:
        out = []
        for text in texts:
            key = (self.encoder.group_key(ctx), text)
            if key not in self.keys:
                self.keys[key] = len(self.entries)
                self.entries.append((text, ctx))
            out.append(self.keys[key])
        return np.array(out, dtype=np.int64)

    def embeddings(self) -> np.ndarray:
        self.calls.raw_alive_at_encoding = sum(ref() is not None for ref in self.calls.raw_refs)
        return (
            np.concatenate([self.encoder.encode([text], ctx) for text, ctx in self.entries])
            if self.entries
            else np.zeros((0, DIM), np.float32)
        )

    def encode_costs(self) -> np.ndarray:
        return np.array([len(text) for text, _ in self.entries], dtype=np.int64)


@dataclass
class FakeStack:
    """Handles the tests use: the tasks, the call counters, the failure switches."""

    tasks: dict[str, TaskMetadata]
    calls: Calls
    fail_score: set[str]
    fail_prepare: set[str]
    rows: dict[str, list[dict[str, Any]]]
    encoder_loads: list[Any]
    task_type: Any = None
    collaborators: Collaborators | None = None  # what the runner is given; tests may replace it
    embed: Any = staticmethod(embed)

    def run(self, tmp_path, names: Sequence[str], **kwargs: Any):
        kwargs.setdefault("output_folder", tmp_path / "results")
        kwargs.setdefault("progress", False)
        return evaluate("fake", list(names), collaborators=self.collaborators, **kwargs)

    def replace(self, **collaborators: Any) -> None:
        """Runs from now on use these collaborators instead (e.g. ``load_encoder=...``)."""
        self.collaborators = dataclasses.replace(self.collaborators, **collaborators)


@pytest.fixture
def fake_stack(monkeypatch) -> FakeStack:
    tasks = {
        "TaskA": sts_meta("TaskA"),
        "TaskB": sts_meta("TaskB"),
        "TaskC": sts_meta("TaskC", subsets=("en", "de")),
    }
    rows = {name: make_rows(seed) for seed, name in enumerate(tasks)}
    calls = Calls()
    stack = FakeStack(tasks, calls, set(), set(), rows, [])
    task_type = stack.task_type = FakeSTS(calls, stack.fail_score, stack.fail_prepare)

    def get_task(name: str) -> TaskMetadata:
        if name not in stack.tasks:
            raise ValueError(f"unknown task {name!r}")
        return stack.tasks[name]

    def load_raw(meta: TaskMetadata, subset: str, split: str, *, data_dir: Any) -> RawData:
        calls.load[meta.name] += 1
        raw = RawData({split: [dict(r) for r in stack.rows[meta.name]]})
        calls.raw_refs.append(weakref.ref(raw))
        return raw

    def load_encoder(model: Any, **kwargs: Any) -> FakeEncoder:
        stack.encoder_loads.append((model, kwargs))
        return FakeEncoder(calls)

    stack.collaborators = Collaborators(
        get_task=get_task,
        get_benchmark=lambda name: [stack.tasks[n] for n in ("TaskA", "TaskB")],
        get_task_type=lambda type_name: task_type,
        load_raw=load_raw,
        local_selection=lambda meta, data_dir: meta,
        release_loader_data=lambda: None,
        load_encoder=load_encoder,
        make_pool=lambda encoder, **settings: FakePool(encoder, calls),
    )
    # The CLI calls fastmteb.runner.evaluate / resolve_tasks: there they get the fakes too.
    for name in ("evaluate", "resolve_tasks"):
        real = getattr(runner, name)
        monkeypatch.setattr(runner, name, functools.partial(_with_collaborators, real, stack))
    return stack


def _with_collaborators(function: Any, stack: FakeStack, *args: Any, **kwargs: Any) -> Any:
    """``function`` given the stack's collaborators as they are at call time (unless the caller
    passes some)."""
    kwargs.setdefault("collaborators", stack.collaborators)
    return function(*args, **kwargs)
