#!/usr/bin/python3
"""A worker that uppercases payloads and reports progress on the way.

    /usr/bin/python3 upper_worker.py --broker tcp://127.0.0.1:5555 --type upper

SIGTERM or SIGINT stops it cleanly: running jobs get a moment to finish, then it says DISCONNECT.
"""

import argparse
import logging
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import claw  # noqa: E402


def upper(job):
    job.progress(0, "starting")
    result = job.payload.upper()
    job.progress(100, "done")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default=os.environ.get("CLAW_BROKER", "tcp://127.0.0.1:5555"),
                        help="endpoint(s), comma-separated")
    parser.add_argument("--type", default="upper", help="job type to run")
    parser.add_argument("--id", help="worker id (default: py-HOST-PID)")
    parser.add_argument("--capacity", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    claw.Worker(args.broker, [args.type], upper, capacity=args.capacity,
                worker_id=args.id).run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
