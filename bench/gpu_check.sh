#!/usr/bin/env bash
# One prepared GPU check for the Triton search kernels (about 9 minutes at most on one H100;
# no network needed). From the repo root of a checkout:
#
#     OUT=/some/dir bash bench/gpu_check.sh          # default OUT: bench/results/gpu_check
#
# Sections, each under its own timeout and independent of the others (one failing or timing out
# does not stop the next), each logging to $OUT/<section>.log:
#   env     versions, devices, which extras import (numba, pytest, faiss)
#   tests   the `gpu` tests of tests/kernels/test_triton_search.py, compiled (TRITON_INTERPRET=0),
#           junit in $OUT/junit.xml; they also warm the Triton cache for the bench
#   bench   top-k at 1000 x 1M x 384 (dot), fp16/bf16/fp32, k = 100 and 1000: fastmteb (fused or
#           keys path by the dispatch rule; plus the keys path forced at k=100) against
#           torch.mm + torch.topk; TFLOP/s = 2 * Q * N * dim / median seconds; $OUT/bench.jsonl
#   faiss   faiss-gpu GpuIndexFlatIP (fp32, fp16 storage) at the same shape, only if importable
# then $OUT/summary.json and $OUT/summary.md.
#
# Needs the machine's CUDA torch and triton (+ numpy). pytest and numba (the CPU path the large
# test compares against) are used if importable; pure-python extras can travel in
# bench/.gpu_vendor (git-ignored; fill it on a networked machine with
# `bash bench/gpu_check.sh --prepare`, then carry that folder along with the checkout).
set -u

cd "$(dirname "$0")/.." || exit 1
PY="${PYTHON:-python3}"

if [ "${1:-}" = "--prepare" ]; then
    # pure-python wheels only, so the device's Python version does not matter
    exec "$PY" -m pip install --quiet --target bench/.gpu_vendor pytest threadpoolctl
fi

OUT="${OUT:-$PWD/bench/results/gpu_check}"
mkdir -p "$OUT"
: > "$OUT/sections.txt"
rm -f "$OUT/bench.jsonl" "$OUT/junit.xml"
export TRITON_INTERPRET=0
export TRITON_DEFAULT_FP_FUSION=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-/tmp/fastmteb-gpu-check-triton-cache}"
export PYTHONUNBUFFERED=1
if [ -d bench/.gpu_vendor ]; then
    export PYTHONPATH="bench/.gpu_vendor${PYTHONPATH:+:$PYTHONPATH}"
fi

section() {  # section NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout --kill-after=15 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    local note=""
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then note=" (timed out after ${limit}s)"; fi
    echo "$name: rc=$rc in $((SECONDS - start))s$note" | tee -a "$OUT/sections.txt"
}

section env 30 "$PY" bench/gpu_check.py env --out "$OUT"
section tests 270 "$PY" bench/gpu_check.py pytest -- -m gpu -q -p no:cacheprovider \
    tests/kernels/test_triton_search.py --junitxml="$OUT/junit.xml" -o addopts=""
section bench 170 "$PY" bench/gpu_check.py bench --out "$OUT"
section faiss 40 "$PY" bench/gpu_check.py faiss --out "$OUT"
section summary 15 "$PY" bench/gpu_check.py summary --out "$OUT"
cat "$OUT/summary.md" 2>/dev/null
exit 0
