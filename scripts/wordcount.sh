#!/usr/bin/env bash
# The word-count MapReduce example, started and checked by one command:
#
#   scripts/wordcount.sh [FOLDER]      (default: examples/wordcount/texts)
#
# It starts a broker on a free port with a temporary data directory, a map worker (capacity 4)
# and a reduce worker labelled role=coordinator, both `claw-worker --exec` commands
# (examples/wordcount/map.sh and reduce.sh); submits one group, a map job per file of FOLDER with
# the reduce as its follow-up, and waits for it; prints the group, the follow-up and its result;
# and checks that result against a count made another way (sort | uniq -c). It prints OK, or the
# difference and exits 1. Everything it starts is stopped by PID when it ends.
#
# It builds the project with scripts/setup.sh first, unless CLAW_BIN_DIR names a directory that
# already holds claw-broker, claw-worker and claw-client.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
folder=$(cd "${1:-$root/examples/wordcount/texts}" && pwd)
if [ -n "${CLAW_BIN_DIR:-}" ]; then
  bin=$CLAW_BIN_DIR
else
  bash "$root/scripts/setup.sh" > /dev/null
  bin=$root/build
fi

work=$(mktemp -d /tmp/claw-wordcount.XXXXXX)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null || true; done
  rm -rf "$work"
}
trap stop_all EXIT

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint=tcp://127.0.0.1:$port
client() { "$bin/claw-client" --broker "$endpoint" "$@"; }
say() { printf '\n== %s\n' "$*"; }

say "broker on $endpoint, data in $work/data"
"$bin/claw-broker" --bind "$endpoint" --data "$work/data" >> "$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  client --request-timeout 300ms ping > /dev/null 2>&1 && break
  if ! kill -0 "${pids[0]}" 2> /dev/null; then
    echo "wordcount: the broker did not start; its log:" >&2
    cat "$work/broker.log" >&2
    exit 1
  fi
done

say "workers: wc-map (wc.map, capacity 4) and wc-coordinator (wc.reduce, role=coordinator)"
"$bin/claw-worker" --broker "$endpoint" --id wc-map --type wc.map --capacity 4 \
  --exec "sh '$root/examples/wordcount/map.sh'" >> "$work/worker-map.log" 2>&1 &
pids+=($!)
"$bin/claw-worker" --broker "$endpoint" --id wc-coordinator --type wc.reduce \
  --label role=coordinator --exec "sh '$root/examples/wordcount/reduce.sh'" \
  >> "$work/worker-reduce.log" 2>&1 &
pids+=($!)

say "claw-client group submit $folder --type wc.map --then wc.reduce --then-require role=coordinator --wait"
status=0
client group submit "$folder" --type wc.map --then wc.reduce --then-require role=coordinator \
  --wait --wait-timeout 120s \
  > "$work/result.txt" 2> >(tee "$work/wait.log" >&2) || status=$?
wait $! 2> /dev/null || true  # the tee, so that wait.log is complete
group=$(head -n 1 "$work/wait.log")
if [ "$status" -ne 0 ]; then
  echo "wordcount: the group $group did not succeed (exit code $status)" >&2
  client group status "$group" >&2 || true
  exit 1
fi

say "claw-client group status $group"
client group status "$group"
follow_up=$(client group status "$group" | awk '$1 == "follow-up:" { print $2 }')
say "claw-client status $follow_up"
client status "$follow_up"

say "the word count (the follow-up's result)"
cat "$work/result.txt"

say "check against: tr -cs 'A-Za-z' '\\n' | tr A-Z a-z | sort | uniq -c"
export LC_ALL=C
find -L "$folder" -maxdepth 1 -type f -print0 | xargs -0 -r -n 1 sh -c 'tr -cs "A-Za-z" "\n" < "$1"; echo' sh |
  tr 'A-Z' 'a-z' | grep -v '^$' | sort | uniq -c | awk '{ print $2, $1 }' | sort > "$work/expected.txt"
if diff -u "$work/expected.txt" "$work/result.txt"; then
  echo "OK: $(wc -l < "$work/result.txt") distinct words, $(awk '{ s += $2 } END { print s }' "$work/result.txt") in all"
else
  echo "MISMATCH: the diff above is expected (-) against the word count (+)"
  exit 1
fi
