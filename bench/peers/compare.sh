#!/usr/bin/env bash
# Claw side by side with beanstalkd, gearmand and RabbitMQ on this machine, in one run: the
# workloads of WORKLOADS.md (W1p, W1s, W2, W2p, W3) against each peer's own server (Debian
# packages, started here on 127.0.0.1 with a fresh data directory on the real disk for every
# workload and round), then claw-bench for the same workloads, then one table.
#
# Run as root on Debian 12 (it installs packages with apt-get); see bench/peers/README.md.
# Every server it starts is ended by its PID, on exit too; nothing else is stopped.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
peers_src="$repo/bench/peers"

n=100000       # W1p, W2, W2p
n_w1s=5000
n_slow=""     # jobs for W1p, W1s, W2, W2p of the peers that fsync every job (default: as --n)
n_w3=2000
rounds=1
configs="beanstalkd beanstalkd-f0 gearmand rabbitmq-classic rabbitmq-quorum"
workloads="W1p W1s W2 W2p W3"
claw_build="$repo/build"
skip_claw_build=0
peers_build="$repo/build-peers-clients"
data_root=/var/tmp
json_out=""
install=1
limits=1

usage() {
  cat <<EOF
usage: $0 [options]
  --n N               jobs for W1p, W2, W2p (default $n)
  --n-w1s N           jobs for W1s (default $n_w1s)
  --n-slow N          jobs for W1p, W1s, W2, W2p of gearmand and beanstalkd -f 0, which fsync
                      every job (default: as --n, and W1s as --n-w1s)
  --n-w3 N            W3 latency samples, after 100 warm-up jobs (default $n_w3)
  --rounds R          rounds per workload; the table shows medians (default $rounds)
  --quick             small sizes (N 2000, W1s 300, W3 200), to check the script end to end
  --peers "LIST"      among: $configs (default all)
  --workloads "LIST"  among: $workloads (default all)
  --claw-build DIR    Claw's build directory (default build/, built by scripts/setup.sh;
                      another directory is configured and built with cmake)
  --skip-claw-build   use claw-bench and claw-broker already in --claw-build
  --peers-build DIR   build directory of the peer clients (default build-peers-clients/)
  --data-dir DIR      where the servers' data directories go, on the real disk (default /var/tmp)
  --json FILE         also write every raw JSON line there
  --no-install        do not run apt-get (the packages must be there)
  --no-limits         do not measure fdatasync and the ZeroMQ round trip
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --n) n=$2; shift 2 ;;
    --n-w1s) n_w1s=$2; shift 2 ;;
    --n-slow) n_slow=$2; shift 2 ;;
    --n-w3) n_w3=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --quick) n=2000; n_w1s=300; n_w3=200; shift ;;
    --peers) configs=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --claw-build) claw_build=$(realpath -m "$2"); shift 2 ;;
    --skip-claw-build) skip_claw_build=1; shift ;;
    --peers-build) peers_build=$(realpath -m "$2"); shift 2 ;;
    --data-dir) data_root=$(realpath -m "$2"); shift 2 ;;
    --json) json_out=$(realpath -m "$2"); shift 2 ;;
    --no-install) install=0; shift ;;
    --no-limits) limits=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

log() { echo "compare: $*" >&2; }

# Before each measurement: what the one before left dirty (a RabbitMQ data directory just
# removed, say) is written back now, not during the next server's fsyncs.
settle() { sync; }

# --- PIDs this script started; the only processes it ever signals --------------------------
server_pid=""   # the server (for RabbitMQ: its rabbitmq-server script, parent of beam.smp)
beam_pid=""     # RabbitMQ's Erlang VM
epmd_pid=""     # the epmd started for RabbitMQ
client_pid=""   # the running benchmark client (a `timeout` process)
work_dir=""
policy_added=0

# Sends SIGTERM to one PID, waits up to $2 seconds, then SIGKILL.
end_pid() {
  local pid=$1 grace=$2 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "PID $pid still alive after ${grace}s, SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop_server() {
  end_pid "$server_pid" 60
  # The rabbitmq-server script stops its VM on SIGTERM; make sure of it.
  end_pid "$beam_pid" 10
  end_pid "$epmd_pid" 5
  server_pid="" beam_pid="" epmd_pid=""
}

