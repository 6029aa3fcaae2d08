"""Spec tests of the lab's test knobs added for issue 6 (reliability campaigns):
short STS sessions (`sts_session_seconds`) and stable KMS key ids across a restart
(`--deterministic-key-ids`)."""

from __future__ import annotations

import time
import urllib.error

import pytest
from botocore.exceptions import ClientError

import lab
import provision


def test_sts_session_seconds_caps_assume_role_and_sessions_expire(lab_server, world):
    role = world.scenarios["healthy"].source_role_arn
    try:
        assert lab_server.admin("POST", "/_lab/config", {"sts_session_seconds": 2})["sts_session_seconds"] == 2
        creds = lab.assume(lab_server.endpoint, role)
        lifetime = creds["Expiration"].timestamp() - time.time()
        assert 0 < lifetime <= 3, lifetime
        s3 = lab.s3_as(lab_server.endpoint, creds, retries=1)
        s3.list_object_versions(Bucket=world.scenarios["healthy"].source_bucket, Prefix="replicanary/")
        time.sleep(3)
        with pytest.raises(ClientError) as exc:
            s3.list_object_versions(Bucket=world.scenarios["healthy"].source_bucket, Prefix="replicanary/")
        assert exc.value.response["Error"]["Code"] in ("ExpiredToken", "ExpiredTokenException")
    finally:
        lab_server.admin("POST", "/_lab/config", {"sts_session_seconds": 0})
    creds = lab.assume(lab_server.endpoint, role)
    assert creds["Expiration"].timestamp() - time.time() > 600, "0 turns the cap off"


def test_sts_session_seconds_is_validated(lab_server):
    with pytest.raises(urllib.error.HTTPError) as exc:
        lab_server.admin("POST", "/_lab/config", {"sts_session_seconds": -1})
    assert exc.value.code == 400
    assert lab_server.admin("GET", "/_lab/config")["sts_session_seconds"] == 0


def test_cap_session_duration_rewrites_only_assume_role():
    from lab_plugin import cap_session_duration

    body, _ = cap_session_duration(b"Action=AssumeRole&RoleArn=r&DurationSeconds=3600", {}, 15)
    assert b"DurationSeconds=15" in body and b"RoleArn=r" in body
    body, _ = cap_session_duration(b"Action=AssumeRole&RoleArn=r", {}, 15)
    assert b"DurationSeconds=15" in body
    body, _ = cap_session_duration(b"Action=AssumeRole&DurationSeconds=10", {}, 15)
    assert b"DurationSeconds=10" in body, "shorter requests stay as asked"
    assert cap_session_duration(b"Action=GetCallerIdentity", {}, 15)[0] == b"Action=GetCallerIdentity"


def test_deterministic_key_ids_survive_a_restart():
    port = lab.free_port()
    arns = []
    for _ in range(2):
        server = lab.LabProcess.start(port=port, args=["--deterministic-key-ids"])
        try:
            world = provision.provision(server.endpoint, ["healthy", "wrong-key"], suffix="-det")
            arns.append({name: [d.expected_kms_key_arn for d in sc.destinations]
                         for name, sc in world.scenarios.items()})
        finally:
            server.stop()
    assert arns[0] == arns[1]
    assert arns[0]["healthy"] != arns[0]["wrong-key"]


def test_sessions_file_keeps_sts_sessions_across_a_restart(tmp_path):
    port = lab.free_port()
    args = ["--deterministic-key-ids", "--sessions-file", str(tmp_path / "sessions.jsonl")]
    server = lab.LabProcess.start(port=port, args=args)
    try:
        world = provision.provision(server.endpoint, ["healthy"], suffix="-ses")
        creds = lab.assume(server.endpoint, world.scenarios["healthy"].source_role_arn)
    finally:
        server.stop()
    server = lab.LabProcess.start(port=port, args=args)
    try:
        provision.provision(server.endpoint, ["healthy"], suffix="-ses")
        s3 = lab.s3_as(server.endpoint, creds, retries=1)
        s3.list_object_versions(Bucket=world.scenarios["healthy"].source_bucket, Prefix="replicanary/")
    finally:
        server.stop()


def test_tamper_replaces_the_body_and_sets_headers(lab_server, world):
    from test_lab import Probe

    p = Probe(lab_server.endpoint, world.scenarios["healthy"])
    key, version, _ = p.put()
    # The source probe role may not read its canaries back (it has no kms:Decrypt): the
    # source account's root reads them.
    root = provision.Account(lab_server.endpoint, provision.SOURCE_ACCOUNT).s3
    try:
        lab_server.admin("POST", "/_lab/config", {"tamper": {
            "operations": ["HeadObject", "GetObject"], "buckets": [p.bucket],
            "body_bytes": 300_000, "headers": {"x-amz-meta-hostile": "y" * 100}}})
        head = p.src.head_object(Bucket=p.bucket, Key=key, VersionId=version)
        assert head["Metadata"]["hostile"] == "y" * 100
        assert head["ContentLength"] == 300_000
        body = root.get_object(Bucket=p.bucket, Key=key, VersionId=version)["Body"].read()
        assert body == b"\x00" * 300_000
        assert lab_server.admin("GET", "/_lab/stats")["tamper_body_bytes_sent"] >= 300_000
    finally:
        lab_server.admin("POST", "/_lab/reset-faults")
    assert lab_server.admin("GET", "/_lab/config")["tamper"]["operations"] == []
    assert root.get_object(Bucket=p.bucket, Key=key, VersionId=version)["Body"].read() != b"\x00" * 300_000


def test_tamper_is_validated(lab_server):
    with pytest.raises(urllib.error.HTTPError):
        lab_server.admin("POST", "/_lab/config", {"tamper": {"body_bytes": -1}})
    with pytest.raises(urllib.error.HTTPError):
        lab_server.admin("POST", "/_lab/config", {"tamper": {"nope": 1}})
