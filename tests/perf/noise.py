#!/usr/bin/env python3
"""Verdicts under injected S3 faults: replicanary against the boto3 reference.

    cargo build --release
    tests/lab/.venv/bin/python tests/perf/noise.py                 # 30% 503s, 25 probes each
    tests/lab/.venv/bin/python tests/perf/noise.py --copies 5 --probes 5 --only replicanary

One lab on 127.0.0.1, `--copies` healthy replications (1 s replication delay), faults on
`--operations` of S3 at `--rate` with `--status` (the lab's fault injection). Each
implementation runs alone until every replication has `--probes` verdicts (bounded by
`--timeout`), with the production poll settings (1 s doubling to 30 s) unless told
otherwise. Printed per implementation: the outcomes, the ok share, the failing operation of
each `error` verdict (replicanary's JSON log), the injected faults per operation (lab
stats) and, for replicanary, the SDK's own retry decisions from its debug log
(`aws_smithy_runtime` "retrying" / "not enough retry quota" / "out of attempts").
Not part of CI; a measurement for docs/performance.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402
from bench import lab, provision  # noqa: E402

RETRY_LOG = "info,aws_config=warn,aws_smithy_runtime::client::retries=debug,aws_smithy_runtime::client::orchestrator=warn"


def run_replicanary(args, the_lab, config, tmp, want: int, names: list[str]) -> dict:
    port = lab.free_port()
    log = os.path.join(tmp, "replicanary.log")
    os.environ["RUST_LOG"] = RETRY_LOG
    d = bench.Daemon(args.binary, config, port, log, debug_lag=False)
    cpu0 = None
    try:
        d.wait_ready()
        cpu0 = d.cpu()
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            s = bench.parse_metrics(bench.scrape(port)[0])
            if all(bench.msum(s, "replicanary_probes_total", replication=n) >= want for n in names):
                break
            time.sleep(1)
        s = bench.parse_metrics(bench.scrape(port)[0])
        cpu = d.cpu() - cpu0
    finally:
        d.stop()
        os.environ.pop("RUST_LOG", None)
    outcomes, failing, retries = collections.Counter(), collections.Counter(), collections.Counter()
    per_rep = collections.defaultdict(int)
    for ev in d.events():
        msg = ev.get("message") or ev.get("fields", {}).get("message") or ""
        if msg == "probe verdict":
            if per_rep[ev.get("replication")] >= want:
                continue  # judge exactly `want` probes per replication
            per_rep[ev.get("replication")] += 1
            outcomes[ev.get("outcome")] += 1
            if ev.get("outcome") == "error":
                failing[f"{ev.get('aws_operation') or '?'} {ev.get('aws_error_code') or ''}: {str(ev.get('reason', ''))[:60]}"] += 1
        for key, needle in (("retrying", "retrying after"), ("no quota", "not enough retry quota"),
                            ("out of attempts", "out of attempts"), ("not retrying", "not retrying")):
            if needle in msg:
                retries[key] += 1
    codes = collections.Counter()
    for n, labels, v in s:
        if n == "replicanary_aws_requests_total" and labels.get("code") != "ok":
            codes[f"{labels.get('operation')} {labels.get('code')}"] += v
    return {"outcomes": dict(outcomes), "error_causes": dict(failing), "sdk_retry_log": dict(retries),
            "failed_requests_by_code": dict(codes), "cpu": cpu, "log": log}


def run_reference(args, the_lab, config, tmp, want: int, names: list[str]) -> dict:
    ref = bench.Reference(config, os.path.join(tmp, "reference.log"), args.timeout + 30, 1.0)
    try:
        ref.wait_ready()
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            probes = [x for x in list(ref.lines) if x.get("event") == "probe"]
            per = collections.Counter(x.get("replication") for x in probes)
            if all(per[n] >= want for n in names):
                break
            time.sleep(1)
    finally:
        ref.stop()
    outcomes, per_rep, failing = collections.Counter(), collections.Counter(), collections.Counter()
    for x in ref.lines:
        if x.get("event") != "probe" or per_rep[x.get("replication")] >= want:
            continue
        per_rep[x.get("replication")] += 1
        outcomes[x.get("outcome")] += 1
        if x.get("outcome") == "error":
            failing[str(x.get("error", ""))[:80]] += 1
    return {"outcomes": dict(outcomes), "error_causes": dict(failing)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=os.path.join(bench.ROOT, "target", "release", "replicanary"))
    p.add_argument("--only", choices=["replicanary", "reference"])
    p.add_argument("--copies", type=int, default=1)
    p.add_argument("--probes", type=int, default=25, help="verdicts judged per replication (default 25)")
    p.add_argument("--interval", default="5s")
    p.add_argument("--poll-initial", default="1s")
    p.add_argument("--poll-max", default="30s")
    p.add_argument("--rate", type=float, default=0.3)
    p.add_argument("--status", type=int, default=503)
    p.add_argument("--operations", default="GetObject,HeadObject,PutObject,DeleteObject")
    p.add_argument("--aws", default="", help="extra aws settings as JSON, e.g. '{\"max_attempts\": 5}'")
    p.add_argument("--timeout", type=float, default=420.0, help="bound per implementation, s")
    p.add_argument("--json", help="write the raw results here")
    args = p.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="replicanary-noise-")
    the_lab = lab.LabProcess.start(log=open(os.path.join(tmp, "lab.log"), "w"))
    results = {}
    try:
        world = provision.provision_copies(the_lab.endpoint, args.copies)
        doc = provision.config_dict(world, interval=args.interval, replication_timeout="60s",
                                    poll_initial=args.poll_initial, poll_max=args.poll_max)
        if args.aws:
            doc["aws"].update(json.loads(args.aws))
        config = os.path.join(tmp, "noise.yaml")
        import yaml
        with open(config, "w") as fh:
            yaml.safe_dump(doc, fh)
        names = list(world.scenarios)
        ops = [o for o in args.operations.split(",") if o]
        provision.lab_admin(the_lab.endpoint, "POST", "/_lab/config", {"faults": {
            "error_rate": args.rate, "status": args.status, "services": ["s3"], "operations": ops}})
        bench.log(f"noise: {args.copies} replication(s), {args.probes} probes each, {args.rate:.0%} {args.status} on "
                  f"{ops}, interval {args.interval}, poll {args.poll_initial}→{args.poll_max}, aws {args.aws or '{}'}")
        for impl in ["replicanary", "reference"]:
            if args.only and impl != args.only:
                continue
            provision.lab_admin(the_lab.endpoint, "POST", "/_lab/stats/reset")
            fn = run_replicanary if impl == "replicanary" else run_reference
            res = fn(args, the_lab, config, tmp, args.probes, names)
            res["injected"] = bench.lab_stats(the_lab.endpoint).get("faults_injected", {})
            total = sum(res["outcomes"].values())
            res["ok_share"] = res["outcomes"].get("ok", 0) / total if total else None
            results[impl] = res
            print(f"{impl}: {total} verdicts {res['outcomes']}, ok {res['ok_share']:.0%}" if total else f"{impl}: none")
            for k in ("error_causes", "sdk_retry_log", "failed_requests_by_code", "injected"):
                if res.get(k):
                    print(f"  {k}: {json.dumps(res[k], sort_keys=True)}")
    finally:
        the_lab.stop()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
