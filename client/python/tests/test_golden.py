#!/usr/bin/python3
"""claw.py against schema/golden/*.hex and tests/golden/*.hex: the bytes it sends and reads.

Each golden file holds one message: a comment giving it as a literal, then its three frames in
hex (schema/PROTOCOL.md section 13). For a message this module sends, the body built by claw's
own *_body function from the literal's fields must equal the golden bytes; every file must decode
to the literal, and a JOB must become the WorkerJob it describes. tests/golden/ holds the group
and dependency messages in the same format; tests/integration/python_test.cpp checks that the
C++ codec writes and reads those files exactly so. Also checks that claw's copied constants
still match schema/protocol.yaml and how Client turns its arguments into job specs.
Exit status 0 when everything matches; one line per mismatch otherwise.
"""

import ast
import glob
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, ".."))
import claw  # noqa: E402

# Messages claw sends, by (dialog, command): the builder of the body from the literal.
BUILDERS = {
    ("client", "SUBMIT"): lambda b: claw.submit_body(**b),
    ("client", "STATUS"): lambda b: claw.id_body(**b),
    ("client", "PING"): lambda b: claw.rid_body(**b),
    ("client", "GROUP_SUBMIT"): lambda b: claw.group_submit_body(
        b["rid"], [claw.job_spec_body(**job) for job in b["jobs"]],
        claw.job_spec_body(**b["follow_up"]) if "follow_up" in b else None,
        b.get("follow_up_policy"), b.get("key")),
    ("client", "GROUP_STATUS"): lambda b: claw.group_status_body(**b),
    ("worker", "READY"): lambda b: claw.ready_body(**b),
    ("worker", "PROGRESS"): lambda b: claw.progress_body(**b),
    ("worker", "DONE"): lambda b: claw.done_body(**b),
    ("worker", "FAIL"): lambda b: claw.fail_body(**b),
    ("worker", "HEARTBEAT"): lambda b: {},
    ("worker", "DISCONNECT"): lambda b: claw.disconnect_body(**b),
}
# Messages claw only receives: broker-to-worker commands and every client reply.
RECEIVED_WORKER_COMMANDS = {"WELCOME", "JOB", "CANCEL"}


def read_golden(path):
    lines = open(path, encoding="ascii").read().splitlines()
    comment = lines[0]
    # The comment's literal is JSON-like: true/false rather than Python's True/False.
    literal = comment[comment.index("{"):]
    literal = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", literal))
    frames = [bytes.fromhex(line) for line in lines if line.strip() and not line.startswith("#")]
    return ast.literal_eval(literal), frames


def check_file(path, errors):
    name = os.path.basename(path)
    literal, frames = read_golden(path)
    if len(frames) != 3:
        errors.append(f"{name}: {len(frames)} frames")
        return
    message = claw.decode(frames)
    if message.body != literal:
        errors.append(f"{name}: decodes to {message.body!r}, expected {literal!r}")
    is_reply = "reply" in name
    key = (message.dialog, message.command)
    if message.dialog == "client" and is_reply:
        return  # replies are only read; the decode check above covers them
    if message.dialog == "worker" and message.command in RECEIVED_WORKER_COMMANDS:
        if message.command == "JOB":
            check_job(name, literal, message.body, errors)
        return
    if key not in BUILDERS:
        errors.append(f"{name}: no builder for {key}, a message claw sends")
        return
    encoded = claw.encode(message.dialog, message.command, BUILDERS[key](dict(literal)))
    if encoded != frames:
        errors.append(f"{name}: claw encodes {show(encoded)}, golden {show(frames)}")


def show(frames):
    return " | ".join(f.hex(" ") for f in frames)


def check_job(name, literal, body, errors):
    job = claw.WorkerJob(body, lambda command, b: None)
    got = (job.id, job.type, job.payload, job.lease, job.attempt, job.timeout, job.checkpoint,
           [(i.id, i.state, i.result, i.error) for i in job.inputs])
    want = (literal["id"], literal["type"], literal["payload"], literal["lease"],
            literal["attempt"], literal["timeout_ms"] / 1000.0, literal.get("checkpoint"),
            [(i["id"], i["state"], i.get("result"), i.get("error"))
             for i in literal.get("inputs", [])])
    if got != want:
        errors.append(f"{name}: WorkerJob fields {got}, expected {want}")


