#!/bin/bash
# JTM dynamic workers of pool big on cluster perlmutter, written by `jtm worker -wt dynamic`.
# It may hold a Redis password: keep it private (mode 0600).
#SBATCH --job-name=jtm-big
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=128
#SBATCH --mem=200G
#SBATCH --time=02:00:00
#SBATCH --signal=USR1@300
#SBATCH --output=/scratch/jtm/log/job/jtm_dynamic_worker_wgolden.out
#SBATCH --error=/scratch/jtm/log/job/jtm_dynamic_worker_wgolden.err
#SBATCH --chdir=/scratch/jtm/log/job
#SBATCH --qos=regular
#SBATCH --constraint=cpu
#SBATCH --exclusive
#SBATCH --licenses=scratch

set -u
# Environment of cluster perlmutter (site configuration)
module load python
source /global/common/software/jgi/jtm/env/bin/activate
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

# One copy runs on each node (one srun task per node) and starts the workers of that node.
jtm_node() {
  local i pid pids=''
  # Slurm's early warning (--signal=USR1, before walltime) reaches every process of the step: the
  # workers drain; this shell must survive it and keep waiting for them.
  trap 'true' USR1
  for i in $(seq 1 4); do
    /opt/jtm/bin/jtm worker --worker_type dynamic --slurm_job_id "$SLURM_JOB_ID" --pool_name big --cluster perlmutter --job_time 02:00:00 --num_worker_per_node 4 --slots 1 --cpus_per_task 32 --mem 200G --worker_id "wgolden_${SLURM_NODEID:-0}_${i}" &
    pids="$pids $!"
  done
  for pid in $pids; do
    while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
  done
}
export -f jtm_node
echo "jtm: Slurm job $SLURM_JOB_ID, pool big, 4 worker(s) per node on $SLURM_JOB_NUM_NODES node(s)"
srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=0 /bin/bash -c jtm_node
