#!/usr/bin/env python3
"""Performance benchmark of replicanary against the boto3 baseline (issue 7).

    cargo build --release
    tests/lab/setup.sh
    tests/lab/.venv/bin/python tests/perf/bench.py --quick      # ~2-3 minutes
    tests/lab/.venv/bin/python tests/perf/bench.py              # full: ~20 minutes

Everything runs on 127.0.0.1 against labs this script starts (and stops, even on
failure: every child gets --exit-with-parent or is killed in `finally`). Not a test and
not part of CI: it prints tables and, with --json FILE, writes every raw number.

Part 1 — comparison. One lab, `--per-delay` copies of the healthy scenario for each
injected replication delay (default 1 s, 5 s, 20 s). replicanary (`run`) and the
reference (tests/perf/reference_probe.py) probe the same replications from the same
configuration file, one after the other (order alternating between repeats), each for
a warm-up then a measured window. Per window: CPU seconds per probe (ΔCPU/Δprobes;
replicanary: utime+stime of /proc/PID/stat, reference: its own getrusage), peak RSS
(VmHWM), AWS requests per probe (the lab's /_lab/stats per account, and replicanary's
own replicanary_aws_requests_total), latency error (measured − injected delay) and
source polls per probe for each delay. Medians over `--repeats`.

Part 2 — scale. For each N in --scale (default 1, 100, 1000): a fresh lab, N copies
(provision.provision_copies), replicanary alone for a window: RSS (median and peak),
CPU share of one core, /metrics scrape time and size, scheduling lag p50/p99 (exact,
from the daemon's debug "probe starting" events; and from the histogram), requests per
probe, verdicts, and the lab's own CPU share (to show it is not the bottleneck);
/metrics plain and gzip (Accept-Encoding: gzip, as Prometheus asks): bytes, first byte,
total; the series count; the load average of each window.

Summary: the issue's figures side by side with their targets (CPU per probe against the
reference, peak RSS at each scale, the scrape at the largest scale plain and gzipped).
"""

from __future__ import annotations

import argparse
import gzip as gzip_mod
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LAB_DIR = os.path.join(ROOT, "tests", "lab")
sys.path.insert(0, LAB_DIR)

import lab  # noqa: E402
import provision  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "333333333333", "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}
ACCOUNTS = {"111111111111": "source", "222222222222": "destination", "333333333333": "sts"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# /proc
# ---------------------------------------------------------------------------


def cpu_of(pid: int) -> float:
    """utime + stime of a process, seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def threads_of(pid: int) -> int:
    return status_kib(pid, "Threads")


# ---------------------------------------------------------------------------
# Prometheus text
# ---------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict, float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m:
            out.append((m.group(1), dict(_LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def msum(samples, name: str, **labels) -> float:
    return sum(v for n, lab_, v in samples if n == name and all(lab_.get(k) == x for k, x in labels.items()))


def hist_quantile(samples, name: str, q: float) -> float | None:
    """Prometheus-style histogram_quantile over the (label-less) histogram `name`."""
    buckets = sorted(((float(lab_["le"]), v) for n, lab_, v in samples if n == name + "_bucket"),
                     key=lambda b: b[0])
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / max(c - prev_c, 1e-12))
        prev_le, prev_c = le, c
    return buckets[-1][0]


def scrape(port: int, timeout: float = 30.0, gzip: bool = False) -> tuple[str, float]:
    d = scrape_detail(port, timeout, gzip)
    return d["text"], d["total"]


def scrape_detail(port: int, timeout: float = 30.0, gzip: bool = False) -> dict:
    """One GET /metrics, plain or with `Accept-Encoding: gzip` (as Prometheus asks).

    `first_byte`: until the status line and headers arrived — the server sends them once
    the body is encoded (and compressed), so this is the server's time plus one loopback
    round trip. `total`: until the whole body is read (not decompressed). `wire_bytes`: the
    body as sent; `text`: decompressed if it came gzipped (an older binary answers plain)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                 headers={"Accept-Encoding": "gzip"} if gzip else {})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        first_byte = time.perf_counter() - started
        body = resp.read()
        total = time.perf_counter() - started
        encoding = resp.headers.get("Content-Encoding")
    text = (gzip_mod.decompress(body) if encoding == "gzip" else body).decode()
    return {"text": text, "total": total, "first_byte": first_byte, "wire_bytes": len(body),
            "gzipped": encoding == "gzip"}


def series_count(text: str) -> tuple[int, dict]:
    """Sample lines (= series) in an exposition, and per family (histogram parts folded)."""
    by_family: dict[str, int] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            fam = re.sub(r"_(bucket|sum|count)$", "", line.split("{")[0].split(" ")[0])
            by_family[fam] = by_family.get(fam, 0) + 1
    return sum(by_family.values()), dict(sorted(by_family.items(), key=lambda kv: -kv[1]))


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def percentile(values, q: float):
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ---------------------------------------------------------------------------
# The polling model (replicanary's schedule) for the bounds
# ---------------------------------------------------------------------------


def poll_schedule(initial: float, cap: float, horizon: float) -> list[float]:
    """Times of replicanary's polls after the PutObject from a cold start: i, 2i, 4i, ...
    (steps of i doubling, capped). Warm, a probe starts at the last poll of the previous
    probe that saw PENDING and steps by i from there, so its step is never larger."""
    t, step, times = 0.0, min(initial, cap), [0.0]
    while t < horizon:
        t += step
        times.append(t)
        step = min(step * 2, cap) if len(times) > 2 else step
    return times


def step_at(initial: float, cap: float, latency: float) -> float:
    """The poll step in effect when a replication that took `latency` was first seen (cold)."""
    times = poll_schedule(initial, cap, latency + 2 * cap)
    for a, b in zip(times, times[1:]):
        if b >= latency:
            return b - a
    return cap


def poll_bound(initial: float, cap: float, latency: float) -> float:
    """Polls of a cold start: 1 + log2(L / i) + L / max."""
    return 1 + math.log2(max(latency, initial) / initial) + latency / cap


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------


