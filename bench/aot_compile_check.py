"""Compile the fused top-k kernel for a GPU target without a GPU, and report its resources.

    TRITON_DEFAULT_FP_FUSION=1 python bench/aot_compile_check.py [--arch 90] [fp16:100 fp32:keys]

Triton's frontend, the MLIR lowering and ptxas all run on the CPU, so this catches what the
interpreter cannot (an op the compiler rejects, register pressure): per dtype:k it prints the
tile config, compile seconds, shared memory, and cuobjdump's REG/STACK line (STACK > a few bytes
means spills). It is how the fused tile sizes were chosen on a machine without a GPU; the bench on
a real GPU (bench/gpu_check.sh) is what decides whether they are fast.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)  # compile for real

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from fastmteb.kernels._triton import search as S  # noqa: E402

POINTER = {"fp32": "*fp32", "fp16": "*fp16", "bf16": "*bf16"}
DTYPE = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def compile_fused(dtype: str, k: int, arch: int) -> None:
    config = S.fused_config(k, DTYPE[dtype], on_gpu=True)
    signature = {
        "q_ptr": POINTER[dtype], "d_ptr": POINTER[dtype], "q_scale_ptr": "*fp32",
        "d_scale_ptr": "*fp32", "secondary_ptr": "*i64", "out_ptr": "*i64",
        "n_queries": "i32", "n_docs": "i32", "dim": "i32", "n_qblocks": "i32",
        "docs_per_split": "i32", "stride_q": "i32", "stride_d": "i32", "stride_out": "i32",
    }
    constants = {
        "IEEE": dtype == "fp32", "BLOCK_Q": config.block_q, "BLOCK_D": config.block_d,
        "BLOCK_K": config.block_k, "K_PAD": config.k_pad, "BULK_MIN": config.bulk_min,
        "LOG_D": S._log2(config.block_d), "LOG_K": S._log2(config.k_pad), "NATIVE_SORT": True,
    }
    signature.update({name: "constexpr" for name in constants})
    start = time.perf_counter()
    kernel = triton.compile(ASTSource(S._fused_topk_kernel, signature, constants),
                            target=GPUTarget("cuda", arch, 32),
                            options={"num_warps": config.num_warps,
                                     "num_stages": config.num_stages})
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        cubin = Path(folder) / "kernel.cubin"
        cubin.write_bytes(kernel.asm["cubin"])
        tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
        usage = subprocess.run([str(tool), "--dump-resource-usage", str(cubin)],
                               capture_output=True, text=True).stdout
    resources = " ".join(line.strip() for line in usage.splitlines() if "REG" in line)
    print(f"{dtype}:k={k} {config} compile {seconds:.1f}s shared {kernel.metadata.shared} "
          f"bytes | {resources}", flush=True)


def compile_keys(dtype: str, arch: int) -> None:
    """The keys-path kernel (k > FUSED_K_MAX) at its GPU tile sizes."""
    signature = {
        "q_ptr": POINTER[dtype], "d_ptr": POINTER[dtype], "q_scale_ptr": "*fp32",
        "d_scale_ptr": "*fp32", "secondary_ptr": "*i64", "keys_ptr": "*i64",
        "n_queries": "i32", "n_docs": "i32", "dim": "i32", "n_qblocks": "i32",
        "stride_q": "i32", "stride_d": "i32", "stride_keys": "i32",
    }
    constants = {"IEEE": dtype == "fp32", "BLOCK_Q": 64, "BLOCK_D": 128,
                 "BLOCK_K": 32 if dtype == "fp32" else 64}
    signature.update({name: "constexpr" for name in constants})
    start = time.perf_counter()
    triton.compile(ASTSource(S._score_keys_kernel, signature, constants),
                   target=GPUTarget("cuda", arch, 32), options={"num_warps": 8, "num_stages": 3})
    print(f"keys kernel {dtype}: compiled in {time.perf_counter() - start:.1f}s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", type=int, default=90)
    parser.add_argument("cases", nargs="*", default=["fp16:100", "bf16:10", "fp32:100",
                                                         "fp16:keys", "fp32:keys"])
    args = parser.parse_args()
    for case in args.cases:
        dtype, k = case.split(":")
        if k == "keys":
            compile_keys(dtype, args.arch)
        else:
            compile_fused(dtype, int(k), args.arch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
