"""Resume decides on the model fingerprint, the settings that change scores and the data; results
of other weights never overwrite each other; fastmteb-only tasks stay out of mteb's readers.

On the fakes of tests/runner/conftest.py: the encoder's fingerprints, revision and dtype are set
per run to stand for "another model of the same name" or "another dtype".
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from fastmteb.results import TaskResult, load_results


def use_encoder(fake_stack, *, fingerprint: str, model_fingerprint: str | None = None,
                revision: str = "no_revision_available", dtype: str | None = None,
                name: str = "final") -> None:
    """Runs from now on get a FakeEncoder with these identities (as two folders named
    ``final`` holding different weights would)."""
    fake_load = fake_stack.collaborators.load_encoder

    def load_encoder(model, **kwargs):
        encoder = fake_load(model, **kwargs)
        encoder.name, encoder.revision, encoder.fingerprint = name, revision, fingerprint
        if model_fingerprint is not None:
            encoder.model_fingerprint = model_fingerprint
        if dtype is not None:
            encoder.compute_dtype = dtype
        return encoder

    fake_stack.replace(load_encoder=load_encoder)


def stored(path: Path) -> dict:
    return json.loads(path.read_text())


def test_same_name_other_weights_is_evaluated_again_and_both_results_survive(
    tmp_path, fake_stack
):
    use_encoder(fake_stack, fingerprint="a" * 64)
    first = fake_stack.run(tmp_path, ["TaskA"])
    use_encoder(fake_stack, fingerprint="b" * 64)
    second = fake_stack.run(tmp_path, ["TaskA"])

    assert second.skipped == [] and fake_stack.calls.score["TaskA"] == 2
    # no revision: the folder is named by the model fingerprint, so the two never meet
    assert first.output_dir.name == "fp-" + "a" * 16 and second.output_dir.name == "fp-" + "b" * 16
    assert first.output_dir.parent == second.output_dir.parent == tmp_path / "results" / "final"
    for run, fp in ((first, "a" * 64), (second, "b" * 64)):
        data = stored(run.output_dir / "TaskA.json")
        assert data["fastmteb"]["model"]["model_fingerprint"] == fp
        assert stored(run.output_dir / "model_meta.json")["revision"] == run.output_dir.name
    both = load_results(tmp_path / "results")
    assert sorted(both) == [f"final@fp-{'a' * 16}", f"final@fp-{'b' * 16}"]

    # each model resumes from its own folder
    third = fake_stack.run(tmp_path, ["TaskA"])
    assert third.skipped == ["TaskA"] and third.output_dir == second.output_dir


def test_same_name_and_revision_with_other_weights_goes_to_a_sibling_folder(
    tmp_path, fake_stack, caplog
):
    """A revision does not vouch for the weights (a fine-tuned model whose card names its base
    model's revision, a model changed in memory): the folder is kept by the weights that wrote it."""
    use_encoder(fake_stack, fingerprint="a" * 64, revision="r1", name="org/m")
    first = fake_stack.run(tmp_path, ["TaskA", "TaskB"])
    use_encoder(fake_stack, fingerprint="c" * 64, revision="r1", name="org/m")
    with caplog.at_level(logging.WARNING, logger="fastmteb"):
        second = fake_stack.run(tmp_path, ["TaskA", "TaskC"])

    assert first.output_dir.name == "r1" and second.output_dir.name == "r1-fp-" + "c" * 16
    assert second.skipped == [] and fake_stack.calls.score["TaskA"] == 2
    assert "results of other weights" in caplog.text
    assert stored(first.output_dir / "TaskA.json")["fastmteb"]["model"]["model_fingerprint"] == "a" * 64
    assert sorted(p.name for p in first.output_dir.glob("Task*.json")) == ["TaskA.json", "TaskB.json"]
    assert stored(second.output_dir / "TaskA.json")["fastmteb"]["model"]["model_fingerprint"] == "c" * 64


def test_changed_dtype_is_evaluated_again_with_the_reason(tmp_path, fake_stack, caplog):
    use_encoder(fake_stack, fingerprint="f32", model_fingerprint="m" * 64, dtype="torch.float32")
    first = fake_stack.run(tmp_path, ["TaskA", "TaskB"])
    assert stored(first.output_dir / "TaskA.json")["fastmteb"]["settings"]["dtype"] == "float32"

    use_encoder(fake_stack, fingerprint="bf16", model_fingerprint="m" * 64, dtype="torch.bfloat16")
    with caplog.at_level(logging.WARNING, logger="fastmteb"):
        second = fake_stack.run(tmp_path, ["TaskA"])

    assert second.output_dir == first.output_dir  # same weights: same folder
    assert second.skipped == [] and fake_stack.calls.score["TaskA"] == 2
    assert "dtype 'float32' -> 'bfloat16'" in second.reevaluated["TaskA"]
    assert "TaskA" in caplog.text and "dtype 'float32' -> 'bfloat16'" in caplog.text
    assert stored(first.output_dir / "TaskA.json")["fastmteb"]["settings"]["dtype"] == "bfloat16"
    # TaskB was not asked for: its float32 result stays
    assert stored(first.output_dir / "TaskB.json")["fastmteb"]["settings"]["dtype"] == "float32"


def test_batch_budget_and_device_do_not_block_resume(tmp_path, fake_stack, monkeypatch):
    use_encoder(fake_stack, fingerprint="x" * 64)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)  # the fake encoder runs anywhere
    fake_stack.run(tmp_path, ["TaskA"], batch_tokens=16384, device="cuda")
    again = fake_stack.run(tmp_path, ["TaskA"], batch_tokens=1024, device="cpu")
    assert again.skipped == ["TaskA"] and not again.reevaluated


