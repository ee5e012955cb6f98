#!/usr/bin/env bash
# Start a Ray cluster inside a Slurm allocation, run one command against it, tear it down.
#
#   bash cluster/slurm/ray-cluster.sh -- COMMAND [ARGS...]
#
# Run it from sbatch (cluster/slurm/promptcot-ray.sbatch) or salloc. The first node of the
# allocation runs the Ray head (GCS, dashboard on 127.0.0.1, job drivers) and every other
# node one Ray worker, each as its own `srun` step (`ray start --block`, so ending the step
# stops that node's Ray). COMMAND runs here with RAY_ADDRESS set, so any promptcot-ray
# command (`pipeline`, `synthesize`, ...) joins the cluster as a job driver. The script
# exits with COMMAND's status; on exit it signals only the srun steps it started, by PID
# (never `ray stop`, which would hit every Ray on a shared node).
#
# Token auth (Ray 2.60's default) uses a fresh token per allocation, mode 600, in the state
# directory, which must be on a file system every node mounts (the submit dir by default).
#
# Settings (environment):
#   PROMPTCOT_VENV            virtualenv whose bin goes first on PATH (default: .venv)
#   PROMPTCOT_SLURM_CONTAINER container image for every step (pyxis/enroot `--container-image`);
#                             e.g. the project's image (Dockerfile); unset: no container
#   PROMPTCOT_SLURM_STATE     shared state dir (default: $SLURM_SUBMIT_DIR/.cache/slurm-$SLURM_JOB_ID)
#   PROMPTCOT_SLURM_RAY_PORT  GCS port on the head (default 6379)
#   PROMPTCOT_SLURM_TIMEOUT   seconds to wait for the head and all workers (default 300)
#   PROMPTCOT_SLURM_HEAD_IP   the head's address as workers reach it (default: its first IP)
#   PROMPTCOT_SLURM_DRY_RUN   1: print the steps and the command instead of running them
set -euo pipefail

usage() {
  echo "usage: $0 -- COMMAND [ARGS...]   (inside a Slurm allocation)" >&2
  exit 2
}
[[ ${1:-} == "--" ]] || usage
shift
(($# > 0)) || usage
[[ -n ${SLURM_JOB_ID:-} && -n ${SLURM_JOB_NODELIST:-} ]] || {
  echo "error: not inside a Slurm allocation (SLURM_JOB_ID / SLURM_JOB_NODELIST unset): use sbatch or salloc" >&2
  exit 2
}

venv=${PROMPTCOT_VENV:-.venv}
if [[ -d $venv/bin ]]; then
  PATH="$(cd "$venv/bin" && pwd):$PATH"
  export PATH
fi
dry_run=${PROMPTCOT_SLURM_DRY_RUN:-0}
port=${PROMPTCOT_SLURM_RAY_PORT:-6379}
timeout=${PROMPTCOT_SLURM_TIMEOUT:-300}
state=${PROMPTCOT_SLURM_STATE:-${SLURM_SUBMIT_DIR:-$PWD}/.cache/slurm-$SLURM_JOB_ID}
# Ray's socket paths must stay short and node-local: a temp dir under /tmp per job.
ray_tmp=/tmp/ray-slurm-$SLURM_JOB_ID

mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
head_node=${nodes[0]}
workers=("${nodes[@]:1}")
cpus=${SLURM_CPUS_ON_NODE:-${SLURM_CPUS_PER_TASK:-1}}
gpus=${SLURM_GPUS_ON_NODE:-0}

container_args=()
if [[ -n ${PROMPTCOT_SLURM_CONTAINER:-} ]]; then
  container_args=(--container-image="$PROMPTCOT_SLURM_CONTAINER"
    --container-mounts="$PWD:$PWD,$state:$state" --container-workdir="$PWD")
fi

# One srun step on one node, overlapping the others (the head step, the driver and the
# workers share the allocation's CPUs and GPUs): sets `cmd`; a dry run prints it instead.
step_command() {
  local node=$1
  shift
  cmd=(srun --nodes=1 --ntasks=1 --overlap -w "$node" "${container_args[@]}" "$@")
  if [[ $dry_run == 1 ]]; then
    printf 'step %s:' "$node"
    printf ' %q' "${cmd[@]}"
    printf '\n'
    return 1
  fi
}

step() {
  step_command "$@" || return 0
  "${cmd[@]}"
}

pids=()
# A long-lived step (a node's `ray start --block`) in the background, remembered by PID.
# srun itself is the background job, not a subshell running `step`: the cleanup's SIGTERM
# must reach srun, which forwards it to the step (a subshell would die and leave srun and
# the node's Ray running; seen in the one-node Slurm run).
start_step() {
  step_command "$@" || return 0
  "${cmd[@]}" &
  pids+=($!)
}

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -f "${token:-}"  # the token dies with the allocation
}
trap cleanup EXIT

mkdir -p "$state"
chmod 700 "$state"
token=$state/auth_token
(umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' > "$token")
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$token

if [[ -n ${PROMPTCOT_SLURM_HEAD_IP:-} ]]; then
  head_ip=$PROMPTCOT_SLURM_HEAD_IP
elif [[ $dry_run == 1 ]]; then
  head_ip=$head_node
else
  head_ip=$(step "$head_node" hostname -I | awk '{print $1}')
fi
address=$head_ip:$port

# Unlike the KubeRay and EC2 heads (small CPU machines), the head here is a whole allocated
# GPU node: it offers its CPUs and GPUs to Ray too, or an 8-GPU node would sit idle.
echo "ray head on $head_node ($address), ${#workers[@]} worker node(s), state in $state" >&2
start_step "$head_node" env RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$token" \
  ray start --head --block --node-ip-address="$head_ip" --port="$port" \
  --num-cpus="$cpus" --num-gpus="$gpus" --dashboard-host=127.0.0.1 \
  --temp-dir="$ray_tmp"

# Succeeds once `want` nodes are alive (the token env above authenticates the client).
cluster_has() {
  local want=$1
  python3 - "$address" "$want" <<'PY' >/dev/null 2>&1
import sys

import ray

ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
alive = sum(1 for node in ray.nodes() if node["Alive"])
sys.exit(0 if alive >= int(sys.argv[2]) else 1)
PY
}

wait_for() {
  local want=$1 waited=0
  [[ $dry_run == 1 ]] && return 0
  until cluster_has "$want"; do
    if ((waited >= timeout)); then
      echo "error: $want Ray node(s) not alive after ${timeout}s (logs: $ray_tmp on each node)" >&2
      exit 1
    fi
    sleep 5
    waited=$((waited + 5))
  done
}

wait_for 1
for node in "${workers[@]}"; do
  start_step "$node" env RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$token" \
    ray start --block --address="$address" --num-cpus="$cpus" --num-gpus="$gpus" \
    --temp-dir="$ray_tmp"
done
wait_for "${#nodes[@]}"
echo "ray cluster up: ${#nodes[@]} node(s); running: $*" >&2

export RAY_ADDRESS=$address
if [[ $dry_run == 1 ]]; then
  printf 'driver: RAY_ADDRESS=%s' "$RAY_ADDRESS"
  printf ' %q' "$@"
  printf '\n'
  exit 0
fi
status=0
"$@" || status=$?
exit "$status"
