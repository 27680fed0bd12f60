"""A Claw client and worker for Python, written from schema/ alone.

Claw is a durable ZeroMQ job queue. This module speaks its wire protocol as a third party would,
from schema/protocol.yaml (the data), schema/PROTOCOL.md (the dialogs) and schema/golden/*.hex
(the bytes), with nothing but the standard library, pyzmq and msgpack. On Debian use
/usr/bin/python3 with python3-zmq and python3-msgpack (and python3-yaml to read protocol.yaml).

    client = claw.Client("tcp://127.0.0.1:5555")
    job_id = client.submit("resize", b"cat.png", priority="high")
    job = client.wait(job_id, on_progress=lambda pct, msg: print(pct, msg))
    group = client.group_submit([{"type": "map", "payload": b"a b"}, {"type": "map"}],
                                follow_up={"type": "reduce"})
    done = client.wait_group(group.id, on_progress=lambda settled, total, counts: print(settled))

    def handler(job):
        job.progress(50, "half way")
        return job.payload.upper()  # a follow-up also has job.inputs: each member's outcome
    claw.Worker("tcp://127.0.0.1:5555", ["resize"], handler).run()

Message bodies are built by the small *_body functions below, in the field order of the golden
files (protocol.yaml's, except that SUBMIT's key comes last), so that tests/test_golden.py can
compare them byte for byte.
Neither Client nor Worker is thread-safe: use each from one thread (a Worker runs handlers in
threads of its own, but its socket stays in the thread that called run()).
"""

import collections
import datetime
import logging
import os
import queue
import random
import re
import socket as _socket
import threading
import time
import uuid

import msgpack
import zmq

__all__ = [
    "ClawError", "Unreachable", "WaitTimeout", "PermanentFailure", "ProtocolError", "Client",
    "SubmittedGroup", "Worker", "WorkerJob", "Input", "Message", "PROTOCOL", "encode", "decode"
]

# --- Protocol constants -------------------------------------------------------------------------

# The constants this module needs, copied from schema/protocol.yaml. They are used only when that
# file cannot be read (the module was copied out of the repository, or PyYAML is missing);
# tests/test_golden.py fails when they drift from the yaml.
_FALLBACK_PROTOCOL = {
    "headers": {"client": b"CLAWC1", "worker": b"CLAWW1"},
    "client_commands": {
        "SUBMIT": 0x01, "STATUS": 0x02, "LIST": 0x03, "CANCEL": 0x04, "RETRY": 0x05,
        "CLUSTER": 0x06, "WATCH": 0x07, "PING": 0x08, "GROUP_SUBMIT": 0x09, "GROUP_STATUS": 0x0A,
        "DRAIN": 0x0B,
    },
    "worker_commands": {
        "READY": 0x01, "WELCOME": 0x02, "JOB": 0x03, "PROGRESS": 0x04, "DONE": 0x05,
        "FAIL": 0x06, "CANCEL": 0x07, "HEARTBEAT": 0x08, "DISCONNECT": 0x09, "STARTED": 0x0A,
        "RECALL": 0x0B, "RETURNED": 0x0C,
    },
    "status_codes": {
        200: "OK", 202: "ACCEPTED", 400: "BAD_REQUEST", 404: "NOT_FOUND", 409: "CONFLICT",
        413: "TOO_LARGE", 429: "QUEUE_FULL", 500: "INTERNAL", 501: "UNKNOWN_COMMAND",
        503: "NOT_ACTIVE", 505: "UNSUPPORTED_VERSION", 507: "STORAGE_ERROR",
    },
    "job_states": ["queued", "scheduled", "waiting", "running", "succeeded", "dead",
                   "cancelled"],
    "dependency_policies": ["all_succeeded", "all_settled"],
    "priorities": {"min": 0, "max": 9, "names": {"low": 2, "normal": 5, "high": 7,
                                                  "critical": 9}},
    "defaults": {"heartbeat_ms": 1000, "liveness": 3, "client_timeout_ms": 5000},
    "exit_codes": {"OK": 0, "ERROR": 1, "USAGE": 2, "JOB_DEAD": 3, "JOB_CANCELLED": 4,
                   "WAIT_TIMEOUT": 5, "UNREACHABLE": 6, "NOT_FOUND": 7},
}

# Not data in protocol.yaml: PROTOCOL.md section 4.8 names the final states, and 4.8 / 11.7 the
# watch renewal interval.
FINAL_STATES = frozenset(["succeeded", "dead", "cancelled"])
WATCH_RENEW_SECONDS = 2.0
# PROTOCOL.md 11.7: a client gives up after this many rounds over its endpoints.
_ROUNDS = 3


def _protocol_from_yaml(path):
    import yaml  # python3-yaml; optional

    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    return {
        "headers": {k: doc["headers"][k].encode("ascii") for k in ("client", "worker")},
        "client_commands": {c["name"]: c["code"] for c in doc["client"]["commands"]},
        "worker_commands": {c["name"]: c["code"] for c in doc["worker"]["commands"]},
        "status_codes": {s["code"]: s["name"] for s in doc["status_codes"]},
        "job_states": [s["name"] for s in doc["job_states"]],
        "dependency_policies": [p["name"] for p in doc["dependency_policies"]],
        "priorities": doc["priorities"],
        "defaults": {k: doc["defaults"][k]
                     for k in ("heartbeat_ms", "liveness", "client_timeout_ms")},
        "exit_codes": {e["name"]: e["code"] for e in doc["exit_codes"]["client"]},
    }


