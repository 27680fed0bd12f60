#!/usr/bin/python3
"""Submits twice with one idempotency key and prints both ids and the `existing` flags.

    /usr/bin/python3 same_key.py BROKER TYPE KEY    ->    "j-1 False\nj-1 True\n"
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import claw  # noqa: E402

broker, job_type, key = sys.argv[1:4]
with claw.Client(broker) as client:
    for payload in (b"first", b"second"):
        job_id = client.submit(job_type, payload, key=key)
        print(job_id, client.last_submit_existing)
