#!/usr/bin/python3
"""Submits COUNT jobs of TYPE with submit_many, payloads "job-0", "job-1", ..., and prints their
ids, one per line, in order, then on stderr how many of their keys matched an earlier job.

    /usr/bin/python3 submit_many.py BROKERS TYPE COUNT [REQUEST_TIMEOUT_SECONDS]
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import claw  # noqa: E402

brokers, job_type, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else None
with claw.Client(brokers, timeout=timeout) as client:
    ids = client.submit_many({"type": job_type, "payload": f"job-{i}"} for i in range(count))
    print("\n".join(ids))
    print(f"existing {sum(client.last_submit_existing)}", file=sys.stderr)