def _load_protocol():
    """protocol.yaml of this repository (or $CLAW_PROTOCOL_YAML), else the copied constants."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.environ.get("CLAW_PROTOCOL_YAML") or os.path.join(here, "..", "..", "schema",
                                                                 "protocol.yaml")
    try:
        return _protocol_from_yaml(path), path
    except (ImportError, OSError):
        return _FALLBACK_PROTOCOL, None


PROTOCOL, PROTOCOL_SOURCE = _load_protocol()
_CLIENT = PROTOCOL["client_commands"]
_WORKER = PROTOCOL["worker_commands"]
_STATUS_NAMES = PROTOCOL["status_codes"]
_STATUS_CODES = {name: code for code, name in _STATUS_NAMES.items()}

# --- Errors -------------------------------------------------------------------------------------


class ClawError(Exception):
    """The broker answered with a status that is not 2xx (or, for Unreachable, did not answer)."""

    def __init__(self, status_name, message="", status=None):
        super().__init__(f"{status_name}: {message}" if message else status_name)
        self.status_name = status_name
        self.message = message
        self.status = status


class Unreachable(ClawError):
    """No broker answered in time (every endpoint, three rounds)."""

    def __init__(self, message):
        super().__init__("UNREACHABLE", message)


class WaitTimeout(Exception):
    """Client.wait or wait_group gave up; the work goes on. `job` is the last snapshot seen (a job
    dict, for wait_group a group dict; or None)."""

    def __init__(self, job_id, job, kind="job"):
        super().__init__(f"timed out waiting for {kind} {job_id}")
        self.job_id = job_id
        self.job = job


class PermanentFailure(Exception):
    """Raised by a handler: the job failed and must not be retried (it is dead at once)."""


class ProtocolError(Exception):
    """Frames that are not a well-formed Claw message."""


def exit_code(outcome):
    """The exit code claw-client gives for the same outcome (exit_codes.client in protocol.yaml),
    for scripts that end like it: `outcome` is a job dict in a final state, or the WaitTimeout or
    ClawError a call raised."""
    codes = PROTOCOL["exit_codes"]
    if isinstance(outcome, WaitTimeout):
        return codes["WAIT_TIMEOUT"]
    if isinstance(outcome, Unreachable):
        return codes["UNREACHABLE"]
    if isinstance(outcome, ClawError):
        return codes["NOT_FOUND"] if outcome.status_name == "NOT_FOUND" else codes["ERROR"]
    by_state = {"succeeded": "OK", "dead": "JOB_DEAD", "cancelled": "JOB_CANCELLED"}
    if outcome.get("state") not in by_state:
        raise ValueError(f"job {outcome.get('id')} is {outcome.get('state')}, not finished")
    return codes[by_state[outcome["state"]]]


# --- Codec --------------------------------------------------------------------------------------


class Message:
    """One decoded message: its dialog ("client" or "worker"), command name, code and body."""

    def __init__(self, dialog, command, code, body):
        self.dialog = dialog
        self.command = command
        self.code = code
        self.body = body

    def __repr__(self):
        return f"Message({self.dialog!r}, {self.command!r}, {self.code}, {self.body!r})"


def encode(dialog, command, body):
    """The three frames of a message: header, command code byte, msgpack body."""
    codes = _CLIENT if dialog == "client" else _WORKER
    return [PROTOCOL["headers"][dialog], bytes([codes[command]]),
            msgpack.packb(body, use_bin_type=True)]


def decode(frames):
    """A Message from three frames; raises ProtocolError for anything else."""
    if len(frames) != 3:
        raise ProtocolError(f"expected 3 frames, got {len(frames)}")
    header, code, body = frames
    dialogs = {h: d for d, h in PROTOCOL["headers"].items()}
    if header not in dialogs:
        raise ProtocolError(f"unknown header {header!r}")
    if len(code) != 1:
        raise ProtocolError("the command frame is not one byte")
    dialog = dialogs[header]
    names = {c: n for n, c in (_CLIENT if dialog == "client" else _WORKER).items()}
    try:
        decoded = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise ProtocolError(f"bad msgpack body: {e}") from e
    if not isinstance(decoded, dict):
        raise ProtocolError("the body is not a map")
    # PROTOCOL.md section 2: a nil value counts as absent.
    decoded = {k: v for k, v in decoded.items() if isinstance(k, str) and v is not None}
    return Message(dialog, names.get(code[0], f"0x{code[0]:02x}"), code[0], decoded)


def _fields(*pairs):
    """A body map of the (name, value) pairs whose value is not None, in the given order."""
    return {name: value for name, value in pairs if value is not None}


def job_spec_body(type, payload=None, priority=None, timeout_ms=None, max_attempts=None,
                  backoff_ms=None, max_backoff_ms=None, run_at=None, delay_ms=None, after=None,
                  after_policy=None, hash_key=None, requires=None, zone=None, locality=None,
                  max_rtt_ms=None):
    """A job_spec object: the fields that describe a job in SUBMIT and GROUP_SUBMIT."""
    return _fields(("type", type), ("payload", payload), ("priority", priority),
                   ("timeout_ms", timeout_ms), ("max_attempts", max_attempts),
                   ("backoff_ms", backoff_ms), ("max_backoff_ms", max_backoff_ms),
                   ("run_at", run_at), ("delay_ms", delay_ms),
                   ("after", list(after) if after else None), ("after_policy", after_policy),
                   ("hash_key", hash_key), ("requires", dict(requires) if requires else None),
                   ("zone", zone), ("locality", locality), ("max_rtt_ms", max_rtt_ms))


def submit_body(rid, type, key=None, **spec):
    """SUBMIT: `spec` takes job_spec_body's arguments."""
    # The C++ codec writes the job spec's fields first and the key last; the golden files follow.
    body = {"rid": rid}
    body.update(job_spec_body(type, **spec))
    return _fields(*body.items(), ("key", key))