class Daemon:
    """replicanary run, JSON logs to a file."""

    def __init__(self, binary: str, config: str, port: int, logfile: str, debug_lag: bool,
                 extra_args: tuple[str, ...] = ()):
        env = {**os.environ, **BASE_ENV}
        if debug_lag:
            env["RUST_LOG"] = "info,aws_config=warn,aws_smithy_runtime=warn,replicanary::daemon=debug"
        self.port = port
        self.logfile = logfile
        self.log = open(logfile, "w")
        self.proc = subprocess.Popen(
            [binary, "run", "--config", config, "--listen", f"127.0.0.1:{port}", "--log-format", "json",
             "--grace-period", "3s", *extra_args], env=env, stdout=self.log, stderr=self.log)
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replicanary exited with {self.proc.returncode}; see {self.logfile}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError("replicanary not ready")

    def cpu(self) -> float:
        return cpu_of(self.pid)

    def probes(self, samples=None) -> float:
        samples = samples or parse_metrics(scrape(self.port)[0])
        return msum(samples, "replicanary_probes_total")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def events(self) -> list[dict]:
        out = []
        with open(self.logfile) as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


class Reference:
    """tests/perf/reference_probe.py; status lines on SIGUSR1."""

    def __init__(self, config: str, logfile: str, duration: float, poll_sleep: float):
        env = {**os.environ, **BASE_ENV}
        self.logfile = logfile
        self.log = open(logfile, "w")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "reference_probe.py"), "--config", config,
             "--duration", str(duration), "--poll-sleep", str(poll_sleep)],
            env=env, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.lines: list[dict] = []
        self.started = threading.Event()
        self._status = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            with self._status:
                self.lines.append(obj)
                if obj.get("event") == "started":
                    self.started.set()
                self._status.notify_all()

    def wait_ready(self, timeout: float = 60.0) -> None:
        if not self.started.wait(timeout):
            raise TimeoutError("reference did not start")

    def status(self, timeout: float = 10.0) -> dict:
        with self._status:
            n = sum(1 for x in self.lines if x.get("event") == "status")
            self.proc.send_signal(signal.SIGUSR1)
            ok = self._status.wait_for(lambda: sum(1 for x in self.lines if x.get("event") == "status") > n,
                                       timeout)
            if not ok:
                raise TimeoutError("reference gave no status")
            return [x for x in self.lines if x.get("event") == "status"][-1]

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.reader.join(5)
        self.log.close()


def lab_stats(endpoint: str) -> dict:
    return provision.lab_admin(endpoint, "GET", "/_lab/stats")


def stats_by_side(stats: dict) -> dict:
    out = {}
    for account, ops in stats.get("by_account", {}).items():
        side = ACCOUNTS.get(account, account)
        out[side] = out.get(side, 0) + sum(ops.values())
    return out


def smaps_kib(pid: int, binary: str) -> dict:
    """Resident KiB by kind of mapping (/proc/PID/smaps): `heap` (the main malloc arena,
    brk), `anon` (other anonymous mappings: the other threads' malloc arenas, thread stacks,
    large mmapped blocks), `binary` (our text and data), `libs` (shared libraries), `stack`
    (the main thread's), `other`."""
    out = {"heap": 0, "anon": 0, "binary": 0, "libs": 0, "stack": 0, "other": 0}
    kind = "other"
    real = os.path.realpath(binary)
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            parts = line.split()
            if parts and re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", parts[0]):
                path = parts[5] if len(parts) > 5 else ""
                kind = ("heap" if path == "[heap]" else "stack" if path == "[stack]" else
                        "anon" if not path else "binary" if os.path.realpath(path) == real else
                        "libs" if ".so" in path else "other")
            elif parts and parts[0] == "Rss:":
                out[kind] += int(parts[1])
    return out


def sample_rss(pid: int, stop: threading.Event, into: list, period: float = 0.5) -> None:
    while not stop.is_set():
        try:
            into.append(status_kib(pid, "VmRSS"))
        except OSError:
            return
        stop.wait(period)


# ---------------------------------------------------------------------------
# Part 1: comparison
# ---------------------------------------------------------------------------


def comparison(args, tmp: str) -> dict:
    delays = [float(d) for d in args.delays.split(",")]
    copies = args.per_delay * len(delays)
    lab_log = open(os.path.join(tmp, "lab-compare.log"), "w")
    the_lab = lab.LabProcess.start(log=lab_log)
    runs = {"replicanary": [], "reference": []}
    try:
        world = provision.provision_copies(the_lab.endpoint, copies)
        delay_of = {}
        patterns = []
        for i, (name, sc) in enumerate(world.scenarios.items()):
            d = delays[i // args.per_delay]
            delay_of[name] = d
            patterns.append({"pattern": f"{sc.source_bucket}/*", "seconds": d})
        provision.lab_admin(the_lab.endpoint, "POST", "/_lab/config", {"delays": patterns})
        config = os.path.join(tmp, "compare.yaml")
        with open(config, "w") as fh:
            fh.write(provision.render_config(world, interval=args.interval, replication_timeout="120s",
                                             poll_initial=args.poll_initial, poll_max=args.poll_max))
        log(f"comparison: lab {the_lab.endpoint}, {copies} replications ({args.per_delay} per delay "
            f"{delays}), interval {args.interval}, poll {args.poll_initial}→{args.poll_max} (replicanary), "
            f"fixed {args.poll_sleep}s (reference); warm-up {args.warmup}s, window {args.window}s, "
            f"{args.repeats} repeat(s)")
        for r in range(args.repeats):
            order = ["replicanary", "reference"] if r % 2 == 0 else ["reference", "replicanary"]
            for impl in order:
                fn = run_replicanary_window if impl == "replicanary" else run_reference_window
                res = fn(args, the_lab, config, tmp, f"{impl}-{r}", delay_of)
                runs[impl].append(res)
                log(f"  repeat {r + 1} {impl}: {res['probes']:.0f} probes, "
                    f"{res['cpu_per_probe'] * 1000:.1f} ms CPU/probe, peak RSS {res['peak_rss_kib'] / 1024:.1f} MiB, "
                    f"{res['lab_requests_per_probe']:.2f} req/probe")
        oneshots = oneshot(args, the_lab, world, delays, delay_of, tmp)
    finally:
        the_lab.stop()
        lab_log.close()
    return {"delays": delays, "runs": runs, "oneshot": oneshots, "settings": {
        "interval": args.interval, "poll_initial": args.poll_initial, "poll_max": args.poll_max,
        "poll_sleep": args.poll_sleep, "per_delay": args.per_delay, "warmup": args.warmup, "window": args.window}}


def _run_counted(cmd: list[str], out_path: str, timeout: float = 180.0) -> tuple[int, dict]:
    """Runs `cmd` to completion; its own rusage (os.wait4: that child only)."""
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **BASE_ENV}, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        hwm = 0
        while True:
            try:  # ru_maxrss of a forked child counts the parent's pages before exec: sample VmHWM
                hwm = max(hwm, status_kib(proc.pid, "VmHWM"))
            except OSError:
                pass
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                proc.kill()
            time.sleep(0.01)
    return proc.returncode, {"cpu": ru.ru_utime + ru.ru_stime, "maxrss_kib": hwm}


