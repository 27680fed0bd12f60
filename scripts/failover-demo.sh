#!/usr/bin/env bash
# Watch a broker pair fail over: a primary and a backup, two workers and a stream of jobs; the
# primary is killed with kill -9 halfway, the backup takes over, and every accepted job still
# completes. Then the old primary comes back as the standby and catches up.
# Ports 5701-5704 by default (CLAW_DEMO_BASE_PORT moves them). Stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh > /dev/null

bin=$PWD/build
base=${CLAW_DEMO_BASE_PORT:-5701}
a=tcp://127.0.0.1:$base
b=tcp://127.0.0.1:$((base + 1))
peer_a=tcp://127.0.0.1:$((base + 2))
peer_b=tcp://127.0.0.1:$((base + 3))
export CLAW_BROKER=$a,$b
demo=$(mktemp -d /tmp/claw-failover.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$demo"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
client() { "$bin/claw-client" "$@"; }
role() { "$bin/claw-client" --broker "$1" --request-timeout 300ms ping 2>/dev/null | cut -d' ' -f1; }
start_a() {
  "$bin/claw-broker" --primary --bind "$a" --peer-bind "$peer_a" --peer "$peer_b" \
    --data "$demo/a" >> "$demo/a.log" 2>&1 &
  pid_a=$!
  pids+=("$pid_a")
}

say "start the primary ($a) and the backup ($b)"
start_a
"$bin/claw-broker" --backup --bind "$b" --peer-bind "$peer_b" --peer "$peer_a" \
  --data "$demo/b" >> "$demo/b.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  [ "$(role "$a")" = active ] && [ "$(role "$b")" = passive ] && break
  sleep 0.1
done
echo "  primary: $(role "$a"), backup: $(role "$b")"

say "two workers, each told both endpoints"
for w in w1 w2; do
  "$bin/claw-worker" --id "$w" --type echo --capacity 2 --exec 'sleep 0.1; cat' \
    >> "$demo/$w.log" 2>&1 &
  pids+=($!)
done

say "submit 40 jobs; the primary is killed with kill -9 after the 20th"
ids=()
slow=0
for i in $(seq 1 40); do
  start=$(date +%s%N)
  ids+=("$(client --request-timeout 1s submit --type echo --payload "job $i")")
  took=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ "$took" -gt 200 ]; then
    [ "$slow" = 0 ] && echo "  job $i accepted after ${took} ms: the client gave up on the primary and the backup took over"
    slow=$((slow + 1))
  fi
  if [ "$i" = 20 ]; then
    kill -9 "$pid_a"
    echo "  kill -9 the primary (pid $pid_a)"
  fi
done
echo "  accepted: ${#ids[@]} jobs (each later claw-client run also tries the dead primary first: $slow took ~1 s)"
echo "  the backup is now: $(role "$b")"

say "wait for every accepted job"
done_count=0
for id in "${ids[@]}"; do
  client wait "$id" --timeout 120s > /dev/null 2>&1 && done_count=$((done_count + 1))
done
echo "  completed: $done_count of ${#ids[@]}"

say "the old primary comes back as the standby and catches up"
start_a
for _ in $(seq 1 100); do
  [ "$(role "$a")" = passive ] && break
  sleep 0.1
done
sleep 2
client cluster | sed -n '1,2p;/^peer/,/^replication/p'
