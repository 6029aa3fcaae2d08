#!/usr/bin/env python3
"""Provision the seed article's world on a running lab and write a replicanary
configuration (the format of config/replicanary.example.yaml) for it.

    tests/lab/.venv/bin/python tests/lab/provision.py --endpoint http://127.0.0.1:4566 \
        --out /tmp/replicanary-lab.yaml [--scenarios healthy,wrong-key,...] [--suffix -x1] \
        [--interval 2s] [--replication-timeout 10s] [--poll-initial 200ms] [--poll-max 2s] \
        [--slow-timeout 3s] [--slow-delay 3600] [--copies N] \
        [--probe-prefix replicanary/] [--external-id ID] [--drop-statement SIDE:SID]... \
        [--drop-action SIDE:ACTION]... [--trusted-principal ARN] [--source-retention-days N]

The probe roles' policies are deploy/iam/*.json, verbatim (placeholders filled; statements
dropped by Sid only when --drop-statement asks, single actions only when --drop-action
asks): the lab proves exactly what deploy/ ships.

`--copies N` provisions, instead of the scenarios, N copies of `healthy`
(replications healthy-0001...; shared keys and roles, one bucket pair each) for
load tests such as tests/perf/bench.py.

Accounts: 111111111111 is the source (replication role, source bucket and key),
222222222222 the destination (bucket, customer-managed key), 333333333333 the
monitoring account whose root key replicanary uses as base credentials; both
probe roles trust arn:aws:iam::333333333333:root. A 12-digit access key id is
that account's root; every secret is "test".

Importable: `provision(endpoint, scenarios, suffix)` returns a `World`, and
`render_config(world, ...)` the YAML text.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

SOURCE_ACCOUNT = "111111111111"
DEST_ACCOUNT = "222222222222"
MONITOR_ACCOUNT = "333333333333"
SECRET = "test"
REGION = "ap-northeast-1"

SCENARIOS = ("healthy", "wrong-key", "other-key", "unselected", "denied", "slow", "disabled-key", "fan-out",
             "archive", "archive-wrong-key", "source-owned", "locked", "partial-fan-out", "vanished",
             "vanished-no-list", "readers")

# partial-fan-out: replication to its `slow` destination takes this long (less than the
# configuration's replication_timeout, 10s by default).
PARTIAL_SLOW_DELAY = 4.0

SCENARIO_NOTES = {
    "healthy": "the article's correct setup: ok",
    "wrong-key": "ReplicaKmsKeyID is a source-account key the destination cannot use: COMPLETED, then "
                 "GetObject AccessDenied (undecryptable)",
    "other-key": "replica lands under a second destination key the destination can read (wrong_kms_key)",
    "unselected": "rule lacks SseKmsEncryptedObjects: no replication status (not_replicated)",
    "denied": "destination bucket policy does not grant the replication role: FAILED (replication_failed)",
    "slow": "replication delayed far beyond replication_timeout: stays PENDING (replication_timeout)",
    "disabled-key": "as healthy, then the destination key is disabled: KMS.DisabledException (undecryptable)",
    "fan-out": "one source, two destinations: 'good' ok, 'wrong' undecryptable",
    "archive": "rule stores replicas in DEEP_ARCHIVE: HEAD works, GetObject 403 InvalidObjectState (ok, read "
               "skipped)",
    "archive-wrong-key": "DEEP_ARCHIVE and ReplicaKmsKeyID is a source-account key: the HEAD shows the wrong key "
                         "(wrong_kms_key)",
    "source-owned": "destination Object Ownership ObjectWriter, rule without owner override: the replica stays "
                    "the source account's, HEAD 403 (unreadable)",
    "locked": "destination has Object Lock with default retention GOVERNANCE 1 day: replicas cannot be deleted "
              "before their retain-until date (ok)",
    "partial-fan-out": "one source, two destinations: 'failing' (bucket policy does not grant the replication "
                       "role) replication_failed, 'slow' (4 s) ok; the source is FAILED before 'slow' is done",
    "vanished": "replica lost after COMPLETED (lab lose_replicas), probe role has s3:ListBucket: HEAD 404 "
                "(replica_missing)",
    "vanished-no-list": "replica lost after COMPLETED, probe role without s3:ListBucket: HEAD 403, the key's listing "
                        "shows no such version (replica_missing)",
    "readers": "as healthy, with a key policy naming roles and four readers: 'fine' ok, 'nokms' (not in the key "
               "policy) undecryptable, 'nos3' unreadable, 'locked' (trusts nobody of ours) credentials_failed; the "
               "destination's own verdict stays ok",
}

_CLIENT_CONFIG = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"},
                        connect_timeout=5, read_timeout=30)


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------


_SESSION = None


def client(service: str, endpoint: str, access_key: str, secret: str = SECRET, token: str | None = None,
           region: str = REGION, config: Config = _CLIENT_CONFIG):
    """A boto3 client against the lab; `access_key` = a 12-digit account id acts as that account's root.

    Clients share one boto3 session (its model cache makes clients cheap); create
    them on one thread, use them from any."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION.client(
        service, endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key,
        aws_secret_access_key=secret, aws_session_token=token, config=config)