def _latency_of(v) -> float | None:
    if v is None:
        return None
    if isinstance(v, dict):
        return v.get("secs", 0) + v.get("nanos", 0) / 1e9
    return float(v)


def oneshot(args, the_lab, world, delays, delay_of, tmp) -> dict:
    """Per delay: `replicanary check` vs. `reference_probe.py --once` (the cron-job form) over the
    same replications, run to completion, so every request of every probe is counted exactly."""
    out = {}
    for dl in delays:
        names = [n for n, d in delay_of.items() if d == dl]
        sub = provision.World(world.endpoint, world.suffix, world.region, {n: world.scenarios[n] for n in names})
        config = os.path.join(tmp, f"oneshot-{dl:g}.yaml")
        with open(config, "w") as fh:
            fh.write(provision.render_config(sub, interval=args.interval, replication_timeout="120s",
                                             poll_initial=args.poll_initial, poll_max=args.poll_max))
        cmds = {"replicanary": [args.binary, "check", "--config", config, "--format", "json"],
                "reference": [sys.executable, os.path.join(HERE, "reference_probe.py"), "--config", config,
                              "--once", "--poll-sleep", str(args.poll_sleep)]}
        out[dl] = {}
        for impl, cmd in cmds.items():
            provision.lab_admin(the_lab.endpoint, "POST", "/_lab/stats/reset")
            path = os.path.join(tmp, f"oneshot-{impl}-{dl:g}.out")
            rc, ru = _run_counted(cmd, path)
            stats = lab_stats(the_lab.endpoint)
            ops = {}
            for account, counts in stats.get("by_account", {}).items():
                for op, c in counts.items():
                    key = f"{ACCOUNTS.get(account, account)}:{op}"
                    ops[key] = ops.get(key, 0) + c
            text = open(path).read()
            if impl == "replicanary":
                try:
                    start = text.index("{")
                    verdicts = json.loads(text[start:])["verdicts"]
                except ValueError:
                    verdicts = []
                lat = [_latency_of(v.get("latency") or v.get("latency_seconds")) for v in verdicts]
                outcomes = [v.get("outcome") for v in verdicts]
            else:
                evs = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
                evs = [e for e in evs if e.get("event") == "probe"]
                lat = [e.get("latency") for e in evs]
                outcomes = [e.get("outcome") for e in evs]
            n = len(names)
            out[dl][impl] = {
                "rc": rc, "probes": n, "cpu_per_probe": ru["cpu"] / n, "cpu_total": ru["cpu"],
                "maxrss_kib": ru["maxrss_kib"], "ops": ops,
                "polls_per_probe": ops.get("source:s3:HeadObject", 0) / n,
                "requests_per_probe": sum(v for k, v in ops.items() if not k.startswith("sts:")) / n,
                "sts_per_probe": sum(v for k, v in ops.items() if k.startswith("sts:")) / n,
                "latencies": [x for x in lat if x is not None], "outcomes": outcomes}
            log(f"  one-shot {impl} delay {dl:g}s: rc {rc}, {ru['cpu'] / n * 1000:.0f} ms CPU/probe, "
                f"{out[dl][impl]['polls_per_probe']:.2f} polls/probe, outcomes {outcomes}")
    return out


def _window_common(the_lab, t_wall, probes, cpu, stats) -> dict:
    sides = stats_by_side(stats)
    total = sum(sides.values())
    return {"probes": probes, "cpu": cpu, "wall": t_wall, "cpu_per_probe": cpu / probes if probes else float("nan"),
            "loadavg_end": loadavg(),
            "lab_requests": sides, "lab_requests_per_probe": total / probes if probes else float("nan"),
            "lab_requests_per_probe_by_side": {k: v / probes for k, v in sides.items()} if probes else {}}


