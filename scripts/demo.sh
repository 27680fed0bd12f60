#!/usr/bin/env bash
# The Claw demo: a broker on its embedded SQLite store, two workers (an external command and the
# C++ example), jobs of mixed priority submitted with claw-client and their results printed;
# then the broker is killed with kill -9 while jobs wait, restarted, and finishes them all.
# Everything it starts is stopped by PID at the end. CLAW_DEMO_PORT picks the port (default 5555).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh > /dev/null

bin=$PWD/build
port=${CLAW_DEMO_PORT:-5555}
endpoint=tcp://127.0.0.1:$port
demo=$(mktemp -d /tmp/claw-demo.XXXXXX)
pids=()

stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$demo"' EXIT

client() { "$bin/claw-client" --broker "$endpoint" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

start_broker() {
  "$bin/claw-broker" --bind "$endpoint" --data "$demo/data" --heartbeat 500ms \
    >> "$demo/broker.log" 2>&1 &
  broker_pid=$!
  pids+=("$broker_pid")
  for _ in $(seq 1 100); do
    client --request-timeout 300ms ping > /dev/null 2>&1 && return 0
    kill -0 "$broker_pid" 2>/dev/null || break
  done
  echo "the broker did not start; its log:" >&2
  cat "$demo/broker.log" >&2
  exit 1
}

say "start a broker on $endpoint (data in $demo/data, SQLite WAL, fsync per commit)"
start_broker
client ping

say "submit jobs of mixed priority (no worker is running yet, so they queue)"
ids=()
submit() {
  local id
  id=$(client submit "$@")
  ids+=("$id")
  printf '  %-6s %s\n' "$id" "$*"
}
submit --type shout --priority low --payload "low priority, runs last"
submit --type shout --priority normal --payload "normal priority"
submit --type shout --priority critical --payload "critical: runs first"
submit --type wordcount --payload "the quick brown fox jumps over the lazy dog"
submit --type wordcount --priority high --payload "claw spreads the work and never loses it"
submit --type shout --priority high --payload "high priority"

say "start two workers: 'shout' runs an external command, 'wordcount' is the C++ example"
"$bin/claw-worker" --broker "$endpoint" --id shouter --type shout --capacity 1 \
  --exec 'echo "$CLAW_JOB_ID" >> '"$demo/ran.txt"'; for i in 1 2 3; do echo "progress $((i * 33)) step $i" >&"$CLAW_PROGRESS_FD"; sleep 0.2; done; tr a-z A-Z' \
  >> "$demo/worker-shout.log" 2>&1 &
pids+=($!)
"$bin/claw-example-worker" --broker "$endpoint" --type wordcount --capacity 2 \
  >> "$demo/worker-wordcount.log" 2>&1 &
pids+=($!)

say "wait for the first job, with its progress, then print every result"
client wait "${ids[0]}" --timeout 60s > /dev/null
for id in "${ids[@]}"; do
  printf '  %-6s -> %s\n' "$id" "$(client wait "$id" --timeout 60s 2> /dev/null)"
done

say "the shout jobs ran in this order (highest priority first)"
echo "  $(tr '\n' ' ' < "$demo/ran.txt")"
client list --type shout

say "durability: stop the workers, submit 3 jobs, kill -9 the broker, restart it"
stop_all
start_broker
late=()
for n in 1 2 3; do late+=("$(client submit --type shout --payload "accepted before kill -9, job $n")"); done
echo "  accepted: ${late[*]}"
kill -9 "$broker_pid"
wait "$broker_pid" 2>/dev/null || true
pids=()
echo "  broker killed with SIGKILL"
start_broker
"$bin/claw-worker" --broker "$endpoint" --id shouter --type shout --exec 'tr a-z A-Z' \
  >> "$demo/worker-shout.log" 2>&1 &
pids+=($!)
for id in "${late[@]}"; do
  printf '  %-6s -> %s\n' "$id" "$(client wait "$id" --timeout 60s 2> /dev/null)"
done

say "the cluster"
client cluster

say "stop everything"
stop_all
echo "  done: every process stopped"