def group_submit_body(rid, jobs, follow_up=None, follow_up_policy=None, key=None):
    """GROUP_SUBMIT; `jobs` and `follow_up` are job_spec bodies (see job_spec_body)."""
    return _fields(("rid", rid), ("jobs", list(jobs)), ("follow_up", follow_up),
                   ("follow_up_policy", follow_up_policy), ("key", key))


def group_status_body(rid, id, members=True):
    # `members` defaults to true on the wire, so only false is written (as the C++ codec does).
    return _fields(("rid", rid), ("id", id), ("members", None if members else False))


def id_body(rid, id):
    """STATUS, CANCEL, RETRY and WATCH requests."""
    return {"rid": rid, "id": id}


def list_body(rid, state=None, type=None, limit=None):
    return _fields(("rid", rid), ("state", state), ("type", type), ("limit", limit))


def rid_body(rid):
    """CLUSTER and PING requests."""
    return {"rid": rid}


def ready_body(worker_id, types, capacity=None, labels=None, prefetch=None):
    """READY; a worker with prefetch must also send STARTED {id, lease} as each job starts and
    answer RECALL {id, lease} (PROTOCOL.md 7.5)."""
    return _fields(("worker_id", worker_id), ("types", list(types)), ("capacity", capacity),
                   ("labels", labels), ("prefetch", prefetch))


def progress_body(id, lease, percent=None, message=None, checkpoint=None):
    return _fields(("id", id), ("lease", lease), ("percent", percent), ("message", message),
                   ("checkpoint", checkpoint))


def done_body(id, lease, result=b""):
    return {"id": id, "lease": lease, "result": bytes(result)}


def fail_body(id, lease, error, permanent=False):
    return {"id": id, "lease": lease, "error": error, "permanent": bool(permanent)}


def disconnect_body(reason=None):
    return _fields(("reason", reason))


# --- Sockets ------------------------------------------------------------------------------------


def _endpoint_list(endpoints):
    if isinstance(endpoints, str):
        endpoints = endpoints.split(",")
    result = [e.strip() for e in endpoints if e.strip()]
    if not result:
        raise ValueError("no broker endpoint given")
    return result


def _dealer(context, endpoint):
    # PROTOCOL.md section 1: LINGER=0 and IMMEDIATE=1 for DEALERs.
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IMMEDIATE, 1)
    sock.connect(endpoint)
    return sock


_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}


def _millis(value):
    """Seconds (a number) or a duration string as claw-client takes it ("500ms", "30s", "5m",
    "1h", "2d", or "0") as whole milliseconds."""
    if value is None:
        return None
    if isinstance(value, str):
        if value == "0":
            return 0
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"bad duration {value!r}: expected a whole number with a unit, "
                             "like 500ms, 30s, 5m, 1h or 2d")
        return int(match.group(1)) * _UNIT_MS[match.group(2)]
    return int(round(float(value) * 1000))


def _priority(value):
    if value is None or isinstance(value, int):
        return value
    names = PROTOCOL["priorities"]["names"]
    if value in names:
        return names[value]
    return int(value)


def _unix_millis(value):
    """A point in time as Unix milliseconds: a datetime (naive means local) or Unix seconds."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return int(round(value.timestamp() * 1000))
    return int(round(float(value) * 1000))


def _job_spec(type, payload=b"", priority=None, timeout=None, max_attempts=None, backoff=None,
              max_backoff=None, run_at=None, delay=None, after=None, after_policy=None,
              hash_key=None, requires=None, zone=None, locality=None, max_rtt=None):
    """The job_spec body for the arguments of Client.submit (durations in seconds or strings)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if isinstance(after, str):
        after = [after]
    return job_spec_body(type, bytes(payload), _priority(priority), _millis(timeout),
                         max_attempts, _millis(backoff), _millis(max_backoff),
                         _unix_millis(run_at), _millis(delay), after, after_policy, hash_key,
                         requires, zone, locality, _millis(max_rtt))


# What Client.group_submit returns: the group id, the member ids in request order, the
# follow-up's id (None without one) and whether the key matched an earlier group.
SubmittedGroup = collections.namedtuple("SubmittedGroup", "id ids follow_up_id existing")


# --- Client -------------------------------------------------------------------------------------


