#!/usr/bin/env bash
# Start a two-node Ray cluster on this machine: a head and a worker node on free ports, token
# authentication on, everything under one state directory. The dashboard and job API listen
# on 127.0.0.1 only. Ray itself has no loopback-only mode: GCS and the raylets listen on all
# interfaces and advertise this machine's IP (Ray maps 127.0.0.1 to it), so the token is what
# keeps other hosts out.
#
#   bash cluster/local/start.sh      # prints the exports a client needs; also in $STATE/env
#   source "$STATE/env" && promptcot-ray submit --wait synthesize --config jobs/configs/local.yaml
#   bash cluster/local/stop.sh       # stops exactly these processes, removes the state
#
# Settings (environment):
#   PROMPTCOT_LOCAL_CLUSTER_DIR      state directory (default: .cache/local-cluster)
#   PROMPTCOT_LOCAL_CLUSTER_CPUS     logical CPUs per node (default: 4)
#   PROMPTCOT_LOCAL_CLUSTER_OBJECT_STORE_BYTES  object store per node (default: 1 GiB)
#   PROMPTCOT_LOCAL_CLUSTER_TIMEOUT  seconds to wait for both nodes (default: 90)
#   PROMPTCOT_VENV                   virtualenv whose Ray runs the cluster (default: .venv)
# The nodes inherit this environment (e.g. S3 settings and credentials for the jobs).
# Stopping uses the recorded PIDs only; never `ray stop`, which kills every Ray on the host.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${PROMPTCOT_LOCAL_CLUSTER_DIR:-$REPO/.cache/local-cluster}
CPUS=${PROMPTCOT_LOCAL_CLUSTER_CPUS:-4}
OBJECT_STORE=${PROMPTCOT_LOCAL_CLUSTER_OBJECT_STORE_BYTES:-1073741824}
TIMEOUT=${PROMPTCOT_LOCAL_CLUSTER_TIMEOUT:-90}
VENV=${PROMPTCOT_VENV:-$REPO/.venv}

log() { echo "start.sh: $*" >&2; }

fail() {
  log "error: $*"
  for f in "$STATE"/head.log "$STATE"/worker.log; do
    [ -f "$f" ] && { log "--- last lines of $f"; tail -n 30 "$f" >&2; }
  done
  log "cleaning up"
  bash "$REPO/cluster/local/stop.sh" >&2 || true
  exit 1
}

[ -x "$VENV/bin/ray" ] || { log "error: no Ray in $VENV (run scripts/setup.sh)"; exit 1; }
# Job entrypoints run `python`/`ray` from PATH: the venv must come first.
export PATH="$VENV/bin:$PATH"