def run_replicanary_window(args, the_lab, config, tmp, tag, delay_of) -> dict:
    port = lab.free_port()
    d = Daemon(args.binary, config, port, os.path.join(tmp, f"{tag}.log"), debug_lag=False)
    try:
        d.wait_ready()
        time.sleep(args.warmup)
        s1 = parse_metrics(scrape(port)[0])
        c1, p1 = d.cpu(), d.probes(s1)
        provision.lab_admin(the_lab.endpoint, "POST", "/_lab/stats/reset")
        w1 = time.monotonic()
        time.sleep(args.window)
        s2 = parse_metrics(scrape(port)[0])
        c2, p2 = d.cpu(), d.probes(s2)
        w2 = time.monotonic()
        stats = lab_stats(the_lab.endpoint)
        hwm = status_kib(d.pid, "VmHWM")
        rss = status_kib(d.pid, "VmRSS")
        threads = threads_of(d.pid)
    finally:
        d.stop()
    res = _window_common(the_lab, w2 - w1, p2 - p1, c2 - c1, stats)
    own = msum(s2, "replicanary_aws_requests_total") - msum(s1, "replicanary_aws_requests_total")
    res.update(peak_rss_kib=hwm, rss_kib=rss, threads=threads, own_requests_per_probe=own / res["probes"] if res["probes"] else None)
    # Per delay: latency error (all verdicts of the run) and source polls per probe (whole run).
    per_delay = {}
    for ev in d.events():
        if ev.get("message") == "probe verdict" and ev.get("replication") in delay_of:
            dl = delay_of[ev["replication"]]
            e = per_delay.setdefault(dl, {"latencies": [], "outcomes": {}})
            e["outcomes"][ev.get("outcome")] = e["outcomes"].get(ev.get("outcome"), 0) + 1
            if ev.get("latency_seconds") is not None:
                e["latencies"].append(ev["latency_seconds"])
    def s3_requests(samples, name):
        # Every S3 request of the replication (AssumeRole is STS), from its own counter.
        return sum(v for n, lab_, v in samples if n == "replicanary_aws_requests_total"
                   and lab_.get("replication") == name and lab_.get("operation") != "AssumeRole")

    for name, dl in delay_of.items():
        e = per_delay.setdefault(dl, {"latencies": [], "outcomes": {}})
        e["probes"] = e.get("probes", 0) + msum(s2, "replicanary_probes_total", replication=name)
        e["polls"] = e.get("polls", 0) + msum(s2, "replicanary_aws_requests_total", replication=name,
                                              side="source", operation="HeadObject")
        e["requests"] = e.get("requests", 0) + sum(
            v for n, lab_, v in s2 if n == "replicanary_aws_requests_total" and lab_.get("replication") == name
            and lab_.get("operation") not in ("AssumeRole", "ListObjectVersions"))
        # /metrics alone, over the window: Δ requests ÷ Δ verdicts. A window of whole intervals
        # holds exactly as many probe phases as verdicts, so a probe cut by either edge counts
        # once in total (exact in steady state; --warmup covers the first probes' learning).
        e["w_probes"] = e.get("w_probes", 0) + msum(s2, "replicanary_probes_total", replication=name) \
            - msum(s1, "replicanary_probes_total", replication=name)
        e["w_requests"] = e.get("w_requests", 0) + s3_requests(s2, name) - s3_requests(s1, name)
        e["w_polls"] = e.get("w_polls", 0) + msum(s2, "replicanary_aws_requests_total", replication=name,
                                                  side="source", operation="HeadObject") \
            - msum(s1, "replicanary_aws_requests_total", replication=name, side="source", operation="HeadObject")
    res["per_delay"] = {dl: {"latencies": e["latencies"], "outcomes": e["outcomes"],
                             "polls_per_probe": e["polls"] / e["probes"] if e["probes"] else None,
                             "requests_per_probe": e["requests"] / e["probes"] if e["probes"] else None,
                             "window_requests_per_verdict": e["w_requests"] / e["w_probes"] if e["w_probes"] else None,
                             "window_polls_per_verdict": e["w_polls"] / e["w_probes"] if e["w_probes"] else None,
                             "window_verdicts": e["w_probes"]}
                        for dl, e in per_delay.items()}
    return res


def run_reference_window(args, the_lab, config, tmp, tag, delay_of) -> dict:
    ref = Reference(config, os.path.join(tmp, f"{tag}.log"), args.warmup + args.window + 60, args.poll_sleep)
    try:
        ref.wait_ready()
        time.sleep(args.warmup)
        st1 = ref.status()
        provision.lab_admin(the_lab.endpoint, "POST", "/_lab/stats/reset")
        w1 = time.monotonic()
        time.sleep(args.window)
        st2 = ref.status()
        w2 = time.monotonic()
        stats = lab_stats(the_lab.endpoint)
        hwm = status_kib(ref.pid, "VmHWM")
        rss = status_kib(ref.pid, "VmRSS")
        threads = threads_of(ref.pid)
    finally:
        ref.stop()
    res = _window_common(the_lab, w2 - w1, st2["probes"] - st1["probes"], st2["cpu_seconds"] - st1["cpu_seconds"],
                         stats)
    res.update(peak_rss_kib=hwm, rss_kib=rss, threads=threads, getrusage_maxrss_kib=st2["maxrss_kib"],
               own_requests_per_probe=(st2["requests"] - st1["requests"]) / res["probes"] if res["probes"] else None)
    per_delay = {}
    for ev in ref.lines:
        if ev.get("event") == "probe" and ev.get("replication") in delay_of:
            e = per_delay.setdefault(delay_of[ev["replication"]], {"latencies": [], "outcomes": {}, "polls": [],
                                                                  "requests": []})
            e["outcomes"][ev["outcome"]] = e["outcomes"].get(ev["outcome"], 0) + 1
            if ev.get("latency") is not None:
                e["latencies"].append(ev["latency"])
            e["polls"].append(ev["polls"])
            e["requests"].append(ev["requests"])
    res["per_delay"] = {dl: {"latencies": e["latencies"], "outcomes": e["outcomes"],
                             "polls_per_probe": statistics.mean(e["polls"]) if e["polls"] else None,
                             "requests_per_probe": statistics.mean(e["requests"]) if e["requests"] else None}
                        for dl, e in per_delay.items()}
    return res


# ---------------------------------------------------------------------------
# Part 2: scale
# ---------------------------------------------------------------------------


