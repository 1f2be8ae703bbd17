#!/bin/bash
# A sweep as a SLURM job array: task I of N runs points I, I+N, I+2N, ... of the
# experiment's get_sweep() into one shared folder. Shards never share a point, a
# per-point lock file guards against double launches, and finished points are
# skipped, so the array can simply be resubmitted after preemption or a crash.
#
#   sbatch --array=0-7 scripts/sweep_array.sh experiments/adding.py runs/adding
#   # when all tasks are done (or at any time, for a partial report):
#   python scripts/report.py --workdir=runs/adding
#
# Task ids must count from 0 (--array=0-7, not 1-8). Extra arguments go to
# sweep.py, e.g. --config.train.steps=2000.
#
#SBATCH --job-name=gru_jax-sweep
#SBATCH --output=slurm-%A_%a.out
#SBATCH --time=04:00:00
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --gres=gpu:1
#SBATCH --requeue
#SBATCH --signal=B:TERM@120
set -euo pipefail

CONFIG=${1:?usage: sbatch --array=0-N scripts/sweep_array.sh CONFIG WORKDIR [FLAGS...]}
WORKDIR=${2:?usage: sbatch --array=0-N scripts/sweep_array.sh CONFIG WORKDIR [FLAGS...]}
shift 2

cd "${SLURM_SUBMIT_DIR:-.}"
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi

# exec: SLURM's TERM (--signal, before the time limit) reaches the trainer itself,
# which checkpoints and records the run as preempted; the requeued task resumes it.
exec python scripts/sweep.py \
  --config="$CONFIG" \
  --workdir="$WORKDIR" \
  --shard="${SLURM_ARRAY_TASK_ID:-0}/${SLURM_ARRAY_TASK_COUNT:-1}" \
  --progress=false \
  "$@"
