#!/usr/bin/env python3
"""How long a reload takes with N replications running (default 1,000).

    cargo build --release
    tests/lab/setup.sh
    tests/lab/.venv/bin/python tests/perf/reload_time.py            # ~3 minutes
    tests/lab/.venv/bin/python tests/perf/reload_time.py --replications 100

One lab on 127.0.0.1 with N copies of the healthy scenario, `replicanary run` probing
them (file polling off: every reload is a `POST /-/reload`), and, once the start-up
sweep has listed every bucket, the wall time of `POST /-/reload` (it answers when the
reload is done) for each kind of change, `--repeats` times each:

- unchanged: the same bytes (the reload reads and hashes the file, and stops there);
- comment: a new comment (parsed, validated and diffed: nothing to do);
- one interval: one replication's interval changed (it restarts; the others keep theirs);
- one removed: one replication dropped (its task stops, its canaries are cleaned up);
- one added: the same replication back;
- every interval: all N intervals changed (all N restart).

Not a test and not part of CI: it prints a table (and, with --json FILE, the raw
figures). Every child process is stopped in `finally`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402
from bench import lab, provision  # noqa: E402


def post_reload(port: int) -> tuple[float, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/-/reload", method="POST", data=b"")
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=300) as resp:
        body = resp.read().decode().strip()
    return time.monotonic() - t0, body


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=os.path.join(bench.ROOT, "target", "release", "replicanary"))
    p.add_argument("--replications", type=int, default=1000)
    p.add_argument("--interval", type=float, default=120.0, help="probe interval, s (default 120)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="write the raw figures to this file")
    args = p.parse_args(argv)
    import yaml

    n = args.replications
    tmp = tempfile.mkdtemp(prefix="replicanary-reload-")
    lab_log = open(os.path.join(tmp, "lab.log"), "w")
    the_lab = lab.LabProcess.start(log=lab_log, args=["--replication-delay", "1"])
    results: dict[str, list[float]] = {}
    answers: dict[str, str] = {}
    try:
        t0 = time.monotonic()
        world = provision.provision_copies(the_lab.endpoint, n)
        bench.log(f"{n} replications provisioned in {time.monotonic() - t0:.1f}s")
        base = yaml.safe_load(provision.render_config(
            world, interval=f"{args.interval:g}s", replication_timeout="60s",
            poll_initial="200ms", poll_max="2s"))
        config = os.path.join(tmp, "replicanary.yaml")

        def write(doc: dict, comment: str = "") -> None:
            with open(config, "w") as fh:
                fh.write(f"# {comment}\n" + yaml.safe_dump(doc, sort_keys=False, width=200))

        write(base)
        port = lab.free_port()
        os.environ["REPLICANARY_CONFIG_POLL_INTERVAL"] = "0s"  # only the POSTs reload
        log_path = os.path.join(tmp, "replicanary.log")
        d = bench.Daemon(args.binary, config, port, log_path, debug_lag=False,
                         extra_args=("--web.enable-lifecycle",))  # POST /-/reload is gated
        try:
            d.wait_ready()
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                s = bench.parse_metrics(bench.scrape(port)[0])
                if bench.msum(s, "replicanary_aws_requests_total", operation="ListObjectVersions") >= 2 * n:
                    break
                time.sleep(0.5)
            time.sleep(2.0)
            bench.log("start-up sweep done; timing reloads")
            first = base["replications"][0]
            rest = base["replications"][1:]

            def changed_interval(doc: dict, which, seconds: float) -> dict:
                out = json.loads(json.dumps(doc))
                for r in out["replications"]:
                    if which is None or r["name"] == which:
                        r["interval"] = f"{seconds:g}s"
                return out

            for i in range(args.repeats):
                steps = [
                    ("unchanged", None),
                    ("comment", lambda: write(base, f"comment {i}")),
                    ("one interval", lambda: write(changed_interval(base, first["name"], args.interval + 1 + i))),
                    ("one removed", lambda: write({**base, "replications": rest})),
                    ("one added", lambda: write(base)),
                    ("every interval", lambda: write(changed_interval(base, None, args.interval + 1 + i))),
                    ("every interval back", lambda: write(base)),
                ]
                for name, change in steps:
                    if change:
                        change()
                    took, body = post_reload(port)
                    results.setdefault(name, []).append(took)
                    answers[name] = body
                    bench.log(f"  {name}: {took * 1000:.1f} ms — {body}")
                    time.sleep(1.0)
            rss = bench.status_kib(d.pid, "VmRSS")
            hwm = bench.status_kib(d.pid, "VmHWM")
        finally:
            d.stop()
    finally:
        the_lab.stop()
        lab_log.close()

    rows = [["change", "answer (last)", "median", "max"]]
    for name, times in results.items():
        rows.append([name, answers[name], f"{statistics.median(times) * 1000:.1f} ms",
                     f"{max(times) * 1000:.1f} ms"])
    print(f"\nReload with {n} replications running (interval {args.interval:g}s), "
          f"{args.repeats} repeats; load average {os.getloadavg()[0]:.2f}; "
          f"RSS after {rss / 1024:.1f} MiB (peak {hwm / 1024:.1f} MiB)\n")
    print(bench.table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"replications": n, "seconds": results, "answers": answers,
                       "rss_kib": rss, "peak_rss_kib": hwm}, fh, indent=2)


if __name__ == "__main__":
    main()
