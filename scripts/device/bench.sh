#!/usr/bin/env bash
# The GPU benchmark on a lent GPU machine (no internet): wheels carried in .whl/, logs in $OUT.
#   bash scripts/device/bench.sh [benchmarks/gpu.py args...]
# Runs benchmarks/gpu.py eagerly, the CUDA tests of train.compile, then benchmarks/gpu.py with
# train.compile (objective and lift compiled).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OUT=${OUT:-/tmp/out}
python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name(0))"
python3 benchmarks/gpu.py "$@" 2>&1 | tee "$OUT/gpu_eager.log"
python3 -m pytest -q -rfE -p no:cacheprovider -n 6 -m gpu -W ignore::FutureWarning tests/test_compiled.py \
  > "$OUT/pytest_gpu.log" 2>&1
grep -E "^E |passed|failed" "$OUT/pytest_gpu.log" | tail -20  # the whole log is in $OUT
python3 benchmarks/gpu.py --compile "$@" 2>&1 | grep -v -E "^ *check\(|FutureWarning" | tee "$OUT/gpu_compile.log"
