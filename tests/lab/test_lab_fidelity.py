"""Fidelity tests: the AWS behaviours the probe's verdicts rely on, as the lab models them
(tests/lab/README.md, "AWS behaviours modelled for the probe's verdicts", gives the source
of each). Every test talks to the lab as replicanary does: boto3 with the probe roles,
assumed from the monitoring account's root.

1. archive classes: HeadObject works and names the class, GetObject 403 InvalidObjectState
   (before any KMS check); GLACIER_IR reads normally;
2. replica ownership: without the owner override, in a bucket that does not enforce
   bucket-owner ownership, the replica stays the source account's: 403 to the destination;
3. Object Lock: replicas get the source's retention, else the destination's default;
   retention headers only with s3:GetObjectRetention; version deletes refused until the
   retain-until date; a lab knob shortens the retention day;
4. per-destination delay and failure in a fan-out rule, and the source status meanwhile;
5. a replica lost after COMPLETED; HeadObject/GetObject of a missing key or version: 404
   only with s3:ListBucket, else 403.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import uuid

import pytest
from botocore.exceptions import ClientError

import lab
import provision
from test_lab import DELAY, KMS_DENIED, Probe, error_of

ARCHIVED = ("InvalidObjectState", "The operation is not valid for the object's storage class", 403)
DENIED = ("AccessDenied", "Access Denied", 403)
HEAD_DENIED = ("403", "Forbidden", 403)      # a HEAD answer has no body: botocore names the status
HEAD_MISSING = ("404", "Not Found", 404)
LOCKED = ("AccessDenied", "Access Denied because object protected by object lock.", 403)


def refused(call, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return error_of(exc)


def settle(probe: Probe, key: str, version: str, timeout: float = 6.0) -> str | None:
    status, _ = probe.wait_final(key, version, timeout)
    return status


@pytest.fixture
def lab_config(lab_server):
    """Set lab knobs for one test; every field touched is restored afterwards."""
    before = lab_server.admin("GET", "/_lab/config")
    touched = set()

    def apply(**fields):
        touched.update(fields)
        return lab_server.admin("POST", "/_lab/config", fields)

    yield apply
    if touched:
        lab_server.admin("POST", "/_lab/config", {k: before[k] for k in touched})


@pytest.fixture(scope="module")
def adhoc(lab_server):
    """A provisioner for worlds the scenarios do not cover (suffix -fx)."""
    return provision.Provisioner(lab_server.endpoint, "-fx")


def _replication_role(prov: provision.Provisioner, name: str) -> str:
    return f"arn:aws:iam::{provision.SOURCE_ACCOUNT}:role/{prov.names(name)['replication_role']}"


@pytest.fixture(scope="module")
def landed(lab_server, world, adhoc):
    """One canary per scenario or ad-hoc world below, all put at once and left to replicate,
    so the tests share one replication delay: {label: (probe, key, version, final status)}.
    A label "name/extra" is a second canary in world `name`."""
    role = _replication_role(adhoc, "classes")
    classes = adhoc.source("classes", [adhoc.destination("classes", "glacier", role, storage_class="GLACIER"),
                                       adhoc.destination("classes", "instant", role, storage_class="GLACIER_IR")])
    role = _replication_role(adhoc, "owners")
    override = adhoc.destination("owners", "override", role, object_ownership="ObjectWriter")
    policy = json.loads(provision.destination_bucket_policy(override.bucket, role))
    policy["Statement"].append({  # what the owner override needs when ACLs are enabled ("Changing the replica owner")
        "Sid": "Owner override", "Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": "s3:ObjectOwnerOverrideToBucketOwner", "Resource": f"arn:aws:s3:::{override.bucket}/*",
        "Condition": {"ArnLike": {"aws:PrincipalArn": role}}})
    adhoc.dst.s3.put_bucket_policy(Bucket=override.bucket, Policy=json.dumps(policy))
    owners = adhoc.source("owners", [
        adhoc.destination("owners", "preferred", role, owner_override=False, object_ownership="BucketOwnerPreferred"),
        adhoc.destination("owners", "enforced", role, owner_override=False),
        override,
        adhoc.destination("owners", "nogrant", role, object_ownership="ObjectWriter"),
    ])
    role = _replication_role(adhoc, "takeover")
    takeover = adhoc.source("takeover", [adhoc.destination("takeover", "", role, owner_override=False,
                                                           object_ownership="ObjectWriter")])
    worlds = {name: world.scenarios[name] for name in
              ("archive", "archive-wrong-key", "source-owned", "vanished", "vanished-no-list", "healthy", "locked")}
    worlds.update(classes=classes, owners=owners, takeover=takeover)
    probes = {name: Probe(lab_server.endpoint, sc) for name, sc in worlds.items()}
    labels = [*probes, "source-owned/delete"]
    puts = {label: probes[label.split("/")[0]].put(f"canary {label}".encode()) for label in labels}
    out = {}
    for label in labels:
        p, (key, version, _) = probes[label.split("/")[0]], puts[label]
        out[label] = (p, key, version, settle(p, key, version))
    return out


# ---------------------------------------------------------------------------
# 1. archive storage classes
# ---------------------------------------------------------------------------


def test_archive_replica_heads_with_its_class_and_refuses_get(landed):
    p, key, version, status = landed["archive"]
    dest = p.scenario.destinations[0]
    assert status == "COMPLETED"
    head = p.replica(dest.name, key, version)
    assert head["StorageClass"] == "DEEP_ARCHIVE"
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-storage-class"] == "DEEP_ARCHIVE"
    assert head["SSEKMSKeyId"] == dest.expected_kms_key_arn
    assert head["ReplicationStatus"] == "REPLICA" and head["VersionId"] == version
    assert refused(p.dst[dest.name].get_object, Bucket=dest.bucket, Key=key, VersionId=version) == ARCHIVED
    # the current version too (no version id)
    assert refused(p.dst[dest.name].get_object, Bucket=dest.bucket, Key=key) == ARCHIVED
    assert "StorageClass" not in p.head(key, version), "the source stays STANDARD (header omitted)"


def test_archive_refuses_get_before_any_kms_check(landed):
    p, key, version, status = landed["archive-wrong-key"]
    dest = p.scenario.destinations[0]
    assert status == "COMPLETED"
    head = p.replica(dest.name, key, version)  # the HEAD tells the wrong key
    assert head["StorageClass"] == "DEEP_ARCHIVE"
    assert head["SSEKMSKeyId"] == dest.replica_kms_key_arn != dest.expected_kms_key_arn
    assert head["SSEKMSKeyId"].startswith("arn:aws:kms:ap-northeast-1:111111111111:key/")
    # the same key in STANDARD answers the KMS refusal (wrong-key); archived, S3 refuses first
    assert refused(p.dst[dest.name].get_object, Bucket=dest.bucket, Key=key, VersionId=version) == ARCHIVED


def test_glacier_is_archived_and_glacier_ir_reads(landed):
    p, key, version, status = landed["classes"]
    assert status == "COMPLETED"
    glacier, instant = p.dest["glacier"], p.dest["instant"]
    assert p.replica("glacier", key, version)["StorageClass"] == "GLACIER"
    assert refused(p.dst["glacier"].get_object, Bucket=glacier.bucket, Key=key, VersionId=version) == ARCHIVED
    assert p.replica("instant", key, version)["StorageClass"] == "GLACIER_IR"
    assert p.read_replica("instant", key, version) == b"canary classes"
    assert instant.bucket != glacier.bucket


# ---------------------------------------------------------------------------
# 2. replica ownership
# ---------------------------------------------------------------------------


def test_source_owned_replica_is_refused_to_the_destination(landed, lab_server):
    p, key, version, status = landed["source-owned"]
    dest = p.scenario.destinations[0]
    assert status == "COMPLETED", "replication itself succeeds"
    s3 = p.dst[dest.name]
    assert refused(s3.head_object, Bucket=dest.bucket, Key=key, VersionId=version) == HEAD_DENIED
    assert refused(s3.get_object, Bucket=dest.bucket, Key=key, VersionId=version) == DENIED
    assert refused(s3.get_object, Bucket=dest.bucket, Key=key) == DENIED, "the current version too"
    root = provision.client("s3", lab_server.endpoint, provision.DEST_ACCOUNT)
    assert refused(root.head_object, Bucket=dest.bucket, Key=key, VersionId=version) == HEAD_DENIED, \
        "even the destination account's root does not own it"
    listed = s3.list_object_versions(Bucket=dest.bucket, Prefix=key)["Versions"]
    assert [v["VersionId"] for v in listed] == [version], "the replica is there"
    ownership = root.get_bucket_ownership_controls(Bucket=dest.bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "ObjectWriter"}]


def test_source_owned_replica_can_still_be_deleted_by_the_bucket_owner(landed):
    p, key, version, status = landed["source-owned/delete"]
    dest = p.scenario.destinations[0]
    assert status == "COMPLETED"
    assert refused(p.dst[dest.name].head_object, Bucket=dest.bucket, Key=key, VersionId=version) == HEAD_DENIED
    p.dst[dest.name].delete_object(Bucket=dest.bucket, Key=key, VersionId=version)
    assert not p.dst[dest.name].list_object_versions(Bucket=dest.bucket, Prefix=key).get("Versions")


def test_ownership_settings_and_the_owner_override(landed):
    p, key, version, status = landed["owners"]
    assert status == "FAILED", "'nogrant': an owner override without s3:ObjectOwnerOverrideToBucketOwner fails"
    # BucketOwnerPreferred without the override: as ObjectWriter, the source account owns it (inferred)
    preferred = p.dest["preferred"]
    assert refused(p.dst["preferred"].head_object, Bucket=preferred.bucket, Key=key, VersionId=version) == HEAD_DENIED
    assert refused(p.dst["preferred"].get_object, Bucket=preferred.bucket, Key=key, VersionId=version) == DENIED
    # BucketOwnerEnforced (the default) without the override: the destination owns it
    assert p.read_replica("enforced", key, version) == b"canary owners"
    # ObjectWriter with the override (and its grant in the bucket policy): the destination owns it
    assert p.read_replica("override", key, version) == b"canary owners"
    with pytest.raises(ClientError) as exc:
        p.replica("nogrant", key, version)
    assert error_of(exc) == HEAD_MISSING


def test_bucket_owner_enforced_later_makes_a_source_owned_replica_readable(landed, adhoc):
    p, key, version, status = landed["takeover"]
    dest = p.scenario.destinations[0]
    assert status == "COMPLETED"
    assert refused(p.dst[dest.name].head_object, Bucket=dest.bucket, Key=key, VersionId=version) == HEAD_DENIED
    adhoc.dst.s3.put_bucket_ownership_controls(Bucket=dest.bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert p.read_replica(dest.name, key, version) == b"canary takeover"


# ---------------------------------------------------------------------------
# 3. Object Lock
# ---------------------------------------------------------------------------


def _until(head: dict) -> float:
    return head["ObjectLockRetainUntilDate"].timestamp()


def _wait_past(when: float) -> None:
    time.sleep(max(0.0, when - time.time()) + 0.3)


def test_locked_destination_retains_replicas_until_the_retain_until_date(lab_server, world, lab_config):
    day = 2.5
    assert lab_config(object_lock_day_seconds=day)["object_lock_day_seconds"] == day
    p = Probe(lab_server.endpoint, world.scenarios["locked"])
    dest = p.scenario.destinations[0]
    s3 = p.dst[dest.name]
    put_at = time.time()
    key, version, _ = p.put(b"locked")
    key2, version2, _ = p.put(b"marker")
    assert settle(p, key, version) == "COMPLETED"
    head = p.replica(dest.name, key, version)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    # default retention "Days 1" from the replica's creation (one replication delay after the PUT)
    assert DELAY + day - 0.5 <= _until(head) - put_at <= DELAY + day + 1.0, _until(head) - put_at
    raw = head["ResponseMetadata"]["HTTPHeaders"]
    assert raw["x-amz-object-lock-mode"] == "GOVERNANCE" and raw["x-amz-object-lock-retain-until-date"].endswith("Z")
    got = s3.get_object(Bucket=dest.bucket, Key=key, VersionId=version)
    assert got["ObjectLockMode"] == "GOVERNANCE" and got["Body"].read() == b"locked"
    assert "ObjectLockMode" not in p.head(key, version), "the source bucket has no Object Lock"
    assert refused(s3.delete_object, Bucket=dest.bucket, Key=key, VersionId=version) == LOCKED
    assert [v["VersionId"] for v in s3.list_object_versions(Bucket=dest.bucket, Prefix=key)["Versions"]] == [version]
    # a delete without version id only adds a delete marker; the locked version stays
    assert settle(p, key2, version2) == "COMPLETED"
    root = provision.client("s3", lab_server.endpoint, provision.DEST_ACCOUNT)
    assert root.delete_object(Bucket=dest.bucket, Key=key2)["DeleteMarker"] is True
    assert refused(root.delete_object, Bucket=dest.bucket, Key=key2, VersionId=version2) == LOCKED, \
        "the account root too: no governance bypass asked"
    _wait_past(_until(head))
    s3.delete_object(Bucket=dest.bucket, Key=key, VersionId=version)
    assert not s3.list_object_versions(Bucket=dest.bucket, Prefix=key).get("Versions")


def test_lock_headers_need_s3_get_object_retention(lab_server, landed):
    """HeadObject/GetObject show the retention only to a caller allowed s3:GetObjectRetention."""
    p, key, version, status = landed["locked"]
    dest = p.scenario.destinations[0]
    name = f"replicanary-reader-{uuid.uuid4().hex[:8]}"
    reader_arn = provision.create_role(
        provision.Account(lab_server.endpoint, provision.DEST_ACCOUNT), name,
        provision._trust({"AWS": f"arn:aws:iam::{provision.MONITOR_ACCOUNT}:root"}),
        provision._doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion", "kms:Decrypt"],
                        "Resource": [f"arn:aws:s3:::{dest.bucket}/*", dest.expected_kms_key_arn]}))
    assert status == "COMPLETED"
    assert p.replica(dest.name, key, version)["ObjectLockMode"] == "GOVERNANCE"
    reader = lab.s3_as(lab_server.endpoint, lab.assume(lab_server.endpoint, reader_arn))
    head = reader.head_object(Bucket=dest.bucket, Key=key, VersionId=version)
    assert "ObjectLockMode" not in head and "ObjectLockRetainUntilDate" not in head
    got = reader.get_object(Bucket=dest.bucket, Key=key, VersionId=version)
    assert "ObjectLockMode" not in got and got["Body"].read() == b"canary locked"
    with pytest.raises(ClientError) as exc:  # nor GetObjectRetention itself
        reader.get_object_retention(Bucket=dest.bucket, Key=key, VersionId=version)
    assert error_of(exc)[0] == "AccessDenied"


def test_replica_keeps_the_source_retention_and_a_locked_source_refuses_deletes(lab_server, adhoc, lab_config):
    day = 3.0
    lab_config(object_lock_day_seconds=day)
    role = _replication_role(adhoc, "srclock")
    dest = adhoc.destination("srclock", "", role, default_retention={"Mode": "COMPLIANCE", "Days": 3})
    p = Probe(lab_server.endpoint, adhoc.source("srclock", [dest], default_retention={"Mode": "GOVERNANCE",
                                                                                     "Days": 1}))
    put_at = time.time()
    key, version, _ = p.put(b"source locked")
    source = p.head(key, version)
    assert source["ObjectLockMode"] == "GOVERNANCE"
    assert day - 0.5 <= _until(source) - put_at <= day + 0.7
    assert settle(p, key, version) == "COMPLETED"
    replica = p.replica(dest.name, key, version)
    assert replica["ObjectLockMode"] == "GOVERNANCE", "the source's retention overrides the destination default"
    assert _until(replica) == _until(source)
    assert refused(p.src.delete_object, Bucket=p.bucket, Key=key, VersionId=version) == LOCKED
    assert refused(p.dst[dest.name].delete_object, Bucket=dest.bucket, Key=key, VersionId=version) == LOCKED
    _wait_past(_until(source))
    p.src.delete_object(Bucket=p.bucket, Key=key, VersionId=version)
    p.dst[dest.name].delete_object(Bucket=dest.bucket, Key=key, VersionId=version)


def test_object_lock_day_seconds_is_validated_and_set_by_flag(lab_server):
    for bad in (0, -1, "1"):
        with pytest.raises(urllib.error.HTTPError) as exc:
            lab_server.admin("POST", "/_lab/config", {"object_lock_day_seconds": bad})
        assert exc.value.code == 400
    assert lab_server.admin("GET", "/_lab/config")["object_lock_day_seconds"] == 86400
    with lab.LabProcess.start(args=["--object-lock-day-seconds", "5", "--destination-delay", "rc-a-*=2.5",
                                    "--destination-fail", "rc-b-*", "--lose-replicas", "rc-c-*"]) as other:
        cfg = other.admin("GET", "/_lab/config")
    assert cfg["object_lock_day_seconds"] == 5
    assert cfg["destination_delays"] == [{"pattern": "rc-a-*", "seconds": 2.5}]
    assert cfg["destination_fail"] == [{"pattern": "rc-b-*"}]
    assert cfg["lose_replicas"] == [{"pattern": "rc-c-*"}]


# ---------------------------------------------------------------------------
# 4. fan-out: one destination slower or failing
# ---------------------------------------------------------------------------


def _poll(p: Probe, key: str, version: str, until: float) -> list[tuple[float, str, bool, bool]]:
    """(seconds since start, source status, replica in dest 0, replica in dest 1) every 150 ms."""
    start, seen = time.monotonic(), []
    names = [d.name for d in p.scenario.destinations]

    def present(name):
        try:
            p.replica(name, key, version)
            return True
        except ClientError as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404
            return False

    while time.monotonic() - start < until:
        seen.append((time.monotonic() - start, p.head(key, version).get("ReplicationStatus"),
                     present(names[0]), present(names[1])))
        time.sleep(0.15)
    return seen


def test_partial_fan_out_fails_before_the_slow_destination_is_done(probes):
    p = probes("partial-fan-out")
    assert [d.name for d in p.scenario.destinations] == ["failing", "slow"]
    key, version, _ = p.put(b"partial")
    seen = _poll(p, key, version, provision.PARTIAL_SLOW_DELAY + 0.8)
    failed_at = next(t for t, status, _, _ in seen if status == "FAILED")
    slow_at = next(t for t, _, _, slow in seen if slow)
    assert DELAY * 0.7 <= failed_at <= DELAY + 1.0
    assert provision.PARTIAL_SLOW_DELAY - 0.5 <= slow_at <= provision.PARTIAL_SLOW_DELAY + 0.8
    assert any(status == "FAILED" and not slow for _, status, _, slow in seen), \
        "FAILED shows while the slow destination is still pending"
    assert all(status == "FAILED" for t, status, _, _ in seen if t >= failed_at), "FAILED stays"
    assert not any(failing for _, _, failing, _ in seen), "the failing destination never gets a replica"
    assert p.read_replica("slow", key, version) == b"partial"


def test_destination_fail_knob_fails_one_destination(lab_server, probes, lab_config):
    p = probes("fan-out")
    lab_config(destination_fail=[{"pattern": p.dest["wrong"].bucket}])
    key, version, _ = p.put(b"one fails")
    assert settle(p, key, version) == "FAILED"
    assert p.read_replica("good", key, version) == b"one fails"
    with pytest.raises(ClientError) as exc:
        p.replica("wrong", key, version)
    assert error_of(exc) == HEAD_MISSING


def test_destination_delays_keep_the_source_pending_until_the_last(lab_server, probes, lab_config):
    p = probes("fan-out")
    lab_config(destination_delays=[{"pattern": p.dest["good"].bucket, "seconds": 2.2}])
    key, version, _ = p.put(b"one is slow")
    seen = _poll(p, key, version, 2.8)
    wrong_at = next(t for t, _, _, wrong in seen if wrong)
    good_at = next(t for t, _, good, _ in seen if good)
    done_at = next(t for t, status, _, _ in seen if status == "COMPLETED")
    assert wrong_at < good_at - 0.8, (wrong_at, good_at)
    assert all(status == "PENDING" for t, status, _, _ in seen if t < good_at - 0.2)
    assert good_at - 0.3 <= done_at <= good_at + 0.3
    assert {status for _, status, _, _ in seen} == {"PENDING", "COMPLETED"}


def test_destination_knobs_are_validated(lab_server):
    for body in ({"destination_delays": [{"pattern": "x"}]}, {"destination_delays": [{"pattern": "x", "seconds": -1}]},
                 {"destination_fail": "x"}, {"lose_replicas": [{"glob": "x"}]}):
        with pytest.raises(urllib.error.HTTPError) as exc:
            lab_server.admin("POST", "/_lab/config", body)
        assert exc.value.code == 400, body
    cfg = lab_server.admin("GET", "/_lab/config")
    assert all(not entry.get("pattern") == "x" for entry in cfg["destination_delays"] + cfg["destination_fail"])


# ---------------------------------------------------------------------------
# 5. vanished replicas; 404 only with s3:ListBucket
# ---------------------------------------------------------------------------


def test_vanished_replica_completes_but_is_missing(landed):
    p, key, version, status = landed["vanished"]
    dest = p.scenario.destinations[0]
    assert status == "COMPLETED"
    s3 = p.dst[dest.name]
    assert refused(s3.head_object, Bucket=dest.bucket, Key=key, VersionId=version) == HEAD_MISSING
    assert refused(s3.get_object, Bucket=dest.bucket, Key=key, VersionId=version) == \
        ("NoSuchVersion", "The specified version does not exist.", 404)
    assert not s3.list_object_versions(Bucket=dest.bucket, Prefix=key).get("Versions")


def test_vanished_replica_without_list_bucket_is_forbidden(landed, lab_server):
    p, key, version, status = landed["vanished-no-list"]
    dest = p.scenario.destinations[0]
    assert status == "COMPLETED"
    s3 = p.dst[dest.name]
    assert refused(s3.head_object, Bucket=dest.bucket, Key=key, VersionId=version) == HEAD_DENIED
    assert refused(s3.get_object, Bucket=dest.bucket, Key=key, VersionId=version) == DENIED
    assert refused(s3.head_object, Bucket=dest.bucket, Key=key) == HEAD_DENIED
    assert refused(s3.get_object, Bucket=dest.bucket, Key=key) == DENIED
    # an object that exists reads normally without s3:ListBucket
    root = provision.client("s3", lab_server.endpoint, provision.DEST_ACCOUNT)
    there = root.put_object(Bucket=dest.bucket, Key=f"{key}-there", Body=b"here")["VersionId"]
    assert s3.get_object(Bucket=dest.bucket, Key=f"{key}-there", VersionId=there)["Body"].read() == b"here"
    # the account root holds every permission: 404
    assert refused(root.head_object, Bucket=dest.bucket, Key=key, VersionId=version) == HEAD_MISSING


def test_missing_key_and_version_are_404_with_list_bucket(landed):
    p, key, version, status = landed["healthy"]
    dest = p.scenario.destinations[0]
    assert status == "COMPLETED"
    s3 = p.dst[dest.name]
    missing = f"{key}-never"
    assert refused(s3.head_object, Bucket=dest.bucket, Key=missing) == HEAD_MISSING
    assert refused(s3.get_object, Bucket=dest.bucket, Key=missing)[::2] == ("NoSuchKey", 404)
    other_version = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    assert refused(s3.head_object, Bucket=dest.bucket, Key=key, VersionId=other_version) == HEAD_MISSING
    assert refused(s3.get_object, Bucket=dest.bucket, Key=key, VersionId=other_version)[::2] == ("NoSuchVersion", 404)
    assert p.read_replica(dest.name, key, version) == b"canary healthy"


def test_source_probe_role_has_no_list_bucket_and_sees_403_for_a_missing_canary(landed):
    """deploy/iam's source probe role lists versions by prefix but holds no s3:ListBucket."""
    p, key, version, _ = landed["healthy"]
    assert refused(p.src.head_object, Bucket=p.bucket, Key=f"{key}-never") == HEAD_DENIED
    assert p.head(key, version)["VersionId"] == version