def scale_run(args, n: int, interval: float, window: float, tmp: str) -> dict:
    lab_log = open(os.path.join(tmp, f"lab-scale-{n}.log"), "w")
    the_lab = lab.LabProcess.start(log=lab_log, args=["--replication-delay", str(args.scale_delay)])
    try:
        t0 = time.monotonic()
        world = provision.provision_copies(the_lab.endpoint, n)
        provision_s = time.monotonic() - t0
        config = os.path.join(tmp, f"scale-{n}.yaml")
        with open(config, "w") as fh:
            fh.write(provision.render_config(world, interval=f"{interval:g}s", replication_timeout="60s",
                                             poll_initial=args.poll_initial, poll_max=args.poll_max))
        log(f"scale {n}: provisioned in {provision_s:.1f}s; interval {interval:g}s, window {window:g}s")
        port = lab.free_port()
        d = Daemon(args.binary, config, port, os.path.join(tmp, f"scale-{n}.log"), debug_lag=True)
        try:
            t_start = time.monotonic()
            d.wait_ready()
            ready_s = time.monotonic() - t_start
            # Start-up (AssumeRole + the sweep of every bucket) is not steady state: wait until
            # every bucket was listed once (2 per replication), then a little more.
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                s0 = parse_metrics(scrape(port)[0])
                if msum(s0, "replicanary_aws_requests_total", operation="ListObjectVersions") >= 2 * n:
                    break
                time.sleep(0.5)
            sweep_s = time.monotonic() - t_start
            time.sleep(2.0)
            rss_samples: list[int] = []
            stop = threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(d.pid, stop, rss_samples), daemon=True)
            sampler.start()
            s1 = parse_metrics(scrape(port)[0])
            c1, lc1, w1 = d.cpu(), cpu_of(the_lab.proc.pid), time.monotonic()
            provision.lab_admin(the_lab.endpoint, "POST", "/_lab/stats/reset")
            scrape_times = []
            load_start = loadavg()
            end = w1 + window
            while time.monotonic() < end:  # scrape under load every 5 s, gzip, like a Prometheus
                time.sleep(min(5.0, max(0.0, end - time.monotonic())))
                text, dt = scrape(port, gzip=True)
                scrape_times.append(dt)
            s2 = parse_metrics(text)
            c2, lc2, w2 = d.cpu(), cpu_of(the_lab.proc.pid), time.monotonic()
            stats = lab_stats(the_lab.endpoint)
            stop.set()
            sampler.join()
            load_end = loadavg()
            hwm_window = status_kib(d.pid, "VmHWM")
            quiet: dict[str, list] = {"plain": [], "gzip": []}
            for _ in range(20):  # alternating, so that both see the same machine
                for mode in quiet:
                    quiet[mode].append(scrape_detail(port, gzip=mode == "gzip"))
            body = quiet["plain"][-1]["text"]
            size = len(body.encode())
            series, series_by_family = series_count(body)
            families: dict[str, int] = {}
            for line in body.splitlines():
                fam = re.sub(r"_(bucket|sum|count)$", "", line.split("{")[0].split(" ")[0]) \
                    if not line.startswith("#") else line.split(" ")[2]
                families[fam] = families.get(fam, 0) + len(line) + 1
            hwm, rss, threads = status_kib(d.pid, "VmHWM"), status_kib(d.pid, "VmRSS"), threads_of(d.pid)
            by_mapping = smaps_kib(d.pid, args.binary)
        finally:
            d.stop()
    finally:
        the_lab.stop()
        lab_log.close()
    probes = msum(s2, "replicanary_probes_total") - msum(s1, "replicanary_probes_total")
    ok = msum(s2, "replicanary_probes_total", outcome="ok") - msum(s1, "replicanary_probes_total", outcome="ok")
    lags = [ev["lag_seconds"] for ev in d.events() if ev.get("message") == "probe starting" and "lag_seconds" in ev]
    own = sum(v for n_, lab_, v in s2 if n_ == "replicanary_aws_requests_total"
              and lab_.get("operation") not in ("AssumeRole", "ListObjectVersions")) - \
        sum(v for n_, lab_, v in s1 if n_ == "replicanary_aws_requests_total"
            and lab_.get("operation") not in ("AssumeRole", "ListObjectVersions"))
    sides = stats_by_side(stats)
    return {
        "replications": n, "interval": interval, "window": w2 - w1, "provision_seconds": provision_s,
        "ready_seconds": ready_s, "startup_sweep_seconds": sweep_s, "probes": probes, "ok": ok,
        "probe_duration_mean": (msum(s2, "replicanary_probe_duration_seconds_sum") /
                                msum(s2, "replicanary_probe_duration_seconds_count"))
        if msum(s2, "replicanary_probe_duration_seconds_count") else None,
        "cpu_share": (c2 - c1) / (w2 - w1), "cpu_per_probe": (c2 - c1) / probes if probes else None,
        "lab_cpu_share": (lc2 - lc1) / (w2 - w1),
        "lab_requests_per_second": sum(sides.values()) / (w2 - w1),
        "requests_per_probe": own / probes if probes else None,
        "rss_median_kib": med(rss_samples), "rss_kib": rss, "peak_rss_kib": hwm, "threads": threads,
        "peak_rss_window_kib": hwm_window, "rss_by_mapping_kib": by_mapping,
        "scrape_load_ms": {"median": med(scrape_times) * 1000, "max": max(scrape_times) * 1000},
        "scrape_quiet_ms": {"median": med([q["total"] for q in quiet["plain"]]) * 1000,
                            "p90": percentile([q["total"] for q in quiet["plain"]], 0.9) * 1000,
                            "max": max(q["total"] for q in quiet["plain"]) * 1000},
        "scrape_quiet": {mode: {"total_ms": {"median": med([q["total"] for q in qs]) * 1000,
                                             "max": max(q["total"] for q in qs) * 1000},
                                "first_byte_ms": {"median": med([q["first_byte"] for q in qs]) * 1000,
                                                  "max": max(q["first_byte"] for q in qs) * 1000},
                                "wire_bytes": med([q["wire_bytes"] for q in qs]),
                                "gzipped": all(q["gzipped"] for q in qs)}
                         for mode, qs in quiet.items()},
        "series": series, "series_by_family": series_by_family,
        "loadavg": {"start": load_start, "end": load_end},
        "metrics_bytes": size,
        "metrics_bytes_by_family": dict(sorted(families.items(), key=lambda kv: -kv[1])[:8]),
        "lag_exact": {"count": len(lags), "p50": percentile(lags, 0.5), "p99": percentile(lags, 0.99),
                      "max": max(lags) if lags else None},
        "lag_histogram": {"p50": hist_quantile(s2, "replicanary_scheduling_lag_seconds", 0.5),
                          "p99": hist_quantile(s2, "replicanary_scheduling_lag_seconds", 0.99)},
    }


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def fmt(v, spec=".3g", unit=""):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:{spec}}{unit}"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(r)) + " |")
        if j == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def report_comparison(c: dict, args) -> str:
    rep, ref = c["runs"]["replicanary"], c["runs"]["reference"]
    init, cap = parse_seconds(args.poll_initial), parse_seconds(args.poll_max)

    def m(runs, key):
        return med([r[key] for r in runs])

    rows = [["metric (median of %d)" % len(rep), "replicanary", "reference (boto3)", "replicanary / reference"]]

    def row(label, a, b, spec=".3g", unit="", scale=1.0):
        a2 = a * scale if a is not None else None
        b2 = b * scale if b is not None else None
        ratio = a / b if a and b else None
        rows.append([label, fmt(a2, spec, unit), fmt(b2, spec, unit), fmt(ratio, ".3f")])

    row("CPU per probe", m(rep, "cpu_per_probe"), m(ref, "cpu_per_probe"), ".2f", " ms", 1000)
    row("peak RSS (VmHWM)", m(rep, "peak_rss_kib"), m(ref, "peak_rss_kib"), ".1f", " MiB", 1 / 1024)
    row("RSS at end (VmRSS)", m(rep, "rss_kib"), m(ref, "rss_kib"), ".1f", " MiB", 1 / 1024)
    row("threads", m(rep, "threads"), m(ref, "threads"), ".0f")
    row("AWS requests/probe (lab, all accounts)", m(rep, "lab_requests_per_probe"), m(ref, "lab_requests_per_probe"),
        ".2f")
    for side in ("source", "destination", "sts"):
        row(f"  of which {side}", med([r["lab_requests_per_probe_by_side"].get(side, 0) for r in rep]),
            med([r["lab_requests_per_probe_by_side"].get(side, 0) for r in ref]), ".2f")
    row("AWS requests/probe (own count)", m(rep, "own_requests_per_probe"), m(ref, "own_requests_per_probe"), ".2f")
    row("probes in window", m(rep, "probes"), m(ref, "probes"), ".0f")
    row("load average (1 min) at window end", med([r["loadavg_end"][0] for r in rep]),
        med([r["loadavg_end"][0] for r in ref]), ".2f")
    for dl in c["delays"]:
        lat_a = [x for r in rep for x in r["per_delay"].get(dl, {}).get("latencies", [])]
        lat_b = [x for r in ref for x in r["per_delay"].get(dl, {}).get("latencies", [])]
        err_a = [x - dl for x in lat_a]
        err_b = [x - dl for x in lat_b]
        row(f"delay {dl:g}s: latency error median", med(err_a), med(err_b), ".3f", " s")
        row(f"delay {dl:g}s: latency error max", max(err_a) if err_a else None, max(err_b) if err_b else None,
            ".3f", " s")
        pa = med([r["per_delay"].get(dl, {}).get("polls_per_probe") for r in rep])
        pb = med([r["per_delay"].get(dl, {}).get("polls_per_probe") for r in ref])
        row(f"delay {dl:g}s: source polls/probe (window, approx.)", pa, pb, ".2f")
        qa = med([r["per_delay"].get(dl, {}).get("requests_per_probe") for r in rep])
        qb = med([r["per_delay"].get(dl, {}).get("requests_per_probe") for r in ref])
        row(f"delay {dl:g}s: requests/probe (window, approx.)", qa, qb, ".2f")
        wa = med([r["per_delay"].get(dl, {}).get("window_requests_per_verdict") for r in rep])
        wp = med([r["per_delay"].get(dl, {}).get("window_polls_per_verdict") for r in rep])
        rows.append([f"delay {dl:g}s: S3 requests per verdict (/metrics alone, window)", fmt(wa, ".2f"),
                     "", ""])
        rows.append([f"delay {dl:g}s:   of which source status polls (/metrics, window)", fmt(wp, ".2f"), "", ""])
    os_ = c.get("oneshot") or {}
    if os_:
        rows.append(["— one-shot (check vs. --once: a cron job) —", "", "", ""])
        for dl in c["delays"]:
            a1, b1 = os_[dl]["replicanary"], os_[dl]["reference"]
            row(f"delay {dl:g}s: CPU per probe incl. start-up", a1["cpu_per_probe"], b1["cpu_per_probe"], ".0f",
                " ms", 1000)
            row(f"delay {dl:g}s: peak RSS", a1["maxrss_kib"], b1["maxrss_kib"], ".1f", " MiB", 1 / 1024)
            row(f"delay {dl:g}s: source polls/probe (exact)", a1["polls_per_probe"], b1["polls_per_probe"], ".2f")
            row(f"delay {dl:g}s: S3 requests/probe (exact)", a1["requests_per_probe"], b1["requests_per_probe"],
                ".2f")
    out = [table(rows)]
    # Bounds on replicanary's polling.
    brow = [["delay", "latency median", "poll step at completion", "error max ≤ step?", "polls/probe",
             "bound 1+log2(L/i)+L/max", "polls ≤ bound?", "verdicts"]]
    for dl in c["delays"]:
        lat = [x for r in rep for x in r["per_delay"].get(dl, {}).get("latencies", [])] or \
            (os_.get(dl, {}).get("replicanary", {}).get("latencies") or [])
        outcomes = {}
        for r in rep:
            for k, v in r["per_delay"].get(dl, {}).get("outcomes", {}).items():
                outcomes[k] = outcomes.get(k, 0) + v
        if not lat:
            brow.append([f"{dl:g}s", "n/a", "", "", "", "", "", json.dumps(outcomes)])
            continue
        L = med(lat)
        step = step_at(init, cap, dl)
        if os_:  # exact: one-shot probes run to completion
            polls = os_[dl]["replicanary"]["polls_per_probe"]
            lat_os = os_[dl]["replicanary"]["latencies"]
            L = med(lat_os) if lat_os else L
        else:
            polls = med([r["per_delay"].get(dl, {}).get("polls_per_probe") for r in rep])
        bound = poll_bound(init, cap, L)
        emax = max(x - dl for x in lat)
        brow.append([f"{dl:g}s", f"{L:.3f}s", f"{step:.2f}s", f"{emax:.3f}s {'yes' if emax <= step else 'NO'}",
                     fmt(polls, ".2f"), f"{bound:.2f}", "yes" if polls is not None and polls <= bound else "NO",
                     ", ".join(f"{k}={v}" for k, v in outcomes.items())])
    out.append(table(brow))
    return "\n\n".join(out)


