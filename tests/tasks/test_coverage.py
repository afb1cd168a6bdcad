"""Coverage of mteb 2.26.24's text-only tasks, and of the named benchmarks, by fastmteb.

Of the 1,112 tasks of ``mteb.get_tasks(modalities=["text"], exclusive_modality_filter=True)``,
fastmteb runs all 1,112 (100%): 1,106 with its own task types (metadata, a scorer, a loader;
Regression included), the 5 aggregate tasks by running their parts and combining them with
mteb's ``combine_task_results`` (``fastmteb.aggregate``), and StakeholderGrounding with mteb's own
evaluator fed with fastmteb's embeddings (``fastmteb.fallback``). Counting the 195 superseded text
tasks too (``exclude_superseded=False``; MTEB(eng, v2) still uses some): 1,307 of 1,307. The exact
counts are asserted for the mteb release fastmteb is tested against (``MTEB_COMPAT_VERSION``);
under another release of the allowed range only the 99% floor holds.
"""

from __future__ import annotations

import pytest

mteb = pytest.importorskip("mteb")

from fastmteb.data.transforms import TRANSFORMS  # noqa: E402
from fastmteb.fallback import SCORED_BY  # noqa: E402
from fastmteb.results import MTEB_COMPAT_VERSION  # noqa: E402
from fastmteb.run_extras import AGGREGATE as RUN_AS_AGGREGATE  # noqa: E402
from fastmteb.run_extras import extended_coverage  # noqa: E402
from fastmteb.tasks.registry import benchmark_tasks, coverage, get_tasks  # noqa: E402
from fastmteb.tasks.types import get_task_type  # noqa: E402

AGGREGATE = "aggregate task"
RUN_BY_EXTRAS = {
    # mean of other tasks' scores: the parts run in the same pool, mteb's code combines them
    "CQADupstackRetrieval": RUN_AS_AGGREGATE,
    "CQADupstackRetrieval-Fa": RUN_AS_AGGREGATE,
    "CQADupstackRetrieval-PL": RUN_AS_AGGREGATE,
    "CQADupstack-NL": RUN_AS_AGGREGATE,
    "SynPerChatbotConvSAClassification": RUN_AS_AGGREGATE,
    # its class replaces mteb's evaluation (_evaluate_subset): mteb's evaluator, fastmteb's vectors
    "StakeholderGrounding": SCORED_BY,
}
NOT_RUNNABLE = {
    # none: every text task of the tested mteb release runs
}
BENCHMARKS = (
    "MTEB(Multilingual, v2)",
    "MTEB(cmn, v1)",
    "VN-MTEB (vie, v1)",
    "NanoBEIR",
    "MTEB(Europe, v1)",
    "MTEB(eng, v1)",
    "MTEB(eng, v2)",
)


def test_at_least_99_percent_of_mteb_text_tasks_run():
    runnable, unsupported = coverage()  # superseded tasks included (MTEB(eng, v2) uses some)
    own, extra, rest = extended_coverage()
    current = {
        t.metadata.name for t in mteb.get_tasks(modalities=["text"], exclusive_modality_filter=True)
    }
    runs = set(own) | set(extra)
    assert len(current & runs) / len(current) >= 0.99
    if mteb.__version__ != MTEB_COMPAT_VERSION:
        return  # another release of the allowed range: its catalogue may differ
    assert own == runnable and set(extra) | set(rest) == set(unsupported)
    assert extra == RUN_BY_EXTRAS
    assert set(rest) == set(NOT_RUNNABLE)
    assert len(current) == 1112 and current <= runs
    assert len(runnable) + len(unsupported) == 1307 and len(runs) == 1307
    for name, why in NOT_RUNNABLE.items():
        assert why in rest[name], (name, rest[name])


def test_every_runnable_task_has_type_scorer_and_loader():
    runnable, _ = coverage()
    for name, meta in runnable.items():
        task_type = get_task_type(meta.type)  # raises for a type fastmteb has no scorer for
        assert callable(task_type.score) and callable(task_type.prepare), name
        assert meta.main_score and meta.eval_splits and meta.hf_subsets, name
        assert set(meta.languages) == set(meta.hf_subsets), name
        # Loader: fastmteb's own (plain hub layout, or a transform it re-implements) or mteb's.
        assert meta.transform is None or meta.transform in TRANSFORMS, name
        if meta.transform is not None:
            assert not meta.mteb_loader, name
        if meta.type == "Clustering":
            assert meta.params["clustering"] in ("fast", "legacy"), name
        if meta.type == "BitextMining" and meta.params.get("parallel_subsets"):
            assert all(s.count("-") == 1 for s in meta.hf_subsets), name


def test_fastmteb_tasks_lists_every_runnable_task():
    runnable, _ = coverage()
    listed = {m.name for m in get_tasks()}
    assert set(runnable) <= listed
    assert listed - set(runnable) == {"SciFactReranking"}


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_tasks_with_mteb_subsets_and_splits(name):
    bench = mteb.get_benchmark(name)
    metas, skipped = benchmark_tasks(name)
    expected = [t for t in bench.tasks if t.metadata.name not in skipped]
    assert [m.name for m in metas] == [t.metadata.name for t in expected]
    for meta, task in zip(metas, expected, strict=True):
        assert meta.eval_splits == tuple(task.eval_splits), meta.name
        assert meta.hf_subsets == tuple(task.hf_subsets), meta.name
    # Only aggregate tasks are left out (MTEB(eng, v1)'s CQADupstackRetrieval); their parts run.
    assert all(AGGREGATE in why for why in skipped.values())
    assert len(skipped) == (1 if name == "MTEB(eng, v1)" else 0)


def test_benchmark_aggregate_runs_through_its_parts():
    from fastmteb.run_extras import split_extras

    tasks, benchmark, extras = split_extras(None, "MTEB(eng, v1)")
    assert benchmark == "MTEB(eng, v1)"
    assert [a.metadata.name for a in extras.aggregates] == ["CQADupstackRetrieval"]
    assert not extras.fallbacks
    assert [t.metadata.name for t in tasks] == [
        t.metadata.name for t in mteb.get_task("CQADupstackRetrieval").metadata.tasks
    ]
    # names pass through; an aggregate name becomes its parts' names
    tasks, _, extras = split_extras(["SciFact", "CQADupstack-NL", "StakeholderGrounding"], None)
    assert tasks[0] == "SciFact" and len(tasks) == 13
    assert [t.metadata.name for t in extras.fallbacks] == ["StakeholderGrounding"]
    assert extras.names() == ["StakeholderGrounding", "CQADupstack-NL"]
