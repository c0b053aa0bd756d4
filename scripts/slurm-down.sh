#!/usr/bin/env bash
# scripts/slurm-down.sh [BASE_DIR] — stops what slurm-up.sh started, by pid files.
BASE=${1:-/tmp/jtm-slurm}; export SLURM_CONF="$BASE/slurm.conf"
scontrol shutdown >/dev/null 2>&1 || true        # stops slurmctld and slurmd
for f in slurmdbd.pid mysqld.pid; do [ -s "$BASE/$f" ] && kill "$(cat "$BASE/$f")" 2>/dev/null; done
[ -s /run/munge/munged.pid ] && kill "$(cat /run/munge/munged.pid)" 2>/dev/null
exit 0
