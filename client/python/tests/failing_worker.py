#!/usr/bin/python3
"""A worker for the integration tests of the failure paths.

Payload "permanent": raises PermanentFailure (the job must be dead after one attempt).
Payload "flaky": raises RuntimeError on the first attempt and succeeds on the next one.
Anything else: returns "attempt N".
"""

import argparse
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import claw  # noqa: E402


def handler(job):
    if job.payload == b"permanent":
        raise claw.PermanentFailure("cannot ever work")
    if job.payload == b"flaky" and job.attempt == 1:
        raise RuntimeError(f"first attempt of {job.id} fails")
    return f"attempt {job.attempt}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--type", default="py-fail")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    claw.Worker(args.broker, [args.type], handler, worker_id="py-failing").run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