def lab_admin(endpoint: str, method: str, path: str, body: dict | None = None) -> dict:
    """Call the lab's /_lab/ admin API."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(endpoint.rstrip("/") + path, data=data, method=method,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


class Account:
    """The clients of one account (as its root)."""

    def __init__(self, endpoint: str, account_id: str):
        self.id = account_id
        self.s3 = client("s3", endpoint, account_id)
        self.kms = client("kms", endpoint, account_id)
        self.iam = client("iam", endpoint, account_id, region="us-east-1")


# ---------------------------------------------------------------------------
# Policies (the seed article's, parameterised)
# ---------------------------------------------------------------------------


def _doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def destination_key_policy(dest_account: str, source_account: str, extra: list | None = None) -> str:
    """The article's destination key policy."""
    return _doc(
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{dest_account}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Allow use of the key", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{source_account}:root"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
         "Resource": "*"},
        {"Sid": "Allow attachment of persistent resources", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{source_account}:root"},
         "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*",
         "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
        *(extra or []),
    )


def own_account_key_policy(account: str) -> str:
    """A key only its own account may use (the default key policy)."""
    return _doc({"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                 "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"})


def destination_bucket_policy(bucket: str, replication_role_arn: str) -> str:
    """The article's destination bucket policy: Principal * with an ArnLike aws:PrincipalArn condition."""
    condition = {"ArnLike": {"aws:PrincipalArn": replication_role_arn}}
    return _doc(
        {"Sid": "Set permissions for objects", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": ["s3:ReplicateDelete", "s3:ReplicateObject"], "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": condition},
        {"Sid": "Set permissions on bucket", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": ["s3:GetBucketVersioning", "s3:List*", "s3:PutBucketVersioning"],
         "Resource": f"arn:aws:s3:::{bucket}", "Condition": condition},
    )


def replication_role_policy(source_bucket: str, dest_buckets: list[str], replica_keys: list[str]) -> str:
    """The article's replication role policy."""
    return _doc(
        {"Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
         "Resource": f"arn:aws:s3:::{source_bucket}"},
        {"Effect": "Allow",
         "Action": ["s3:GetObjectVersionAcl", "s3:GetObjectVersionForReplication", "s3:GetObjectVersionTagging"],
         "Resource": f"arn:aws:s3:::{source_bucket}/*"},
        {"Effect": "Allow", "Action": ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"],
         "Resource": [f"arn:aws:s3:::{b}/*" for b in dest_buckets]},
        {"Effect": "Allow",
         "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
         "Resource": replica_keys},
    )


# The probe roles' policies are the deploy/iam/ files, verbatim: the lab proves exactly what
# deploy/ ships. `${Name}` placeholders are the CloudFormation parameters of
# deploy/iam/cloudformation/; `drop` removes statements by Sid, `drop_actions` single actions
# from whichever statement holds them (to show what a missing permission looks like).
DEPLOY_IAM = Path(__file__).resolve().parents[2] / "deploy" / "iam"
PROBE_POLICY_FILES = {
    "source": ("source-probe-policy.json", "source-probe-diagnosis-policy.json"),
    "destination": ("destination-probe-policy.json", "destination-probe-diagnosis-policy.json"),
}
# The policy of the role replicanary itself runs as (its base credentials): it may only
# assume the probe roles.
BASE_ROLE_POLICY_FILE = "base-role-policy.json"


def _actions(statement: dict) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


def iam_document(filename: str, values: dict, drop=(), drop_actions=()) -> dict:
    """A deploy/iam/ policy document with its placeholders filled, the `drop` Sids removed and
    the `drop_actions` taken out of every statement (a statement left without any is removed)."""
    text = (DEPLOY_IAM / filename).read_text()
    for name, value in values.items():
        text = text.replace("${%s}" % name, value)
    left = sorted(set(re.findall(r"\$\{(\w+)\}", text)))
    if left:
        raise ValueError(f"{filename}: no value for {', '.join(left)}")
    doc = json.loads(text)
    kept = []
    for st in doc["Statement"]:
        if st.get("Sid") in set(drop):
            continue
        actions = [a for a in _actions(st) if a not in set(drop_actions)]
        if actions:
            st["Action"] = actions if len(actions) > 1 else actions[0]
            kept.append(st)
    doc["Statement"] = kept
    return doc


def probe_statement_ids(side: str) -> list[str]:
    """Every statement Sid of one side's probe policies (what --drop-statement accepts)."""
    sids = []
    for filename in PROBE_POLICY_FILES[side]:
        sids += [st["Sid"] for st in json.loads((DEPLOY_IAM / filename).read_text())["Statement"]]
    return sids


def probe_actions(side: str) -> list[tuple[str, str, str]]:
    """Every (file, Sid, action) of one side's probe policies (what --drop-action accepts),
    in file order; side "base" is the base role's policy."""
    files = (BASE_ROLE_POLICY_FILE,) if side == "base" else PROBE_POLICY_FILES[side]
    found = []
    for filename in files:
        for st in json.loads((DEPLOY_IAM / filename).read_text())["Statement"]:
            found += [(filename, st["Sid"], a) for a in _actions(st)]
    return found


def probe_policies(side: str, values: dict, drop=(), drop_actions=()) -> list[str]:
    """The probe role's policy documents (main, diagnosis) as JSON text; empty ones left out."""
    docs = [iam_document(f, values, drop, drop_actions) for f in PROBE_POLICY_FILES[side]]
    return [json.dumps(d) for d in docs if d["Statement"]]


def probe_trust(trusted_principal: str, external_id: str | None) -> str:
    """deploy/iam/probe-trust-policy.json. Without an external id (the lab's own tests assume
    the roles without one) the sts:ExternalId condition is left out."""
    doc = iam_document("probe-trust-policy.json",
                       {"TrustedPrincipalArn": trusted_principal, "ExternalId": external_id or "-"})
    if external_id is None:
        for st in doc["Statement"]:
            st.pop("Condition", None)
    return json.dumps(doc)


def source_probe_policy(bucket: str, key_arn: str, prefix: str = "", drop=(), drop_actions=()) -> list[str]:
    return probe_policies("source", {"SourceBucket": bucket, "CanaryPrefix": prefix, "SourceKmsKeyArn": key_arn},
                          drop, drop_actions)


def destination_probe_policy(bucket: str, key_arn: str, prefix: str = "", drop=(), drop_actions=()) -> list[str]:
    return probe_policies("destination", {"DestinationBucket": bucket, "CanaryPrefix": prefix,
                                          "ExpectedKmsKeyArn": key_arn, "AWS::AccountId": DEST_ACCOUNT},
                          drop, drop_actions)


# Every probe role of the lab is named replicanary-{source,destination}-...: the base role's
# policy is filled with this pattern.
LAB_PROBE_ROLE_ARNS = "arn:aws:iam::*:role/replicanary-*"


def create_base_role(endpoint: str, name: str, drop_actions=()) -> str:
    """The role replicanary runs as, in the monitoring account: deploy/iam/base-role-policy.json
    verbatim (`ProbeRoleArns` = every lab probe role), minus `drop_actions`; trusted by the
    monitoring account's root, which stands in for IRSA / EKS Pod Identity here."""
    mon = Account(endpoint, MONITOR_ACCOUNT)
    arn = create_role(mon, name, _trust({"AWS": f"arn:aws:iam::{MONITOR_ACCOUNT}:root"}), [])
    doc = iam_document(BASE_ROLE_POLICY_FILE, {"ProbeRoleArns": LAB_PROBE_ROLE_ARNS}, drop_actions=drop_actions)
    if doc["Statement"]:
        mon.iam.put_role_policy(RoleName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(doc))
    return arn


# The account-wide form of a probe role (one StackSet per side, bucket "*"): its policies.
ACCOUNT_POLICY_FILES = {
    side: (f"{side}-probe-account-policy.json", f"{side}-probe-diagnosis-policy.json",
           f"{side}-probe-discovery-policy.json")
    for side in ("source", "destination")
}


def create_account_wide_probe_role(endpoint: str, side: str, account: str, name: str,
                                   trusted_principal: str | None = None, external_id: str | None = None,
                                   canary_prefix: str = "replicanary/", drop_actions=()) -> str:
    """A probe role of `side` in `account` as the account-wide CloudFormation form makes it
    (deploy/iam/*-account-policy.json, the diagnosis policy for bucket "*", the discovery
    policy, verbatim), minus `drop_actions`; for discovery. Returns its ARN."""
    known = {a for f in ACCOUNT_POLICY_FILES[side]
             for st in json.loads((DEPLOY_IAM / f).read_text())["Statement"] for a in _actions(st)}
    unknown = set(drop_actions) - known
    if unknown:
        raise ValueError(f"{side}: no account-wide policy grants {sorted(unknown)}")
    bucket = "SourceBucket" if side == "source" else "DestinationBucket"
    values = {"CanaryPrefix": canary_prefix, "AWS::AccountId": account, bucket: "*"}
    docs = [iam_document(f, values, drop_actions=drop_actions) for f in ACCOUNT_POLICY_FILES[side]]
    trust = probe_trust(trusted_principal or f"arn:aws:iam::{MONITOR_ACCOUNT}:root", external_id)
    return create_role(Account(endpoint, account), name, trust, [json.dumps(d) for d in docs if d["Statement"]])


def assume(endpoint: str, role_arn: str, session: str = "replicanary-lab") -> dict:
    """Credentials of `role_arn` assumed as the monitoring account's root:
    {"AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ..., "AWS_SESSION_TOKEN": ...}."""
    creds = client("sts", endpoint, MONITOR_ACCOUNT).assume_role(RoleArn=role_arn, RoleSessionName=session)
    c = creds["Credentials"]
    return {"AWS_ACCESS_KEY_ID": c["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
            "AWS_SESSION_TOKEN": c["SessionToken"]}


def _trust(principal: dict) -> str:
    return _doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


# ---------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------


def create_key(account: Account, description: str, policy: str) -> str:
    meta = account.kms.create_key(Description=description, KeySpec="SYMMETRIC_DEFAULT",
                                  KeyUsage="ENCRYPT_DECRYPT", Policy=policy)["KeyMetadata"]
    return meta["Arn"]


def create_role(account: Account, name: str, trust: str, policy: str | list[str]) -> str:
    arn = account.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    policies = [policy] if isinstance(policy, str) else policy
    for i, doc in enumerate(policies):
        account.iam.put_role_policy(RoleName=name, PolicyName=f"{name}-policy" + (f"-{i}" if i else ""),
                                    PolicyDocument=doc)
    return arn


def create_bucket(account: Account, name: str, key_arn: str, policy: str | None = None,
                  object_ownership: str | None = None, default_retention: dict | None = None) -> None:
    """Versioned, default SSE-KMS under `key_arn` with bucket keys, public access blocked;
    optionally an Object Ownership setting (default: AWS's default, BucketOwnerEnforced) and
    Object Lock with a default retention ({"Mode": ..., "Days"|"Years": n})."""
    s3 = account.s3
    lock = {"ObjectLockEnabledForBucket": True} if default_retention else {}
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}, **lock)
    if object_ownership:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={
            "Rules": [{"ObjectOwnership": object_ownership}]})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True}]})
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    if policy:
        s3.put_bucket_policy(Bucket=name, Policy=policy)
    if default_retention:
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": default_retention}})


