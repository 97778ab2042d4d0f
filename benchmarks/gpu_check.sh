#!/usr/bin/env bash
# GPU check of the Whisper engine (issue 16), for a CUDA machine; under 10 minutes.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, after scripts/dev-setup.sh
#   PYTHON=/opt/venv/bin/python bash benchmarks/gpu_check.sh
#
# 1. Refuses to run without a CUDA GPU visible to torch (a CPU-only torch build counts as none).
# 2. The GPU-marked tests (tests/whisper_engine/test_gpu.py: float16 + SDPA, warm-up, batches,
#    peak memory), which the default test run deselects.
# 3. The engine benchmark on the GPU, English and Swedish, three timed runs each: prints the
#    real-time factor (speed = audio seconds per wall second), compute type, batch size, load
#    time and peak GPU memory per language, for the deployed mode (alignment timestamps) and
#    Whisper's timestamp-token mode.
#
# The model is the offline default (smart-router model prepare: Whisper base); set
# SMART_ROUTER_MODEL_DIR for another converted checkpoint. Each step has its own timeout.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no CUDA GPU visible to torch (CPU-only build or no driver); nothing to check" >&2
    exit 2
fi
"$PYTHON" - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}, "
      f"{torch.cuda.get_device_properties(0).total_memory / 1024**3:.0f} GiB")
EOF

echo "== model"
timeout 180 "$PYTHON" -c 'from whisper_convert.prepare import prepare_default_model as p; print(p())'

echo "== GPU tests"
timeout 300 "$PYTHON" -m pytest -m gpu tests/whisper_engine -q -p no:cacheprovider

echo "== engine benchmark (CUDA)"
timeout 240 "$PYTHON" benchmarks/engine_benchmark.py --device cuda \
    --systems engine engine-tokens --languages en sv --repeat 3 --json gpu_check.json

echo "gpu_check: done (figures above; all rows in gpu_check.json)"