class Client:
    """A DEALER client that fails over across a broker pair (PROTOCOL.md 4.1 and 11.7).

    `timeout` is the request timeout in seconds: a request unanswered for that long is resent,
    with the same rid (and a SUBMIT with the same idempotency key), to the next endpoint. A broker
    answering NOT_ACTIVE also moves the client on. After three rounds over every endpoint the
    request raises Unreachable.
    """

    def __init__(self, endpoints="tcp://127.0.0.1:5555", timeout=None, context=None):
        self.endpoints = _endpoint_list(endpoints)
        default = PROTOCOL["defaults"]["client_timeout_ms"] / 1000.0
        self.timeout = default if timeout is None else float(timeout)
        self._context = context or zmq.Context.instance()
        self._index = 0
        self._socket = None
        self._rid = 0
        self.last_submit_existing = None  # `existing` of the last SUBMIT's reply

    def close(self):
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def endpoint(self):
        """The endpoint in use now."""
        return self.endpoints[self._index]

    # Requests.

    def submit(self, type, payload=b"", priority=None, timeout=None, max_attempts=None,
               backoff=None, max_backoff=None, key=None, run_at=None, delay=None, after=None,
               after_policy=None, hash_key=None, requires=None, zone=None, locality=None,
               max_rtt=None):
        """Submits a job and returns its id once the broker has committed it.

        `priority` is 0-9 or a name (low, normal, high, critical); `timeout`, `backoff`,
        `max_backoff` and `delay` are seconds or duration strings ("500ms", "30s"); `run_at` is a
        datetime or Unix seconds. `after` lists the ids of jobs this one waits for (it is
        `waiting` until they end), under `after_policy`: "all_succeeded" (the broker's default:
        cancelled if one of them fails) or "all_settled" (runs whatever their outcome). Placement:
        `requires` is a dict of labels the worker must have ({"gpu": "true"}), `zone` and
        `locality` ("same-zone", "cross-zone" or "any") where it should run, `max_rtt` the longest
        round trip to the worker (seconds or a duration). Without a `key` (or with an empty one) a
        random one is made, so that a resend after a lost reply cannot create a second job.
        """
        spec = _job_spec(type, payload, priority, timeout, max_attempts, backoff, max_backoff,
                         run_at, delay, after, after_policy, hash_key, requires, zone, locality,
                         max_rtt)
        body = submit_body(self._next_rid(), key=key or self.new_key(), **spec)
        reply = self._request("SUBMIT", body)
        self.last_submit_existing = bool(reply.get("existing", False))
        return reply["id"]

    def submit_many(self, jobs, window=1000):
        """Submits many jobs, pipelined, and returns their ids in the order of `jobs`.

        `jobs` is an iterable (a generator will do) of dicts of submit's arguments (`type`,
        `payload`, ..., `key`). Up to `window` SUBMITs are unanswered at once, each with
        batch_ack, so that the broker answers the new jobs of one commit with one reply
        (PROTOCOL.md 4.3), where submit waits for a round trip and a commit per job. Every job
        gets an idempotency key (a random one when it has none), so that when no reply comes
        within `timeout`, or the broker answers NOT_ACTIVE, the unanswered SUBMITs are sent
        again, to the next endpoint, without making a job twice. `last_submit_existing` becomes a list: for each job, whether its key matched
        an earlier job (as it does for a job whose first reply was lost). A refusal raises
        ClawError, its message naming the job's index; the jobs before it may have been created.
        """
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        jobs = iter(jobs)
        ids = []
        existing = []

        def take_job():
            job = next(jobs, None)
            if job is None:
                return None
            job = dict(job)
            key = job.pop("key", None) or self.new_key()
            body = submit_body(self._next_rid(), key=key, **_job_spec(**job))
            body["batch_ack"] = True
            ids.append(None)
            existing.append(False)
            return len(ids) - 1, body

        resend = collections.deque()  # (index, body) to send again, in order
        sent = {}  # rid -> (index, body) of the SUBMITs sent and not answered
        pending = None  # the next (index, body) to send
        silent = 0  # endpoints in a row that answered nothing within the timeout
        not_active = 0  # NOT_ACTIVE answers in a row

        def move_on():
            # Everything unanswered goes again, in order, with its rid and key, to the next one.
            nonlocal pending, resend
            again = list(sent.values()) + list(resend) + ([pending] if pending else [])
            resend = collections.deque(sorted(again, key=lambda entry: entry[0]))
            sent.clear()
            pending = None
            self._next_endpoint()

        while True:
            while len(sent) < window:
                if pending is None:
                    pending = resend.popleft() if resend else take_job()
                if pending is None:
                    break
                # Wait for a connection only when nothing is in flight.
                if not self._send("SUBMIT", pending[1], 0.0 if sent else self.timeout):
                    break
                sent[pending[1]["rid"]] = pending
                pending = None
            if not sent and pending is None:
                break
            reply = self._receive_any("SUBMIT", sent, self.timeout) if sent else None
            if reply is None:
                silent += 1
                if silent >= _ROUNDS * len(self.endpoints):
                    raise Unreachable(f"no broker answered SUBMIT ({', '.join(self.endpoints)})")
                move_on()
                continue
            silent = 0
            if reply.get("status") == _STATUS_CODES["NOT_ACTIVE"]:
                not_active += 1
                self._after_not_active(not_active, reply, self.timeout)
                move_on()
                continue
            not_active = 0
            try:
                _raise_for_status(reply)
            except ClawError as error:
                raise ClawError(error.status_name, f"job {sent[reply['rid']][0]}: {error.message}",
                                error.status) from None
            rids = reply.get("rids") or [reply["rid"]]
            answered = reply.get("ids") or [reply["id"]]
            for rid, job_id in zip(rids, answered):
                entry = sent.pop(rid, None)
                if entry is not None:
                    ids[entry[0]] = job_id
                    existing[entry[0]] = bool(reply.get("existing", False))
        self.last_submit_existing = existing
        return ids

    def group_submit(self, jobs, follow_up=None, follow_up_policy=None, key=None):
        """Submits a group of jobs, and optionally its follow-up, in one transaction.

        Each of `jobs` and `follow_up` is a dict of submit's job arguments (`type`, `payload`,
        `priority`, `timeout`, ..., `after`, `after_policy`); in a member's `after`, "#N" names
        member N (0-based) of this group. The follow-up waits for every member and receives their
        outcomes as its inputs; `follow_up_policy` is "all_settled" (the broker's default: it
        runs whatever the outcomes) or "all_succeeded" (cancelled if a member fails). Members get
        consecutive ids. Without a `key` a random one is made, as for submit. Returns a
        SubmittedGroup (id, ids, follow_up_id, existing).
        """
        specs = [_job_spec(**job) for job in jobs]
        follow = _job_spec(**follow_up) if follow_up is not None else None
        body = group_submit_body(self._next_rid(), specs, follow, follow_up_policy,
                                 key if key is not None else self.new_key())
        reply = self._request("GROUP_SUBMIT", body)
        self.last_submit_existing = bool(reply.get("existing", False))
        return SubmittedGroup(reply["id"], list(reply.get("ids", [])), reply.get("follow_up_id"),
                              self.last_submit_existing)

    @staticmethod
    def new_key():
        return "py-" + uuid.uuid4().hex

    def status(self, id):
        """The job, with its payload."""
        return self._request("STATUS", id_body(self._next_rid(), id))["job"]

    def group_status(self, id, members=True):
        """The group: total, counts (members per state), settled, follow_up (a job dict, if it
        has one) and, unless `members` is False, members (job dicts with result or error)."""
        return self._request("GROUP_STATUS", group_status_body(self._next_rid(), id,
                                                               members))["group"]

    def list(self, state=None, type=None, limit=None):
        """Jobs, newest first, without payloads."""
        return self._request("LIST", list_body(self._next_rid(), state, type, limit))["jobs"]

    def cancel(self, id):
        return self._request("CANCEL", id_body(self._next_rid(), id))["job"]

    def retry(self, id):
        return self._request("RETRY", id_body(self._next_rid(), id))["job"]

    def cluster(self):
        return self._request("CLUSTER", rid_body(self._next_rid()))["cluster"]

    def ping(self):
        """{"role": ..., "epoch": ...} of the broker in use (PING never fails over on role)."""
        reply = self._request("PING", rid_body(self._next_rid()))
        return {"role": reply.get("role"), "epoch": reply.get("epoch")}

    def wait(self, id, timeout=None, on_progress=None):
        """Follows the job with WATCH until it is final and returns it (a job dict).

        `on_progress(percent, message)` is called each time the job's progress changes
        (either may be None). Raises WaitTimeout after `timeout` seconds (None: no limit),
        ClawError for a refusal such as NOT_FOUND, and Unreachable when no broker answers.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        body = id_body(self._next_rid(), id)
        last_job = None
        last_progress = None
        unanswered = 0  # WATCHes in a row that got no answer
        not_active = 0  # NOT_ACTIVE answers in a row

        def left(now):
            return float("inf") if deadline is None else deadline - now

        def send():
            # A WATCH that cannot even be sent counts as unanswered at once.
            if self._send("WATCH", body, min(self.timeout, max(0.0, left(time.monotonic())))):
                return time.monotonic()
            return time.monotonic() - self.timeout

        sent_at = send()
        answered = False  # the broker answered since the last send
        while True:
            now = time.monotonic()
            if left(now) <= 0:
                raise WaitTimeout(id, last_job)
            # Renew after WATCH_RENEW_SECONDS of silence; fail over when a WATCH (which the
            # broker answers at once) goes unanswered for the request timeout.
            silence = WATCH_RENEW_SECONDS if answered else self.timeout
            wake = min(sent_at + silence, now + left(now))
            reply = self._receive("WATCH", body["rid"], max(0.0, wake - now))
            if reply is None:
                now = time.monotonic()
                if now < sent_at + silence:
                    continue  # the deadline: checked at the top
                if not answered:
                    unanswered += 1
                    if unanswered >= _ROUNDS * len(self.endpoints):
                        raise Unreachable(f"no broker answered WATCH of {id}")
                    self._next_endpoint()
                sent_at, answered = send(), False
                continue
            unanswered = 0
            if reply.get("status") == _STATUS_CODES["NOT_ACTIVE"]:
                not_active += 1
                self._after_not_active(not_active, reply,
                                       min(self.timeout, max(0.0, left(time.monotonic()))))
                self._next_endpoint()
                sent_at, answered = send(), False
                continue
            _raise_for_status(reply)
            not_active = 0
            sent_at, answered = time.monotonic(), True
            job = reply["job"]
            last_job = job
            progress = job.get("progress") or {}
            current = (progress.get("percent"), progress.get("message"))
            if on_progress is not None and progress and current != last_progress:
                on_progress(*current)
            last_progress = current
            if job.get("state") in FINAL_STATES:
                return job

    def wait_group(self, id, timeout=None, on_progress=None, members=True, poll=1.0):
        """Waits until every member of the group has ended, then for its follow-up, if any.

        Polls GROUP_STATUS for counts only (from every 50 ms, doubling up to `poll` seconds) and
        calls `on_progress(settled, total, counts)` each time the counts change; then follows the
        follow-up with WATCH. Returns the final group dict (with its members unless `members` is
        False). Raises WaitTimeout after `timeout` seconds (None: no limit), with the last group
        snapshot as its `job`; the group goes on.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.05
        last_counts = None
        while True:
            group = self.group_status(id, members=False)
            if on_progress is not None and group["counts"] != last_counts:
                on_progress(group["settled"], group["total"], group["counts"])
            last_counts = group["counts"]
            if group["settled"] >= group["total"]:
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise WaitTimeout(id, group, "group")
            time.sleep(interval if left is None else min(interval, left))
            interval = min(poll, interval * 2)
        follow_up = group.get("follow_up")
        if follow_up is not None and follow_up.get("state") not in FINAL_STATES:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self.wait(follow_up["id"], left)
            except WaitTimeout:
                raise WaitTimeout(id, group, "group") from None
        return self.group_status(id, members=members)

    # Lazy Pirate (PROTOCOL.md 11.7).

    def _next_rid(self):
        self._rid += 1  # from 1: rid 0 answers a request the broker could not read
        return self._rid

    def _after_not_active(self, count, reply, pause):
        """After the `count`-th NOT_ACTIVE answer in a row: raises it once every endpoint has
        given it _ROUNDS times, and sleeps `pause` seconds after each round of them."""
        if count >= _ROUNDS * len(self.endpoints):
            raise ClawError("NOT_ACTIVE", reply.get("message", ""), reply["status"])
        if count % len(self.endpoints) == 0:
            time.sleep(pause)

    def _ensure_socket(self):
        if self._socket is None:
            self._socket = _dealer(self._context, self.endpoint)
        return self._socket

    def _next_endpoint(self):
        # A new socket, so that nothing queued for the silent broker is delivered later.
        self.close()
        self._index = (self._index + 1) % len(self.endpoints)

    def _send(self, command, body, wait_seconds):
        """Sends once the socket has a connection (IMMEDIATE); False if none came in time."""
        sock = self._ensure_socket()
        if not sock.poll(int(wait_seconds * 1000) + 1, zmq.POLLOUT):
            return False
        try:
            sock.send_multipart(encode("client", command, body), zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def _receive(self, command, rid, wait_seconds):
        """The reply to (command, rid) within wait_seconds, or None. Drops anything else."""
        return self._receive_any(command, (rid,), wait_seconds)

    def _receive_any(self, command, rids, wait_seconds):
        """A reply to `command` for one of `rids` (a batched reply: its first rid) within
        wait_seconds, or None. Drops anything else."""
        end = time.monotonic() + wait_seconds
        sock = self._ensure_socket()
        while True:
            left = end - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000) + 1):
                if time.monotonic() >= end:
                    return None
                continue
            try:
                message = decode(sock.recv_multipart())
            except ProtocolError:
                continue
            if (message.dialog == "client" and message.command == command and
                    message.body.get("rid") in rids):
                return message.body

    def _request(self, command, body):
        """Sends one request with failover and returns the 2xx reply body."""
        rounds = 0
        while rounds < _ROUNDS:
            all_not_active = True
            for _ in range(len(self.endpoints)):
                end = time.monotonic() + self.timeout
                reply = None
                if self._send(command, body, self.timeout):
                    reply = self._receive(command, body["rid"], end - time.monotonic())
                if reply is None:
                    all_not_active = False
                    self._next_endpoint()
                    continue
                if reply.get("status") == _STATUS_CODES["NOT_ACTIVE"]:
                    self._next_endpoint()
                    continue
                _raise_for_status(reply)
                return reply
            rounds += 1
            if all_not_active and rounds < _ROUNDS:
                time.sleep(self.timeout)
        raise Unreachable(f"no broker answered {command} ({', '.join(self.endpoints)})")


