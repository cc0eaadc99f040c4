#!/usr/bin/env bash
# .ci/run three times in a row from fresh clones while stress-ng keeps both cores busy (issue 13):
# the suite must wait on conditions, so it has to pass on a loaded machine.
#   scripts/ci-under-load.sh [RUNS (3)]
# Clones HEAD of this checkout into a temporary directory with ../shared beside it, as CI lays it out.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"
work="$(mktemp -d)"
stop="$work/stop"
command -v stress-ng >/dev/null || { echo "stress-ng is missing (apt-get install stress-ng)"; exit 2; }
# stress-ng restarted if it ever exits; the load and the stressor count logged every 30 s.
# Each stress-ng's PID is kept in $work/stress.pid, so the trap stops exactly the one this script started.
( while [ ! -e "$stop" ]; do stress-ng --cpu 2 --timeout 0 --quiet & echo $! > "$work/stress.pid"; wait $! || true; done ) &
( while [ ! -e "$stop" ]; do echo "$(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg) stressor $(cat "$work/stress.pid" 2>/dev/null || echo none)"; sleep 30; done ) > "$work/load.log" &
trap 'touch "$stop"; [ -s "$work/stress.pid" ] && kill "$(cat "$work/stress.pid")" 2>/dev/null || true' EXIT
for i in $(seq 1 "$runs"); do
  git clone -q "$repo" "$work/r$i/main" && cp -r "$repo/../shared" "$work/r$i/shared"
  start=$(date +%s)
  if (cd "$work/r$i/main" && CI=true bash .ci/run) > "$work/r$i.log" 2>&1; then rc=0; else rc=$?; fi
  echo "run $i: rc=$rc in $(( $(date +%s) - start )) s ($(grep -E '^Tests:' "$work/r$i.log" | tr -s ' ' | paste -sd';' -)) log $work/r$i.log"
  [ "$rc" -eq 0 ] || exit "$rc"
done
echo "load while running: $work/load.log"
