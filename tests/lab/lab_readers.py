"""The `readers` scenario: a destination whose key policy names role ARNs one by one (no
kms:Decrypt delegated to the account), and four readers of its replicas:

- `fine`:   named in the key policy, s3:GetObject on the bucket            -> ok
- `nokms`:  s3:GetObject and even kms:Decrypt in its identity policy, but not named in the
            key policy: S3 lets it HEAD the replica, KMS refuses the GET    -> undecryptable
- `nos3`:   named in the key policy, no S3 permission                      -> unreadable
- `locked`: its trust policy does not trust replicanary's base credentials -> credentials_failed

Sources (AWS documentation): "Key policies in AWS KMS" (a key policy must allow a principal,
by ARN or by delegating to the account with the root principal; a role ARN in a key
policy's Principal matches that role's assumed-role sessions: "AWS JSON policy elements:
Principal", role sessions); "Using SSE-KMS" / "Troubleshoot access denied (403 Forbidden)
errors in Amazon S3" (GetObject of an SSE-KMS object needs kms:Decrypt, HeadObject does not
decrypt: unverified in the docs, consistent with them).
"""

from __future__ import annotations

import provision as p

READERS = ("fine", "nokms", "nos3", "locked")
# What replicanary should conclude for each reader (the e2e tests and the demo table agree).
EXPECTED = {"fine": "ok", "nokms": "undecryptable", "nos3": "unreadable", "locked": "credentials_failed"}
# The destination account's account-wide probe role (discovery's, estate.py), named too: a
# discovered `readers` destination is probed as it.
ACCOUNT_WIDE_PROBE_ROLE = f"arn:aws:iam::{p.DEST_ACCOUNT}:role/replicanary-destination-probe"
# A principal no lab role trusts: the `locked` reader's trust policy names only it.
STRANGER = "arn:aws:iam::444444444444:root"

# AWS's default key policy statement for key administrators: everything but the
# cryptographic operations, so kms:Decrypt is not delegated to the account's IAM.
KEY_ADMIN_ACTIONS = ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                     "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
                     "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"]


def role_name(tag: str, reader: str, suffix: str) -> str:
    return f"replicanary-reader-{tag}-{reader}{suffix}"


def key_policy(dest_account: str, source_account: str, decrypters: list[str]) -> str:
    """Administration for the account, use of the key for the source account (replication)
    and kms:Decrypt for the named roles only."""
    return p._doc(
        {"Sid": "Key administrators", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{dest_account}:root"},
         "Action": KEY_ADMIN_ACTIONS, "Resource": "*"},
        {"Sid": "Allow use of the key", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{source_account}:root"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
         "Resource": "*"},
        {"Sid": "Readers of the replicas", "Effect": "Allow", "Principal": {"AWS": decrypters},
         "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
    )


def reader_policy(bucket: str, key_arn: str, s3: bool = True, kms: bool = True) -> str:
    statements = []
    if s3:
        statements.append({"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                           "Resource": f"arn:aws:s3:::{bucket}/*"})
    if kms:
        statements.append({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn})
    return p._doc(*statements)


def build(prov: "p.Provisioner", scenario: str, replication_role_arn: str) -> "p.Destination":
    """The destination of the `readers` scenario (its bucket, key, probe role and readers)."""
    dest = prov.destination(scenario, "", replication_role_arn)
    tag, suffix = scenario, prov.suffix
    arns = {r: f"arn:aws:iam::{p.DEST_ACCOUNT}:role/{role_name(tag, r, suffix)}" for r in READERS}
    # The key policy names the readers that may decrypt and the probe roles, nobody else.
    prov.dst.kms.put_key_policy(KeyId=dest.expected_kms_key_arn, PolicyName="default",
                                Policy=key_policy(p.DEST_ACCOUNT, p.SOURCE_ACCOUNT,
                                                  [dest.role_arn, ACCOUNT_WIDE_PROBE_ROLE, arns["fine"], arns["nos3"],
                                                   arns["locked"]]))
    trust = p.probe_trust(prov.trusted_principal, prov.external_id)
    key = dest.expected_kms_key_arn
    p.create_role(prov.dst, role_name(tag, "fine", suffix), trust, reader_policy(dest.bucket, key))
    p.create_role(prov.dst, role_name(tag, "nokms", suffix), trust, reader_policy(dest.bucket, key))
    p.create_role(prov.dst, role_name(tag, "nos3", suffix), trust, reader_policy(dest.bucket, key, s3=False))
    p.create_role(prov.dst, role_name(tag, "locked", suffix), p._trust({"AWS": STRANGER}),
                  reader_policy(dest.bucket, key))
    dest.readers = [{"name": r, "role_arn": arns[r]} for r in READERS]
    return dest


def reader_entries(dest: "p.Destination", external_id: str | None) -> list[dict]:
    """The destination's `readers:` in the configuration (the probe roles' external id)."""
    out = []
    for r in dest.readers:
        entry = dict(r)
        if external_id is not None and r["name"] != "locked":
            entry["external_id"] = external_id
        out.append(entry)
    return out
