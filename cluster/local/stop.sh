#!/usr/bin/env bash
# Stop the local cluster that cluster/local/start.sh started, and remove its state.
#
# It signals only processes this cluster started: each node's recorded `ray start --block`
# PID, every process in the session that PID leads (GCS, raylet, dashboard, workers), and
# their descendants (e.g. job drivers in a session of their own). Never `ray stop`: that
# kills every Ray process on the machine, other users' clusters included.
#
#   PROMPTCOT_LOCAL_CLUSTER_DIR  state directory (default: .cache/local-cluster)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${PROMPTCOT_LOCAL_CLUSTER_DIR:-$REPO/.cache/local-cluster}

log() { echo "stop.sh: $*" >&2; }

# Everything this cluster started, from one `ps`: the sessions led by the recorded PIDs
# (kept only if one of their processes names our Ray temp dir, so a recycled PID never
# counts), plus every descendant of those processes. This script and its callers are never
# included, and the temp dir reaches awk through its environment, not its command line, so
# awk's own arguments cannot match.
cluster_pids() {
  local leaders=("$@")
  ps -e -o pid=,ppid=,sid=,args= | LEADERS="${leaders[*]}" TEMP="$TEMP_REAL" SELF=$$ awk '
    BEGIN {
      n = split(ENVIRON["LEADERS"], l, " "); for (i = 1; i <= n; i++) recorded[l[i]] = 1
      temp = ENVIRON["TEMP"]
    }
    {
      pid[NR] = $1; parent[$1] = $2; sid[$1] = $3
      if (($3 in recorded) && temp != "" && index($0, temp)) ours[$3] = 1
    }
    END {
      for (p = ENVIRON["SELF"]; p in parent && !(p in protect); p = parent[p]) protect[p] = 1
      for (i = 1; i <= NR; i++) if (sid[pid[i]] in ours) mine[pid[i]] = 1
      do {
        grew = 0
        for (i = 1; i <= NR; i++)
          if (!(pid[i] in mine) && (parent[pid[i]] in mine)) { mine[pid[i]] = 1; grew = 1 }
      } while (grew)
      for (i = 1; i <= NR; i++) if ((pid[i] in mine) && !(pid[i] in protect)) print pid[i]
    }'
}

any_alive() {
  local pid
  for pid in "$@"; do
    # A zombie is already dead: only its parent can reap it.
    if [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      return 0
    fi
  done
  return 1
}

wait_gone() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  while any_alive "$@" && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.5
  done
}

if [ ! -d "$STATE" ]; then
  log "no cluster state in $STATE"
  exit 0
fi

TEMP_REAL=$(readlink -f "$STATE/ray" 2>/dev/null || true)
leaders=()
for f in "$STATE"/*.pid; do
  [ -f "$f" ] && leaders+=("$(cat "$f")")
done

if [ "${#leaders[@]}" -gt 0 ]; then
  mapfile -t pids < <(cluster_pids "${leaders[@]}")
  if [ "${#pids[@]}" -gt 0 ]; then
    # `ray start --block` shuts its node down cleanly on SIGTERM; give it a moment.
    for leader in "${leaders[@]}"; do
      if printf '%s\n' "${pids[@]}" | grep -qx "$leader"; then
        kill -TERM "$leader" 2>/dev/null || true
      fi
    done
    wait_gone 15 "${pids[@]}"
    # Orphans keep their session but lose their parent: merge with the first list.
    mapfile -t pids < <({ printf '%s\n' "${pids[@]}"; cluster_pids "${leaders[@]}"; } | sort -u)
    if any_alive "${pids[@]}"; then
      kill -TERM "${pids[@]}" 2>/dev/null || true
      wait_gone 10 "${pids[@]}"
    fi
    if any_alive "${pids[@]}"; then
      log "killing what did not exit on SIGTERM"
      kill -KILL "${pids[@]}" 2>/dev/null || true
      wait_gone 5 "${pids[@]}"
    fi
    if any_alive "${pids[@]}"; then
      log "error: processes still running: ${pids[*]}"
      exit 1
    fi
  fi
fi

# A short Ray temp dir in /tmp (see start.sh) is linked from the state directory.
if [ -L "$STATE/ray" ]; then
  rm -rf "$(readlink "$STATE/ray")"
fi
rm -rf "$STATE"
log "stopped; removed $STATE"
