"""`POST /_lab/bulk-objects`: many replicated objects at once, for benchmarks.

Writes `count` SSE-KMS objects straight into ministack's store — no HTTP request, no KMS
check, no replication job per object — as if each had been written through the API and
replicated: the source version `COMPLETED`, and (with `destination_bucket`) a replica of
the same version id in the destination, `REPLICA`, under `replica_kms_key_arn`. What the
scan then reads (ListObjectVersions, HeadObject, GetObject) is served by the normal,
corrected code paths. 100,000 objects take seconds instead of the ~10 minutes of as many
PutObjects through the API.

    {"source_bucket": "...", "destination_bucket": "...", "prefix": "bench/", "count": 100000,
     "source_kms_key_arn": "arn:...", "replica_kms_key_arn": "arn:...", "size": 16,
     "region": "ap-northeast-1", "start": 0}

Keys are `<prefix><8-digit index>`, indexes `start` to `start + count - 1` (write a large set in
chunks: one call holds the lab's event loop for its whole duration). Answers {"written": N, "seconds": S}.
"""

from __future__ import annotations

import copy
import time

from ministack.core import responses as ms_responses
from ministack.services import s3 as ms_s3

import lab_plugin
from lab_state import ConfigError

MAX_COUNT = 1_000_000


def bulk_objects(payload: dict) -> dict:
    started = time.monotonic()
    try:
        source = str(payload["source_bucket"])
        count = int(payload["count"])
        source_key = str(payload["source_kms_key_arn"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"bulk-objects needs source_bucket, count and source_kms_key_arn ({exc})") from exc
    if not 0 < count <= MAX_COUNT:
        raise ConfigError(f"count must be between 1 and {MAX_COUNT}")
    destination = payload.get("destination_bucket")
    replica_key = payload.get("replica_kms_key_arn") or source_key
    prefix = str(payload.get("prefix", "bulk/"))
    start = int(payload.get("start", 0))
    size = int(payload.get("size", 16))
    region = str(payload.get("region", "ap-northeast-1"))
    src_account = ms_s3._bucket_owner_account(source)
    if src_account is None:
        raise ConfigError(f"no bucket {source}")
    dst_account = ms_s3._bucket_owner_account(destination) if destination else None
    if destination and dst_account is None:
        raise ConfigError(f"no bucket {destination}")
    body = b"x" * size
    sse = {lab_plugin.SSE_HEADER: "aws:kms", lab_plugin.KMS_KEY_HEADER: source_key}
    written = []
    with ms_responses.request_scope(src_account, region):
        bucket = ms_s3._buckets.get(source)
        for i in range(start, start + count):
            key = f"{prefix}{i:08d}"
            obj = ms_s3._build_object_record(body, {})
            obj["preserved_headers"].update(sse)
            obj["replication_status"] = "COMPLETED" if destination else None
            prior = bucket["objects"].get(key)
            bucket["objects"][key] = obj
            version_id = ms_s3._record_object_version(source, key, prior, obj, body)
            written.append((key, obj, version_id))
    if destination:
        with ms_responses.request_scope(dst_account, region):
            dest_bucket = ms_s3._buckets.get(destination)
            for key, obj, version_id in written:
                replica = copy.deepcopy({k: v for k, v in obj.items() if k != "body"})
                replica["body"] = body
                replica["replication_status"] = "REPLICA"
                replica["preserved_headers"][lab_plugin.KMS_KEY_HEADER] = replica_key
                lab_plugin._store_replica(destination, dest_bucket, key, replica, body, version_id, None)
    return {"written": count, "seconds": round(time.monotonic() - started, 3)}