def _raise_for_status(reply):
    status = reply.get("status", 0)
    if 200 <= status < 300:
        return
    # PROTOCOL.md 4.2: an unknown status is a failure of its class.
    name = _STATUS_NAMES.get(status, f"{status // 100}xx")
    raise ClawError(name, reply.get("message", ""), status)


# --- Worker -------------------------------------------------------------------------------------


def _as_bytes(value):
    """A bin field's value; PROTOCOL.md section 2 lets a sender write str for bin."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


class Input:
    """One dependency's outcome, as a job with dependencies receives it (WorkerJob.inputs).

    Attributes: id, state ("succeeded", "dead", "cancelled", or "purged" when retention removed
    it meanwhile), result (bytes, when it succeeded, else None) and error (str, or None).
    """

    def __init__(self, body):
        self.id = body["id"]
        self.state = body["state"]
        self.result = _as_bytes(body["result"]) if body.get("result") is not None else None
        self.error = body.get("error")

    @property
    def succeeded(self):
        return self.state == "succeeded"

    def __repr__(self):
        return f"Input({self.id!r}, {self.state!r}, result={self.result!r}, error={self.error!r})"


class WorkerJob:
    """One attempt of one job, as handed to a Worker's handler.

    Attributes: id, type, payload (bytes), attempt (1 for the first), priority, timeout (seconds),
    checkpoint (bytes from an earlier attempt, or None), inputs (for a job with dependencies, such
    as a group's follow-up: one Input per dependency, in the order of its `after` list; else
    empty) and cancelled (True once the broker has cancelled the attempt, the attempt timed out
    or the worker lost its session; the handler should then return soon, its outcome is dropped).
    """

    def __init__(self, body, report):
        self.id = body["id"]
        self.type = body["type"]
        self.payload = _as_bytes(body["payload"])
        self.lease = body["lease"]
        self.attempt = body["attempt"]
        self.priority = body.get("priority")
        self.timeout = body["timeout_ms"] / 1000.0
        self.checkpoint = _as_bytes(body["checkpoint"]) if "checkpoint" in body else None
        self.inputs = [Input(i) for i in body.get("inputs", [])]
        self._report = report
        self._cancelled = threading.Event()

    @property
    def cancelled(self):
        return self._cancelled.is_set()

    def progress(self, percent=None, message=None, checkpoint=None):
        """Reports progress (percent 0-100, a message) and optionally a checkpoint."""
        if percent is not None:
            percent = max(0, min(100, int(percent)))
        if isinstance(checkpoint, str):
            checkpoint = checkpoint.encode("utf-8")
        self._report("PROGRESS", progress_body(self.id, self.lease, percent, message, checkpoint))

    def save_checkpoint(self, data):
        """Stores opaque state from which a later attempt may resume (as job.checkpoint)."""
        self.progress(checkpoint=data)


class _Session:
    """One connection's state: its socket, its timing and the jobs it holds, by lease."""

    def __init__(self, number, sock, endpoint, now):
        self.number = number
        self.socket = sock
        self.endpoint = endpoint
        self.welcomed = False
        self.heartbeat = PROTOCOL["defaults"]["heartbeat_ms"] / 1000.0
        self.liveness = PROTOCOL["defaults"]["liveness"]
        self.last_sent = now
        self.last_heard = now
        self.jobs = {}  # lease -> (WorkerJob, deadline)

    @property
    def dead_after(self):
        return self.heartbeat * self.liveness


