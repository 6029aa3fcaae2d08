#!/usr/bin/env python3
"""The baseline: replicanary's probe (write, await, inspect, read, clean up) written the straightforward way a
team writes it with boto3 — persistent clients, a polling loop with a fixed 1 s sleep.

    AWS_ACCESS_KEY_ID=333333333333 AWS_SECRET_ACCESS_KEY=test \\
    tests/lab/.venv/bin/python tests/perf/reference_probe.py --config CONFIG.yaml \\
        [--duration 60] [--once] [--poll-sleep 1.0] [--prefix replicanary-ref/]

It reads replicanary's own configuration file (same buckets, roles, interval,
replication_timeout, endpoint), and for every replication, in one thread each:
write a canary (PutObject as the source role), poll HeadObject on that version every
`--poll-sleep` seconds until COMPLETED/FAILED or replication_timeout, HeadObject the
replica as the destination role (status REPLICA, SSE-KMS, expected key), GetObject it
and compare its SHA-256, then delete both versions. First probes are spread with random
jitter over min(interval, 30 s), later ones follow every interval: replicanary's schedule.

`--once` is the cron-job / Lambda form: one probe of each replication, then exit.

Output (stdout, one JSON object per line):
  {"event": "probe", "replication", "destination", "outcome", "latency", "polls", "requests", ...}
  {"event": "status", "probes", "cpu_seconds", "maxrss_kib", "requests", "t"}   on SIGUSR1 and at exit
CPU is resource.getrusage(RUSAGE_SELF): this process only. It stops by itself after
--duration seconds (default 600) or on SIGTERM/SIGINT, letting in-flight probes finish.

Kept in the repository as the baseline of tests/perf/bench.py; not part of CI.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import random
import resource
import signal
import sys
import threading
import time

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

MARKER = {"replicanary": "canary-v1"}
_print_lock = threading.Lock()
_state = {"probes": 0, "requests": 0}
_state_lock = threading.Lock()


def emit(obj: dict) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def status() -> dict:
    with _state_lock:
        probes, requests = _state["probes"], _state["requests"]
    return {"event": "status", "probes": probes, "requests": requests, "cpu_seconds": cpu_seconds(),
            "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "t": time.time()}


def duration(text) -> float:
    text = str(text).strip()
    for unit, factor in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if text.endswith(unit) and text[:-len(unit)].replace(".", "", 1).isdigit():
            return float(text[:-len(unit)]) * factor
    return float(text)


class Side:
    """An S3 client acting as a role, re-assuming it shortly before the session expires."""

    def __init__(self, session, sts, endpoint: str | None, region: str, role_arn: str | None, cfg: Config):
        self.session, self.sts, self.endpoint, self.region, self.role_arn, self.cfg = \
            session, sts, endpoint, region, role_arn, cfg
        self.expires = 0.0
        self.client = None
        self.lock = threading.Lock()

    def s3(self):
        with self.lock:
            if self.client is None or (self.role_arn and time.time() > self.expires - 300):
                kwargs = {}
                if self.role_arn:
                    creds = self.sts.assume_role(RoleArn=self.role_arn, RoleSessionName="reference-probe")
                    count(1)
                    c = creds["Credentials"]
                    kwargs = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                              "aws_session_token": c["SessionToken"]}
                    self.expires = c["Expiration"].timestamp()
                self.client = self.session.client("s3", region_name=self.region, endpoint_url=self.endpoint,
                                                  config=self.cfg, **kwargs)
            return self.client


def count(n: int) -> None:
    with _state_lock:
        _state["requests"] += n


class Replication:
    def __init__(self, spec: dict, defaults: dict, session, sts, endpoint, cfg: Config, prefix: str, poll_sleep: float):
        self.name = spec["name"]
        merged = {**defaults, **{k: v for k, v in spec.items() if k not in ("source", "destinations", "name")}}
        self.interval = duration(merged.get("interval", "5m"))
        self.timeout = duration(merged.get("replication_timeout", "15m"))
        self.prefix = prefix + self.name + "/"
        self.poll_sleep = poll_sleep
        src = spec["source"]
        self.source_bucket = src["bucket"]
        self.source_kms = src.get("sse_kms_key_id")
        self.source = Side(session, sts, endpoint, src["region"], src.get("role_arn"), cfg)
        self.destinations = []
        for d in spec["destinations"]:
            self.destinations.append({
                "name": d.get("name", d["bucket"]), "bucket": d["bucket"], "expected": d["expected_kms_key_arn"],
                "side": Side(session, sts, endpoint, d["region"], d.get("role_arn"), cfg)})

    def probe(self) -> list[dict]:
        requests = 0
        src = self.source.s3()
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        key = f"{self.prefix}{stamp}-{random.getrandbits(64):016x}"
        body = f"reference canary\nkey: {key}\n".encode()
        digest = hashlib.sha256(body).hexdigest()
        put_args = {"Bucket": self.source_bucket, "Key": key, "Body": body,
                    "Metadata": {**MARKER, "replicanary-sha256": digest}}
        if self.source_kms:
            put_args.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.source_kms)
        try:
            requests += 1
            version = src.put_object(**put_args).get("VersionId")
        except ClientError as e:
            return self._all("source_write_failed", requests, error=e.response["Error"].get("Code"))
        written = time.monotonic()
        if not version:
            return self._all("source_write_failed", requests, error="not versioned")

        # Await replication: HeadObject every poll_sleep seconds.
        status, latency, polls = None, None, 0
        while True:
            requests += 1
            polls += 1
            head = src.head_object(Bucket=self.source_bucket, Key=key, VersionId=version)
            status = head.get("ReplicationStatus")
            if status in ("COMPLETED", "COMPLETE"):
                latency = time.monotonic() - written
                break
            if status == "FAILED" or status is None and polls >= 2:
                break
            if time.monotonic() - written >= self.timeout:
                break
            time.sleep(self.poll_sleep)

        results = []
        for d in self.destinations:
            dst = d["side"].s3()
            outcome = {"FAILED": "replication_failed", None: "not_replicated"}.get(status, "replication_timeout")
            replica_seen = False
            if latency is not None:
                try:
                    requests += 1
                    h = dst.head_object(Bucket=d["bucket"], Key=key, VersionId=version)
                    replica_seen = True
                    if h.get("ReplicationStatus") != "REPLICA":
                        outcome = "replica_missing"
                    else:
                        requests += 1
                        got = dst.get_object(Bucket=d["bucket"], Key=key, VersionId=version)["Body"].read()
                        sse, kms = h.get("ServerSideEncryption"), h.get("SSEKMSKeyId") or ""
                        if hashlib.sha256(got).hexdigest() != digest:
                            outcome = "content_mismatch"
                        elif sse not in ("aws:kms", "aws:kms:dsse"):
                            outcome = "not_kms_encrypted"
                        elif kms != d["expected"] and not d["expected"].endswith("/" + kms):
                            outcome = "wrong_kms_key"
                        else:
                            outcome = "ok"
                except ClientError as e:
                    code = e.response["Error"].get("Code", "")
                    outcome = "replica_missing" if code in ("404", "NoSuchKey", "NoSuchVersion") else \
                        "undecryptable" if code in ("AccessDenied", "403") or code.startswith("KMS.") else "error"
                if replica_seen:
                    try:
                        requests += 1
                        dst.delete_object(Bucket=d["bucket"], Key=key, VersionId=version)
                    except ClientError:
                        pass
            results.append({"destination": d["name"], "outcome": outcome})
        try:
            requests += 1
            src.delete_object(Bucket=self.source_bucket, Key=key, VersionId=version)
        except ClientError:
            pass
        for r in results:
            r.update(replication=self.name, latency=latency, polls=polls, requests=requests, status=status)
        return results

    def _all(self, outcome: str, requests: int, error=None) -> list[dict]:
        return [{"replication": self.name, "destination": d["name"], "outcome": outcome, "latency": None,
                 "polls": 0, "requests": requests, "error": error} for d in self.destinations]

    def run_once(self) -> None:
        started = time.monotonic()
        try:
            results = self.probe()
        except Exception as e:  # noqa: BLE001 - a transient fault: verdict `error`, keep going
            results = self._all("error", 0, error=type(e).__name__)
        took = time.monotonic() - started
        requests = results[0]["requests"] if results else 0
        with _state_lock:
            _state["probes"] += 1
            _state["requests"] += requests
        for r in results:
            emit({"event": "probe", **r, "seconds": round(took, 4), "t": time.time()})


def loop(rep: Replication, stop: threading.Event) -> None:
    slot = time.monotonic() + random.random() * min(rep.interval, 30.0)
    while not stop.wait(max(0.0, slot - time.monotonic())):
        rep.run_once()
        now = time.monotonic()
        while slot <= now:
            slot += rep.interval


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="a replicanary configuration file")
    p.add_argument("--duration", type=float, default=600.0, help="stop after this many seconds (default 600)")
    p.add_argument("--once", action="store_true", help="one probe of each replication, then exit (cron job)")
    p.add_argument("--poll-sleep", type=float, default=1.0, help="seconds between HeadObject polls (default 1)")
    p.add_argument("--prefix", help="canary key prefix (default: the config's canary_prefix)")
    args = p.parse_args(argv)

    with open(args.config) as fh:
        config = yaml.safe_load(fh)
    defaults = config.get("defaults") or {}
    aws = config.get("aws") or {}
    endpoint = aws.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL")
    cfg = Config(s3={"addressing_style": "path" if aws.get("force_path_style") else "auto"})
    session = boto3.session.Session()
    region = config["replications"][0]["source"]["region"]
    sts = session.client("sts", region_name=region, endpoint_url=endpoint)
    prefix = args.prefix or defaults.get("canary_prefix", "replicanary/")
    reps = [Replication(r, defaults, session, sts, endpoint, cfg, prefix, args.poll_sleep)
            for r in config["replications"]]

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: emit(status()))
    emit({**status(), "event": "started"})
    if args.once:
        threads = [threading.Thread(target=r.run_once) for r in reps]
    else:
        threads = [threading.Thread(target=loop, args=(r, stop), daemon=True) for r in reps]
    for t in threads:
        t.start()
    if not args.once:
        stop.wait(args.duration)
        stop.set()
    for t in threads:
        t.join()
    emit(status())


if __name__ == "__main__":
    main()