def report_scale(runs: list[dict]) -> str:
    rows = [["replications", "interval", "probes (ok)", "RSS median", "peak RSS", "CPU share (1 core)",
             "CPU/probe", "req/probe", "/metrics quiet p50 / max", "/metrics under load p50 / max", "/metrics size",
             "sched. lag p50 / p99 (exact)", "lag p50 / p99 (histogram)", "probe duration mean",
             "start-up sweep", "lab CPU share", "lab req/s"]]
    for r in runs:
        rows.append([
            str(r["replications"]), f"{r['interval']:g}s", f"{r['probes']:.0f} ({r['ok']:.0f})",
            fmt(r["rss_median_kib"] / 1024, ".1f", " MiB"), fmt(r["peak_rss_kib"] / 1024, ".1f", " MiB"),
            fmt(r["cpu_share"] * 100, ".2f", " %"), fmt((r["cpu_per_probe"] or 0) * 1000, ".2f", " ms"),
            fmt(r["requests_per_probe"], ".2f"),
            f"{r['scrape_quiet_ms']['median']:.2f} / {r['scrape_quiet_ms']['max']:.2f} ms",
            f"{r['scrape_load_ms']['median']:.2f} / {r['scrape_load_ms']['max']:.2f} ms",
            f"{r['metrics_bytes'] / 1024:.0f} KiB",
            f"{fmt(r['lag_exact']['p50'] and r['lag_exact']['p50'] * 1000, '.2f')} / "
            f"{fmt(r['lag_exact']['p99'] and r['lag_exact']['p99'] * 1000, '.2f')} ms",
            f"{fmt(r['lag_histogram']['p50'] and r['lag_histogram']['p50'] * 1000, '.2f')} / "
            f"{fmt(r['lag_histogram']['p99'] and r['lag_histogram']['p99'] * 1000, '.2f')} ms",
            fmt(r["probe_duration_mean"], ".2f", " s"), fmt(r["startup_sweep_seconds"], ".1f", " s"),
            fmt(r["lab_cpu_share"] * 100, ".0f", " %"), fmt(r["lab_requests_per_second"], ".0f")])
    return table(rows)


