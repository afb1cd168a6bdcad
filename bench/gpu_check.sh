#!/usr/bin/env bash
# One prepared GPU check (under 9 minutes on one H100/H200; no network needed there).
#
# 1. Here, on a networked machine, in the repo root of the checkout the device tool sends (the
#    one the session started in), fill the carried folder (git-ignored; fails over the cap):
#        bash bench/gpu_check.sh --prepare
#    It holds (bench/gpu_check.py's docstring says why): the pure-python packages the device
#    image lacks (datasets, dill, multiprocess), all-MiniLM-L6-v2's config + tokenizer WITHOUT
#    weights (encode and run use that shape with random weights, seed 0: 90 MB fp32 or 45 MB
#    fp16 weights do not fit beside the data), the shared data of every task of
#    bench/parity_vs_mteb.py (about 43 MiB) and their TaskMetadata (mteb is not on the device):
#    46 MiB, 57 MiB with the checkout, of the 64 MiB a device run may carry.
# 2. The device run (the tool sets OUT):
#        run(command="bash bench/gpu_check.sh", carry=["bench/.gpu_vendor"], timeout_s=600)
#    $OUT gets summary.md, summary.json and logs.tar.gz (every section's log and records; the
#    tool brings back at most 8 files, so they travel as one archive).
# 3. Here, without a GPU: `bash bench/gpu_check.sh --dry-run` runs every section's plumbing on the
#    CPU with tiny shapes (Triton interpreted, Numba uncompiled, the first rows of two tasks in
#    its own temporary carried folder, mteb blocked as on the device);
#    tests/test_gpu_check_script.py runs it.
#
# Sections, each under its own timeout and independent of the others (one failing or timing out
# does not stop the next), in this order (the issue's measurements first):
#   env     versions, devices, which extras import (numba, sentence-transformers, datasets, mteb)
#   bench   dense matmul TFLOP/s per dtype (8192^3: the yardstick), then top-k at
#           1000 x 1M x 384 (dot), fp16/bf16/fp32, k = 100 and 1000: fastmteb (fused or keys path
#           by the dispatch rule; plus the keys path forced at k=100) against torch.mm +
#           torch.topk; TFLOP/s = 2 * Q * N * dim / median seconds
#   encode  tokens/s (real tokens) of fastmteb vs SentenceTransformer.encode (batch 32 and 256,
#           weights cast to the dtype) at bf16/fp16/fp32, same texts, model and max length
#   run     fastmteb.evaluate over every carried task in bf16: wall time and per-phase times;
#           a second, warm run when the first (which compiles the kernels) took under 35 s
#   tests   the `gpu` tests of tests/kernels/test_triton_search.py, compiled (TRITON_INTERPRET=0)
#   faiss   faiss-gpu GpuIndexFlatIP (fp32, fp16 storage) at the top-k shape, only if importable
# then summary.json and summary.md: the figures, and each of the issue's targets MET or MISSED
# (fused top-k >= torch.mm + torch.topk and >= 50% of the dtype's matmul TFLOP/s; encoding >= 1.5x
# SentenceTransformer.encode at the same dtype; the shared-data run in bf16 under 60 s).
set -u

cd "$(dirname "$0")/.." || exit 1
PY="${PYTHON:-python3}"
MODE="${1:-device}"

if [ "$MODE" = "--prepare" ]; then
    exec "$PY" bench/gpu_check.py prepare
fi

OUT="${OUT:-$PWD/bench/results/gpu_check}"
mkdir -p "$OUT"
rm -f "$OUT/summary.md" "$OUT/summary.json" "$OUT/logs.tar.gz"
# records and logs; OUT gets 3 files
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastmteb-gpu-check.XXXXXX")"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-/tmp/fastmteb-gpu-check-triton-cache}"
export PYTHONUNBUFFERED=1
export TRITON_DEFAULT_FP_FUSION=1

if [ "$MODE" = "--dry-run" ]; then
    export FASTMTEB_GPU_VENDOR="$WORK/vendor"
    export TRITON_INTERPRET=1
    export NUMBA_DISABLE_JIT=1  # a few rows: compiling the CPU kernels would take the most time
    "$PY" bench/gpu_check.py prepare --tasks STSBenchmark SciFact --rows 16 --no-wheels \
        > "$WORK/prepare.log" 2>&1 || { cat "$WORK/prepare.log"; exit 1; }
    BENCH=(--device cpu --queries 8 --docs 300 --dim 32 --ks 10 --matmul-side 64 --repeats 1)
    ENCODE=(--device cpu --dtypes bfloat16 --limit 2 --repeats 1)
    RUN=(--device cpu --tasks STSBenchmark)
    TESTS=(--collect-only)  # no CUDA here: collection (and the kernels' import) only
else
    export TRITON_INTERPRET=0
    BENCH=() ENCODE=() RUN=() TESTS=()
fi
VENDOR_DIR="${FASTMTEB_GPU_VENDOR:-bench/.gpu_vendor}"
if [ -d "$VENDOR_DIR/python" ]; then
    export PYTHONPATH="$VENDOR_DIR/python${PYTHONPATH:+:$PYTHONPATH}"
fi

section() {  # section NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout --kill-after=5 "$limit" "$@" > "$WORK/$name.log" 2>&1
    local rc=$?
    local note=""
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then note=" (timed out after ${limit}s)"; fi
    echo "$name: rc=$rc in $((SECONDS - start))s$note" | tee -a "$WORK/sections.txt"
    # what comes back even if the device run is cut off here
    tar -czf "$OUT/logs.tar.gz" -C "$WORK" --exclude=vendor --exclude='random-minilm*' \
        --exclude=run-results . 2>/dev/null
}

# time limits add up to 480 s (+5 s each): under 9 minutes in all
section env 40 "$PY" bench/gpu_check.py env --out "$WORK"
section bench 115 "$PY" bench/gpu_check.py bench --out "$WORK" "${BENCH[@]}"
section encode 90 "$PY" bench/gpu_check.py encode --out "$WORK" "${ENCODE[@]}"
section run 100 "$PY" bench/gpu_check.py run --out "$WORK" "${RUN[@]}"
section tests 100 "$PY" bench/gpu_check.py pytest -- -m gpu -q -p no:cacheprovider \
    tests/kernels/test_triton_search.py --junitxml="$WORK/junit.xml" -o addopts="" "${TESTS[@]}"
section faiss 20 "$PY" bench/gpu_check.py faiss --out "$WORK" "${BENCH[@]}"
section summary 15 "$PY" bench/gpu_check.py summary --out "$WORK"
cp "$WORK/summary.md" "$WORK/summary.json" "$OUT/" 2>/dev/null
cat "$OUT/summary.md" 2>/dev/null
rm -rf "$WORK"
exit 0
