"""Fidelity tests of the `readers` scenario (lab_readers.py): a key policy that names role
ARNs matches those roles' assumed-role sessions; a principal outside the key policy gets
its ranged GET refused by KMS while its HEAD works; a reader without S3 read is refused by
S3 (HEAD and GET); a reader whose trust policy does not trust us cannot be assumed.
Sources: tests/lab/README.md, "Readers"."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

import lab
import lab_readers
from test_lab import KMS_DENIED, error_of

HEAD_DENIED = ("403", "Forbidden", 403)


@pytest.fixture(scope="module")
def replica(lab_server, world, probes):
    """One canary of the readers scenario, replicated: (probe, key, version, destination)."""
    probe = probes("readers")
    key, version, _ = probe.put(b"reader canary")
    status, _ = probe.wait_final(key, version, 6.0)
    assert status == "COMPLETED"
    return probe, key, version, world.scenarios["readers"].destinations[0]


def reader_s3(lab_server, dest, name: str):
    arn = next(r["role_arn"] for r in dest.readers if r["name"] == name)
    return lab.s3_as(lab_server.endpoint, lab.assume(lab_server.endpoint, arn))


def ranged_get(s3, dest, key, version):
    return s3.get_object(Bucket=dest.bucket, Key=key, VersionId=version, Range="bytes=0-0")


def test_a_role_named_in_the_key_policy_reads_through_its_session(lab_server, replica):
    probe, key, version, dest = replica
    got = ranged_get(reader_s3(lab_server, dest, "fine"), dest, key, version)
    assert got["Body"].read() == b"r"  # one byte: S3 decrypted to answer it
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    # the destination probe role, also named there, reads the whole body
    assert probe.dst[dest.name].get_object(Bucket=dest.bucket, Key=key, VersionId=version)["Body"].read() \
        == b"reader canary"


def test_a_principal_outside_the_key_policy_heads_but_kms_refuses_its_get(lab_server, replica):
    _, key, version, dest = replica
    s3 = reader_s3(lab_server, dest, "nokms")
    head = s3.head_object(Bucket=dest.bucket, Key=key, VersionId=version)
    assert head["ServerSideEncryption"] == "aws:kms"
    with pytest.raises(ClientError) as exc:
        ranged_get(s3, dest, key, version)
    assert error_of(exc) == ("AccessDenied", KMS_DENIED, 403)


def test_a_reader_without_s3_read_is_refused_by_s3_on_head_and_get(lab_server, replica):
    _, key, version, dest = replica
    s3 = reader_s3(lab_server, dest, "nos3")
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=dest.bucket, Key=key, VersionId=version)
    assert error_of(exc) == HEAD_DENIED
    with pytest.raises(ClientError) as exc:
        ranged_get(s3, dest, key, version)
    code, message, status = error_of(exc)
    assert (code, status) == ("AccessDenied", 403) and message != KMS_DENIED  # S3's words, not KMS's


def test_a_reader_that_does_not_trust_us_cannot_be_assumed(lab_server, replica):
    _, _, _, dest = replica
    arn = next(r["role_arn"] for r in dest.readers if r["name"] == "locked")
    with pytest.raises(ClientError) as exc:
        lab.assume(lab_server.endpoint, arn)
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_the_probe_role_may_read_the_key_policy_that_names_the_readers(lab_server, replica):
    """kms:GetKeyPolicy (the destination diagnosis policy), through the key policy's
    administrators statement: what `reader_kms_not_granted` is decided from."""
    _, _, _, dest = replica
    kms = lab.client_as("kms", lab_server.endpoint, lab.assume(lab_server.endpoint, dest.role_arn))
    policy = kms.get_key_policy(KeyId=dest.expected_kms_key_arn, PolicyName="default")["Policy"]
    fine = next(r["role_arn"] for r in dest.readers if r["name"] == "fine")
    nokms = next(r["role_arn"] for r in dest.readers if r["name"] == "nokms")
    assert fine in policy and nokms not in policy
    assert set(lab_readers.EXPECTED) == set(lab_readers.READERS)