def check_client_specs(errors):
    """Client's arguments (seconds, duration strings, priority names) as job_spec fields."""
    cases = [
        (dict(type="map", payload="a b"), {"type": "map", "payload": b"a b"}),
        (dict(type="map", priority="high", timeout="2m", backoff=0.5, max_backoff="10s",
              delay="30s", run_at=1700000000.5, after="#0", after_policy="all_settled",
              max_attempts=3, hash_key="h"),
         {"type": "map", "payload": b"", "priority": 7, "timeout_ms": 120000, "max_attempts": 3,
          "backoff_ms": 500, "max_backoff_ms": 10000, "run_at": 1700000000500,
          "delay_ms": 30000, "after": ["#0"], "after_policy": "all_settled", "hash_key": "h"}),
        (dict(type="render", requires={"gpu": "true"}, zone="eu-1", locality="same-zone",
              max_rtt="50ms", timeout="1d"),
         {"type": "render", "payload": b"", "timeout_ms": 86400000, "requires": {"gpu": "true"},
          "zone": "eu-1", "locality": "same-zone", "max_rtt_ms": 50}),
    ]
    for arguments, want in cases:
        got = claw._job_spec(**arguments)
        if got != want or list(got) != list(want):
            errors.append(f"job spec of {arguments}: {got}, expected {want}")
    # Duration strings read as claw-client reads them: a unit is needed, except for "0".
    for bad in ("30", "1.5s", "5x", "-1s"):
        try:
            claw._millis(bad)
            errors.append(f"_millis({bad!r}) did not raise")
        except ValueError:
            pass
    if claw._millis("0") != 0 or claw._millis(2) != 2000:
        errors.append("_millis('0') or _millis(2) is wrong")


def check_constants(errors):
    yaml_path = os.path.join(ROOT, "schema", "protocol.yaml")
    try:
        from_yaml = claw._protocol_from_yaml(yaml_path)
    except ImportError:
        errors.append("python3-yaml is missing: cannot compare claw's constants with the yaml")
        return
    if from_yaml != claw._FALLBACK_PROTOCOL:
        for k in from_yaml:
            if from_yaml[k] != claw._FALLBACK_PROTOCOL.get(k):
                errors.append(f"claw._FALLBACK_PROTOCOL[{k!r}] is stale: yaml has {from_yaml[k]}")
    if os.path.abspath(claw.PROTOCOL_SOURCE or "") != os.path.abspath(yaml_path):
        errors.append(f"claw loaded its constants from {claw.PROTOCOL_SOURCE}, not {yaml_path}")


def check_exit_codes(errors):
    """claw.exit_code gives what claw-client gives for the same outcome."""
    codes = claw.PROTOCOL["exit_codes"]
    cases = [
        ({"id": "j-1", "state": "succeeded"}, "OK"),
        ({"id": "j-1", "state": "dead"}, "JOB_DEAD"),
        ({"id": "j-1", "state": "cancelled"}, "JOB_CANCELLED"),
        (claw.WaitTimeout("j-1", None), "WAIT_TIMEOUT"),
        (claw.Unreachable("no answer"), "UNREACHABLE"),
        (claw.ClawError("NOT_FOUND", "no such job"), "NOT_FOUND"),
        (claw.ClawError("QUEUE_FULL", "full"), "ERROR"),
    ]
    for outcome, name in cases:
        if claw.exit_code(outcome) != codes[name]:
            errors.append(f"exit_code({outcome!r}) is {claw.exit_code(outcome)}, not {name}")
    try:
        claw.exit_code({"id": "j-1", "state": "running"})
        errors.append("exit_code of a running job did not raise")
    except ValueError:
        pass


def main():
    errors = []
    files = sorted(glob.glob(os.path.join(ROOT, "schema", "golden", "*.hex")))
    if not files:
        errors.append(f"no golden files under {ROOT}/schema/golden")
    ours = sorted(glob.glob(os.path.join(HERE, "golden", "*.hex")))
    if not ours:
        errors.append(f"no golden files under {HERE}/golden")
    files += ours
    for path in files:
        try:
            check_file(path, errors)
        except Exception as e:  # report every file, not just the first failure
            errors.append(f"{os.path.basename(path)}: {type(e).__name__}: {e}")
    check_constants(errors)
    check_client_specs(errors)
    check_exit_codes(errors)
    for error in errors:
        print(error)
    print(f"{len(files)} golden files, {len(errors)} mismatches")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