class Worker:
    """Runs `handler(job)` for each job of `types` the broker hands it (PROTOCOL.md section 7).

    The handler returns bytes (or str, or None for empty) on success, raises PermanentFailure to
    make the job dead at once, or raises any other exception for a retryable failure. Handlers run
    in threads, up to `capacity` at once; the socket, heartbeats and replies stay in the thread
    that calls run(). A CANCEL, a job timeout or the loss of the session sets job.cancelled and
    answers the broker at once (FAIL); whatever the handler returns afterwards is dropped.
    """

    def __init__(self, endpoints, types, handler, capacity=1, worker_id=None, labels=None,
                 context=None, reconnect_min=0.1, reconnect_max=5.0, stop_grace=10.0):
        self.endpoints = _endpoint_list(endpoints)
        self.types = [types] if isinstance(types, str) else list(types)
        self.handler = handler
        self.capacity = int(capacity)
        self.worker_id = worker_id or _default_worker_id()
        self.labels = dict(labels) if labels else None
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.stop_grace = stop_grace
        self.log = logging.getLogger("claw.worker")
        self._context = context or zmq.Context.instance()
        self._outbox = queue.Queue()  # (session number, lease or None, command, body)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        self._index = -1
        self._sessions = 0
        self._session = None
        self._backoff = reconnect_min
        self.welcomes = 0  # WELCOMEs received, for tests and monitoring

    def run(self, stop_event=None):
        """Serves until stop_event is set, then fails what is left and says DISCONNECT."""
        stop_event = stop_event or threading.Event()
        try:
            while not stop_event.is_set():
                self._connect()
                self._serve(stop_event)
                if not stop_event.is_set():
                    self._end_session()
                    self._sleep_backoff(stop_event)
            if self._session is not None:
                self._drain_and_disconnect()
        finally:
            if self._session is not None:
                self._end_session()
            os.close(self._wake_read)
            os.close(self._wake_write)

    # Sessions.

    def _connect(self):
        self._index = (self._index + 1) % len(self.endpoints)
        endpoint = self.endpoints[self._index]
        self._sessions += 1
        now = time.monotonic()
        self._session = _Session(self._sessions, _dealer(self._context, endpoint), endpoint, now)
        # READY waits for the connection (at most the WELCOME timeout): with IMMEDIATE it would
        # otherwise be dropped when sent before the TCP handshake is done.
        self._send("READY", ready_body(self.worker_id, self.types, self.capacity, self.labels),
                   self._session.dead_after)
        self.log.info("worker %s: READY to %s", self.worker_id, endpoint)

    def _end_session(self):
        """Stops the jobs of the session (their outcomes are dropped) and closes its socket."""
        session = self._session
        for job, _ in session.jobs.values():
            job._cancelled.set()
        session.jobs.clear()
        session.socket.close(0)
        self._session = None

    def _sleep_backoff(self, stop_event):
        delay = self._backoff * (1.0 + random.random() * 0.5)  # jitter: up to +50%
        self._backoff = min(self.reconnect_max, self._backoff * 2)
        self.log.info("worker %s: reconnecting in %.2fs", self.worker_id, delay)
        stop_event.wait(delay)

    def _serve(self, stop_event):
        """Runs one session until it is over (returns) or stop_event is set."""
        session = self._session
        poller = zmq.Poller()
        poller.register(session.socket, zmq.POLLIN)
        poller.register(self._wake_read, zmq.POLLIN)
        while not stop_event.is_set():
            now = time.monotonic()
            if now - session.last_heard >= session.dead_after:
                self.log.warning("worker %s: %s silent for %.1fs", self.worker_id,
                                 session.endpoint, now - session.last_heard)
                return
            if session.welcomed and now - session.last_sent >= session.heartbeat:
                self._send("HEARTBEAT", {})
            self._expire_jobs(now)
            wake = min(session.last_heard + session.dead_after,
                       session.last_sent + session.heartbeat if session.welcomed else now + 0.1,
                       now + 0.1)  # at least ten looks at stop_event a second
            events = dict(poller.poll(max(1, int((wake - time.monotonic()) * 1000) + 1)))
            if self._wake_read in events:
                self._flush_outbox()
            if session.socket in events:
                while session.socket.poll(0):
                    if not self._handle(session.socket.recv_multipart()):
                        return

    def _handle(self, frames):
        """Handles one message from the broker; False when the session is over."""
        session = self._session
        session.last_heard = time.monotonic()
        try:
            message = decode(frames)
        except ProtocolError as e:
            self.log.warning("worker %s: dropped a bad message: %s", self.worker_id, e)
            return True
        if message.dialog != "worker":
            return True
        body = message.body
        if message.command == "WELCOME":
            session.welcomed = True
            session.heartbeat = body["heartbeat_ms"] / 1000.0
            session.liveness = body["liveness"]
            self._backoff = self.reconnect_min
            self.welcomes += 1
            self.log.info("worker %s: WELCOME from %s (epoch %s)", self.worker_id,
                          session.endpoint, body.get("epoch"))
        elif message.command == "JOB":
            self._start_job(body)
        elif message.command == "CANCEL":
            self._stop_job(body["lease"], body.get("reason") or "cancelled")
        elif message.command == "HEARTBEAT" and "check" in body:
            # A health check: answered at once, so that the broker can time the round trip.
            self._send("HEARTBEAT", {"check": body["check"]})
        elif message.command == "DISCONNECT":
            self.log.warning("worker %s: DISCONNECT from %s: %s", self.worker_id,
                             session.endpoint, body.get("reason", ""))
            return False
        return True

    # Jobs.

    def _start_job(self, body):
        session = self._session
        number = session.number
        job = WorkerJob(body, lambda command, b: self._report(number, None, command, b))
        session.jobs[job.lease] = (job, time.monotonic() + job.timeout)
        self.log.info("worker %s: job %s type %s attempt %s", self.worker_id, job.id, job.type,
                      job.attempt)
        thread = threading.Thread(target=self._run_handler, args=(number, job),
                                  name=f"claw-job-{job.id}", daemon=True)
        thread.start()

    def _run_handler(self, number, job):
        try:
            result = self.handler(job)
            if result is None:
                result = b""
            elif isinstance(result, str):
                result = result.encode("utf-8")
            outcome = ("DONE", done_body(job.id, job.lease, bytes(result)))
        except PermanentFailure as e:
            outcome = ("FAIL", fail_body(job.id, job.lease, str(e) or "permanent failure", True))
        except Exception as e:  # the handler's failure, whatever it is, fails the attempt
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            outcome = ("FAIL", fail_body(job.id, job.lease, error, False))
        self._report(number, job.lease, *outcome)

    def _report(self, number, lease, command, body):
        """From any thread: queue a message for the loop thread and wake it."""
        self._outbox.put((number, lease, command, body))
        os.write(self._wake_write, b"\0")

    def _flush_outbox(self):
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass
        session = self._session
        while True:
            try:
                number, lease, command, body = self._outbox.get_nowait()
            except queue.Empty:
                return
            if number != session.number:
                continue  # from a session that is over: the broker no longer counts that job
            if command == "PROGRESS":
                held = session.jobs.get(body["lease"])
                if held is None or held[0].cancelled:
                    continue
            else:
                if session.jobs.pop(lease, None) is None:
                    continue  # already answered (cancelled or timed out)
            self._send(command, body)

    def _stop_job(self, lease, reason):
        """Cancels one attempt and answers its lease at once, freeing the slot (7.5)."""
        held = self._session.jobs.pop(lease, None)
        if held is None:
            return
        job = held[0]
        job._cancelled.set()
        self.log.info("worker %s: job %s stopped: %s", self.worker_id, job.id, reason)
        self._send("FAIL", fail_body(job.id, lease, reason, False))

    def _expire_jobs(self, now):
        for lease, (job, deadline) in list(self._session.jobs.items()):
            if now >= deadline:
                self._stop_job(lease, f"timed out after {job.timeout:g}s")

    def _drain_and_disconnect(self):
        """Gives running handlers stop_grace seconds, fails the rest, then says DISCONNECT."""
        session = self._session
        end = time.monotonic() + self.stop_grace
        poller = zmq.Poller()
        poller.register(session.socket, zmq.POLLIN)
        poller.register(self._wake_read, zmq.POLLIN)
        while session.jobs and time.monotonic() < end:
            events = dict(poller.poll(100))
            if self._wake_read in events:
                self._flush_outbox()
            if session.socket in events:
                while session.socket.poll(0):
                    try:
                        message = decode(session.socket.recv_multipart())
                    except ProtocolError:
                        continue
                    if message.command == "JOB":  # no new work while stopping
                        body = message.body
                        self._send("FAIL", fail_body(body["id"], body["lease"], "worker stopping"))
                    elif message.command == "CANCEL":
                        self._stop_job(message.body["lease"], "cancelled")
                    elif message.command == "DISCONNECT":
                        return
            if time.monotonic() - session.last_sent >= session.heartbeat:
                self._send("HEARTBEAT", {})
        for lease in list(session.jobs):
            self._stop_job(lease, "worker stopping")
        self._send("DISCONNECT", disconnect_body("worker stopping"))
        self.log.info("worker %s: stopped", self.worker_id)

    def _send(self, command, body, wait_seconds=0.0):
        """Sends on the session's socket; a message with no connection to go to is dropped
        (IMMEDIATE), which the heartbeat rules then treat like any lost message."""
        session = self._session
        if wait_seconds > 0:
            session.socket.poll(int(wait_seconds * 1000) + 1, zmq.POLLOUT)
        try:
            session.socket.send_multipart(encode("worker", command, body), zmq.NOBLOCK)
        except zmq.Again:
            self.log.debug("worker %s: %s dropped, not connected to %s", self.worker_id, command,
                           session.endpoint)
        session.last_sent = time.monotonic()


def _default_worker_id():
    host = re.sub(r"[^A-Za-z0-9_.:-]", "-", _socket.gethostname())[:100]
    return f"py-{host}-{os.getpid()}"