def report_memory(runs: list[dict]) -> str:
    """Where the resident memory is at the end of each scale run (after the quiet scrapes)."""
    kinds = ["heap", "anon", "binary", "libs", "stack", "other"]
    rows = [["replications", "peak in window", "peak (after 40 scrapes)", "RSS at end"] +
            [f"{k} at end" for k in kinds]]
    for r in runs:
        m = r.get("rss_by_mapping_kib") or {}
        rows.append([str(r["replications"]), fmt(r["peak_rss_window_kib"] / 1024, ".1f", " MiB"),
                     fmt(r["peak_rss_kib"] / 1024, ".1f", " MiB"), fmt(r["rss_kib"] / 1024, ".1f", " MiB")] +
                    [fmt(m.get(k, 0) / 1024, ".1f", " MiB") for k in kinds])
    return table(rows)


def report_scrapes(runs: list[dict]) -> str:
    rows = [["replications", "series", "plain: bytes", "plain: first byte p50 / max", "plain: total p50 / max",
             "gzip: bytes", "gzip: first byte p50 / max", "gzip: total p50 / max", "load avg (1 min) start → end"]]
    for r in runs:
        q = r["scrape_quiet"]
        cells = [str(r["replications"]), str(r["series"])]
        for mode in ("plain", "gzip"):
            m = q[mode]
            served = "" if mode == "plain" or m["gzipped"] else " (not gzipped: binary without gzip)"
            cells += [f"{m['wire_bytes'] / 1024:.0f} KiB{served}",
                      f"{m['first_byte_ms']['median']:.1f} / {m['first_byte_ms']['max']:.1f} ms",
                      f"{m['total_ms']['median']:.1f} / {m['total_ms']['max']:.1f} ms"]
        cells.append(f"{r['loadavg']['start'][0]:.2f} → {r['loadavg']['end'][0]:.2f}")
        rows.append(cells)
    return table(rows)