def test_float16_spill_blocks_resume(tmp_path, fake_stack):
    use_encoder(fake_stack, fingerprint="x" * 64)
    fake_stack.run(tmp_path, ["TaskA"])
    again = fake_stack.run(tmp_path, ["TaskA"], max_embedding_memory="1GB", spill_dtype="float16")
    assert again.skipped == [] and "spill_dtype 'float32' -> 'float16'" in again.reevaluated["TaskA"]


def test_other_prompts_block_resume_and_the_same_prompts_resume(tmp_path, fake_stack):
    use_encoder(fake_stack, fingerprint="x" * 64)
    fake_load = fake_stack.collaborators.load_encoder

    def with_prompts(prompts):
        def load_encoder(model, **kwargs):
            encoder = fake_load(model, **kwargs)
            encoder.prompts = prompts
            return encoder
        fake_stack.replace(load_encoder=load_encoder)

    with_prompts({"query": "query: "})
    fake_stack.run(tmp_path, ["TaskA"])
    assert fake_stack.run(tmp_path, ["TaskA"]).skipped == ["TaskA"]  # read back from JSON: equal
    with_prompts({"query": "search_query: "})
    again = fake_stack.run(tmp_path, ["TaskA"])
    assert again.skipped == [] and "prompts" in again.reevaluated["TaskA"]


def test_hub_source_provenance(tmp_path, fake_stack):
    run = fake_stack.run(tmp_path, ["TaskA"], batch_tokens=2048)
    record = stored(run.output_dir / "TaskA.json")["fastmteb"]
    import fastmteb

    assert record["version"] == fastmteb.__version__
    assert record["model"] == {
        "name": "fake-org/fake-model", "revision": "r1",
        "model_fingerprint": "fake", "fingerprint": "fake",
    }
    assert record["settings"]["batch_tokens"] == 2048 and "device" in record["settings"]
    assert record["data"] == {"source": "hub", "hf_path": "fake/taska", "revision": "rev-taska"}
    # mteb reads the file and ignores the extra key
    mteb_result = pytest.importorskip("mteb.results.task_result").TaskResult.from_disk(
        run.output_dir / "TaskA.json", load_historic_data=False
    )
    assert mteb_result.get_score() == run[0].get_score()


def test_files_without_provenance_are_still_resumed(tmp_path, fake_stack):
    """Files mteb itself (or an older fastmteb) wrote carry no record: kept, as before."""
    run = fake_stack.run(tmp_path, ["TaskA"])
    path = run.output_dir / "TaskA.json"
    data = stored(path)
    del data["fastmteb"]
    path.write_text(json.dumps(data))
    again = fake_stack.run(tmp_path, ["TaskA"])
    assert again.skipped == ["TaskA"]


