#!/bin/bash
# JTM dynamic workers of pool ci on cluster test, written by `jtm worker -wt dynamic`.
# It may hold a Redis password: keep it private (mode 0600).
#SBATCH --job-name=jtm-ci
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=200M
#SBATCH --time=00:02:00
#SBATCH --signal=B:USR1@60
#SBATCH --output=/scratch/jtm/log/job/jtm_dynamic_worker_wgolden.out
#SBATCH --error=/scratch/jtm/log/job/jtm_dynamic_worker_wgolden.err
#SBATCH --chdir=/scratch/jtm/log/job
#SBATCH --partition=debug
#SBATCH --comment=jtm

set -u
export REDIS_URL='redis://jtm:***@redis.example.org:6379/0'
export JTM_PREFIX='{jtm}'
export JTM_LOG_LEVEL=info
export JTM_LOG_DIR=/scratch/jtm/log
export JTM_CONNECT_TIMEOUT=3000ms
export JTM_HEARTBEAT_INTERVAL=1000ms
export JTM_MISSED_BEATS=6
export JTM_SAMPLE_INTERVAL=2000ms
export JTM_KILL_GRACE=5000ms
export JTM_LEFTOVER_GRACE=2000ms
export JTM_TASK_RETENTION=604800000ms
export JTM_TASK_RETRIES=1
export JTM_LOCK_DURATION=30000ms
export JTM_STALLED_INTERVAL=15000ms
export JTM_ACCOUNTING=auto
export JTM_WATCH_INTERVAL=250ms
export JTM_MEM_AVAILABLE_MARGIN=524288K
export JTM_OUTPUT_TAIL_BYTES=1048576
export JTM_OUTPUT_KEEP_BYTES=65536
export JTM_LOG_REPEAT_INTERVAL=60000ms

# Starts the workers of this node (the batch shell itself: one node, no srun step).
jtm_node() {
  local i pid pids=''
  # Slurm's early warning (--signal=B:USR1, before walltime) reaches this shell only: hand it on to the
  # workers, which drain. `wait` returns when the trap runs: the loop below waits again.
  trap 'kill -USR1 $pids 2>/dev/null' USR1
  for i in $(seq 1 1); do
    /opt/jtm/bin/jtm worker --worker_type dynamic --slurm_job_id "$SLURM_JOB_ID" --pool_name ci --cluster test --job_time 00:02:00 --num_worker_per_node 1 --slots 1 --cpus_per_task 1 --mem 200M --worker_id "wgolden_${SLURM_NODEID:-0}_${i}" &
    pids="$pids $!"
  done
  for pid in $pids; do
    while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
  done
}
echo "jtm: Slurm job $SLURM_JOB_ID, pool ci, 1 worker(s) per node on $SLURM_JOB_NUM_NODES node(s)"
jtm_node
