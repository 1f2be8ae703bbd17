#!/bin/bash
# One training run across several nodes (data parallel): one process per node,
# each driving its node's GPUs; the batch is split over every device of the job,
# the train state is replicated, and the gradients are averaged by XLA's
# all-reduce inside the jitted step (the same program as on one device).
#
#   sbatch --nodes=2 scripts/slurm_multihost.sh experiments/adding.py runs/adding_2nodes \
#       --config.train.batch_size=512
#
# train.batch_size must divide by the total device count (nodes x GPUs per node),
# else scripts/train.py stops with one line, exit 2. Under srun with more than one
# task, gru_jax.harness.distributed.maybe_initialize() calls jax.distributed.initialize(),
# whose SLURM detection takes the coordinator (first node), process count and ids
# from the environment. Process 0 writes summary.json, config.json and the
# TensorBoard events; Orbax coordinates the checkpoint saves of all processes.
# WORKDIR must be on a file system every node sees. Resubmit the same command to
# resume from the latest checkpoint.
#
# Not tested across hosts in this project (no cluster here): the single-host,
# multi-device path is tested with 4 fake CPU devices (tests/harness/test_parallel.py).
#
#SBATCH --job-name=gru_jax-multihost
#SBATCH --output=slurm-%j.out
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=16
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --signal=TERM@120
set -euo pipefail

CONFIG=${1:?usage: sbatch --nodes=N scripts/slurm_multihost.sh CONFIG WORKDIR [FLAGS...]}
WORKDIR=${2:?usage: sbatch --nodes=N scripts/slurm_multihost.sh CONFIG WORKDIR [FLAGS...]}
shift 2

cd "${SLURM_SUBMIT_DIR:-.}"
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi

# --signal=TERM@120 (no B:) sends TERM to the srun tasks: every process finishes
# its step and joins the checkpoint save, then exits 143; --requeue resumes it.
srun --ntasks-per-node=1 --kill-on-bad-exit=1 python scripts/train.py \
  --config="$CONFIG" \
  --workdir="$WORKDIR" \
  --config.train.progress=false \
  "$@"