cleanup() {
  local status=$?
  end_pid "$client_pid" 5
  stop_server
  if [ "$policy_added" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  if [ -n "$work_dir" ]; then rm -rf "$work_dir"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- installs and builds -------------------------------------------------------------------
packages=(beanstalkd gearman-job-server rabbitmq-server libgearman-dev librabbitmq-dev
          libzmq3-dev cmake g++ pkg-config python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$install" = 0 ] || [ "$(id -u)" != 0 ]; then
    log "missing packages (run as root without --no-install): ${missing[*]}"
    exit 1
  fi
  # The servers' packages must not start their services: only this script starts servers.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 900 apt-get update -qq
  timeout 1800 apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  if [ "$policy_added" = 1 ]; then rm -f /usr/sbin/policy-rc.d; policy_added=0; fi
fi

if [ "$skip_claw_build" = 0 ]; then
  if [ "$claw_build" = "$repo/build" ]; then
    log "building Claw (scripts/setup.sh)"
    timeout 3600 bash "$repo/scripts/setup.sh" >&2
  else
    log "building Claw in $claw_build"
    cmake -S "$repo" -B "$claw_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
    timeout 3600 cmake --build "$claw_build" -j "$(nproc)" --target claw-bench claw-broker >&2
  fi
fi
for bin in claw-bench claw-broker; do
  [ -x "$claw_build/$bin" ] || { log "no $claw_build/$bin"; exit 1; }
done
log "building the peer clients in $peers_build"
cmake -S "$peers_src" -B "$peers_build" -DCMAKE_BUILD_TYPE=Release > /dev/null
timeout 1800 cmake --build "$peers_build" -j "$(nproc)" >&2

mkdir -p "$data_root"
work_dir=$(mktemp -d "$data_root/claw-compare.XXXXXX")
if [ "$(stat -f -c %T "$work_dir")" = tmpfs ] || [ "$(stat -f -c %T "$work_dir")" = ramfs ]; then
  log "WARNING: $work_dir is on $(stat -f -c %T "$work_dir"): fsync costs nothing there"
fi
results="$work_dir/results.jsonl"
: > "$results"

# --- servers -------------------------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until 127.0.0.1:$1 accepts a connection, at most $2 seconds, while $3 lives.
wait_port() {
  local port=$1 limit=$2 pid=$3 i
  for ((i = 0; i < limit * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { log "server PID $pid exited while starting"; return 1; }
    sleep 0.1
  done
  log "nothing listens on port $port after ${limit}s"
  return 1
}

# Starts the server of configuration $1 on port $2 with data directory $3; sets server_pid
# and measure_pid (the process whose CPU and RSS are reported).
start_server() {
  local config=$1 port=$2 dir=$3
  case "$config" in
    beanstalkd)
      beanstalkd -l 127.0.0.1 -p "$port" -b "$dir" > "$dir.log" 2>&1 &
      server_pid=$! ;;
    beanstalkd-f0)
      beanstalkd -l 127.0.0.1 -p "$port" -b "$dir" -f 0 > "$dir.log" 2>&1 &
      server_pid=$! ;;
    gearmand)
      gearmand -L 127.0.0.1 -p "$port" -q libsqlite3 --libsqlite3-db="$dir/gearmand.sqlite" \
        -l "$dir/gearmand.log" > "$dir.log" 2>&1 &
      server_pid=$! ;;
    rabbitmq-classic|rabbitmq-quorum)
      start_rabbitmq "$port" "$dir" || return 1
      measure_pid=$beam_pid
      return 0 ;;
    *) log "unknown configuration $config"; return 1 ;;
  esac
  measure_pid=$server_pid
  wait_port "$port" 30 "$server_pid"
}