def test_wrong_key_replica_is_still_refused_by_kms_not_by_ownership(probes):
    """Unchanged: the article's setup (override + BucketOwnerEnforced) gives a readable HEAD and the KMS refusal."""
    p = probes("wrong-key")
    dest = p.scenario.destinations[0]
    key, version, _ = p.put()
    assert settle(p, key, version) == "COMPLETED"
    assert p.replica(dest.name, key, version)["ReplicationStatus"] == "REPLICA"
    assert refused(p.dst[dest.name].get_object, Bucket=dest.bucket, Key=key, VersionId=version) == \
        ("AccessDenied", KMS_DENIED, 403)


def test_retain_until_uses_the_lab_day():
    from lab_plugin import retain_until
    import lab_plugin
    from lab_state import LabState

    state = LabState()
    state.update({"object_lock_day_seconds": 10})
    saved, lab_plugin._STATE = lab_plugin._STATE, state
    try:
        start = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
        assert retain_until({"Mode": "GOVERNANCE", "Days": 3}, start) == "2030-01-01T00:00:30.000Z"
        assert retain_until({"Mode": "COMPLIANCE", "Years": 1}, start) == "2030-01-01T01:00:50.000Z"
        assert retain_until({"Mode": "GOVERNANCE"}, start) is None
    finally:
        lab_plugin._STATE = saved
