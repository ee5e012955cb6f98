#!/usr/bin/env bash
# A real run of cluster/slurm/ray-cluster.sh on this machine as a one-node Slurm cluster,
# with Debian's packages (run as root, never in CI: it starts system daemons):
#   apt-get install -y --no-install-recommends slurm-wlm munge
#   bash tests/manual/slurm_one_node.sh
# It starts munged, slurmctld and slurmd on private ports with a config in a temp dir, runs
# the launcher under `salloc -N1` with a driver that joins the Ray cluster and runs a task,
# then stops the three daemons by the PIDs it recorded. Exit status: the salloc's.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/pcr-slurm-XXXXXX)
host=$(hostname -s)
cpus=$(nproc)
mkdir -p "$work"/{state,spool,run}
cat > "$work/slurm.conf" <<CONF
ClusterName=pcr
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/run/slurmctld.pid
SlurmdPidFile=$work/run/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$work/slurm.conf

pids=()
# shellcheck disable=SC2317  # run by the EXIT trap
stop() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
trap stop EXIT

mkdir -p /run/munge && chown munge:munge /run/munge
if ! pgrep -x munged >/dev/null; then
  # munged runs as the munge user, who cannot enter mktemp's 0700 folder: its own run dir
  su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=/run/munge/pcr-munged.pid"
  sleep 1
  pids+=("$(cat /run/munge/pcr-munged.pid)")
fi
setsid /usr/sbin/slurmctld -D -c -f "$SLURM_CONF" >"$work/ctld.out" 2>&1 &
pids+=($!)
sleep 2
setsid /usr/sbin/slurmd -D -f "$SLURM_CONF" >"$work/d.out" 2>&1 &
pids+=($!)
for _ in $(seq 30); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && break
  sleep 1
done
sinfo

cat > "$work/driver.py" <<'PY'
import os
import socket

import ray

ray.init()  # RAY_ADDRESS comes from the launcher


@ray.remote
def where():
    return socket.gethostname()


alive = sum(node["Alive"] for node in ray.nodes())
print(f"driver joined {os.environ['RAY_ADDRESS']}: {alive} node(s), task ran on {ray.get(where.remote())}")
PY
cd "$repo"
status=0
salloc -N1 -c "$cpus" --job-name=pcr-manual \
  bash cluster/slurm/ray-cluster.sh -- .venv/bin/python "$work/driver.py" || status=$?
# the launcher stops the Ray it started before the allocation ends: nothing may be left
sleep 3
if left=$(pgrep -af -- "--temp-dir=/tmp/ray-slurm-"); then
  echo "error: Ray still running after the allocation ended:" >&2
  echo "$left" >&2
  status=1
fi
exit "$status"
