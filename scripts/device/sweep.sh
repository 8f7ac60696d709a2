#!/usr/bin/env bash
# The recipe sweep on a lent GPU machine (no internet): wheels carried in .whl/, results in $OUT.
#   bash scripts/device/sweep.sh [recipe_sweep.py args...]
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
# convolutions and matmuls in true fp32, as on the CPU the default run uses (cuDNN defaults to TF32)
printf 'import torch\ntorch.backends.cudnn.allow_tf32 = False\ntorch.backends.cuda.matmul.allow_tf32 = False\n' \
  > /tmp/site/sitecustomize.py
export PYTHONPATH=/tmp/site:$PWD OUT=${OUT:-/tmp/out}
python3 -c "import torch, open_clip, sklearn, webdataset; print(torch.__version__, torch.cuda.get_device_name(0), torch.backends.cudnn.allow_tf32)"
nproc
python3 scripts/recipe_sweep.py --device cuda --out "$OUT/sweep.jsonl" --work /tmp/sweep "$@" 2>&1 | tee "$OUT/sweep.log"
