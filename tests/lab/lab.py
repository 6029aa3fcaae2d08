#!/usr/bin/env python3
"""Helpers to run the lab from Python (tests, demos), and a one-shot CLI.

    tests/lab/.venv/bin/python tests/lab/lab.py up --out /tmp/replicanary-lab.yaml [--port 4566]
        starts labserver.py, provisions every scenario, writes the replicanary
        configuration and serves until Ctrl-C / SIGTERM (the lab dies with it).

From Python:

    with LabProcess.start() as lab:                 # free loopback port, --exit-with-parent
        world = provision.provision(lab.endpoint)
        src = s3_as(lab.endpoint, assume(lab.endpoint, world.scenarios["healthy"].source_role_arn))
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from botocore.config import Config

import provision

LAB_DIR = os.path.dirname(os.path.abspath(__file__))
LABSERVER = os.path.join(LAB_DIR, "labserver.py")
BASE_ACCESS_KEY = provision.MONITOR_ACCOUNT  # replicanary's base credentials: the monitoring account's root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabProcess:
    """A labserver.py child process bound to 127.0.0.1, killed by `stop()` or with this process."""

    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc = proc
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls, port: int | None = None, args: list[str] | None = None, timeout: float = 20.0,
              log=None) -> "LabProcess":
        port = port or free_port()
        cmd = [sys.executable, LABSERVER, "--port", str(port), "--exit-with-parent", str(os.getpid()),
               *(args or [])]
        proc = subprocess.Popen(cmd, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)
        lab = cls(proc, port)
        try:
            lab.wait_ready(timeout)
        except BaseException:
            lab.stop()
            raise
        return lab

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"labserver exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.endpoint + "/_ministack/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"labserver not healthy on {self.endpoint} after {timeout}s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Terminate exactly this process (then kill it if it lingers)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        return provision.lab_admin(self.endpoint, method, path, body)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------
# Clients as replicanary would use them
# ---------------------------------------------------------------------------


def assume(endpoint: str, role_arn: str, base_access_key: str = BASE_ACCESS_KEY, session: str = "lab") -> dict:
    """Temporary credentials of `role_arn`, assumed with the base (monitoring root) credentials."""
    sts = provision.client("sts", endpoint, base_access_key)
    return sts.assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]


def client_as(service: str, endpoint: str, creds: dict, retries: int | None = None):
    config = Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=30,
                    retries={"max_attempts": retries, "mode": "standard"} if retries else None)
    return provision.client(service, endpoint, creds["AccessKeyId"], creds["SecretAccessKey"],
                            creds["SessionToken"], config=config)


def s3_as(endpoint: str, creds: dict, retries: int | None = None):
    """An S3 client with assumed credentials; retries=1 disables retrying."""
    return client_as("s3", endpoint, creds, retries)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def _up(args: argparse.Namespace) -> None:
    lab = LabProcess.start(args.port, ["--replication-delay", str(args.replication_delay),
                                       "--object-lock-day-seconds", str(args.object_lock_day_seconds)] +
                           (["--verbose"] if args.verbose else []), log=None if not args.verbose else sys.stderr)
    try:
        provision.main(["--endpoint", lab.endpoint, "--out", args.out, "--scenarios", args.scenarios,
                        *([f"--suffix={args.suffix}"] if args.suffix else [])])
        print(f"lab: serving on {lab.endpoint}; base credentials AWS_ACCESS_KEY_ID={BASE_ACCESS_KEY} "
              f"AWS_SECRET_ACCESS_KEY=test; Ctrl-C to stop", file=sys.stderr)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        while not stop and lab.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Run the replicanary lab.")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the lab, provision all scenarios, serve until interrupted")
    up.add_argument("--port", type=int, default=4566)
    up.add_argument("--out", required=True, help="replicanary configuration to write")
    up.add_argument("--scenarios", default=",".join(provision.SCENARIOS))
    up.add_argument("--suffix")
    up.add_argument("--replication-delay", type=float, default=1.0)
    up.add_argument("--object-lock-day-seconds", type=float, default=86400.0,
                    help="seconds an Object Lock retention day lasts in the lab (the locked scenario: 1 day)")
    up.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    _up(args)


if __name__ == "__main__":
    main()
