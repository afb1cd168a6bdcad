"""The GPU check behind bench/gpu_check.sh: one prepared run on a lent GPU (no network).

    python bench/gpu_check.py env     --out DIR   # versions, devices, importable extras
    python bench/gpu_check.py pytest  -- ARGS     # pytest.main(ARGS), fastmteb.kernels importable
    python bench/gpu_check.py bench   --out DIR   # fused top-k vs torch.mm + torch.topk
    python bench/gpu_check.py faiss   --out DIR   # faiss-gpu IndexFlatIP, only if importable
    python bench/gpu_check.py summary --out DIR   # summary.json + summary.md from the above

Runs from a bare checkout: ``fastmteb.kernels`` lives in kernels/fastmteb_kernels and is only
importable under that name once installed, so ``_bootstrap`` maps it when it is not installed.
Without numba (the CPU kernels) the Triton path still runs: the package is mapped bare (no
``__init__``) with a stub for the Numba search module; the CPU-comparison test then fails, and the
summary says why. Every measurement is appended to ``DIR/bench.jsonl`` as it finishes, so a
section cut off by its timeout keeps what it measured.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "bench" / ".gpu_vendor"  # optional: pure-python extras (pytest), see --prepare

QUERIES, DOCS, DIM = 1000, 1_000_000, 384
DTYPES = ("float16", "bfloat16", "float32")
KS = (100, 1000)


def _bootstrap() -> str:
    """Make ``fastmteb.kernels`` importable; returns how ("installed", "mapped", "mapped-bare")."""
    for path in (str(ROOT), str(VENDOR) if VENDOR.is_dir() else None):
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


# ---------------------------------------------------------------- sections


def section_env(out: Path) -> None:
    info: dict = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("torch", "triton", "numpy", "numba", "pytest", "faiss", "scipy", "sklearn",
                 "transformers", "threadpoolctl"):
        try:
            info[name] = getattr(importlib.import_module(name), "__version__", "importable")
        except Exception as error:  # noqa: BLE001 - any failure means "not usable here"
            info[name] = f"missing ({type(error).__name__}: {error})"[:200]
    import torch

    info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    info["kernels_import"] = _bootstrap()
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


def _timed(fn, repeats: int = 3) -> tuple[float, object]:
    result = fn()  # warm-up: compiles the kernels
    _sync()
    times = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        result = fn()
        _sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], result


def _record(out: Path, row: dict) -> None:
    with open(out / "bench.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def section_bench(out: Path, queries: int, docs: int, dim: int, device: str) -> None:
    try:
        _bench(out, queries, docs, dim, device)
    except Exception as error:  # noqa: BLE001 - setup failed: say so in the summary
        _record(out, {"method": "bench setup", "error": f"{type(error).__name__}: {error}"[:500]})
        raise


def _bench(out: Path, queries: int, docs: int, dim: int, device: str) -> None:
    """``device="cpu"`` is a dry run of this code under TRITON_INTERPRET=1 (tiny shapes only)."""
    how = _bootstrap()
    import torch

    from fastmteb.kernels._triton import search as triton_search

    flops = 2.0 * queries * docs * dim
    generator = torch.Generator(device=device).manual_seed(0)
    base_q = torch.randn((queries, dim), device=device, generator=generator)
    base_d = torch.randn((docs, dim), device=device, generator=generator)
    device_name = torch.cuda.get_device_name() if device == "cuda" else "cpu (interpreted)"
    dtypes = DTYPES if device == "cuda" else ("float16", "float32")  # interpreter: no bf16 dot
    # most informative first: a timeout cuts the tail
    plan = [(dtype, k, method) for k in KS for dtype in dtypes
            for method in ("fastmteb", "torch_mm_topk")]
    plan += [(dtype, 100, "fastmteb_keys_path") for dtype in dtypes]  # checks the dispatch rule
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
                seconds, (scores, indices) = _timed(lambda: torch.topk(q @ d.T, k, dim=1))
            else:
                path = "keys" if method == "fastmteb_keys_path" else None
                row["path"] = path or ("fused" if k <= triton_search.FUSED_K_MAX else "keys")
                seconds, (scores, indices) = _timed(lambda: triton_search.topk_cuda(
                    q, d, k, metric="dot", block_size=None, tie_rank=None, path=path))
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
        _record(out, row)


def section_faiss(out: Path, queries: int, docs: int, dim: int) -> None:
    try:
        import faiss
    except ImportError as error:
        _record(out, {"method": "faiss_gpu", "skipped": f"faiss not importable: {error}"})
        return
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() < 1:
        _record(out, {"method": "faiss_gpu", "skipped": "faiss has no GPU support here"})
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
        for k in KS:
            row = {"method": "faiss_gpu_flat_ip", "dtype": "float16" if fp16 else "float32",
                   "k": k, "queries": queries, "docs": docs, "dim": dim,
                   "note": "queries from host memory"}
            try:
                seconds, _ = _timed(lambda: index.search(q, k))
                row.update(seconds=seconds, tflops=2.0 * queries * docs * dim / seconds / 1e12)
            except Exception as error:  # noqa: BLE001
                row["error"] = f"{type(error).__name__}: {error}"[:500]
            _record(out, row)


def section_summary(out: Path) -> None:
    summary: dict = {}
    for name in ("env.json",):
        if (out / name).exists():
            summary["env"] = json.loads((out / name).read_text())
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
    rows = []
    if (out / "bench.jsonl").exists():
        rows = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()
                if line.strip()]
    summary["bench"] = rows
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = ["# fastmteb GPU check", ""]
    env = summary.get("env", {})
    lines += [f"- {key}: {env[key]}" for key in ("cuda_devices", "torch", "triton", "numba",
                                                  "kernels_import") if key in env]
    for line in summary.get("sections", []):
        lines.append(f"- section {line}")
    if "tests" in summary:
        t = summary["tests"]
        lines += ["", f"## gpu tests: {t['tests']} run, {t['failures']} failed, "
                      f"{t['errors']} errors, {t['skipped']} skipped ({t['time']} s)", ""]
        lines += [f"- {item}" for item in t["not_passed"]]
    shape = next((f"{r['queries']} x {r['docs']} x {r['dim']}" for r in rows if "docs" in r), "")
    lines += ["", f"## top-k, dot, queries x docs x dim = {shape} (median of 3 after a warm-up)",
              "",
              "| method | dtype | k | path | seconds | TFLOP/s | same set as torch | note |",
              "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        note = row.get("error") or row.get("skipped") or row.get("note") or ""
        seconds = f"{row['seconds']:.4f}" if "seconds" in row else ""
        tflops = f"{row['tflops']:.1f}" if "tflops" in row else ""
        same = row.get("same_set_as_torch_fraction")
        lines.append(f"| {row.get('method')} | {row.get('dtype', '')} | {row.get('k', '')} | "
                     f"{row.get('path', '')} | {seconds} | {tflops} | "
                     f"{'' if same is None else f'{same:.4f}'} | {note} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("section", choices=["env", "pytest", "bench", "faiss", "summary"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu_check")
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument("--docs", type=int, default=DOCS)
    parser.add_argument("--dim", type=int, default=DIM)
    parser.add_argument("--device", default="cuda", help="cpu: interpreted dry run, tiny shapes")
    argv = sys.argv[1:]
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.section == "env":
        section_env(args.out)
    elif args.section == "pytest":
        return section_pytest(rest)
    elif args.section == "bench":
        section_bench(args.out, args.queries, args.docs, args.dim, args.device)
    elif args.section == "faiss":
        section_faiss(args.out, args.queries, args.docs, args.dim)
    else:
        section_summary(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
