#!/bin/bash
# The long-range study's rows from a lent GPU (experiments/long_range_search.py:adding:extended,
# design.EXTENDED): run in the repository root on the device machine; the run folders it
# finished come back as $OUT/gpu_runs.tgz (unpack in the repository root), its console
# as $OUT/sweep.log. usage: bash bench_results/gpu_study.sh SECONDS [WORKERS]
# float32 products at full precision, as on the CPU (JAX's GPU default is TF32). Workers
# time-slice the one GPU (five ran 435-900 ms per packed step at T = 5120-10240 on an H200,
# results/long_range/search/gpu_h200.log): default two.
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}. KERAS_BACKEND=jax PYTHONUNBUFFERED=1 \
  XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_DEFAULT_MATMUL_PRECISION=highest
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
W=results/long_range/search/adding
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import jax; print('jax', jax.__version__, jax.devices())"; nproc; } > "$OUT/env.txt" 2>&1
touch /tmp/gpu_study.start
# a journal storage: Optuna without SQLAlchemy (the image has neither)
timeout --kill-after=30 "$1" python3 scripts/sweep.py --pack --storage=journal:/tmp/gpu_study.journal \
  --config=experiments/long_range_search.py:adding:extended --workdir=$W --workers="${2:-2}" \
  > "$OUT/sweep.log" 2>&1
# the folders whose summary.json this call wrote and that finished (not preempted)
python3 - "$W" > "$OUT/new_runs.txt" <<'PY'
import json, os, sys
start = os.path.getmtime("/tmp/gpu_study.start")
for root, _, files in os.walk(sys.argv[1]):
    f = os.path.join(root, "summary.json")
    if "summary.json" in files and os.path.getmtime(f) > start:
        if json.load(open(f)).get("status") in ("done", "diverged"):
            print(os.path.join(root, "summary.json")); print(os.path.join(root, "config.json"))
PY
tar czf "$OUT/gpu_runs.tgz" -T "$OUT/new_runs.txt"
echo "finished runs: $(($(wc -l < "$OUT/new_runs.txt") / 2))"; tail -30 "$OUT/sweep.log"
