#!/usr/bin/python3
"""claw.py against schema/golden/*.hex: the bytes it sends and what it reads back.

Each golden file holds one message: a comment giving it as a literal, then its three frames in
hex (schema/PROTOCOL.md section 13). For a message this module sends, the body built by claw's
own *_body function from the literal's fields must equal the golden bytes; every file must decode
to the literal. Also checks that claw's copied constants still match schema/protocol.yaml.
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
            check_job(name, message.body, errors)
        return
    if key not in BUILDERS:
        errors.append(f"{name}: no builder for {key}, a message claw sends")
        return
    encoded = claw.encode(message.dialog, message.command, BUILDERS[key](dict(literal)))
    if encoded != frames:
        errors.append(f"{name}: claw encodes {show(encoded)}, golden {show(frames)}")


def show(frames):
    return " | ".join(f.hex(" ") for f in frames)


def check_job(name, body, errors):
    job = claw.WorkerJob(body, lambda command, b: None)
    got = (job.id, job.type, job.payload, job.lease, job.attempt, job.timeout, job.checkpoint)
    want = ("j-1", "echo", b"hi", (1 << 40) | 1, 1, 300.0, None)
    if got != want:
        errors.append(f"{name}: WorkerJob fields {got}, expected {want}")


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


def main():
    errors = []
    files = sorted(glob.glob(os.path.join(ROOT, "schema", "golden", "*.hex")))
    if not files:
        errors.append(f"no golden files under {ROOT}/schema/golden")
    for path in files:
        try:
            check_file(path, errors)
        except Exception as e:  # report every file, not just the first failure
            errors.append(f"{os.path.basename(path)}: {type(e).__name__}: {e}")
    check_constants(errors)
    for error in errors:
        print(error)
    print(f"{len(files)} golden files, {len(errors)} mismatches")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
