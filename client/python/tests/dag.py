#!/usr/bin/python3
"""A three-level chain of dependencies, submitted and run by Python alone.

    /usr/bin/python3 dag.py BROKER TYPE    ->    "c(a,b(a))\\nj-1,j-2 all_settled\\n"

Runs a worker for TYPE in a thread of its own whose handler returns its payload followed by its
inputs' results in parentheses, then submits a, b after a, and c after a and b (all_settled),
waits for c and prints its result, then c's `after` list and policy as the broker reports them.
"""

import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import claw  # noqa: E402


def handler(job):
    if not job.inputs:
        return job.payload
    parts = [i.result if i.succeeded else i.state.encode() for i in job.inputs]
    return job.payload + b"(" + b",".join(parts) + b")"


def main():
    broker, job_type = sys.argv[1:3]
    stop = threading.Event()
    worker = claw.Worker(broker, [job_type], handler, capacity=2, worker_id="py-dag")
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        with claw.Client(broker) as client:
            a = client.submit(job_type, "a")
            b = client.submit(job_type, "b", after=[a])
            c = client.submit(job_type, "c", after=[a, b], after_policy="all_settled")
            job = client.wait(c, timeout=60)
            print(job.get("result", b"").decode())
            status = client.status(c)
            print(",".join(status.get("after", [])), status.get("after_policy"))
    finally:
        stop.set()
        thread.join()
    return 0 if job["state"] == "succeeded" else 3


if __name__ == "__main__":
    sys.exit(main())