# RabbitMQ with its own epmd, node name, ports and directories, so it touches no other node.
start_rabbitmq() {
  local port=$1 dir=$2 epmd_port dist_port i
  epmd_port=$(free_port)
  dist_port=$(free_port)
  epmd -port "$epmd_port" -address 127.0.0.1 > "$dir.epmd.log" 2>&1 &
  epmd_pid=$!
  wait_port "$epmd_port" 10 "$epmd_pid" || return 1
  echo '[].' > "$dir/enabled_plugins"
  (cd "$dir" && exec env HOME="$dir" ERL_EPMD_PORT="$epmd_port" \
    RABBITMQ_NODENAME="clawcompare$port@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$dist_port" \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_CONFIG_FILE="$dir/rabbitmq" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
    RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" RABBITMQ_PID_FILE="$dir/rabbitmq.pid" \
    /usr/lib/rabbitmq/bin/rabbitmq-server) > "$dir.log" 2>&1 < /dev/null &
  server_pid=$!
  # The Erlang VM (beam.smp) is the script's child.
  for ((i = 0; i < 300; i++)); do
    beam_pid=$(cat "/proc/$server_pid/task/$server_pid/children" 2>/dev/null | awk '{print $1}')
    if [ -n "$beam_pid" ] && [ "$(cat "/proc/$beam_pid/comm" 2>/dev/null)" = beam.smp ]; then
      break
    fi
    beam_pid=""
    sleep 0.1
  done
  [ -n "$beam_pid" ] || { log "RabbitMQ's beam.smp did not appear"; return 1; }
  wait_port "$port" 180 "$server_pid"
}

client_of() {
  case "$1" in
    beanstalkd*) echo "$peers_build/beanstalkd-bench" ;;
    gearmand) echo "$peers_build/gearman-bench" ;;
    rabbitmq-*) echo "$peers_build/rabbitmq-bench" ;;
  esac
}

# Jobs for workload $1 of configuration $2 (claw for Claw).
n_of() {
  local count
  case "$1" in
    W1s) count=$n_w1s ;;
    W3) echo "$n_w3"; return ;;
    *) count=$n ;;
  esac
  case "$2" in
    gearmand|beanstalkd-f0)
      if [ -n "$n_slow" ] && [ "$n_slow" -lt "$count" ]; then count=$n_slow; fi ;;
  esac
  echo "$count"
}

# Runs `$@` in the background under a time limit and waits for it, so cleanup can end it.
run_bounded() {
  local limit=$1 status=0
  shift
  timeout --kill-after=10 "$limit" "$@" &
  client_pid=$!
  wait "$client_pid" || status=$?
  client_pid=""
  return "$status"
}

failures=0

if [ "$limits" = 1 ]; then
  log "machine limits (fdatasync of a 128-byte append, ZeroMQ round trip)"
  run_bounded 300 "$peers_build/peer-limits" --dir "$work_dir" >> "$results" || failures=$((failures + 1))
fi

for config in $configs; do
  client=$(client_of "$config")
  [ -n "$client" ] || { log "unknown configuration $config"; exit 2; }
  extra=()
  case "$config" in
    rabbitmq-classic) extra=(--queue-type classic) ;;
    rabbitmq-quorum) extra=(--queue-type quorum) ;;
  esac
  for workload in $workloads; do
    for ((round = 1; round <= rounds; round++)); do
      port=$(free_port)
      dir="$work_dir/$config-$workload-$round"
      mkdir -p "$dir"
      settle
      log "$config $workload round $round (port $port)"
      measure_pid=""
      if start_server "$config" "$port" "$dir"; then
        if ! run_bounded 3600 "$client" --port "$port" --workload "$workload" \
            --n "$(n_of "$workload" "$config")" --server-pid "$measure_pid" --label "$config" \
            "${extra[@]}" >> "$results"; then
          log "$config $workload round $round failed"
          failures=$((failures + 1))
        fi
      else
        log "$config did not start; see $dir.log"
        tail -n 20 "$dir.log" >&2 || true
        failures=$((failures + 1))
      fi
      stop_server
      rm -rf "$dir" "$dir.log" "$dir.epmd.log"
    done
  done
done

for workload in $workloads; do
  settle
  log "claw $workload (claw-bench --rounds $rounds)"
  if ! run_bounded 3600 "$claw_build/claw-bench" --workload "$workload" --n "$(n_of "$workload" claw)" \
      --rounds "$rounds" --json --data-dir "$work_dir/claw-bench-data" \
      --broker-bin "$claw_build/claw-broker" >> "$results"; then
    log "claw $workload failed"
    failures=$((failures + 1))
  fi
done

