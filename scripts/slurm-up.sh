#!/usr/bin/env bash
# scripts/slurm-up.sh [BASE_DIR] — JTM tests and demos: a single-node Slurm 22.05 (Debian 12) as root, no systemd.
# WITH_ACCT=1 also starts MariaDB (scratch datadir, port 3307) + slurmdbd for real sacct.
set -euo pipefail
BASE=${1:-/tmp/jtm-slurm}
WITH_ACCT=${WITH_ACCT:-0}
export DEBIAN_FRONTEND=noninteractive
pkgs="slurmctld slurmd slurm-client munge"
[ "$WITH_ACCT" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
# Idempotent: a Slurm already answering on this BASE is left as it is (tests call this once per file).
if [ -s "$BASE/slurm.conf" ] && SLURM_CONF="$BASE/slurm.conf" sinfo -h >/dev/null 2>&1 && [ "$WITH_ACCT" != 1 ]; then
  echo "export SLURM_CONF=$BASE/slurm.conf"; exit 0
fi
missing=0
for b in slurmctld slurmd sbatch munged; do command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing=1; done
[ "$WITH_ACCT" = 1 ] && missing=1
[ "$missing" = 0 ] || apt-get install -y -q --no-install-recommends $pkgs >/dev/null

# Not answering: start afresh. Jobs saved by an earlier run (whose daemons were killed with the session that
# ran them) would otherwise come back as ghosts holding the node's CPUs.
rm -rf "$BASE/state" "$BASE/spool"
mkdir -p "$BASE"/{state,spool,log}
# munge: the package postinst creates /etc/munge/munge.key; create it if missing
[ -s /etc/munge/munge.key ] || { mungekey -c -f -k /etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key; }
install -d -o munge -g munge -m 755 /run/munge
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
munge -n | unmunge >/dev/null

ACCT="AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$BASE/jobcomp.txt"
if [ "$WITH_ACCT" = 1 ]; then
ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobCompType=jobcomp/none"
fi
cat > "$BASE/slurm.conf" <<CONF
ClusterName=test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/slurmctld.pid
SlurmdPidFile=$BASE/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
$ACCT
MpiDefault=none
MailProg=/bin/true
MinJobAge=3600
SchedulerParameters=batch_sched_delay=0
EnforcePartLimits=ALL
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
NodeName=localhost CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$BASE/slurm.conf"

if [ "$WITH_ACCT" = 1 ]; then
  mkdir -p "$BASE/db"
  [ -d "$BASE/db/mysql" ] || mariadb-install-db --user=root --datadir="$BASE/db" --auth-root-authentication-method=normal >"$BASE/log/db-install.log" 2>&1
  nohup mariadbd --no-defaults --user=root --datadir="$BASE/db" --socket="$BASE/mysql.sock" --port=3307 \
     --bind-address=127.0.0.1 --pid-file="$BASE/mysqld.pid" --log-error="$BASE/log/mysqld.err" \
     --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 >/dev/null 2>&1 &
  for i in $(seq 100); do mariadb -S "$BASE/mysql.sock" -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
  mariadb -S "$BASE/mysql.sock" -uroot -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  cat > "$BASE/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$BASE/slurmdbd.pid
LogFile=$BASE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3307
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
  chmod 600 "$BASE/slurmdbd.conf"        # slurmdbd reads slurmdbd.conf next to $SLURM_CONF
  nohup slurmdbd -D >"$BASE/log/slurmdbd.out" 2>&1 &
  for i in $(seq 150); do sacctmgr -n show cluster >/dev/null 2>&1 && break; sleep 0.2; done
  sacctmgr -i add cluster test >/dev/null 2>&1 || true
fi

nohup slurmctld -D >"$BASE/log/slurmctld.out" 2>&1 &
nohup slurmd -D -N localhost >"$BASE/log/slurmd.out" 2>&1 &   # -N: the hostname is "vm", not "localhost"
for i in $(seq 150); do sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 0.2; done
sinfo
echo "export SLURM_CONF=$BASE/slurm.conf"
