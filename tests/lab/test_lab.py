"""Spec tests of the lab: every correction lab_plugin makes to ministack, every
provisioned scenario, and the /_lab/ admin API. Each test talks to the lab as
replicanary would: plain boto3, base credentials of the monitoring account
(333333333333) assuming the probe roles.

Run: tests/lab/.venv/bin/python -m pytest tests/lab -q
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import lab
import provision

KMS_DENIED = ("The ciphertext refers to a customer master key that does not exist, does not exist in this region, "
              "or you are not allowed to access.")
DELAY = 1.0  # the session lab's --replication-delay


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


class Probe:
    """The probe roles of one scenario, as replicanary assumes them."""

    def __init__(self, endpoint: str, scenario: provision.Scenario, retries: int | None = None):
        self.scenario = scenario
        self.src = lab.s3_as(endpoint, lab.assume(endpoint, scenario.source_role_arn), retries)
        self.dst = {d.name: lab.s3_as(endpoint, lab.assume(endpoint, d.role_arn), retries)
                    for d in scenario.destinations}
        self.dest = {d.name: d for d in scenario.destinations}

    @property
    def bucket(self) -> str:
        return self.scenario.source_bucket

    def put(self, body: bytes = b"canary", key: str | None = None, **kwargs) -> tuple[str, str, dict]:
        key = key or f"replicanary/{self.scenario.name}/{uuid.uuid4().hex}"
        resp = self.src.put_object(Bucket=self.bucket, Key=key, Body=body, **kwargs)
        return key, resp["VersionId"], resp

    def head(self, key: str, version: str) -> dict:
        return self.src.head_object(Bucket=self.bucket, Key=key, VersionId=version)

    def wait_final(self, key: str, version: str, timeout: float = 5.0) -> tuple[str | None, float]:
        """(final replication status, seconds until seen) polling every 100 ms."""
        start = time.monotonic()
        while True:
            status = self.head(key, version).get("ReplicationStatus")
            if status not in ("PENDING",) or time.monotonic() - start > timeout:
                return status, time.monotonic() - start
            time.sleep(0.1)

    def replica(self, dest: str, key: str, version: str) -> dict:
        return self.dst[dest].head_object(Bucket=self.dest[dest].bucket, Key=key, VersionId=version)

    def read_replica(self, dest: str, key: str, version: str) -> bytes:
        resp = self.dst[dest].get_object(Bucket=self.dest[dest].bucket, Key=key, VersionId=version)
        return resp["Body"].read()


def error_of(excinfo) -> tuple[str, str, int]:
    err = excinfo.value.response
    return err["Error"].get("Code"), err["Error"].get("Message"), err["ResponseMetadata"]["HTTPStatusCode"]


# ---------------------------------------------------------------------------
# accounts, roles, provisioning
# ---------------------------------------------------------------------------


def test_monitoring_root_assumes_probe_roles_across_accounts(lab_server, world):
    sc = world.scenarios["healthy"]
    for role_arn, account in ((sc.source_role_arn, provision.SOURCE_ACCOUNT),
                              (sc.destinations[0].role_arn, provision.DEST_ACCOUNT)):
        creds = lab.assume(lab_server.endpoint, role_arn)
        ident = lab.client_as("sts", lab_server.endpoint, creds).get_caller_identity()
        assert ident["Account"] == account
        assert ":assumed-role/" in ident["Arn"]


def test_untrusted_account_cannot_assume_probe_role(lab_server, world):
    with pytest.raises(ClientError) as exc:
        lab.assume(lab_server.endpoint, world.scenarios["healthy"].source_role_arn, base_access_key="444444444444")
    assert error_of(exc)[0] == "AccessDenied"


def test_probe_roles_are_least_privilege(probes):
    p = probes("healthy")
    with pytest.raises(ClientError) as exc:  # the source role cannot touch the destination bucket
        p.src.list_objects_v2(Bucket=p.dest[p.scenario.destinations[0].name].bucket)
    assert error_of(exc)[0] == "AccessDenied"
    dest = p.scenario.destinations[0]
    with pytest.raises(ClientError) as exc:  # the destination role cannot write
        p.dst[dest.name].put_object(Bucket=dest.bucket, Key="replicanary/x", Body=b"x")
    assert error_of(exc)[0] == "AccessDenied"


def test_config_file_matches_spec_format(world, tmp_path):
    import yaml

    text = provision.render_config(world, interval="2s", replication_timeout="10s")
    cfg = yaml.safe_load(text)
    assert set(cfg) == {"defaults", "aws", "replications"}
    assert cfg["aws"] == {"endpoint_url": world.endpoint, "force_path_style": True}
    assert cfg["defaults"]["poll"] == {"initial": "200ms", "max": "2s"}
    names = [r["name"] for r in cfg["replications"]]
    assert names == list(provision.SCENARIOS)
    for r in cfg["replications"]:
        assert set(r) <= {"name", "replication_timeout", "source", "destinations"}
        assert set(r["source"]) == {"bucket", "region", "role_arn"}
        for d in r["destinations"]:
            assert set(d) - {"name", "readers"} == {"bucket", "region", "role_arn", "expected_kms_key_arn"}
            assert ("readers" in d) == (r["name"] == "readers")
            assert d["expected_kms_key_arn"].startswith("arn:aws:kms:ap-northeast-1:222222222222:key/")
    slow = next(r for r in cfg["replications"] if r["name"] == "slow")
    assert slow["replication_timeout"] == "3s"
    fan = next(r for r in cfg["replications"] if r["name"] == "fan-out")
    assert [d["name"] for d in fan["destinations"]] == ["good", "wrong"]
    readers = next(r for r in cfg["replications"] if r["name"] == "readers")["destinations"][0]["readers"]
    assert [x["name"] for x in readers] == ["fine", "nokms", "nos3", "locked"]
    assert all(x["role_arn"].startswith("arn:aws:iam::222222222222:role/replicanary-reader-") for x in readers)


# ---------------------------------------------------------------------------
# healthy: asynchronous replication, version ids, ReplicaKmsKeyID, reads
# ---------------------------------------------------------------------------


def test_healthy_pending_then_completed_after_delay(probes):
    p = probes("healthy")
    key, version, put = p.put(b"hello")
    assert p.head(key, version)["ReplicationStatus"] == "PENDING"
    with pytest.raises(ClientError) as exc:  # the replica does not exist yet
        p.replica(p.scenario.destinations[0].name, key, version)
    assert error_of(exc)[2] == 404
    status, waited = p.wait_final(key, version)
    assert status == "COMPLETED"
    assert DELAY * 0.7 <= waited <= DELAY + 1.5


def test_healthy_replica_keeps_version_id_status_and_key(probes):
    p = probes("healthy")
    dest = p.scenario.destinations[0]
    key, version, put = p.put(b"payload-1")
    assert put["SSEKMSKeyId"] == p.scenario.source_key_arn
    assert p.wait_final(key, version)[0] == "COMPLETED"
    replica = p.replica(dest.name, key, version)
    assert replica["VersionId"] == version
    assert replica["ReplicationStatus"] == "REPLICA"
    assert replica["ServerSideEncryption"] == "aws:kms"
    assert replica["SSEKMSKeyId"] == dest.replica_kms_key_arn == dest.expected_kms_key_arn
    assert p.read_replica(dest.name, key, version) == b"payload-1"
    source = p.head(key, version)  # the source keeps the source key
    assert source["SSEKMSKeyId"] == p.scenario.source_key_arn


def test_key_ids_are_reported_as_arns(lab_server, probes):
    p = probes("healthy")
    key_arn = p.scenario.source_key_arn
    bare_id = key_arn.rsplit("/", 1)[1]
    key, version, put = p.put(b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=bare_id)
    assert put["SSEKMSKeyId"] == key_arn
    assert p.head(key, version)["SSEKMSKeyId"] == key_arn
    kms = provision.client("kms", lab_server.endpoint, provision.SOURCE_ACCOUNT)
    alias = f"alias/rc-src-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_arn)
    _, _, put = p.put(b"y", ServerSideEncryption="aws:kms", SSEKMSKeyId=alias)
    assert put["SSEKMSKeyId"] == key_arn


def test_put_with_unknown_key_is_kms_not_found(probes):
    p = probes("healthy")
    missing = f"arn:aws:kms:ap-northeast-1:111111111111:key/{uuid.uuid4()}"
    with pytest.raises(ClientError) as exc:
        p.put(b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=missing)
    code, _, status = error_of(exc)
    assert (code, status) == ("KMS.NotFoundException", 400)


def test_put_needs_kms_permission_on_the_key(probes, world):
    p = probes("healthy")
    foreign = world.scenarios["other-key"].source_key_arn  # another scenario's source key: not granted
    with pytest.raises(ClientError) as exc:
        p.put(b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=foreign)
    assert error_of(exc)[0] == "AccessDenied"


def test_probe_roles_can_clean_up_exactly_their_versions(probes):
    p = probes("healthy")
    dest = p.scenario.destinations[0]
    key, version, _ = p.put(b"to-delete", Metadata={"replicanary-canary": "true"})
    assert p.wait_final(key, version)[0] == "COMPLETED"
    listed = p.src.list_object_versions(Bucket=p.bucket, Prefix=key)["Versions"]
    assert [(v["Key"], v["VersionId"]) for v in listed] == [(key, version)]
    assert p.head(key, version)["Metadata"] == {"replicanary-canary": "true"}
    assert p.replica(dest.name, key, version)["Metadata"] == {"replicanary-canary": "true"}
    p.src.delete_object(Bucket=p.bucket, Key=key, VersionId=version)
    p.dst[dest.name].delete_object(Bucket=dest.bucket, Key=key, VersionId=version)
    for s3, bucket in ((p.src, p.bucket), (p.dst[dest.name], dest.bucket)):
        resp = s3.list_object_versions(Bucket=bucket, Prefix=key)
        assert not resp.get("Versions") and not resp.get("DeleteMarkers")


def test_source_version_deleted_while_pending_is_not_replicated(probes):
    p = probes("healthy")
    dest = p.scenario.destinations[0]
    key, version, _ = p.put()
    p.src.delete_object(Bucket=p.bucket, Key=key, VersionId=version)
    time.sleep(DELAY + 0.3)
    with pytest.raises(ClientError) as exc:
        p.replica(dest.name, key, version)
    assert error_of(exc)[2] == 404


# ---------------------------------------------------------------------------
# the scenarios
# ---------------------------------------------------------------------------


def test_wrong_key_completes_but_replica_is_undecryptable(probes):
    p = probes("wrong-key")
    dest = p.scenario.destinations[0]
    key, version, _ = p.put()
    assert p.wait_final(key, version)[0] == "COMPLETED"
    replica = p.replica(dest.name, key, version)  # HeadObject needs no KMS permission
    assert replica["ReplicationStatus"] == "REPLICA"
    assert replica["SSEKMSKeyId"] == dest.replica_kms_key_arn != dest.expected_kms_key_arn
    assert replica["SSEKMSKeyId"].startswith("arn:aws:kms:ap-northeast-1:111111111111:key/")
    with pytest.raises(ClientError) as exc:
        p.read_replica(dest.name, key, version)
    assert error_of(exc) == ("AccessDenied", KMS_DENIED, 403)


def test_other_key_replica_readable_under_unexpected_key(probes):
    p = probes("other-key")
    dest = p.scenario.destinations[0]
    key, version, _ = p.put(b"other")
    assert p.wait_final(key, version)[0] == "COMPLETED"
    replica = p.replica(dest.name, key, version)
    assert replica["SSEKMSKeyId"] == dest.replica_kms_key_arn != dest.expected_kms_key_arn
    assert replica["SSEKMSKeyId"].startswith("arn:aws:kms:ap-northeast-1:222222222222:key/")
    assert p.read_replica(dest.name, key, version) == b"other"


def test_unselected_sse_kms_object_gets_no_status_and_no_replica(probes):
    p = probes("unselected")
    dest = p.scenario.destinations[0]
    key, version, _ = p.put()
    assert "ReplicationStatus" not in p.head(key, version)
    time.sleep(DELAY + 0.3)
    assert "ReplicationStatus" not in p.head(key, version)
    with pytest.raises(ClientError) as exc:
        p.replica(dest.name, key, version)
    assert error_of(exc)[2] == 404


def test_denied_destination_fails(probes):
    p = probes("denied")
    dest = p.scenario.destinations[0]
    key, version, _ = p.put()
    assert p.head(key, version)["ReplicationStatus"] == "PENDING"
    assert p.wait_final(key, version)[0] == "FAILED"
    with pytest.raises(ClientError) as exc:
        p.replica(dest.name, key, version)
    assert error_of(exc)[2] == 404


def test_slow_stays_pending(probes):
    p = probes("slow")
    dest = p.scenario.destinations[0]
    key, version, _ = p.put()
    time.sleep(DELAY + 1.0)
    assert p.head(key, version)["ReplicationStatus"] == "PENDING"
    with pytest.raises(ClientError) as exc:
        p.replica(dest.name, key, version)
    assert error_of(exc)[2] == 404


def test_disabled_key_read_is_kms_disabled(probes):
    p = probes("disabled-key")
    dest = p.scenario.destinations[0]
    key, version, _ = p.put()
    assert p.wait_final(key, version)[0] == "COMPLETED"
    assert p.replica(dest.name, key, version)["SSEKMSKeyId"] == dest.expected_kms_key_arn
    with pytest.raises(ClientError) as exc:
        p.read_replica(dest.name, key, version)
    code, _, status = error_of(exc)
    assert (code, status) == ("KMS.DisabledException", 400)


def test_key_pending_deletion_read_is_invalid_state(lab_server):
    world = provision.provision(lab_server.endpoint, ["healthy"], suffix="-pd")
    p = Probe(lab_server.endpoint, world.scenarios["healthy"])
    dest = p.scenario.destinations[0]
    key, version, _ = p.put()
    assert p.wait_final(key, version)[0] == "COMPLETED"
    kms = provision.client("kms", lab_server.endpoint, provision.DEST_ACCOUNT)
    kms.schedule_key_deletion(KeyId=dest.expected_kms_key_arn, PendingWindowInDays=7)
    with pytest.raises(ClientError) as exc:
        p.read_replica(dest.name, key, version)
    code, _, status = error_of(exc)
    assert (code, status) == ("KMS.KMSInvalidStateException", 400)


def test_replica_key_that_does_not_exist_fails_replication(lab_server):
    prov = provision.Provisioner(lab_server.endpoint, "-nk")
    role = f"arn:aws:iam::{provision.SOURCE_ACCOUNT}:role/{prov.names('nokey')['replication_role']}"
    missing = f"arn:aws:kms:ap-northeast-1:222222222222:key/{uuid.uuid4()}"
    dest = prov.destination("nokey", "", role, replica_key=missing)
    p = Probe(lab_server.endpoint, prov.source("nokey", [dest]))
    key, version, _ = p.put()
    assert p.wait_final(key, version)[0] == "FAILED"


def test_fan_out_each_destination(probes):
    p = probes("fan-out")
    key, version, _ = p.put(b"fan")
    assert p.head(key, version)["ReplicationStatus"] == "PENDING"
    assert p.wait_final(key, version)[0] == "COMPLETED"
    good, wrong = p.dest["good"], p.dest["wrong"]
    assert p.replica("good", key, version)["SSEKMSKeyId"] == good.expected_kms_key_arn
    assert p.read_replica("good", key, version) == b"fan"
    replica = p.replica("wrong", key, version)
    assert replica["VersionId"] == version and replica["ReplicationStatus"] == "REPLICA"
    assert replica["SSEKMSKeyId"] == wrong.replica_kms_key_arn != wrong.expected_kms_key_arn
    with pytest.raises(ClientError) as exc:
        p.read_replica("wrong", key, version)
    assert error_of(exc) == ("AccessDenied", KMS_DENIED, 403)


# ---------------------------------------------------------------------------
# admin API: forced failures, delays, faults, latency, stats
# ---------------------------------------------------------------------------


def test_forced_failure_by_pattern(lab_server, probes):
    p = probes("healthy")
    before = lab_server.admin("GET", "/_lab/config")
    lab_server.admin("POST", "/_lab/config", {"fail": [{"pattern": f"{p.bucket}/forced/*"}]})
    try:
        key, version, _ = p.put(key="forced/one")
        other, other_version, _ = p.put(key="normal/one")
        assert p.wait_final(key, version)[0] == "FAILED"
        assert p.wait_final(other, other_version)[0] == "COMPLETED"
    finally:
        lab_server.admin("POST", "/_lab/config", {"fail": before["fail"]})


def test_delay_pattern_and_config_roundtrip(lab_server, probes):
    p = probes("healthy")
    before = lab_server.admin("GET", "/_lab/config")
    cfg = lab_server.admin("POST", "/_lab/config", {
        "delays": before["delays"] + [{"pattern": f"{p.bucket}/quick/*", "seconds": 0}]})
    assert {"pattern": f"{p.bucket}/quick/*", "seconds": 0.0} in cfg["delays"]
    try:
        key, version, _ = p.put(key="quick/one")
        status, waited = p.wait_final(key, version)
        assert status == "COMPLETED" and waited < DELAY * 0.7
    finally:
        lab_server.admin("POST", "/_lab/config", {"delays": before["delays"]})
    with pytest.raises(Exception) as exc:
        lab_server.admin("POST", "/_lab/config", {"faults": {"error_rate": 2}})
    assert "400" in str(exc.value)


@pytest.mark.parametrize("status,code,message", [
    (503, "SlowDown", "Please reduce your request rate."),
    (500, "InternalError", "We encountered an internal error. Please try again."),
])
def test_injected_s3_faults_then_reset(lab_server, world, status, code, message):
    p = Probe(lab_server.endpoint, world.scenarios["healthy"], retries=1)
    key, version, _ = p.put()
    lab_server.admin("POST", "/_lab/config", {"faults": {"error_rate": 1.0, "status": status, "services": ["s3"]}})
    with pytest.raises(ClientError) as exc:
        p.src.get_object(Bucket=p.bucket, Key=key, VersionId=version)
    assert error_of(exc) == (code, message, status)
    with pytest.raises(ClientError) as exc:
        p.head(key, version)
    assert error_of(exc)[2] == status
    lab_server.admin("POST", "/_lab/reset-faults")
    assert p.head(key, version)["VersionId"] == version


def test_injected_sts_fault(lab_server, world):
    lab_server.admin("POST", "/_lab/config", {"faults": {"error_rate": 1.0, "status": 503, "services": ["sts"]}})
    sts = provision.client("sts", lab_server.endpoint, lab.BASE_ACCESS_KEY,
                           config=provision.Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=world.scenarios["healthy"].source_role_arn, RoleSessionName="lab-fault")
    assert error_of(exc)[:1] == ("ServiceUnavailable",) and error_of(exc)[2] == 503


def test_injected_latency(lab_server, probes):
    p = probes("healthy")
    lab_server.admin("POST", "/_lab/config", {"faults": {"latency_ms": 400, "latency_rate": 1.0}})
    start = time.monotonic()
    p.src.get_bucket_versioning(Bucket=p.bucket)
    assert time.monotonic() - start >= 0.4
    lab_server.admin("POST", "/_lab/reset-faults")
    start = time.monotonic()
    p.src.get_bucket_versioning(Bucket=p.bucket)
    assert time.monotonic() - start < 0.4


def test_stats_count_requests_by_operation_and_account(lab_server, probes):
    p = probes("healthy")
    lab_server.admin("POST", "/_lab/stats/reset")
    key, version, _ = p.put()
    p.head(key, version)
    p.head(key, version)
    stats = lab_server.admin("GET", "/_lab/stats")
    assert stats["by_service"]["s3"]["PutObject"] == 1
    assert stats["by_service"]["s3"]["HeadObject"] == 2
    assert stats["by_account"]["111111111111"]["s3:HeadObject"] == 2
    assert "_lab" not in str(stats["by_service"])


def test_lab_exits_with_its_parent():
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    port = lab.free_port()
    child = subprocess.Popen([sys.executable, lab.LABSERVER, "--port", str(port), "--exit-with-parent",
                              str(parent.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = lab.LabProcess(child, port)
    try:
        server.wait_ready(20)
        parent.kill()
        parent.wait()
        assert child.wait(timeout=5) == 0
    finally:
        parent.kill()
        server.stop()
