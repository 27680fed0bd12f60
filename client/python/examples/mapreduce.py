#!/usr/bin/python3
"""Word count as a Claw group: one map job per text, a reduce follow-up that adds them up.

    # a worker that does both steps (run as many as you like):
    /usr/bin/python3 mapreduce.py worker --broker tcp://127.0.0.1:5555
    # submit one map job per file and wait; prints "count word" lines, most frequent first:
    /usr/bin/python3 mapreduce.py submit --broker tcp://127.0.0.1:5555 a.txt b.txt c.txt

A map job's payload is a text; its result is one "count word" line per distinct word (lower
case), which is also what `tr -cs A-Za-z '\\n' | tr A-Z a-z | grep . | sort | uniq -c` prints,
so a `claw-worker --exec` can do the map step as well. The reduce job is the group's follow-up: it
receives every map job's outcome as its inputs (all_settled: it runs even when some maps failed),
checks that it got as many as its payload says, and returns JSON: {"counts": {word: count},
"inputs": [the map job ids, in order], "failed": {id: error}}. `submit --all-succeeded` makes
the group cancel the reduce instead when a map fails.

submit's exit codes follow exit_codes.client in schema/protocol.yaml: 0 the reduce succeeded,
1 refused, 3 the reduce is dead, 4 cancelled, 5 wait timed out, 6 unreachable.
"""

import argparse
import collections
import json
import logging
import os
import re
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import claw  # noqa: E402

_WORD = re.compile(rb"[A-Za-z]+")


def count_words(text):
    """The map step: "count word" lines for the words of `text` (bytes), by word."""
    counts = collections.Counter(w.lower().decode("ascii") for w in _WORD.findall(text))
    return "".join(f"{n} {word}\n" for word, n in sorted(counts.items())).encode("ascii")


def add_counts(inputs):
    """The reduce step: the sum of the maps' "count word" lines, and the inputs that failed."""
    total = collections.Counter()
    failed = {}
    for item in inputs:
        if not item.succeeded:
            failed[item.id] = item.error or item.state
            continue
        for line in item.result.decode("utf-8").splitlines():
            if line.strip():
                n, word = line.split()
                total[word] += int(n)
    return total, failed


def handle(map_type, reduce_type):
    def handler(job):
        if job.type == map_type:
            return count_words(job.payload)
        if job.type == reduce_type:
            expected = json.loads(job.payload or b"{}").get("maps")
            if expected is not None and len(job.inputs) != expected:
                raise claw.PermanentFailure(
                    f"reduce expected {expected} inputs, got {len(job.inputs)}")
            if len({item.id for item in job.inputs}) != len(job.inputs):
                raise claw.PermanentFailure("an input came twice")
            total, failed = add_counts(job.inputs)
            result = {"counts": dict(sorted(total.items())),
                      "inputs": [item.id for item in job.inputs], "failed": failed}
            return json.dumps(result, sort_keys=True)
        raise claw.PermanentFailure(f"no step for job type {job.type}")

    return handler


def run_worker(args):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    types = {"map": args.map_type, "reduce": args.reduce_type}
    steps = args.steps.split(",")
    unknown = [step for step in steps if step not in types]
    if unknown:
        print(f"unknown step {unknown[0]!r} (map, reduce)", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    claw.Worker(args.broker, [types[step] for step in steps],
                handle(args.map_type, args.reduce_type), capacity=args.capacity,
                worker_id=args.id).run(stop)
    return 0


def run_submit(args):
    texts = []
    for path in args.files:
        with open(path, "rb") as f:
            texts.append(f.read())

    def on_progress(settled, total, counts):
        failed = counts.get("dead", 0) + counts.get("cancelled", 0)
        print(f"maps {settled}/{total} settled, {failed} failed", file=sys.stderr, flush=True)

    maps = [{"type": args.map_type, "payload": text} for text in texts]
    reduce = {"type": args.reduce_type, "payload": json.dumps({"maps": len(maps)})}
    policy = "all_succeeded" if args.all_succeeded else "all_settled"
    with claw.Client(args.broker) as client:
        try:
            group = client.group_submit(maps, follow_up=reduce, follow_up_policy=policy)
            print(f"group {group.id}: maps {' '.join(group.ids)}, reduce {group.follow_up_id}",
                  file=sys.stderr, flush=True)
            done = client.wait_group(group.id, timeout=args.timeout, on_progress=on_progress,
                                     members=False)
        except (claw.WaitTimeout, claw.ClawError) as e:
            print(e, file=sys.stderr)
            return claw.exit_code(e)
    reduced = done["follow_up"]
    if reduced["state"] != "succeeded":
        print(f"reduce {reduced['id']} is {reduced['state']}: {reduced.get('error', '')}",
              file=sys.stderr)
        return claw.exit_code(reduced)
    if args.json:
        sys.stdout.buffer.write(reduced["result"] + b"\n")
        return 0
    result = json.loads(reduced["result"])
    for map_id, error in result["failed"].items():
        print(f"map {map_id} failed: {error}", file=sys.stderr)
    for word, n in sorted(result["counts"].items(), key=lambda item: (-item[1], item[0])):
        print(f"{n} {word}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default=os.environ.get("CLAW_BROKER", "tcp://127.0.0.1:5555"),
                        help="endpoint(s), comma-separated")
    parser.add_argument("--map-type", default="wc-map", help="job type of the map step")
    parser.add_argument("--reduce-type", default="wc-reduce", help="job type of the reduce step")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run map and reduce jobs")
    worker.add_argument("--steps", default="map,reduce", help="map, reduce or both")
    worker.add_argument("--id", help="worker id (default: py-HOST-PID)")
    worker.add_argument("--capacity", type=int, default=1)
    submit = commands.add_parser("submit", help="count the words of files and wait")
    submit.add_argument("--timeout", type=float, help="seconds to wait (default: no limit)")
    submit.add_argument("--all-succeeded", action="store_true",
                        help="cancel the reduce if a map fails (default: reduce what succeeded)")
    submit.add_argument("--json", action="store_true", help="print the reduce's JSON result")
    submit.add_argument("files", nargs="+", help="text files, one map job each")
    args = parser.parse_args()
    return run_worker(args) if args.command == "worker" else run_submit(args)


if __name__ == "__main__":
    sys.exit(main())