if [ -n "$json_out" ]; then cp "$results" "$json_out"; fi

python3 - "$results" "$configs" "$workloads" <<'EOF'
import json, statistics, sys

results_path, configs, workloads = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
names = {
    "beanstalkd": "beanstalkd binlog (fsync ≤ every 50 ms, not durable per job)",
    "beanstalkd-f0": "beanstalkd binlog -f 0 (fsync per put/delete)",
    "gearmand": "gearmand libsqlite3 queue (durable)",
    "rabbitmq-classic": "RabbitMQ durable classic queue, confirms",
    "rabbitmq-quorum": "RabbitMQ quorum queue, confirms (durable)",
}
peer_runs, claw, limits = {}, {}, None
for line in open(results_path):
    line = line.strip()
    if not line.startswith("{"):
        continue
    row = json.loads(line)
    if row.get("peer") == "limits":
        limits = row
    elif "peer" in row:
        peer_runs.setdefault((row["label"], row["workload"]), []).append(row)
    else:
        claw[row["workload"]] = row

def peer_value(config, workload, key):
    values = [r[key] for r in peer_runs.get((config, workload), []) if key in r]
    return statistics.median(values) if values else None

rows = [  # workload, figure key in peers' JSON, in claw-bench's JSON, text, lower is better
    ("W1p", "jobs_per_s", "jobs_per_s", "jobs/s", False),
    ("W1s", "jobs_per_s", "jobs_per_s", "jobs/s", False),
    ("W2", "jobs_per_s", "jobs_per_s", "jobs/s", False),
    ("W2", "server_peak_rss_mib", "broker_peak_rss_mib", "server peak RSS MiB", True),
    ("W2", "server_cpu_s", "broker_cpu_s", "server CPU s", True),
    ("W2p", "jobs_per_s", "jobs_per_s", "jobs/s", False),
    ("W3", "p50_us", "p50_us", "latency p50 µs", True),
    ("W3", "p99_us", "p99_us", "latency p99 µs", True),
]

def fmt(value):
    if value is None:
        return "–"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"

shown = [c for c in configs]
print()
print("| workload | figure | Claw (durable) | " + " | ".join(shown) + " |")
print("|---|---|---|" + "---|" * len(shown))
for workload, peer_key, claw_key, text, lower in rows:
    if workload not in workloads:
        continue
    claw_value = claw.get(workload, {}).get(claw_key)
    cells = []
    for config in shown:
        value = peer_value(config, workload, peer_key)
        if value is None:
            cells.append("–")
        elif claw_value is None or value == 0:
            cells.append(fmt(value))
        else:
            cells.append(f"{fmt(value)} ({claw_value / value:.2f}×)")
    print(f"| {workload} | {text} | {fmt(claw_value)} | " + " | ".join(cells) + " |")
print()
print("Each peer cell: the peer's figure (Claw's figure ÷ the peer's). For jobs/s above 1× means")
print("Claw is faster; for latency, RSS and CPU below 1× means Claw is lower. Medians of the rounds.")
print("Claw: claw-bench, --durability full (ACCEPTED after the fsync'd SQLite commit).")
for config in shown:
    print(f"  {config}: {names.get(config, config)}")
def sizes(runs):
    return ", ".join(f"{w} {runs[w]['n']}" for w in workloads if runs.get(w))
print(f"N (jobs; W3: samples after 100 warm-up): Claw {sizes(claw)}")
for config in shown:
    runs = {w: peer_runs[(config, w)][0] for w in workloads if (config, w) in peer_runs}
    rounds = max((len(peer_runs[(config, w)]) for w in runs), default=0)
    print(f"  {config}: {sizes(runs)}; rounds {rounds}")
if limits:
    print(f"Machine limits, same run: fdatasync of a 128-byte append {limits['fdatasync_per_s']:,.0f} /s "
          f"(p50 {limits['fdatasync_p50_us']:,.0f} µs); ZeroMQ DEALER-ROUTER round trip p50 "
          f"{limits['zmq_round_trip_p50_us']:,.0f} µs ({limits['zmq_round_trip_per_s']:,.0f} /s).")
EOF

if [ "$failures" -gt 0 ]; then
  log "$failures run(s) failed; their cells show –"
  exit 1
fi
