"""The baseline for `replicanary scan`: the straightforward boto3 script a team writes —
list the source's current versions page by page, HEAD each version as the source role,
HEAD its replica (same key, same version id) as the destination role, count key matches.
One thread, persistent clients.

    reference_scan.py --endpoint URL --source-bucket B --source-role ARN
                      --destination-bucket B --destination-role ARN --expected-key ARN [--prefix P]

Prints one JSON line: {"objects", "requests", "ok", "other", "seconds"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
import provision  # noqa: E402


def s3_as(endpoint: str, role_arn: str):
    creds = provision.assume(endpoint, role_arn, "reference-scan")
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=provision.REGION,
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=creds["AWS_SESSION_TOKEN"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("endpoint", "source-bucket", "source-role", "destination-bucket", "destination-role", "expected-key"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--prefix", default="")
    a = ap.parse_args(argv)
    started = time.monotonic()
    src, dst = s3_as(a.endpoint, a.source_role), s3_as(a.endpoint, a.destination_role)
    objects = requests = ok = other = 0
    for page in src.get_paginator("list_object_versions").paginate(Bucket=a.source_bucket, Prefix=a.prefix):
        requests += 1
        for v in page.get("Versions", []):
            if not v.get("IsLatest"):
                continue
            objects += 1
            head = src.head_object(Bucket=a.source_bucket, Key=v["Key"], VersionId=v["VersionId"])
            requests += 1
            if head.get("ReplicationStatus") != "COMPLETED":
                other += 1
                continue
            replica = dst.head_object(Bucket=a.destination_bucket, Key=v["Key"], VersionId=v["VersionId"])
            requests += 1
            if replica.get("SSEKMSKeyId") == a.expected_key:
                ok += 1
            else:
                other += 1
    print(json.dumps({"objects": objects, "requests": requests, "ok": ok, "other": other,
                      "seconds": round(time.monotonic() - started, 3)}))


if __name__ == "__main__":
    main()
