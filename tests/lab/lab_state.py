"""The lab's mutable knobs and counters, shared by the admin API and the plugin.

One `LabState` lives in the lab server process. It holds:

* the replication timing (`replication_delay`, per-object `delays`) and the
  forced failures (`fail`), matched as fnmatch globs on ``"bucket/key"`` of the
  SOURCE object;
* the fault injection settings (`faults`);
* `sts_session_seconds`: when > 0, AssumeRole sessions last at most this long (the
  plugin caps `DurationSeconds`), so credential refresh can be tested in seconds;
* per-DESTINATION knobs, matched as fnmatch globs on the destination bucket name:
  `destination_delays` (replication to that bucket takes this long instead of the
  object's delay), `destination_fail` (replication to that bucket fails),
  `lose_replicas` (replication to that bucket "succeeds" but no replica is kept: a
  replica deleted after COMPLETED). What the source status does meanwhile follows the
  S3 API Reference (HeadObject, x-amz-replication-status), except that FAILED showing
  while another destination is pending is the lab's unverified choice;
* `object_lock_day_seconds`: how many seconds an Object Lock retention "day" lasts
  (86400 = real time), so that tests can wait for retention to pass;
(tests/lab/README.md, "AWS behaviours modelled for the probe's verdicts", has the sources.)
* request statistics.

Everything is guarded by one lock: requests are served on the event loop, but
ministack runs some work on worker threads.
"""

from __future__ import annotations

import copy
import fnmatch
import random
import threading
import time
from collections import defaultdict

DEFAULT_FAULTS = {
    "error_rate": 0.0,      # probability that a request gets an injected error
    "status": 503,          # HTTP status of the injected error (503, 500, 400/429 = throttling)
    "services": ["s3"],     # services the faults apply to: s3, sts, kms, iam
    "operations": [],       # optional: only these operations (e.g. ["GetObject"]); empty = all
    "latency_ms": 0,        # added latency
    "latency_rate": 1.0,    # probability that a request gets the latency
}


DEFAULT_TAMPER = {
    "operations": [],       # operations whose successful answers are tampered with; empty = none
    "buckets": [],          # optional fnmatch globs on the bucket; empty = every bucket
    "body_bytes": None,     # replace the body by this many bytes (a hostile, oversized body)
    "headers": {},          # set these response headers (e.g. a malformed or huge value)
}


def _tamper(value, current: dict) -> dict:
    if not isinstance(value, dict):
        raise ConfigError("tamper: expected an object")
    unknown = set(value) - set(DEFAULT_TAMPER)
    if unknown:
        raise ConfigError(f"tamper: unknown keys {sorted(unknown)}")
    out = copy.deepcopy(current)
    for key, item in value.items():
        if key in ("operations", "buckets"):
            if not isinstance(item, list) or not all(isinstance(s, str) for s in item):
                raise ConfigError(f"tamper.{key}: expected a list of strings")
            out[key] = list(item)
        elif key == "body_bytes":
            if item is not None and (isinstance(item, bool) or not isinstance(item, int) or item < 0):
                raise ConfigError("tamper.body_bytes: expected a non-negative integer or null")
            out[key] = item
        else:
            if not isinstance(item, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in item.items()):
                raise ConfigError("tamper.headers: expected an object of strings")
            out[key] = {k.lower(): v for k, v in item.items()}
    return out


DAY_SECONDS = 86400.0

CONFIG_KEYS = {"replication_delay", "delays", "fail", "faults", "sts_session_seconds", "tamper",
               "destination_delays", "destination_fail", "lose_replicas", "object_lock_day_seconds"}


class ConfigError(ValueError):
    """A /_lab/config body or CLI flag that does not make sense."""


def _patterns(value, field: str, with_seconds: bool, what: str = "bucket/key-glob") -> list[dict]:
    if not isinstance(value, list):
        raise ConfigError(f"{field}: expected a list")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {"pattern": item}
        if not isinstance(item, dict) or not isinstance(item.get("pattern"), str):
            raise ConfigError(f"{field}[{i}]: expected {{\"pattern\": \"{what}\"...}}")
        entry = {"pattern": item["pattern"]}
        if with_seconds:
            entry["seconds"] = _non_negative(item.get("seconds"), f"{field}[{i}].seconds")
        out.append(entry)
    return out


