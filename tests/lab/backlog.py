"""The `backlog` scenario: a bucket with history, for `replicanary scan`.

One source, one destination (the article's setup), built in steps so that the bucket
holds what a real one holds after an incident:

1. `before/`   objects written before the replication rule existed: no replication status;
2. the rule, with the *wrong* `ReplicaKmsKeyID` (a source-account key the destination cannot
   use, as in the seed incident):
   `wrong/`    replicated COMPLETED, replicas under the wrong key (one key with odd characters);
   `failed/`   one object the lab fails (`fail` pattern): FAILED;
   `rewritten` written now, and again after the fix: only its current version counts;
3. the rule fixed (`ReplicaKmsKeyID` = the destination's key):
   `after/`    replicated under the expected key;
   `sse-s3/`   SSE-S3 objects: replicated, and the replicas are SSE-S3 (not SSE-KMS);
   a canary of replicanary's own (canary key shape and marker), to be left out.

    backlog.py --endpoint http://127.0.0.1:PORT --out CONFIG.yaml [--suffix S] [--expect EXPECT.json]

writes the replicanary configuration (replication `backlog`) and, with `--expect`, what a
scan must find: the versions per class and the manifest rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import provision  # noqa: E402
from provision import SOURCE_ACCOUNT, Provisioner, World, make_suffix, replication_role_policy  # noqa: E402

NAME = "backlog"
ODD_KEY = "wrong/odd name + ü,%&=?.txt"
CANARY_KEY = "replicanary/backlog/20261128T154049Z-0123456789abcdef"


def _put(s3, bucket: str, key: str, **extra) -> str:
    return s3.put_object(Bucket=bucket, Key=key, Body=f"data of {key}\n".encode(), **extra)["VersionId"]


def _settle(s3, bucket: str, written: dict[str, str], timeout: float = 60.0) -> None:
    """Wait until no written version is PENDING."""
    deadline = time.monotonic() + timeout
    for key, version in written.items():
        while s3.head_object(Bucket=bucket, Key=key, VersionId=version).get("ReplicationStatus") == "PENDING":
            if time.monotonic() > deadline:
                raise SystemExit(f"backlog: {key} still PENDING after {timeout}s")
            time.sleep(0.2)


def build(endpoint: str, suffix: str | None = None) -> tuple[World, dict]:
    """Builds the scenario; returns the world and the expectations
    ({class: [[key, version], ...]}, "manifest": [[bucket, key, version], ...], "canaries": n)."""
    suffix = make_suffix(suffix)
    p = Provisioner(endpoint, suffix)
    role = f"arn:aws:iam::{SOURCE_ACCOUNT}:role/{p.names(NAME)['replication_role']}"
    wrong = p.wrong_key(NAME)
    dest = p.destination(NAME, "", role, replica_key=wrong)
    sc = p.source(NAME, [dest])
    s3, bucket = p.src.s3, sc.source_bucket
    config = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]

    # 1. Before the rule.
    s3.delete_bucket_replication(Bucket=bucket)
    before = {f"before/{i}.csv": None for i in range(3)}
    for k in before:
        before[k] = _put(s3, bucket, k)

    # 2. The rule with the wrong key.
    s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=config)
    p.extend_lab_config("fail", [{"pattern": f"{bucket}/failed/*"}])
    wrong_keys = {k: _put(s3, bucket, k) for k in ("wrong/a.json", "wrong/b.json", ODD_KEY)}
    failed = {"failed/x.bin": _put(s3, bucket, "failed/x.bin")}
    old_rewritten = _put(s3, bucket, "rewritten")
    _settle(s3, bucket, {**wrong_keys, **failed, "rewritten": old_rewritten})

    # 3. The rule fixed: the destination's own key.
    for rule in config["Rules"]:
        rule["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"] = dest.expected_kms_key_arn
    p.src.iam.put_role_policy(RoleName=p.names(NAME)["replication_role"],
                              PolicyName=f"{p.names(NAME)['replication_role']}-policy",
                              PolicyDocument=replication_role_policy(bucket, [dest.bucket],
                                                                     [wrong, dest.expected_kms_key_arn]))
    s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=config)
    dest.replica_kms_key_arn = dest.expected_kms_key_arn
    after = {k: _put(s3, bucket, k) for k in ("after/1.txt", "after/2.txt", "after/3.txt", "rewritten")}
    sse_s3 = {k: _put(s3, bucket, k, ServerSideEncryption="AES256") for k in ("sse-s3/p.txt", "sse-s3/q.txt")}
    canary = _put(s3, bucket, CANARY_KEY, Metadata={"replicanary": "canary-v1", "replicanary-sha256": "ab" * 32})
    _settle(s3, bucket, {**after, **sse_s3, CANARY_KEY: canary})

    classes = {
        "not_replicated": before,
        "replication_failed": failed,
        "wrong_kms_key": wrong_keys,
        "not_kms_encrypted": sse_s3,
        "ok": after,
    }
    expect = {c: sorted([k, v] for k, v in kv.items()) for c, kv in classes.items()}
    expect["manifest"] = sorted([bucket, k, v] for kv in (before, failed, wrong_keys) for k, v in kv.items())
    expect["canaries"] = 1
    expect["source_bucket"] = bucket
    expect["destination"] = dest.bucket
    world = World(endpoint, suffix, provision.REGION, {NAME: sc})
    return world, expect


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--out", required=True, help="replicanary configuration to write")
    ap.add_argument("--suffix")
    ap.add_argument("--expect", help="write what a scan must find here (JSON)")
    ap.add_argument("--interval", default="2s", help="probe interval of the configuration")
    ap.add_argument("--scan", metavar="JSON", help='`scan:` for the defaults, e.g. {"interval": "10s", "rate": 50}')
    args = ap.parse_args(argv)
    provision.wait_for_lab(args.endpoint)
    world, expect = build(args.endpoint, args.suffix)
    config = provision.config_dict(world, interval=args.interval)
    if args.scan:
        config["defaults"]["scan"] = json.loads(args.scan)
    import yaml

    Path(args.out).write_text(yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=200))
    if args.expect:
        Path(args.expect).write_text(json.dumps(expect, ensure_ascii=False, indent=1))
    print(f"backlog: {sum(len(v) for c, v in expect.items() if isinstance(v, list) and c != 'manifest')} "
          f"objects in {expect['source_bucket']}", file=sys.stderr)


if __name__ == "__main__":
    main()
