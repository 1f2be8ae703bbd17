#!/bin/bash
# GPU measurements for scripts/bench.py (run on the device machine, results under $OUT).
# usage: bash bench_results/gpu_run.sh PART   (PART = 1 or 2)
export PYTHONPATH=. KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python -c "import jax, flax, torch; print('jax', jax.__version__, 'flax', flax.__version__, 'torch', torch.__version__, jax.devices(), torch.backends.cudnn.version())"
  python -c "import keras; print('keras', keras.__version__)" 2>&1 | tail -1
  nproc; } > $OUT/env_$1.txt 2>&1
if [ "$1" = 1 ]; then
  timeout 100 python -m pytest tests/test_fused.py -q -p no:cacheprovider -k "float32 or bf16 or primal or (gpu-default and 16)" > $OUT/tests_gpu.txt 2>&1
  timeout 420 python scripts/bench.py --preset=gpu --impls=gru_jax,flax.linen,torch,floor --repeats=3 \
     --json=$OUT/gpu_f32.json --md=$OUT/gpu_f32.md > $OUT/gpu_f32.log 2>&1
elif [ "$1" = 2 ]; then
  timeout 300 python scripts/bench.py --preset=gpu --dtype=bfloat16 --impls=gru_jax,flax.linen,torch,floor --repeats=3 \
     --json=$OUT/gpu_bf16.json --md=$OUT/gpu_bf16.md > $OUT/gpu_bf16.log 2>&1
  timeout 200 python scripts/bench.py --mode=ablation --shapes=32:1000:32:256,256:1000:32:1024 --repeats=3 \
     --json=$OUT/gpu_ablation.json --md=$OUT/gpu_ablation.md > $OUT/gpu_ablation.log 2>&1
else
  eval "$2"
fi
