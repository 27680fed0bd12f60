#!/usr/bin/python3
"""Submits one job, follows it with printed progress and prints its result.

    /usr/bin/python3 submit_and_wait.py --broker tcp://127.0.0.1:5555 --type upper hello

Exit codes follow exit_codes.client in schema/protocol.yaml: 0 succeeded, 1 refused, 3 dead,
4 cancelled, 5 wait timed out, 6 unreachable.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import claw  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default=os.environ.get("CLAW_BROKER", "tcp://127.0.0.1:5555"),
                        help="endpoint(s), comma-separated")
    parser.add_argument("--type", required=True, help="job type")
    parser.add_argument("--priority", help="0-9 or low, normal, high, critical")
    parser.add_argument("--key", help="idempotency key (default: a random one)")
    parser.add_argument("--timeout", type=float, help="seconds to wait (default: no limit)")
    parser.add_argument("--request-timeout", type=float,
                        help="seconds before a request moves to the next endpoint (default 5)")
    parser.add_argument("payload", nargs="?", default="", help="the job's payload")
    args = parser.parse_args()

    def on_progress(percent, message):
        print(f"progress {percent if percent is not None else '-'}% {message or ''}".rstrip(),
              file=sys.stderr, flush=True)

    with claw.Client(args.broker, timeout=args.request_timeout) as client:
        try:
            job_id = client.submit(args.type, args.payload.encode(), priority=args.priority,
                                   key=args.key)
            print(f"submitted {job_id}", file=sys.stderr, flush=True)
            job = client.wait(job_id, timeout=args.timeout, on_progress=on_progress)
        except (claw.WaitTimeout, claw.ClawError) as e:
            print(e, file=sys.stderr)
            return claw.exit_code(e)
    if job["state"] == "succeeded":
        sys.stdout.buffer.write(job.get("result", b""))
        sys.stdout.flush()
    else:
        print(f"job {job_id} is {job['state']}: {job.get('error', '')}", file=sys.stderr)
    return claw.exit_code(job)


if __name__ == "__main__":
    sys.exit(main())