def _non_negative(value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{field}: expected a non-negative number")
    return float(value)


def _positive(value, field: str) -> float:
    value = _non_negative(value, field)
    if value <= 0:
        raise ConfigError(f"{field}: expected a positive number")
    return value


def _rate(value, field: str) -> float:
    value = _non_negative(value, field)
    if value > 1:
        raise ConfigError(f"{field}: expected a probability between 0 and 1")
    return value


def _faults(value, current: dict) -> dict:
    if not isinstance(value, dict):
        raise ConfigError("faults: expected an object")
    unknown = set(value) - set(DEFAULT_FAULTS)
    if unknown:
        raise ConfigError(f"faults: unknown keys {sorted(unknown)}")
    out = dict(current)
    for key, item in value.items():
        if key in ("error_rate", "latency_rate"):
            out[key] = _rate(item, f"faults.{key}")
        elif key == "latency_ms":
            out[key] = _non_negative(item, "faults.latency_ms")
        elif key == "status":
            if isinstance(item, bool) or not isinstance(item, int) or not 400 <= item <= 599:
                raise ConfigError("faults.status: expected an HTTP error status (400-599)")
            out[key] = item
        else:  # services, operations
            if not isinstance(item, list) or not all(isinstance(s, str) for s in item):
                raise ConfigError(f"faults.{key}: expected a list of strings")
            out[key] = [s.lower() for s in item] if key == "services" else list(item)
    return out


class LabState:
    """Thread-safe lab configuration and statistics."""

    def __init__(self, replication_delay: float = 1.0):
        self._lock = threading.Lock()
        self.replication_delay = float(replication_delay)
        self.delays: list[dict] = []
        self.fail: list[dict] = []
        self.faults: dict = dict(DEFAULT_FAULTS)
        self.sts_session_seconds = 0.0
        self.destination_delays: list[dict] = []
        self.destination_fail: list[dict] = []
        self.lose_replicas: list[dict] = []
        self.object_lock_day_seconds = DAY_SECONDS
        self.tamper: dict = copy.deepcopy(DEFAULT_TAMPER)
        self.pending_replications = 0
        self._rng = random.Random()
        self.reset_stats()

    # ---- configuration -------------------------------------------------

    def config(self) -> dict:
        with self._lock:
            return {
                "replication_delay": self.replication_delay,
                "delays": copy.deepcopy(self.delays),
                "fail": copy.deepcopy(self.fail),
                "faults": copy.deepcopy(self.faults),
                "sts_session_seconds": self.sts_session_seconds,
                "destination_delays": copy.deepcopy(self.destination_delays),
                "destination_fail": copy.deepcopy(self.destination_fail),
                "lose_replicas": copy.deepcopy(self.lose_replicas),
                "object_lock_day_seconds": self.object_lock_day_seconds,
                "tamper": copy.deepcopy(self.tamper),
            }

    def update(self, body: dict) -> dict:
        """Apply a subset of the config; validates everything before changing anything."""
        if not isinstance(body, dict):
            raise ConfigError("expected a JSON object")
        unknown = set(body) - CONFIG_KEYS
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}")
        # The per-destination lists and the Object Lock day: validated first, applied with the rest.
        dest = {}
        if "destination_delays" in body:
            dest["destination_delays"] = _patterns(body["destination_delays"], "destination_delays", True,
                                                   "destination-bucket-glob")
        for name in ("destination_fail", "lose_replicas"):
            if name in body:
                dest[name] = _patterns(body[name], name, False, "destination-bucket-glob")
        if "object_lock_day_seconds" in body:
            dest["object_lock_day_seconds"] = _positive(body["object_lock_day_seconds"], "object_lock_day_seconds")
        with self._lock:
            delay = self.replication_delay
            delays, fail, faults = self.delays, self.fail, self.faults
            session = self.sts_session_seconds
            tamper = self.tamper
            if "tamper" in body:
                tamper = _tamper(body["tamper"], self.tamper)
            if "sts_session_seconds" in body:
                session = _non_negative(body["sts_session_seconds"], "sts_session_seconds")
            if "replication_delay" in body:
                delay = _non_negative(body["replication_delay"], "replication_delay")
            if "delays" in body:
                delays = _patterns(body["delays"], "delays", with_seconds=True)
            if "fail" in body:
                fail = _patterns(body["fail"], "fail", with_seconds=False)
            if "faults" in body:
                faults = _faults(body["faults"], self.faults)
            self.replication_delay, self.delays, self.fail, self.faults = delay, delays, fail, faults
            self.sts_session_seconds = session
            self.tamper = tamper
            for name, value in dest.items():
                setattr(self, name, value)
        return self.config()

    def add_delay(self, pattern: str, seconds: float) -> None:
        self.update({"delays": self.config()["delays"] + [{"pattern": pattern, "seconds": seconds}]})

    def add_fail(self, pattern: str) -> None:
        self.update({"fail": self.config()["fail"] + [{"pattern": pattern}]})

    def reset_faults(self) -> dict:
        with self._lock:
            self.faults = dict(DEFAULT_FAULTS)
            self.tamper = copy.deepcopy(DEFAULT_TAMPER)
        return self.config()

    # ---- questions the plugin and the middleware ask -------------------

    def delay_for(self, object_path: str) -> float:
        """Replication delay for a source object ``bucket/key``: first matching pattern wins."""
        with self._lock:
            for entry in self.delays:
                if fnmatch.fnmatchcase(object_path, entry["pattern"]):
                    return entry["seconds"]
            return self.replication_delay

    def forced_failure(self, object_path: str) -> bool:
        with self._lock:
            return any(fnmatch.fnmatchcase(object_path, e["pattern"]) for e in self.fail)

    def destination_delay(self, dest_bucket: str) -> float | None:
        """The replication delay to one destination bucket (first match), or None: the object's delay."""
        with self._lock:
            for entry in self.destination_delays:
                if fnmatch.fnmatchcase(dest_bucket, entry["pattern"]):
                    return entry["seconds"]
            return None

    def destination_failure(self, dest_bucket: str) -> bool:
        with self._lock:
            return any(fnmatch.fnmatchcase(dest_bucket, e["pattern"]) for e in self.destination_fail)

    def replica_lost(self, dest_bucket: str) -> bool:
        with self._lock:
            return any(fnmatch.fnmatchcase(dest_bucket, e["pattern"]) for e in self.lose_replicas)

    def lock_day_seconds(self) -> float:
        with self._lock:
            return self.object_lock_day_seconds

    def draw_fault(self, service: str, operation: str) -> tuple[float, int | None]:
        """(latency seconds, error status or None) for one request."""
        with self._lock:
            f = self.faults
            if service not in f["services"]:
                return 0.0, None
            if f["operations"] and operation not in f["operations"]:
                return 0.0, None
            latency = 0.0
            if f["latency_ms"] and self._rng.random() < f["latency_rate"]:
                latency = f["latency_ms"] / 1000.0
            status = f["status"] if f["error_rate"] and self._rng.random() < f["error_rate"] else None
            return latency, status

    def tamper_for(self, service: str, operation: str, path: str) -> dict | None:
        """The tampering for a request's answer, or None."""
        with self._lock:
            t = self.tamper
            if service != "s3" or operation not in t["operations"]:
                return None
            bucket = path.lstrip("/").split("/", 1)[0]
            if t["buckets"] and not any(fnmatch.fnmatchcase(bucket, g) for g in t["buckets"]):
                return None
            return copy.deepcopy(t)

    def count_tampered(self, body_bytes_sent: int) -> None:
        with self._lock:
            self._tampered += 1
            self._tamper_bytes += body_bytes_sent

    # ---- statistics ----------------------------------------------------

    def reset_stats(self) -> None:
        with self._lock:
            self._since = time.time()
            self._total = 0
            self._by_service: dict = defaultdict(lambda: defaultdict(int))
            self._by_account: dict = defaultdict(lambda: defaultdict(int))
            self._faults: dict = defaultdict(int)
            self._tampered = 0
            self._tamper_bytes = 0

    def count(self, service: str, operation: str, account: str) -> None:
        with self._lock:
            self._total += 1
            self._by_service[service][operation] += 1
            self._by_account[account or "anonymous"][f"{service}:{operation}"] += 1

    def count_fault(self, service: str, operation: str) -> None:
        with self._lock:
            self._faults[f"{service}:{operation}"] += 1

    def replication_started(self) -> None:
        with self._lock:
            self.pending_replications += 1

    def replication_finished(self) -> None:
        with self._lock:
            self.pending_replications -= 1

    def stats(self) -> dict:
        with self._lock:
            return {
                "since": self._since,
                "total": self._total,
                "by_service": {s: dict(ops) for s, ops in self._by_service.items()},
                "by_account": {a: dict(ops) for a, ops in self._by_account.items()},
                "faults_injected": dict(self._faults),
                "pending_replications": self.pending_replications,
                "tampered_responses": self._tampered,
                "tamper_body_bytes_sent": self._tamper_bytes,
            }
