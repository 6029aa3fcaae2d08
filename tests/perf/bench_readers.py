"""The cost of one reader per probe (`bench.py --only readers`): the same replications probed
without readers, then with one reader that reads fine (a ranged GetObject per probe), in
alternating windows on one lab. Per window: AWS requests per probe (replicanary's own
replicanary_aws_requests_total, and the lab's count) and CPU seconds per probe
(utime+stime of the daemon / Δprobes). The difference is what one reader costs.
"""

from __future__ import annotations

import os
import statistics
import time

import yaml

import lab
import provision


def _configs(the_lab, copies: int, interval: str, tmp: str) -> tuple[str, str]:
    """(without readers, with the one fine reader) over `copies` readers scenarios."""
    worlds = [provision.provision(the_lab.endpoint, ["readers"], suffix=f"-rb{i}") for i in range(copies)]
    for i, w in enumerate(worlds):  # one replication name per copy
        sc = w.scenarios.pop("readers")
        sc.name = f"readers-{i}"
        w.scenarios[sc.name] = sc
    world = provision.merge_worlds(worlds)
    doc = provision.config_dict(world, interval=interval)
    paths = []
    for tag, keep in (("none", []), ("one", ["fine"])):
        for rep in doc["replications"]:
            for dest in rep["destinations"]:
                dest["readers"] = [r for r in dest.get("readers", []) if r["name"] in keep] or None
                if dest["readers"] is None:
                    dest.pop("readers")
        path = os.path.join(tmp, f"readers-{tag}.yaml")
        with open(path, "w") as fh:
            yaml.safe_dump(doc, fh, sort_keys=False)
        paths.append(path)
        # the next variant starts again from every reader
        doc = provision.config_dict(world, interval=interval)
    return paths[0], paths[1]


def _window(bench, args, config: str, tmp: str, tag: str) -> dict:
    port = lab.free_port()
    d = bench.Daemon(args.binary, config, port, os.path.join(tmp, f"readers-{tag}.log"), False)
    try:
        d.wait_ready()
        time.sleep(args.warmup)
        s0 = bench.parse_metrics(bench.scrape(port)[0])
        c0, p0 = d.cpu(), bench.msum(s0, "replicanary_probes_total")
        r0 = bench.msum(s0, "replicanary_aws_requests_total")
        g0 = bench.msum(s0, "replicanary_aws_requests_total", operation="GetObject")
        time.sleep(args.window)
        s1 = bench.parse_metrics(bench.scrape(port)[0])
        c1, p1 = d.cpu(), bench.msum(s1, "replicanary_probes_total")
        r1 = bench.msum(s1, "replicanary_aws_requests_total")
        g1 = bench.msum(s1, "replicanary_aws_requests_total", operation="GetObject")
        reads = bench.msum(s1, "replicanary_reader_probes_total", outcome="ok")
    finally:
        d.stop()
    probes = p1 - p0
    return {"tag": tag, "probes": probes, "cpu_per_probe": (c1 - c0) / probes if probes else None,
            "requests_per_probe": (r1 - r0) / probes if probes else None,
            "get_per_probe": (g1 - g0) / probes if probes else None, "reader_ok_total": reads}


def run(bench, args, tmp: str) -> dict:
    the_lab = lab.LabProcess.start(args=["--replication-delay", "1.0"])
    try:
        none, one = _configs(the_lab, args.readers_copies, args.readers_interval, tmp)
        runs = []
        for i in range(args.repeats):
            order = [("none", none), ("one", one)] if i % 2 == 0 else [("one", one), ("none", none)]
            for tag, config in order:
                runs.append(_window(bench, args, config, tmp, tag))
                bench.log(f"readers {tag}: {runs[-1]}")
    finally:
        the_lab.stop()
    return {"copies": args.readers_copies, "interval": args.readers_interval, "runs": runs}


def report(r: dict) -> str:
    def med(tag, key):
        vals = [x[key] for x in r["runs"] if x["tag"] == tag and x[key] is not None]
        return statistics.median(vals) if vals else float("nan")
    rows = [("", "no reader", "one reader", "one reader costs")]
    for key, label, scale, unit in (("requests_per_probe", "AWS requests per probe", 1, ""),
                                    ("get_per_probe", "GetObject per probe", 1, ""),
                                    ("cpu_per_probe", "CPU per probe", 1000, " ms")):
        a, b = med("none", key) * scale, med("one", key) * scale
        rows.append((label, f"{a:.3g}{unit}", f"{b:.3g}{unit}", f"{b - a:+.3g}{unit}"))
    probes = sum(x["probes"] for x in r["runs"])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    lines.append(f"\n{r['copies']} replications, interval {r['interval']}, {probes:.0f} probes in all "
                 f"(medians over the windows)")
    return "\n".join(lines)
