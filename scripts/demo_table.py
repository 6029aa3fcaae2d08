#!/usr/bin/env python3
"""Waits until replicanary has a verdict for every destination, then prints them as a table.

    demo_table.py http://127.0.0.1:9879/metrics [--timeout 90]
"""

import argparse
import re
import sys
import time
import urllib.request

SAMPLE = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

# What each lab scenario stands for (tests/lab/README.md).
EXPECTED = {
    "healthy": "ok", "wrong-key": "undecryptable", "other-key": "wrong_kms_key",
    "unselected": "not_replicated", "denied": "replication_failed", "slow": "replication_timeout",
    "disabled-key": "undecryptable", ("fan-out", "good"): "ok", ("fan-out", "wrong"): "undecryptable",
    "archive": "ok", "archive-wrong-key": "wrong_kms_key", "source-owned": "unreadable", "locked": "ok",
    ("partial-fan-out", "failing"): "replication_failed", ("partial-fan-out", "slow"): "ok",
    "vanished": "replica_missing", "vanished-no-list": "replica_missing", "readers": "ok",
}
# The readers of the `readers` scenario (tests/lab/lab_readers.py): what each one's read gives.
EXPECTED_READERS = {"fine": "ok", "nokms": "undecryptable", "nos3": "unreadable", "locked": "credentials_failed"}


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    samples = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            samples.append((m[1], dict(LABEL.findall(m[2])), float(m[3])))
    return samples


def table(samples):
    rows = {}
    for name, labels, value in samples:
        pair = (labels.get("replication"), labels.get("destination"))
        row = rows.setdefault(pair, {"verdicts": {}})
        if name == "replicanary_probes_total" and value > 0:
            row["verdicts"][labels["outcome"]] = value
        elif name == "replicanary_last_replication_latency_seconds":
            row["latency"] = f"{value:.2f}s"
        elif name == "replicanary_replica_kms_key_match":
            row["key"] = "yes" if value == 1 else "NO"
        elif name == "replicanary_replica_readable":
            row["readable"] = "yes" if value == 1 else "NO"
    return {p: r for p, r in rows.items() if p[0] and p[1]}


def reader_table(samples):
    """(replication, destination, reader) -> {"outcomes": {outcome: count}, "readable": ...}."""
    rows = {}
    for name, labels, value in samples:
        if "reader" not in labels:
            continue
        row = rows.setdefault((labels["replication"], labels["destination"], labels["reader"]), {"outcomes": {}})
        if name == "replicanary_reader_probes_total" and value > 0:
            row["outcomes"][labels["outcome"]] = value
        elif name == "replicanary_reader_readable":
            row["readable"] = "yes" if value == 1 else "NO"
    return rows


def print_table(lines):
    widths = [max(len(str(l[i])) for l in lines) for i in range(len(lines[0]))]
    for l in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(l, widths)).rstrip())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=90)
    args = p.parse_args()
    deadline = time.monotonic() + args.timeout
    rows, readers = {}, {}
    while time.monotonic() < deadline:
        try:
            samples = scrape(args.url)
            rows = table(samples)
        except OSError:
            samples, rows = [], {}
        readers = reader_table(samples) if rows else {}
        if rows and all(r["verdicts"] for r in rows.values()) and all(r["outcomes"] for r in readers.values()):
            break
        waiting = sum(1 for r in rows.values() if not r["verdicts"])
        print(f"\rwaiting for first verdicts ({waiting or '?'} destinations to go)...", end="", file=sys.stderr)
        time.sleep(1)
    print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    head = ("REPLICATION", "DESTINATION", "VERDICT", "EXPECTED", "LATENCY", "KEY MATCH", "READABLE")
    lines = [head]
    for (rep, dest), r in sorted(rows.items()):
        latest = max(r["verdicts"], key=r["verdicts"].get) if r["verdicts"] else "(none yet)"
        expected = EXPECTED.get((rep, dest), EXPECTED.get(rep, "?"))
        lines.append((rep, dest, latest, expected, r.get("latency", "-"), r.get("key", "-"), r.get("readable", "-")))
    print_table(lines)
    if readers:
        print()
        lines = [("REPLICATION", "DESTINATION", "READER", "OUTCOME", "EXPECTED", "READABLE")]
        for (rep, dest, reader), r in sorted(readers.items()):
            latest = max(r["outcomes"], key=r["outcomes"].get) if r["outcomes"] else "(none yet)"
            lines.append((rep, dest, reader, latest, EXPECTED_READERS.get(reader, "?"), r.get("readable", "-")))
        print_table(lines)


if __name__ == "__main__":
    main()