@dataclass
class Destination:
    name: str                # the `destination` label
    bucket: str
    role_arn: str            # destination probe role
    expected_kms_key_arn: str
    replica_kms_key_arn: str | None  # the rule's ReplicaKmsKeyID (None: not set)
    storage_class: str = "STANDARD"  # the rule's Destination.StorageClass
    owner_override: bool = True      # the rule's AccessControlTranslation Owner=Destination
    readers: list = field(default_factory=list)  # `readers:` entries ({"name", "role_arn"}), lab_readers.py


@dataclass
class Scenario:
    name: str
    source_bucket: str
    source_role_arn: str     # source probe role
    source_key_arn: str
    replication_role_arn: str
    destinations: list[Destination] = field(default_factory=list)
    settings: dict = field(default_factory=dict)  # per-replication overrides in the config
    notes: str = ""


@dataclass
class World:
    endpoint: str
    suffix: str
    region: str
    scenarios: dict[str, Scenario]
    canary_prefix: str = "replicanary/"  # the configuration's defaults.canary_prefix
    external_id: str | None = None       # every probe role's sts:ExternalId (None: no condition)


def _rule(index: int, dest_bucket: str, replica_key: str | None, storage_class: str = "STANDARD",
          owner_override: bool = True) -> dict:
    """One replication rule as the article configures it; without `replica_key`,
    the rule does not select SSE-KMS objects; without `owner_override`, it has no
    AccessControlTranslation (replicas stay the source account's unless the destination
    enforces bucket-owner ownership)."""
    destination = {
        "Bucket": f"arn:aws:s3:::{dest_bucket}", "Account": DEST_ACCOUNT, "StorageClass": storage_class,
        "ReplicationTime": {"Status": "Disabled", "Time": {"Minutes": 15}},
        "Metrics": {"Status": "Enabled"},
    }
    if owner_override:
        destination["AccessControlTranslation"] = {"Owner": "Destination"}
    rule = {"ID": f"rule-{index}", "Priority": index, "Status": "Enabled", "Filter": {"Prefix": ""},
            "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": destination}
    if replica_key:
        destination["EncryptionConfiguration"] = {"ReplicaKmsKeyID": replica_key}
        rule["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    return rule


class Provisioner:
    """Builds one scenario in the three accounts."""

    def __init__(self, endpoint: str, suffix: str, probe_prefix: str = "", external_id: str | None = None,
                 drop: dict | None = None, drop_actions: dict | None = None, trusted_principal: str | None = None,
                 source_retention: dict | None = None, accounts: tuple | None = None,
                 lab_config_lock: threading.Lock | None = None):
        self.endpoint = endpoint
        self.suffix = suffix
        # The probe roles (deploy/iam/): object access under `probe_prefix` ("" = the whole
        # bucket, which the lab's own tests need), trust of `trusted_principal` (default: the
        # monitoring account's root) with `external_id`, minus `drop` ({"source": {Sid, ...},
        # "destination": {...}}) and `drop_actions` ({"source": {"s3:PutObject", ...}, ...}).
        self.probe_prefix = probe_prefix
        self.external_id = external_id
        self.drop = drop or {}
        self.drop_actions = drop_actions or {}
        self.trusted_principal = trusted_principal or f"arn:aws:iam::{MONITOR_ACCOUNT}:root"
        # Object Lock default retention of every source bucket ({"Mode": ..., "Days": n}).
        self.source_retention = source_retention
        # Accounts (their clients) may be shared by Provisioners built on one thread.
        self.src, self.dst = accounts or (Account(endpoint, SOURCE_ACCOUNT), Account(endpoint, DEST_ACCOUNT))
        self._lab_config_lock = lab_config_lock or threading.Lock()

    def extend_lab_config(self, field_name: str, entries: list[dict]) -> None:
        """Append to one of the lab's pattern lists (delays, destination_delays, lose_replicas...);
        serialised, so scenarios built in parallel never lose each other's entries."""
        with self._lab_config_lock:
            config = lab_admin(self.endpoint, "GET", "/_lab/config")
            lab_admin(self.endpoint, "POST", "/_lab/config", {field_name: config[field_name] + entries})

    def names(self, scenario: str) -> dict:
        s = self.suffix
        return {
            "source_bucket": f"rc-{scenario}-src{s}",
            "replication_role": f"replicanary-replication-{scenario}{s}",
            "source_probe": f"replicanary-source-{scenario}{s}",
        }

    def destination(self, scenario: str, label: str, replication_role_arn: str, replica_key: str | None = None,
                    grant_replication: bool = True, readable_other_key: bool = False,
                    storage_class: str = "STANDARD", owner_override: bool = True,
                    object_ownership: str | None = None, default_retention: dict | None = None,
                    drop=()) -> Destination:
        """A destination bucket, its key and its probe role. `replica_key` overrides
        the ReplicaKmsKeyID (default: the destination's own key); `storage_class` and
        `owner_override` shape the rule to it; `object_ownership` and `default_retention`
        the bucket; `drop` removes more statements (Sids) from this probe role's policy."""
        tag = f"{scenario}-{label}" if label else scenario
        bucket = f"rc-{tag}-dst{self.suffix}"
        probe_name = f"replicanary-destination-{tag}{self.suffix}"
        probe_arn = f"arn:aws:iam::{DEST_ACCOUNT}:role/{probe_name}"
        key_arn = create_key(self.dst, f"replicanary lab {tag} destination key",
                             destination_key_policy(DEST_ACCOUNT, SOURCE_ACCOUNT))
        if readable_other_key:  # a second key of the destination account its probe role can read
            replica_key = create_key(self.dst, f"replicanary lab {tag} other key", destination_key_policy(
                DEST_ACCOUNT, SOURCE_ACCOUNT, extra=[{
                    "Sid": "Destination readers", "Effect": "Allow", "Principal": {"AWS": probe_arn},
                    "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}]))
        granted = replication_role_arn if grant_replication else \
            f"arn:aws:iam::{SOURCE_ACCOUNT}:role/some-other-replication-role"
        create_bucket(self.dst, bucket, key_arn, destination_bucket_policy(bucket, granted), object_ownership,
                      default_retention)
        dropped = set(self.drop.get("destination", ())) | set(drop)
        create_role(self.dst, probe_name, probe_trust(self.trusted_principal, self.external_id),
                    destination_probe_policy(bucket, key_arn, self.probe_prefix, dropped,
                                             self.drop_actions.get("destination", ())))
        return Destination(label or bucket, bucket, probe_arn, key_arn, replica_key or key_arn, storage_class,
                           owner_override)

    def wrong_key(self, tag: str) -> str:
        """A source-account key in the destination region whose policy grants only the source account."""
        return create_key(self.src, f"replicanary lab {tag} wrong key", own_account_key_policy(SOURCE_ACCOUNT))

    def source(self, scenario: str, destinations: list[Destination], select_kms: bool = True,
               default_retention: dict | None = None) -> Scenario:
        """The source bucket (with Object Lock when `default_retention` is given), its key, the
        replication role and rules to `destinations`, and the source probe role."""
        n = self.names(scenario)
        replication_role_arn = f"arn:aws:iam::{SOURCE_ACCOUNT}:role/{n['replication_role']}"
        key_arn = create_key(self.src, f"replicanary lab {scenario} source key",
                             own_account_key_policy(SOURCE_ACCOUNT))
        create_bucket(self.src, n["source_bucket"], key_arn, default_retention=default_retention)
        replica_keys = [d.replica_kms_key_arn for d in destinations]
        create_role(self.src, n["replication_role"], _trust({"Service": "s3.amazonaws.com"}),
                    replication_role_policy(n["source_bucket"], [d.bucket for d in destinations], replica_keys))
        rules = [_rule(i + 1, d.bucket, d.replica_kms_key_arn if select_kms else None, d.storage_class,
                       d.owner_override)
                 for i, d in enumerate(destinations)]
        if not select_kms:
            for d in destinations:
                d.replica_kms_key_arn = None
        self.src.s3.put_bucket_replication(Bucket=n["source_bucket"], ReplicationConfiguration={
            "Role": replication_role_arn, "Rules": rules})
        probe_arn = create_role(self.src, n["source_probe"], probe_trust(self.trusted_principal, self.external_id),
                                source_probe_policy(n["source_bucket"], key_arn, self.probe_prefix,
                                                    self.drop.get("source", ()), self.drop_actions.get("source", ())))
        return Scenario(scenario, n["source_bucket"], probe_arn, key_arn, replication_role_arn, destinations,
                        notes=SCENARIO_NOTES.get(scenario, ""))

    def build(self, scenario: str, slow_timeout: str, slow_delay: float) -> Scenario:
        role = f"arn:aws:iam::{SOURCE_ACCOUNT}:role/{self.names(scenario)['replication_role']}"
        if scenario in ("healthy", "slow", "disabled-key", "unselected"):
            dests = [self.destination(scenario, "", role)]
        elif scenario == "wrong-key":
            dests = [self.destination(scenario, "", role, replica_key=self.wrong_key(scenario))]
        elif scenario == "other-key":
            dests = [self.destination(scenario, "", role, readable_other_key=True)]
        elif scenario == "denied":
            dests = [self.destination(scenario, "", role, grant_replication=False)]
        elif scenario == "fan-out":
            dests = [self.destination(scenario, "good", role),
                     self.destination(scenario, "wrong", role, replica_key=self.wrong_key(scenario))]
        elif scenario == "archive":
            dests = [self.destination(scenario, "", role, storage_class="DEEP_ARCHIVE")]
        elif scenario == "archive-wrong-key":
            dests = [self.destination(scenario, "", role, replica_key=self.wrong_key(scenario),
                                      storage_class="DEEP_ARCHIVE")]
        elif scenario == "source-owned":
            dests = [self.destination(scenario, "", role, owner_override=False, object_ownership="ObjectWriter")]
        elif scenario == "locked":
            dests = [self.destination(scenario, "", role, default_retention={"Mode": "GOVERNANCE", "Days": 1})]
        elif scenario == "partial-fan-out":
            dests = [self.destination(scenario, "failing", role, grant_replication=False),
                     self.destination(scenario, "slow", role)]
        elif scenario == "vanished":
            dests = [self.destination(scenario, "", role)]
        elif scenario == "vanished-no-list":
            dests = [self.destination(scenario, "", role, drop=("ReplicaExistence",))]
        elif scenario == "readers":
            import lab_readers
            dests = [lab_readers.build(self, scenario, role)]
        else:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        result = self.source(scenario, dests, select_kms=scenario != "unselected",
                             default_retention=self.source_retention)
        if scenario == "disabled-key":
            self.dst.kms.disable_key(KeyId=dests[0].expected_kms_key_arn)
        if scenario == "slow":
            result.settings["replication_timeout"] = slow_timeout
            self.extend_lab_config("delays", [{"pattern": f"{result.source_bucket}/*", "seconds": slow_delay}])
        if scenario == "partial-fan-out":
            self.extend_lab_config("destination_delays", [{"pattern": dests[1].bucket, "seconds": PARTIAL_SLOW_DELAY}])
        if scenario in ("vanished", "vanished-no-list"):
            self.extend_lab_config("lose_replicas", [{"pattern": dests[0].bucket}])
        return result


COPY_PREFIX = "healthy-"


def copy_name(index: int) -> str:
    """The replication name of the `index`-th copy (0-based): healthy-0001, healthy-0002, ..."""
    return f"{COPY_PREFIX}{index + 1:04d}"


def provision_copies(endpoint: str, copies: int, suffix: str | None = None, workers: int = 8) -> World:
    """`copies` replications set up exactly as the `healthy` scenario, made fast for load tests.

    Each copy has its own source and destination bucket (its own replication rule),
    but all copies share one source key, one destination key, and one replication,
    source-probe and destination-probe role (their policies name the buckets with a
    glob). About 10 lab calls per copy instead of ~20: 1,000 copies in about a minute.
    Replication names are healthy-0001, healthy-0002, ...; buckets rc-cp<NNNN>-{src,dst}<suffix>."""
    if copies < 1:
        raise ValueError("copies must be at least 1")
    suffix = make_suffix(suffix)
    p = Provisioner(endpoint, suffix)
    src_glob, dst_glob = f"rc-cp*-src{suffix}", f"rc-cp*-dst{suffix}"
    replication_name = f"replicanary-replication-copies{suffix}"
    replication_role = f"arn:aws:iam::{SOURCE_ACCOUNT}:role/{replication_name}"
    source_key = create_key(p.src, "replicanary lab copies source key", own_account_key_policy(SOURCE_ACCOUNT))
    dest_key = create_key(p.dst, "replicanary lab copies destination key",
                          destination_key_policy(DEST_ACCOUNT, SOURCE_ACCOUNT))
    create_role(p.src, replication_name, _trust({"Service": "s3.amazonaws.com"}),
                replication_role_policy(src_glob, [dst_glob], [dest_key]))
    monitor = _trust({"AWS": f"arn:aws:iam::{MONITOR_ACCOUNT}:root"})
    source_probe = create_role(p.src, f"replicanary-source-copies{suffix}", monitor,
                               source_probe_policy(src_glob, source_key))
    dest_probe = create_role(p.dst, f"replicanary-destination-copies{suffix}", monitor,
                             destination_probe_policy(dst_glob, dest_key))

    def build(i: int) -> Scenario:
        src_bucket, dst_bucket = f"rc-cp{i + 1:04d}-src{suffix}", f"rc-cp{i + 1:04d}-dst{suffix}"
        create_bucket(p.dst, dst_bucket, dest_key, destination_bucket_policy(dst_bucket, replication_role))
        create_bucket(p.src, src_bucket, source_key)
        p.src.s3.put_bucket_replication(Bucket=src_bucket, ReplicationConfiguration={
            "Role": replication_role, "Rules": [_rule(1, dst_bucket, dest_key)]})
        dest = Destination(dst_bucket, dst_bucket, dest_probe, dest_key, dest_key)
        return Scenario(copy_name(i), src_bucket, source_probe, source_key, replication_role, [dest],
                        notes=SCENARIO_NOTES["healthy"] if i == 0 else "")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        built = list(pool.map(build, range(copies)))
    return World(endpoint, suffix, REGION, {sc.name: sc for sc in built})


def make_suffix(raw: str | None) -> str:
    """A bucket-name-safe suffix; random when not given."""
    if raw is None:
        return "-" + secrets.token_hex(3)
    suffix = re.sub(r"[^a-z0-9-]", "-", raw.lower())
    if suffix and not suffix.startswith("-"):
        suffix = "-" + suffix
    if len(suffix) > 20:
        raise ValueError("suffix too long (max 20 characters)")
    return suffix.rstrip("-")


def parse_drops(drop_statements) -> dict:
    """["destination:ExpectedKey", ...] -> {"destination": {"ExpectedKey"}}, checked against deploy/iam/."""
    drops: dict = {}
    for item in drop_statements:
        side, _, sid = item.partition(":")
        if side not in PROBE_POLICY_FILES or sid not in probe_statement_ids(side):
            known = [f"{sd}:{x}" for sd in PROBE_POLICY_FILES for x in probe_statement_ids(sd)]
            raise ValueError(f"unknown probe statement {item!r}; known: {', '.join(known)}")
        drops.setdefault(side, set()).add(sid)
    return drops


def parse_drop_actions(drop_actions) -> dict:
    """["source:kms:GenerateDataKey", ...] -> {"source": {"kms:GenerateDataKey"}}, checked
    against deploy/iam/: the action must be in one of that side's probe policies."""
    drops: dict = {}
    for item in drop_actions:
        side, _, action = item.partition(":")
        if side not in PROBE_POLICY_FILES or action not in {a for _, _, a in probe_actions(side)}:
            known = [f"{sd}:{a}" for sd in PROBE_POLICY_FILES for _, _, a in probe_actions(sd)]
            raise ValueError(f"unknown probe action {item!r}; known: {', '.join(known)}")
        drops.setdefault(side, set()).add(action)
    return drops


def provision(endpoint: str, scenarios=SCENARIOS, suffix: str | None = None, slow_timeout: str = "3s",
              slow_delay: float = 3600.0, probe_prefix: str = "", external_id: str | None = None,
              drop_statements=(), drop_actions=(), trusted_principal: str | None = None,
              source_retention_days: int | None = None) -> World:
    """Build every scenario (in parallel) and return what was made.

    The probe roles get the deploy/iam/ policies for `probe_prefix` ("" = whole bucket) and
    trust `trusted_principal` (default: the monitoring account's root) with `external_id`
    (None = no sts:ExternalId condition), minus `drop_statements` ("side:Sid") and
    `drop_actions` ("side:action"). `source_retention_days`: every source bucket has Object
    Lock with that GOVERNANCE default retention."""
    suffix = make_suffix(suffix)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    retention = {"Mode": "GOVERNANCE", "Days": source_retention_days} if source_retention_days else None
    provisioner = Provisioner(endpoint, suffix, probe_prefix, external_id, parse_drops(drop_statements),
                              parse_drop_actions(drop_actions), trusted_principal, retention)
    # Scenarios that edit the shared lab config do so under the provisioner's lock.
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {s: pool.submit(provisioner.build, s, slow_timeout, slow_delay) for s in scenarios}
        built = {s: f.result() for s, f in futures.items()}
    return World(endpoint, suffix, REGION, {s: built[s] for s in scenarios}, probe_prefix or "replicanary/",
                 external_id)


@dataclass
class Variant:
    """One scenario provisioned under its own suffix and replication name, with its own
    probe-role permissions (for tests that compare many permission sets in one lab)."""
    name: str                # the replication's name in the configuration
    scenario: str
    suffix: str
    drop_statements: list = field(default_factory=list)   # "side:Sid"
    drop_actions: list = field(default_factory=list)      # "side:action"
    trusted_principal: str | None = None
    source_retention_days: int | None = None
    settings: dict = field(default_factory=dict)          # per-replication overrides


def provision_variants(endpoint: str, variants: list[Variant], probe_prefix: str = "replicanary/",
                       external_id: str | None = None, workers: int = 8) -> dict[str, World]:
    """Every variant built in parallel (clients shared, one lab-config lock): {name: World}."""
    src, dst = Account(endpoint, SOURCE_ACCOUNT), Account(endpoint, DEST_ACCOUNT)
    lock = threading.Lock()
    jobs = []
    for v in variants:
        if v.scenario not in SCENARIOS:
            raise ValueError(f"{v.name}: unknown scenario {v.scenario!r}")
        retention = {"Mode": "GOVERNANCE", "Days": v.source_retention_days} if v.source_retention_days else None
        jobs.append((v, Provisioner(endpoint, make_suffix(v.suffix), probe_prefix, external_id,
                                    parse_drops(v.drop_statements), parse_drop_actions(v.drop_actions),
                                    v.trusted_principal, retention, (src, dst), lock)))

    def build(job) -> tuple[str, World]:
        v, p = job
        sc = p.build(v.scenario, "3s", 3600.0)
        sc.name = v.name
        sc.settings.update(v.settings)
        return v.name, World(endpoint, p.suffix, REGION, {v.name: sc}, probe_prefix or "replicanary/", external_id)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(build, jobs))


def merge_worlds(worlds) -> World:
    """One World holding the scenarios of several (names must differ), for one configuration."""
    worlds = list(worlds)
    scenarios = {}
    for w in worlds:
        scenarios.update(w.scenarios)
    first = worlds[0]
    return World(first.endpoint, first.suffix, first.region, scenarios, first.canary_prefix, first.external_id)


# ---------------------------------------------------------------------------
# The replicanary configuration
# ---------------------------------------------------------------------------


def config_dict(world: World, interval: str = "2s", replication_timeout: str = "10s",
                poll_initial: str = "200ms", poll_max: str = "2s") -> dict:
    replications = []
    for sc in world.scenarios.values():
        entry = {"name": sc.name, **sc.settings,
                 "source": {"bucket": sc.source_bucket, "region": world.region, "role_arn": sc.source_role_arn},
                 "destinations": []}
        if world.external_id is not None:
            entry["source"]["external_id"] = world.external_id
        for d in sc.destinations:
            dest = {"name": d.name} if d.name != d.bucket else {}
            dest.update({"bucket": d.bucket, "region": world.region, "role_arn": d.role_arn,
                         "expected_kms_key_arn": d.expected_kms_key_arn})
            if world.external_id is not None:
                dest["external_id"] = world.external_id
            if d.readers:
                import lab_readers
                dest["readers"] = lab_readers.reader_entries(d, world.external_id)
            entry["destinations"].append(dest)
        replications.append(entry)
    return {
        "defaults": {"interval": interval, "replication_timeout": replication_timeout,
                     "poll": {"initial": poll_initial, "max": poll_max},
                     "canary_prefix": world.canary_prefix, "cleanup": True},
        "aws": {"endpoint_url": world.endpoint, "force_path_style": True},
        "replications": replications,
    }


def render_config(world: World, **settings) -> str:
    import yaml

    header = (f"# replicanary configuration for the lab at {world.endpoint} (suffix {world.suffix!r}).\n"
              f"# Base credentials: AWS_ACCESS_KEY_ID=333333333333 AWS_SECRET_ACCESS_KEY=test\n"
              f"# (the monitoring account's root, trusted by every probe role).\n")
    notes = "".join(f"#   {s.name}: {s.notes}\n" for s in world.scenarios.values())
    return header + "# Scenarios:\n" + notes + yaml.safe_dump(config_dict(world, **settings), sort_keys=False,
                                                              default_flow_style=False, width=200)


def wait_for_lab(endpoint: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(endpoint.rstrip("/") + "/_ministack/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"provision: no lab answering at {endpoint}")
            time.sleep(0.2)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", required=True, help="the lab, e.g. http://127.0.0.1:4566")
    p.add_argument("--out", required=True, help="replicanary configuration file to write ('-' = stdout)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--suffix", help="appended to every resource name (default: random, e.g. -3fa9c1)")
    p.add_argument("--interval", default="2s")
    p.add_argument("--replication-timeout", default="10s")
    p.add_argument("--poll-initial", default="200ms")
    p.add_argument("--poll-max", default="2s")
    p.add_argument("--slow-timeout", default="3s", help="replication_timeout of the slow scenario (default 3s)")
    p.add_argument("--slow-delay", type=float, default=3600.0, help="replication delay of the slow scenario, s")
    p.add_argument("--probe-prefix", default="replicanary/",
                   help="canary prefix the probe roles are limited to (deploy/iam/ CanaryPrefix; also the "
                        "configuration's canary_prefix; default replicanary/)")
    p.add_argument("--external-id", help="sts:ExternalId the probe roles require (written to the configuration)")
    p.add_argument("--drop-statement", action="append", default=[], metavar="SIDE:SID",
                   help="leave one statement out of a probe role's deploy/iam/ policy, e.g. destination:ExpectedKey "
                        "(to see what a missing permission looks like; repeatable)")
    p.add_argument("--drop-action", action="append", default=[], metavar="SIDE:ACTION",
                   help="leave one action out of a probe role's deploy/iam/ policies, from whichever statement "
                        "holds it, e.g. source:kms:GenerateDataKey (a statement left empty goes; repeatable)")
    p.add_argument("--trusted-principal", metavar="ARN",
                   help="the principal the probe roles trust (default: the monitoring account's root; e.g. a base "
                        "role made with create_base_role, whose credentials replicanary then runs with)")
    p.add_argument("--source-retention-days", type=int, metavar="N",
                   help="give every source bucket Object Lock with a GOVERNANCE default retention of N days")
    p.add_argument("--copies", type=int, metavar="N",
                   help="instead of --scenarios: N copies of the healthy scenario (healthy-0001...), sharing "
                        "keys and roles, one bucket pair each (for load tests; 1,000 in about a minute)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    wait_for_lab(args.endpoint)
    started = time.monotonic()
    try:
        if args.copies is not None:
            world = provision_copies(args.endpoint, args.copies, args.suffix)
        else:
            world = provision(args.endpoint, scenarios, args.suffix, args.slow_timeout, args.slow_delay,
                              args.probe_prefix, args.external_id, args.drop_statement, args.drop_action,
                              args.trusted_principal, args.source_retention_days)
    except ValueError as exc:
        sys.exit(f"provision: {exc}")
    text = render_config(world, interval=args.interval, replication_timeout=args.replication_timeout,
                         poll_initial=args.poll_initial, poll_max=args.poll_max)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w") as fh:
            fh.write(text)
    names = ", ".join(world.scenarios) if len(world.scenarios) <= 10 else \
        f"{next(iter(world.scenarios))} ... {list(world.scenarios)[-1]}"
    print(f"provision: {len(world.scenarios)} scenarios ({names}) with suffix "
          f"{world.suffix!r} on {args.endpoint} in {time.monotonic() - started:.1f}s -> {args.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