# --------------------------------------------------------------------------------------------
# Tasks mteb does not have


def sts_meta(fake_stack, name: str, **changes):
    return replace(fake_stack.tasks["TaskA"], name=name, hf_path=f"fake/{name.lower()}",
                   hf_revision=f"rev-{name.lower()}", **changes)


@pytest.fixture
def with_fastmteb_only_task(fake_stack):
    """BIOSSES (an mteb task) and a fastmteb-only stand-in for SciFactReranking."""
    fake_stack.tasks["BIOSSES"] = sts_meta(fake_stack, "BIOSSES")
    fake_stack.tasks["OnlyInFastmteb"] = sts_meta(fake_stack, "OnlyInFastmteb", mteb_task=False)
    fake_stack.rows["BIOSSES"] = fake_stack.rows["TaskA"]
    fake_stack.rows["OnlyInFastmteb"] = fake_stack.rows["TaskB"]
    return fake_stack


def test_mteb_readers_read_a_folder_with_a_fastmteb_only_task(
    tmp_path, with_fastmteb_only_task, monkeypatch
):
    mteb = pytest.importorskip("mteb")
    run = with_fastmteb_only_task.run(tmp_path, ["BIOSSES", "OnlyInFastmteb"])
    folder = run.output_dir
    assert (folder / "BIOSSES.json").is_file()
    assert (folder / "fastmteb-only" / "OnlyInFastmteb.json").is_file()
    assert not (folder / "OnlyInFastmteb.json").exists()

    cache = mteb.ResultCache(cache_path=tmp_path)  # reads <cache_path>/results/<model>/<revision>
    for kwargs in ({}, {"validate_and_filter": True}):
        bench = cache.load_results(**kwargs)
        (model_result,) = bench.model_results
        assert [r.task_name for r in model_result.task_results] == ["BIOSSES"]
    monkeypatch.setenv("MTEB_CACHE", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        bench = mteb.load_results(download_latest=False)
    assert [r.task_name for m in bench.model_results for r in m.task_results] == ["BIOSSES"]

    # fastmteb's own reader lists both, under the one model
    mine = load_results(tmp_path / "results")
    assert list(mine) == ["fake-org/fake-model"]
    assert sorted(mine["fake-org/fake-model"]) == ["BIOSSES", "OnlyInFastmteb"]
    # and resumes both
    again = with_fastmteb_only_task.run(tmp_path, ["BIOSSES", "OnlyInFastmteb"])
    assert again.skipped == ["BIOSSES", "OnlyInFastmteb"]


def test_fastmteb_only_result_in_the_old_place_is_moved_and_resumed(
    tmp_path, with_fastmteb_only_task
):
    run = with_fastmteb_only_task.run(tmp_path, ["OnlyInFastmteb"])
    new = run.output_dir / "fastmteb-only" / "OnlyInFastmteb.json"
    old = run.output_dir / "OnlyInFastmteb.json"
    new.rename(old)  # where fastmteb used to write it
    again = with_fastmteb_only_task.run(tmp_path, ["OnlyInFastmteb"])
    assert again.skipped == ["OnlyInFastmteb"] and new.is_file() and not old.exists()


def test_fastmteb_only_flag_matches_mteb_registry():
    """Every registered task mteb knows is written beside the others; the rest are flagged."""
    pytest.importorskip("mteb")
    from mteb.get_tasks import _TASKS_REGISTRY

    from fastmteb.tasks.registry import TASKS

    wrong = [name for name, meta in TASKS.items() if meta.mteb_task != (name in _TASKS_REGISTRY)]
    assert wrong == []
    assert TASKS["SciFactReranking"].mteb_task is False


def test_result_file_round_trips_provenance(tmp_path):
    result = TaskResult(
        dataset_revision="r", task_name="T", mteb_version="2.26.24",
        scores={"test": [{"main_score": 0.5, "hf_subset": "default", "languages": ["eng-Latn"]}]},
        provenance={"version": "0.1.0", "data": {"source": "hub"}},
    )
    result.to_disk(tmp_path / "T.json")
    assert TaskResult.from_disk(tmp_path / "T.json").provenance == result.provenance