for f in "$STATE"/*.pid; do
  # Running, and not a zombie left behind by a cluster that died.
  if [ -f "$f" ] && ! grep -qs '^State:.*Z' "/proc/$(cat "$f")/status" \
    && kill -0 "$(cat "$f")" 2>/dev/null; then
    log "error: a cluster is already running from $STATE (bash cluster/local/stop.sh first)"
    exit 1
  fi
done
# Leftovers of a cluster that died (state, a linked temp dir, orphaned Ray processes).
if [ -e "$STATE" ]; then
  bash "$REPO/cluster/local/stop.sh" >&2
fi
mkdir -p "$STATE"
chmod 700 "$STATE"
STATE=$(cd "$STATE" && pwd)

# Ray's unix sockets live under the temp dir and AF_UNIX paths are limited to 107 bytes, so
# a long state path (e.g. pytest's tmp_path) gets a short directory in /tmp, linked here.
# The worker's sockets sit deepest (<temp>/worker/session_<41 chars>/sockets/plasma_store:
# 70 bytes after <temp>), hence 30.
TEMP_DIR=$STATE/ray
if [ "${#TEMP_DIR}" -gt 30 ]; then
  TEMP_DIR=$(mktemp -d /tmp/pcr-XXXXXX)
  ln -s "$TEMP_DIR" "$STATE/ray"
else
  mkdir -p "$TEMP_DIR"
fi

# Eleven distinct free loopback ports: bound together, released together, used at once.
read -r GCS DASH CLIENT HEAD_NM HEAD_OM HEAD_AGENT HEAD_AGENT_GRPC HEAD_RTE \
  WORKER_NM WORKER_OM WORKER_AGENT < <(python - <<'EOF'
import socket
socks = [socket.socket() for _ in range(11)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

(umask 077 && python -c 'import secrets; print(secrets.token_hex(32))' >"$STATE/auth_token")
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH=$STATE/auth_token

# Each node gets its own temp dir (the worker's inside the head's, so stop.sh finds and
# removes both): nodes sharing one also share runtime_resources/, and the worker node's
# runtime-env agent then replaced the job's working_dir under the running driver's feet
# (its cwd vanished: FileNotFoundError from os.getcwd()).
WORKER_TEMP_DIR=$TEMP_DIR/worker
mkdir -p "$WORKER_TEMP_DIR"
COMMON=(--block --num-cpus="$CPUS" --object-store-memory="$OBJECT_STORE" --disable-usage-stats)

# setsid: each node is a session leader, so stop.sh can find every process it spawned.
setsid nohup ray start --head "${COMMON[@]}" --temp-dir="$TEMP_DIR" --port="$GCS" \
  --dashboard-host=127.0.0.1 --dashboard-port="$DASH" --ray-client-server-port="$CLIENT" \
  --node-manager-port="$HEAD_NM" --object-manager-port="$HEAD_OM" \
  --dashboard-agent-listen-port="$HEAD_AGENT" --dashboard-agent-grpc-port="$HEAD_AGENT_GRPC" \
  --runtime-env-agent-port="$HEAD_RTE" \
  >"$STATE/head.log" 2>&1 </dev/null &
echo $! >"$STATE/head.pid"

deadline=$((SECONDS + TIMEOUT))
until (exec 3<>"/dev/tcp/127.0.0.1/$GCS") 2>/dev/null; do
  kill -0 "$(cat "$STATE/head.pid")" 2>/dev/null || fail "the head exited during start"
  [ "$SECONDS" -lt "$deadline" ] || fail "the head's GCS (port $GCS) did not answer in ${TIMEOUT}s"
  sleep 0.5
done

setsid nohup ray start "${COMMON[@]}" --temp-dir="$WORKER_TEMP_DIR" \
  --address="127.0.0.1:$GCS" --node-manager-port="$WORKER_NM" \
  --object-manager-port="$WORKER_OM" --dashboard-agent-listen-port="$WORKER_AGENT" \
  >"$STATE/worker.log" 2>&1 </dev/null &
echo $! >"$STATE/worker.pid"

# Ready means: the job API answers (with the token) and lists two alive nodes.
python - "$DASH" "$STATE" "$((deadline - SECONDS))" <<'EOF' || fail "the cluster did not come up"
import json, pathlib, sys, time, urllib.request

port, state, budget = sys.argv[1], pathlib.Path(sys.argv[2]), float(sys.argv[3])
token = (state / "auth_token").read_text().strip()
url = f"http://127.0.0.1:{port}/api/v0/nodes?limit=10"
deadline, alive, last = time.monotonic() + budget, 0, "no answer"
while time.monotonic() < deadline:
    for name in ("head", "worker"):
        pid = int((state / f"{name}.pid").read_text())
        if not pathlib.Path(f"/proc/{pid}").exists():
            sys.exit(f"the {name} node exited during start")
    try:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            nodes = json.load(response)["data"]["result"]["result"]
        alive = sum(node["state"] == "ALIVE" for node in nodes)
        last = f"{alive} alive node(s)"
        if alive >= 2:
            sys.exit(0)
    except (OSError, ValueError, KeyError) as exc:
        last = f"{type(exc).__name__}: {exc}"
    time.sleep(1)
sys.exit(f"timed out waiting for 2 alive nodes ({last})")
EOF

cat >"$STATE/env" <<EOF
# promptcot-ray local cluster in $STATE: \`source\` this file.
# GCS address (ray.init, --set ray.address=...): 127.0.0.1:$GCS
export RAY_ADDRESS=http://127.0.0.1:$DASH
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH=$STATE/auth_token
EOF
log "head pid $(cat "$STATE/head.pid"), worker pid $(cat "$STATE/worker.pid"), logs in $STATE"
log "dashboard and job API: http://127.0.0.1:$DASH (token in $STATE/auth_token)"
grep '^export' "$STATE/env"
