"""Benchmark of `replicanary scan` against the straightforward boto3 script
(reference_scan.py) on the same objects in one lab.

    scan_bench.py [--objects 100000] [--binary target/release/replicanary] [--rate 100000]
                  [--concurrency 32] [--json FILE] [--no-reference]

Starts a lab on 127.0.0.1, provisions the `healthy` scenario, writes `--objects` replicated
SSE-KMS objects with the lab's bulk endpoint (POST /_lab/bulk-objects), then runs, one
after the other and alone: `replicanary scan` (rate high enough not to bind, so that the
lab is the limit) and the reference script. For each: objects/s, requests/object (the
lab's own request count), peak RSS (VmHWM sampled every 50 ms), CPU (os.wait4 of that
child only), CPU per object;
and the lab's CPU over the same window (utime+stime of the lab process), which shows
whether the lab was the bottleneck (about one core = the lab's ceiling: ministack serves
requests on one Python thread).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "lab"))
import lab  # noqa: E402
import provision  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
CHUNK = 5000  # objects per POST /_lab/bulk-objects


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def vm_hwm_kib(pid: int) -> int:
    """The process's peak RSS so far (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def lab_requests(the_lab) -> int:
    return int(the_lab.admin("GET", "/_lab/stats")["total"])


def run(cmd: list[str], the_lab, env: dict, timeout: float) -> dict:
    """Runs `cmd` alone to completion: its rusage, the lab's CPU and requests meanwhile."""
    lab_cpu0, req0, t0 = proc_cpu(the_lab.proc.pid), lab_requests(the_lab), time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = t0 + timeout
    hwm_kib, loads = 0, []
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        hwm_kib = max(hwm_kib, vm_hwm_kib(proc.pid))
        loads.append(os.getloadavg()[0])
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"timeout: {cmd[0]}")
        time.sleep(0.05)
    wall = time.monotonic() - t0
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "wall_seconds": wall,
        "cpu_seconds": ru.ru_utime + ru.ru_stime,
        # Sampled VmHWM of the process itself: ru_maxrss of a Popen child also counts the
        # forked copy of this Python process before its exec.
        "peak_rss_kib": hwm_kib,
        "ru_maxrss_kib": ru.ru_maxrss,
        "lab_cpu_seconds": proc_cpu(the_lab.proc.pid) - lab_cpu0,
        "lab_requests": lab_requests(the_lab) - req0,
        # The 1-minute load average while it ran (other processes on the machine).
        "load_min_median_max": [min(loads), sorted(loads)[len(loads) // 2], max(loads)] if loads else None,
        "stdout": out[-4000:],
        "stderr": err[-2000:],
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "replicanary"))
    ap.add_argument("--rate", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--json", help="write every raw number here")
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args(argv)

    the_lab = lab.LabProcess.start(args=["--replication-delay", "0.2"])
    try:
        world = provision.provision(the_lab.endpoint, ["healthy"])
        sc = world.scenarios["healthy"]
        dest = sc.destinations[0]
        written, t0 = 0, time.monotonic()
        while written < args.objects:  # chunks: one call holds the lab's event loop
            chunk = min(CHUNK, args.objects - written)
            the_lab.admin("POST", "/_lab/bulk-objects", {
                "source_bucket": sc.source_bucket, "destination_bucket": dest.bucket, "prefix": "bench/",
                "start": written, "count": chunk, "source_kms_key_arn": sc.source_key_arn,
                "replica_kms_key_arn": dest.expected_kms_key_arn})
            written += chunk
        write_seconds = time.monotonic() - t0
        print(f"lab: {written} objects written in {write_seconds:.1f} s", file=sys.stderr)
        tmp = tempfile.mkdtemp(prefix="scan-bench-")
        config = Path(tmp) / "config.yaml"
        config.write_text(provision.render_config(world))
        env = {"PATH": os.environ.get("PATH", ""), "AWS_ACCESS_KEY_ID": provision.MONITOR_ACCOUNT,
               "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true",
               "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
        results = {"objects": args.objects, "load_before": os.getloadavg(), "write_seconds": write_seconds}
        timeout = 60 + args.objects / 20
        results["replicanary"] = run(
            [args.binary, "scan", "--config", str(config), "--prefix", "bench/", "--format", "json",
             "--rate", str(args.rate), "--concurrency", str(args.concurrency)], the_lab, env, timeout)
        report = json.loads(results["replicanary"]["stdout"])
        counts = report["replications"][0]["destinations"][0]["counts"]
        results["replicanary"]["counts"] = counts
        results["replicanary"]["requests"] = report["requests"]
        if not args.no_reference:
            results["reference"] = run(
                [sys.executable, str(ROOT / "tests" / "perf" / "reference_scan.py"), "--endpoint", the_lab.endpoint,
                 "--source-bucket", sc.source_bucket, "--source-role", sc.source_role_arn,
                 "--destination-bucket", dest.bucket, "--destination-role", dest.role_arn,
                 "--expected-key", dest.expected_kms_key_arn, "--prefix", "bench/"], the_lab, env, timeout * 3)
            results["reference"]["report"] = json.loads(results["reference"]["stdout"])
        results["load_after"] = os.getloadavg()
    finally:
        the_lab.stop()

    n = args.objects
    print(f"\n{n} objects (ok per replicanary: {results['replicanary']['counts']['ok']}); "
          f"load average before {results['load_before'][0]:.2f}, after {results['load_after'][0]:.2f}")
    print(f"{'':>12} {'objects/s':>10} {'req/object':>11} {'peak RSS':>10} {'CPU s':>7} "
          f"{'CPU/object':>11} {'lab CPU':>8} {'lab req/s':>10} {'req/lab-CPU-s':>14} {'load (min/med/max)':>19}")
    for name in ("replicanary", "reference"):
        r = results.get(name)
        if not r:
            continue
        print(f"{name:>12} {n / r['wall_seconds']:>10.0f} {r['lab_requests'] / n:>11.3f} "
              f"{r['peak_rss_kib'] / 1024:>8.1f}Mi {r['cpu_seconds']:>7.2f} "
              f"{r['cpu_seconds'] / n * 1e6:>9.0f}µs {r['lab_cpu_seconds'] / r['wall_seconds']:>7.0%} "
              f"{r['lab_requests'] / r['wall_seconds']:>10.0f} "
              f"{r['lab_requests'] / max(r['lab_cpu_seconds'], 1e-9):>14.0f} "
              f"{'/'.join(f'{x:.1f}' for x in r['load_min_median_max'] or []):>19}")
    if "reference" in results:
        ratio = results["reference"]["cpu_seconds"] / max(results["replicanary"]["cpu_seconds"], 1e-9)
        print(f"CPU per object: the reference spends {ratio:.1f}x replicanary's")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