def report_summary(results: dict) -> str:
    """The issue's figures side by side, with their targets."""
    rows = [["figure", "measured", "target", "met?"]]
    c = results.get("comparison")
    if c:
        a = med([r["cpu_per_probe"] for r in c["runs"]["replicanary"]])
        b = med([r["cpu_per_probe"] for r in c["runs"]["reference"]])
        ratio = b / a if a else None
        rows.append(["CPU per probe: replicanary vs. reference (same run, medians)",
                     f"{a * 1000:.2f} vs. {b * 1000:.2f} ms = {fmt(ratio, '.1f')}× lower", "≥ 10× lower",
                     "yes" if ratio and ratio >= 10 else "NO"])
    for r in results.get("scale", []):
        n = r["replications"]
        target = "≤ 64 MiB" if n == 1000 else ""
        met = ("yes" if r["peak_rss_kib"] / 1024 <= 64 else "NO") if n == 1000 else ""
        rows.append([f"peak RSS at {n} replication(s) (VmHWM)", f"{r['peak_rss_kib'] / 1024:.1f} MiB", target, met])
    for r in results.get("scale", []):
        if r["replications"] != max(x["replications"] for x in results["scale"]):
            continue
        for mode in ("plain", "gzip"):
            m = r["scrape_quiet"][mode]
            rows.append([f"/metrics at {r['replications']}, {mode}: total p50 (first byte p50), bytes",
                         f"{m['total_ms']['median']:.1f} ms ({m['first_byte_ms']['median']:.1f} ms), "
                         f"{m['wire_bytes'] / 1024:.0f} KiB" + ("" if mode == "plain" or m["gzipped"] else
                                                                " (not gzipped)"),
                         "≤ 250 ms", "yes" if m["total_ms"]["median"] <= 250 else "NO"])
    for f in results.get("failures", []):
        rows.append(["FAILED", f, "", ""])
    rows.append(["load average (1/5/15 min) at start", " / ".join(map(str, results["loadavg_start"])), "", ""])
    return table(rows)


def parse_seconds(text: str) -> float:
    text = text.strip()
    for unit, f in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * f
    return float(text)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="~2-3 minutes: 1 repeat, short windows, scale 1 and 100")
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "replicanary"))
    p.add_argument("--only", choices=["compare", "scale", "readers"], help="run one part only "
                   "(readers: the cost of one reader per probe, bench_readers.py; only when named)")
    p.add_argument("--readers-copies", type=int, default=4, help="replications of the readers part (default 4)")
    p.add_argument("--readers-interval", default="3s", help="probe interval of the readers part (default 3s)")
    p.add_argument("--repeats", type=int, help="comparison repeats (default 3; quick 1)")
    p.add_argument("--delays", default="1,5,20", help="injected replication delays, s (default 1,5,20)")
    p.add_argument("--per-delay", type=int, help="replications per delay (default 4; quick 3)")
    p.add_argument("--interval", default="25s", help="probe interval of the comparison (default 25s)")
    p.add_argument("--poll-initial", default="200ms", help="replicanary poll.initial (default 200ms)")
    p.add_argument("--poll-max", default="2s", help="replicanary poll.max (default 2s)")
    p.add_argument("--poll-sleep", type=float, default=1.0, help="the reference's fixed sleep (default 1 s)")
    p.add_argument("--warmup", type=float, help="seconds before each measured window (default 5)")
    p.add_argument("--window", type=float, help="measured window per run, s (default 75; quick 30)")
    p.add_argument("--scale", help="replication counts (default 1,100,1000; quick 1,100)")
    p.add_argument("--scale-intervals", help="interval per count, s (default 10,30,120)")
    p.add_argument("--scale-window", type=float, help="scale window, s (default: max(2 intervals, 30))")
    p.add_argument("--scale-delay", type=float, default=1.0, help="lab replication delay at scale (default 1 s)")
    p.add_argument("--json", help="write all raw results to this file")
    args = p.parse_args(argv)
    q = args.quick
    args.repeats = args.repeats or (1 if q else 3)
    args.per_delay = args.per_delay or (3 if q else 4)
    args.warmup = args.warmup if args.warmup is not None else 5.0
    args.window = args.window or (30.0 if q else 75.0)
    scale_ns = [int(x) for x in (args.scale or ("1,100" if q else "1,100,1000")).split(",")]
    default_iv = {1: 10.0, 100: 30.0, 1000: 120.0}
    scale_iv = [float(x) for x in args.scale_intervals.split(",")] if args.scale_intervals else \
        [default_iv.get(n, max(10.0, n * 0.12)) for n in scale_ns]
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"bench: no replicanary binary at {args.binary}; run `cargo build --release` first")

    results = {"started": time.time(), "loadavg_start": loadavg(), "quick": q, "cpus": os.cpu_count(),
               "binary": args.binary, "argv": sys.argv[1:]}
    with tempfile.TemporaryDirectory(prefix="replicanary-bench-") as tmp:
        try:
            if args.only in (None, "compare"):
                results["comparison"] = comparison(args, tmp)
                print("\n## replicanary vs. the boto3 reference\n")
                print(report_comparison(results["comparison"], args), flush=True)
            if args.only in (None, "scale"):
                runs = []
                for n, iv in zip(scale_ns, scale_iv):
                    window = args.scale_window or max(2 * iv, 30.0)
                    if q:
                        window = min(window, 30.0)
                    try:
                        runs.append(scale_run(args, n, iv, window, tmp))
                        log(f"scale {n}: done")
                    except Exception as e:  # noqa: BLE001 - report the others anyway
                        log(f"scale {n}: FAILED: {e!r}")
                        results.setdefault("failures", []).append(f"scale {n}: {e!r}")
                results["scale"] = runs
                if runs:
                    print("\n## replicanary at scale\n")
                    print(report_scale(runs), flush=True)
                    print("\n## /metrics at scale: plain and gzip (quiet, 20 scrapes each)\n")
                    print(report_scrapes(runs), flush=True)
                    print("\n## Resident memory at scale: peaks, and by kind of mapping at the end\n")
                    print(report_memory(runs), flush=True)
            if args.only == "readers":
                import bench_readers
                results["readers"] = bench_readers.run(sys.modules[__name__], args, tmp)
                print("\n## The cost of one reader per probe\n")
                print(bench_readers.report(results["readers"]), flush=True)
                return
            print("\n## Summary (issue targets)\n")
            print(report_summary(results), flush=True)
        finally:
            results["loadavg_end"] = loadavg()
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump(results, fh, indent=1, default=str)
                log(f"raw results in {args.json}")


if __name__ == "__main__":
    main()
