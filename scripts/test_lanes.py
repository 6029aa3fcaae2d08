#!/usr/bin/env python3
"""Runs the Rust test binaries `cargo test --all-targets --no-run` built, in parallel lanes.

Every test binary is independent: each end-to-end test starts its own lab and daemons on
free loopback ports, in its own temporary directory. So they need not run one after
another, as `cargo test` runs them: this runs them in LANES lanes (a lane takes the next
binary as soon as its previous one ended, the slowest first), then the few that must run
alone (ALONE), each from the repository root as `cargo test` would, with the arguments
given for the test harness.

Each binary's output is kept and printed whole when it ends, every line prefixed with the
binary's name (`[e2e_reload] ...`), so a failure says which binary it came from. At the
end: each binary's duration and result, the total, and exit status 1 if any failed.

    cargo test --all-targets --no-run --message-format=json-render-diagnostics > built.json
    python3 scripts/test_lanes.py --lanes 3 built.json [-- HARNESS ARGS]

LANES=1 is the sequential run (what `cargo test --all-targets` does, without stopping at
the first failure).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The slowest binaries, measured (scripts/test.sh, sequential, on two shared cores): started
# first so that no lane ends with a long binary alone. Any binary not named here starts
# after them, in name order; a stale list costs time, never a test.
SLOWEST_FIRST = [
    "e2e_reliability",
    "e2e_object_lock",
    "e2e_discovery",
    "e2e_daemon",
    "e2e_scenarios",
    "e2e_deploy_ha",
    "e2e_findings",
    "replicanary (bin)",
    "e2e_web_security",
    "e2e_coverage",
    "e2e_deploy_iam",
    "e2e_reload",
    "e2e_scan",
    "e2e_status_page",
    "e2e_scan_daemon",
]


# Binaries that run alone, after the lanes: their tests bound wall-clock times (a
# discovery pass within one interval, validating an 8 MiB file within 10 s, every `check`
# verdict of the IAM necessity table exact, so no GetObject may time out), which a machine
# busy with other binaries can miss. Seen beside two other lanes on two cores shared with
# other work: e2e_discovery's "probed within one discovery interval" failed at a load
# average of 14, cli_hostile_input's 8 MiB scalar took 11.2 s at 17, e2e_deploy_iam's
# healthy baseline was `error` (GetObject timeout) at about 12; all three pass alone.
ALONE = ["cli_hostile_input", "e2e_deploy_iam", "e2e_discovery"]


@dataclass
class Binary:
    name: str  # the target's name, with its kind for unit tests: `replicanary (lib)`
    path: str
    seconds: float = 0.0
    code: int | None = None


def built_binaries(messages: Path) -> list[Binary]:
    """The test executables among cargo's JSON messages (one target may appear once)."""
    found: dict[str, Binary] = {}
    for line in messages.read_text().splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue  # cargo's own progress lines
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        if not msg.get("profile", {}).get("test"):
            continue  # the binary itself (`replicanary`), not a test harness
        target = msg["target"]
        kind = target["kind"][0]
        name = target["name"] if kind == "test" else f"{target['name']} ({kind})"
        found[name] = Binary(name, msg["executable"])
    return list(found.values())


def order(binaries: list[Binary]) -> list[Binary]:
    def rank(b: Binary) -> tuple[int, str]:
        if b.name in SLOWEST_FIRST:
            return (SLOWEST_FIRST.index(b.name), b.name)
        return (len(SLOWEST_FIRST), b.name)

    return sorted(binaries, key=rank)


def run_one(b: Binary, harness_args: list[str], print_lock: threading.Lock) -> None:
    with print_lock:
        print(f"[{b.name}] started", flush=True)
    with tempfile.TemporaryFile(mode="w+b") as out:
        start = time.monotonic()
        b.code = subprocess.call(
            [b.path, *harness_args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        b.seconds = time.monotonic() - start
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    verdict = "ok" if b.code == 0 else f"FAILED (exit {b.code})"
    prefix = f"[{b.name}] "
    with print_lock:
        sys.stdout.write("".join(prefix + line + "\n" for line in text.splitlines()))
        sys.stdout.write(f"{prefix}--- {verdict} in {b.seconds:.1f} s\n")
        sys.stdout.flush()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("messages", type=Path, help="cargo's JSON messages (--message-format=json)")
    p.add_argument("--lanes", type=int, default=int(os.environ.get("TEST_LANES", "2")))
    p.add_argument("harness_args", nargs="*", help="arguments for every test harness")
    args = p.parse_args()

    binaries = order(built_binaries(args.messages))
    if not binaries:
        print("test_lanes: no test binary in the cargo messages", file=sys.stderr)
        return 1
    queue = [b for b in binaries if b.name not in ALONE]
    alone = [b for b in binaries if b.name in ALONE]
    queue_lock, print_lock = threading.Lock(), threading.Lock()

    def lane() -> None:
        while True:
            with queue_lock:
                if not queue:
                    return
                b = queue.pop(0)
            run_one(b, args.harness_args, print_lock)

    start = time.monotonic()
    lanes = [threading.Thread(target=lane) for _ in range(max(1, args.lanes))]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()
    for b in alone:
        run_one(b, args.harness_args, print_lock)
    total = time.monotonic() - start

    failed = [b for b in binaries if b.code != 0]
    width = max(len(b.name) for b in binaries)
    print(f"\ntest binaries: {len(binaries)} in {args.lanes} lane(s)")
    for b in sorted(binaries, key=lambda b: -b.seconds):
        print(f"  {b.name:<{width}}  {b.seconds:7.1f} s  {'ok' if b.code == 0 else 'FAILED'}")
    print(f"  {'total (wall clock)':<{width}}  {total:7.1f} s")
    print(f"  {'sum of durations':<{width}}  {sum(b.seconds for b in binaries):7.1f} s")
    if failed:
        print("FAILED: " + ", ".join(b.name for b in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
