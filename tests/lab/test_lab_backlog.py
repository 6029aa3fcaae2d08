"""Fidelity tests for what `replicanary scan` reads in the lab (tests/lab/README.md, "The
backlog", gives the AWS source of each):

1. an object written before the bucket had a replication rule has no replication status,
   and a rule added later does not replicate it;
2. replicas written while the rule named a key keep that key after the rule changes:
   only new writes replicate under the new ReplicaKmsKeyID;
3. an SSE-S3 object is replicated by a rule that also selects SSE-KMS objects, and its
   replica is SSE-S3, not SSE-KMS;
4. a current version rewritten after the fix is the only one listed as latest;
5. POST /_lab/bulk-objects: objects that read exactly like replicated ones.
"""

from __future__ import annotations

import urllib.error

import pytest

import backlog
import provision


def _head(s3, bucket, key, version):
    return s3.head_object(Bucket=bucket, Key=key, VersionId=version)


def test_the_backlog_reads_as_its_history(lab_server):
    world, expect = backlog.build(lab_server.endpoint, "-fid")
    sc = world.scenarios[backlog.NAME]
    dest = sc.destinations[0]
    src = provision.client("s3", lab_server.endpoint, provision.SOURCE_ACCOUNT)
    dst = provision.client("s3", lab_server.endpoint, provision.DEST_ACCOUNT)

    for key, version in expect["not_replicated"]:                       # 1
        assert "ReplicationStatus" not in _head(src, sc.source_bucket, key, version)
        versions = dst.list_object_versions(Bucket=dest.bucket, Prefix=key).get("Versions", [])
        assert versions == [], f"{key} was replicated after the fact"
    for key, version in expect["wrong_kms_key"]:                        # 2
        assert _head(src, sc.source_bucket, key, version)["ReplicationStatus"] == "COMPLETED"
        replica = _head(dst, dest.bucket, key, version)
        assert replica["ReplicationStatus"] == "REPLICA"
        assert replica["SSEKMSKeyId"] != dest.expected_kms_key_arn
        assert replica["SSEKMSKeyId"].split(":")[4] == provision.SOURCE_ACCOUNT
    for key, version in expect["ok"]:
        assert _head(dst, dest.bucket, key, version)["SSEKMSKeyId"] == dest.expected_kms_key_arn
    for key, version in expect["not_kms_encrypted"]:                    # 3
        assert _head(src, sc.source_bucket, key, version)["ReplicationStatus"] == "COMPLETED"
        replica = _head(dst, dest.bucket, key, version)
        assert replica["ServerSideEncryption"] == "AES256"
        assert "SSEKMSKeyId" not in replica
    for key, version in expect["replication_failed"]:
        assert _head(src, sc.source_bucket, key, version)["ReplicationStatus"] == "FAILED"

    listed = src.list_object_versions(Bucket=sc.source_bucket, Prefix="rewritten")["Versions"]   # 4
    assert len(listed) == 2
    latest = [v["VersionId"] for v in listed if v["IsLatest"]]
    assert [["rewritten", v] for v in latest] == [kv for kv in expect["ok"] if kv[0] == "rewritten"]


def test_bulk_objects_read_like_replicated_ones(lab_server):
    world = provision.provision(lab_server.endpoint, ["healthy"], suffix="-bulk")
    sc = world.scenarios["healthy"]
    dest = sc.destinations[0]
    answer = lab_server.admin("POST", "/_lab/bulk-objects", {
        "source_bucket": sc.source_bucket, "destination_bucket": dest.bucket, "prefix": "bulk/",
        "count": 1500, "source_kms_key_arn": sc.source_key_arn, "replica_kms_key_arn": dest.expected_kms_key_arn})
    assert answer["written"] == 1500
    src = provision.client("s3", lab_server.endpoint, provision.SOURCE_ACCOUNT)
    dst = provision.client("s3", lab_server.endpoint, provision.DEST_ACCOUNT)
    pages = list(src.get_paginator("list_object_versions").paginate(Bucket=sc.source_bucket, Prefix="bulk/"))
    versions = [v for p in pages for v in p.get("Versions", [])]
    assert len(pages) == 2 and len(versions) == 1500 and all(v["IsLatest"] for v in versions)
    for v in (versions[0], versions[777], versions[-1]):
        head = _head(src, sc.source_bucket, v["Key"], v["VersionId"])
        assert head["ReplicationStatus"] == "COMPLETED"
        assert head["SSEKMSKeyId"] == sc.source_key_arn
        replica = _head(dst, dest.bucket, v["Key"], v["VersionId"])
        assert replica["ReplicationStatus"] == "REPLICA"
        assert replica["SSEKMSKeyId"] == dest.expected_kms_key_arn
    with pytest.raises(urllib.error.HTTPError) as refused:
        lab_server.admin("POST", "/_lab/bulk-objects", {"source_bucket": sc.source_bucket, "count": 0,
                                                        "source_kms_key_arn": sc.source_key_arn})
    assert refused.value.code == 400
