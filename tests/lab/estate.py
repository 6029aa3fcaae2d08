#!/usr/bin/env python3
"""Provision an estate for replicanary's discovery on a running lab, and write a
configuration whose only replications come from `discovery:`, plus what discovery
should conclude about every bucket and rule (the "expected" JSON).

    tests/lab/.venv/bin/python tests/lab/estate.py --endpoint http://127.0.0.1:4566 \
        --out /tmp/estate.yaml [--expected-out /tmp/estate-expected.json] [--suffix -x1] \
        [--tag-scenarios [--scenarios healthy,...]] [--extra-buckets N [--extra-account ACCOUNT]] \
        [--interval 2s] [--replication-timeout 10s] [--poll-initial 200ms] [--poll-max 2s] \
        [--discovery-interval 5s] [--canary-prefix replicanary/] [--external-id ID]

Accounts: 111111111111 and 555555555555 are source accounts, 222222222222 the
destination, 333333333333 replicanary's base credentials (it assumes every probe role),
777777777777 owns a destination bucket but has no probe role. Every probe role has a
fixed name, as one CloudFormation StackSet per side would create it
(deploy/iam/cloudformation/, bucket "*"): `replicanary-source-probe` in 111 and 555,
`replicanary-destination-probe` in 222 and 555. Their policies are the deploy/iam/
files verbatim, in the account-wide form (source-probe-account-policy.json,
*-diagnosis-policy.json for bucket "*", *-discovery-policy.json).

Opt-in tag: replicanary=enabled. The buckets, their rules and what discovery should
make of each are in ESTATE below and in tests/lab/README.md ("The estate: discovery").

`--tag-scenarios` instead builds provision.py's scenarios (provision.provision) and opts
their source buckets in, so that a discovery-only configuration finds exactly the
scenarios, with the explicit configuration's verdicts.

Importable: `provision_estate(endpoint, suffix)`, `tag_scenarios(endpoint, scenarios,
suffix)`, `add_extra_buckets(estate, count, account)`, `render_config(estate)`,
`estate.expected()`; runtime helpers for tests (ENDPOINT from the environment when
not given): `tag_bucket`, `untag_bucket`, `bucket_tags`, `add_rule`, `remove_rule`,
`set_rule_status`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

import provision
from provision import REGION

SOURCE_ACCOUNT = "111111111111"
SECOND_SOURCE_ACCOUNT = "555555555555"
DEST_ACCOUNT = "222222222222"
MONITOR_ACCOUNT = "333333333333"
UNPROBED_ACCOUNT = "777777777777"      # owns a destination bucket; no probe role there
SOURCE_ACCOUNTS = (SOURCE_ACCOUNT, SECOND_SOURCE_ACCOUNT)
KNOWN_ACCOUNTS = (SOURCE_ACCOUNT, DEST_ACCOUNT, SECOND_SOURCE_ACCOUNT, UNPROBED_ACCOUNT)

SOURCE_PROBE_ROLE = "replicanary-source-probe"
DESTINATION_PROBE_ROLE = "replicanary-destination-probe"
SOURCE_ROLE_TEMPLATE = "arn:aws:iam::{account}:role/" + SOURCE_PROBE_ROLE
DESTINATION_ROLE_TEMPLATE = "arn:aws:iam::{account}:role/" + DESTINATION_PROBE_ROLE

TAG_KEY, TAG_VALUE = "replicanary", "enabled"
CANARY_PREFIX = "replicanary/"

# Reasons a bucket or rule is not probed (the "reason" of each skip in the expected JSON).
SKIP_REASONS = {
    "untagged": "the bucket does not carry the opt-in tag (or carries it with another value)",
    "no_replication_configuration": "the bucket is opted in but has no replication configuration",
    "rule_disabled": "the rule's Status is Disabled",
    "shadowed": "a higher-priority rule to the same destination bucket selects the rule's canaries",
    "unsatisfiable_filter": "no canary can satisfy the rule's filter",
    "destination_role_unavailable": "the destination account has no probe role that can be assumed",
}

# provision.py's scenarios as discovery sees them: scenario -> rule id -> verdict (the
# explicit configuration's verdict for that rule's destination, unless DISCOVERY_DIFFERS says).
SCENARIO_VERDICTS = {
    "healthy": {"rule-1": "ok"},
    "wrong-key": {"rule-1": "undecryptable"},
    "other-key": {"rule-1": "wrong_kms_key"},
    "unselected": {"rule-1": "not_replicated"},
    "denied": {"rule-1": "replication_failed"},
    "slow": {"rule-1": "replication_timeout"},
    "disabled-key": {"rule-1": "undecryptable"},
    "fan-out": {"rule-1": "ok", "rule-2": "undecryptable"},
    "archive": {"rule-1": "ok"},
    "archive-wrong-key": {"rule-1": "wrong_kms_key"},
    "source-owned": {"rule-1": "unreadable"},
    "locked": {"rule-1": "ok"},
    "partial-fan-out": {"rule-1": "replication_failed", "rule-2": "ok"},
    "vanished": {"rule-1": "replica_missing"},
    "vanished-no-list": {"rule-1": "replica_missing"},
    "readers": {"rule-1": "ok"},  # readers never change the verdict (discovery names no readers here)
}

# Where a discovered replication's verdict or course differs from the explicit configuration's.
DISCOVERY_DIFFERS = {
    "slow": "the explicit configuration's replication_timeout of 3s is per replication: a discovered one "
            "times out after defaults.replication_timeout",
    "partial-fan-out": "each rule is its own replication: rule-2's canary is also replicated by rule-1 to the "
                       "failing destination, so the source says FAILED although rule-2's replica arrives "
                       "(after 4 s); its verdict must come from its own destination, as with several destinations",
    "vanished-no-list": "the account-wide destination role has s3:ListBucket on every bucket: the lost replica "
                        "is 404 (replica_missing), where the explicit role without it gets 403 (unreadable)",
}


def _endpoint(endpoint: str | None) -> str:
    endpoint = endpoint or os.environ.get("ENDPOINT")
    if not endpoint:
        raise ValueError("no endpoint: pass endpoint= or set ENDPOINT")
    return endpoint


# ---------------------------------------------------------------------------
# What the estate is made of
# ---------------------------------------------------------------------------


@dataclass
class Dest:
    """A destination bucket of the estate (name: re-<label>-dst<suffix>)."""

    label: str
    account: str = DEST_ACCOUNT
    default_sse_kms: bool = True      # default encryption SSE-KMS under the account's estate key
    owner_enforced: bool = False      # Object Ownership BucketOwnerEnforced


@dataclass
class Rule:
    """One replication rule (V2 unless `v1`). `rule_id=None`: sent without an ID."""

    rule_id: str | None
    dest: str                          # label of a Dest
    priority: int | None = 1
    prefix: str | None = ""            # Filter.Prefix (or And.Prefix with tags)
    tags: list[tuple[str, str]] = field(default_factory=list)   # Filter.Tag / And.Tags
    status: str = "Enabled"
    select_sse_kms: bool = True        # SourceSelectionCriteria + ReplicaKmsKeyID
    account_in_rule: bool = True       # Destination.Account (+ owner override)
    v1: bool = False                   # the older schema: rule-level Prefix, no Filter/Priority
    # What discovery should conclude: a verdict (probed) or a skip reason.
    verdict: str | None = None
    skip: str | None = None
    findings: tuple[str, ...] = ()
    notes: str = ""


@dataclass
class Case:
    """A source bucket of the estate (name: re-<label>-src<suffix>) and its rules."""

    label: str
    rules: list[Rule]
    account: str = SOURCE_ACCOUNT
    tag_value: str | None = TAG_VALUE  # None: untagged
    skip: str | None = None            # the whole bucket is skipped for this reason
    notes: str = ""


LONG_PREFIX = "deep/" + "d" * 990 + "/"   # with the canary prefix and a name, > 1,024 bytes

ESTATE: list[Case] = [
    Case("healthy", [Rule("healthy", "healthy", verdict="ok")],
         notes="the article's setup, prefix '' (every object)"),
    Case("prefix", [Rule("logs", "prefix", prefix="logs/", verdict="ok")],
         notes="Filter.Prefix logs/: canaries under logs/<canary_prefix>"),
    Case("tag", [Rule("tagged", "tag", prefix=None, tags=[("replicate", "yes")], verdict="ok")],
         notes="Filter.Tag replicate=yes: canaries carry that tag (s3:PutObjectTagging)"),
    Case("and", [Rule("and", "and", prefix="data/", tags=[("team", "storage"), ("class", "gold")], verdict="ok")],
         notes="Filter.And prefix data/ + two tags"),
    Case("priority", [
        Rule("high", "priority", priority=10, prefix="hot/", verdict="ok",
             notes="the highest priority: its canaries under hot/ replicate by it"),
        Rule("low", "priority", priority=5, prefix="", verdict="ok",
             notes="prefix '': its canaries (not under hot/) are selected by no higher rule"),
        Rule("shadowed", "priority", priority=1, prefix="hot/archive/", skip="shadowed",
             notes="hot/archive/ canaries are selected by 'high' (and 'low') at a higher priority "
                   "for the same destination"),
    ], notes="three rules to one destination bucket"),
    Case("no-default-sse", [Rule("no-default-key", "no-default-sse", verdict="ok",
                                 findings=("expected_kms_key_unknown",),
                                 notes="the destination has no default SSE-KMS key (SSE-S3): no expected key, "
                                       "wrong_kms_key not judged")]),
    Case("disabled", [Rule("disabled", "disabled", status="Disabled", skip="rule_disabled")]),
    Case("unselected", [Rule("unselected", "unselected", select_sse_kms=False, verdict="not_replicated",
                             notes="no SseKmsEncryptedObjects: an SSE-KMS canary gets no replication status; "
                                   "probed, as the 'unselected' scenario: the broken replication is reported")]),
    Case("odd-id", [Rule("odd id/ü ✓", "odd-id", verdict="ok",
                         notes="rule id with spaces, a slash and non-ASCII characters")]),
    Case("odd-prefix", [Rule("odd-prefix", "odd-prefix", prefix="odd dir/ü+%&=?#/", verdict="ok",
                             notes="prefix filter with spaces, non-ASCII and URL-special characters")]),
    Case("unknown-account", [Rule("to-777", "unknown-account", skip="destination_role_unavailable",
                                  notes="Destination.Account 777777777777: no replicanary-destination-probe "
                                        "there (AssumeRole fails); the replication itself works")]),
    Case("untagged", [Rule("untagged", "untagged", verdict="ok",
                           notes="a healthy rule; probed ('ok') only once the bucket is tagged")],
         tag_value=None, skip="untagged", notes="must never be probed while untagged"),
    Case("other-value", [Rule("other-value", "other-value", verdict="ok")],
         tag_value="disabled", skip="untagged", notes="tagged replicanary=disabled: not opted in"),
    Case("no-config", [], skip="no_replication_configuration", notes="tagged, no replication configuration"),
    Case("unsatisfiable", [
        Rule("conflicting-tags", "unsatisfiable", priority=2, tags=[("env", "a"), ("env", "b")],
             skip="unsatisfiable_filter",
             notes="And with the same tag key twice, different values: no object carries both "
                   "(whether AWS accepts such a filter is unverified)"),
        Rule("key-too-long", "unsatisfiable", priority=1, prefix=LONG_PREFIX, skip="unsatisfiable_filter",
             notes="a 996-byte prefix: with the canary prefix and a name the key exceeds S3's 1,024 bytes"),
    ]),
    Case("v1", [Rule("legacy", "v1", priority=None, v1=True, verdict="ok",
                     notes="the older schema: rule-level Prefix '', no Filter, no Priority")]),
    Case("no-id", [Rule(None, "no-id", verdict="ok",
                        notes="sent without an ID: S3 generates one (48 characters); the name uses it")]),
    Case("no-account", [Rule("no-account", "no-account", account_in_rule=False, verdict="ok",
                             notes="no Destination.Account: the owner (555555555555) is found with "
                                   "HeadBucket + x-amz-expected-bucket-owner as its destination probe role; "
                                   "the destination enforces bucket-owner ownership, so the replica is its own")]),
    Case("second-account", [Rule("healthy", "second-account", verdict="ok")], account=SECOND_SOURCE_ACCOUNT,
         notes="the second source account's healthy replication"),
]

DESTS: dict[str, Dest] = {d.label: d for d in [
    *(Dest(c.label) for c in ESTATE if c.label not in ("no-config", "no-default-sse", "unknown-account",
                                                        "no-account")),
    Dest("no-default-sse", default_sse_kms=False),
    Dest("unknown-account", account=UNPROBED_ACCOUNT),
    Dest("no-account", account=SECOND_SOURCE_ACCOUNT, owner_enforced=True),
]}


# ---------------------------------------------------------------------------
# The estate's record and expected conclusions
# ---------------------------------------------------------------------------


@dataclass
class Estate:
    endpoint: str
    suffix: str
    region: str = REGION
    source_accounts: list[str] = field(default_factory=lambda: list(SOURCE_ACCOUNTS))
    canary_prefix: str = CANARY_PREFIX
    external_id: str | None = None
    replications: dict[str, dict] = field(default_factory=dict)   # name -> what discovery should find
    skipped: list[dict] = field(default_factory=list)
    buckets: dict[str, str] = field(default_factory=dict)          # label -> source bucket name
    dormant: dict[str, dict] = field(default_factory=dict)         # found once their bucket is opted in
    unmonitored: list[dict] = field(default_factory=list)          # enabled rules no probe stands for (coverage)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def expected(self) -> dict:
        """What discovery should conclude, as JSON-able data (see the README)."""
        return {
            "discovery": {
                "regions": [self.region], "source_accounts": self.source_accounts,
                "source_role_arn": SOURCE_ROLE_TEMPLATE, "destination_role_arn": DESTINATION_ROLE_TEMPLATE,
                "bucket_tag": {"key": TAG_KEY, "value": TAG_VALUE}, "canary_prefix": self.canary_prefix,
            },
            "replications": dict(sorted(self.replications.items())),
            "dormant": dict(sorted(self.dormant.items())),
            "unmonitored": sorted(self.unmonitored, key=lambda u: (u["source_account"], u["bucket"],
                                                                  u["rule_id"] or "")),
            "skipped": sorted(self.skipped, key=lambda s: (s["bucket"], s.get("rule_id") or "")),
            "skip_reasons": SKIP_REASONS,
            "notes": self.notes,
        }

    def add_replication(self, *, account: str, bucket: str, rule_id: str, prefix: str, tags: list,
                        priority: int | None, destinations: list[dict], verdict: str,
                        findings=(), notes: str = "", into: dict | None = None) -> None:
        name = f"{bucket}/{rule_id}"
        (self.replications if into is None else into)[name] = {
            "source_account": account, "source_bucket": bucket, "rule_id": rule_id, "region": self.region,
            "source_role_arn": SOURCE_ROLE_TEMPLATE.format(account=account),
            "prefix": prefix, "tags": dict(tags), "priority": priority,
            "canary_key_prefix": f"{prefix}{self.canary_prefix}{name}/",
            "destinations": destinations, "expected_verdict": verdict, "findings": list(findings),
            "notes": notes,
        }

    def add_unmonitored(self, *, account: str, bucket: str, rule_id: str | None, destination_bucket: str,
                        destination_account: str | None, replica_kms_key_id: str | None, reason: str) -> None:
        """An enabled rule discovery's coverage should list: its bucket did not opt in
        (`untagged`), or discovery cannot probe it (`shadowed`, `unsatisfiable_filter`,
        `invalid_rule`)."""
        self.unmonitored.append({"source_account": account, "region": self.region, "bucket": bucket,
                                 "rule_id": rule_id, "destination_bucket": destination_bucket,
                                 "destination_account": destination_account,
                                 "replica_kms_key_id": replica_kms_key_id, "reason": reason})

    def add_skip(self, *, account: str, bucket: str, rule_id: str | None, reason: str, detail: str = "") -> None:
        assert reason in SKIP_REASONS, reason
        self.skipped.append({"source_account": account, "bucket": bucket, "rule_id": rule_id, "reason": reason,
                             "detail": detail})


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------


def _doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _trust_service(service: str) -> str:
    return _doc({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})


def probe_role_policies(side: str, account: str, canary_prefix: str = CANARY_PREFIX) -> list[str]:
    """A fixed-name probe role's policies in the account-wide form, from deploy/iam/ verbatim:
    the account policy, the diagnosis policy for bucket "*" and the discovery policy."""
    bucket = "SourceBucket" if side == "source" else "DestinationBucket"
    values = {"CanaryPrefix": canary_prefix, "AWS::AccountId": account, bucket: "*"}
    files = (f"{side}-probe-account-policy.json", f"{side}-probe-diagnosis-policy.json",
             f"{side}-probe-discovery-policy.json")
    return [json.dumps(provision.iam_document(f, values)) for f in files]


def ensure_probe_role(endpoint: str, account: str, side: str, canary_prefix: str = CANARY_PREFIX,
                      external_id: str | None = None) -> str:
    """Create (or bring up to date) the fixed-name probe role of `side` in `account`:
    the same role whichever estate or scenario world asks for it, as a StackSet keeps it."""
    name = SOURCE_PROBE_ROLE if side == "source" else DESTINATION_PROBE_ROLE
    iam = provision.Account(endpoint, account).iam
    trust = provision.probe_trust(f"arn:aws:iam::{MONITOR_ACCOUNT}:root", external_id)
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
    policy_names = ("probe", "diagnosis", "discovery")
    for policy_name, doc in zip(policy_names, probe_role_policies(side, account, canary_prefix)):
        iam.put_role_policy(RoleName=name, PolicyName=f"{name}-{policy_name}", PolicyDocument=doc)
    return f"arn:aws:iam::{account}:role/{name}"


def make_rule(rule: Rule, dest_bucket: str, dest_account: str, replica_key: str | None) -> dict:
    """The rule as PutBucketReplication takes it (the article's options, plus the case's filter)."""
    destination: dict = {"Bucket": f"arn:aws:s3:::{dest_bucket}", "StorageClass": "STANDARD"}
    if rule.account_in_rule:
        destination["Account"] = dest_account
        destination["AccessControlTranslation"] = {"Owner": "Destination"}
    out: dict = {"Status": rule.status}
    if rule.rule_id is not None:
        out["ID"] = rule.rule_id
    if rule.v1:
        out["Prefix"] = rule.prefix or ""
    else:
        out["Priority"] = rule.priority
        out["DeleteMarkerReplication"] = {"Status": "Disabled"}
        tags = [{"Key": k, "Value": v} for k, v in rule.tags]
        if tags and (rule.prefix is not None or len(tags) > 1):
            out["Filter"] = {"And": {"Prefix": rule.prefix or "", "Tags": tags}}
        elif tags:
            out["Filter"] = {"Tag": tags[0]}
        else:
            out["Filter"] = {"Prefix": rule.prefix or ""}
        destination["Metrics"] = {"Status": "Enabled"}
        destination["ReplicationTime"] = {"Status": "Disabled", "Time": {"Minutes": 15}}
    if rule.select_sse_kms and replica_key:
        destination["EncryptionConfiguration"] = {"ReplicaKmsKeyID": replica_key}
        out["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    out["Destination"] = destination
    return out


class Builder:
    """Creates the estate's resources; one per provisioning (its suffix)."""

    def __init__(self, endpoint: str, suffix: str, canary_prefix: str = CANARY_PREFIX,
                 external_id: str | None = None):
        self.endpoint = endpoint
        self.suffix = suffix
        self.canary_prefix = canary_prefix
        self.external_id = external_id
        self.accounts = {a: provision.Account(endpoint, a) for a in KNOWN_ACCOUNTS}
        self.source_keys: dict[str, str] = {}       # source account -> its canaries' default key
        self.replication_roles: dict[str, str] = {}  # source account -> replication role ARN
        self.dest_keys: dict[tuple[str, str], str] = {}  # (destination account, source account) -> key

    def account(self, account_id: str) -> provision.Account:
        if account_id not in self.accounts:
            self.accounts[account_id] = provision.Account(self.endpoint, account_id)
        return self.accounts[account_id]

    def src_name(self, label: str) -> str:
        return f"re-{label}-src{self.suffix}"

    def dst_name(self, label: str) -> str:
        return f"re-{label}-dst{self.suffix}"

    def source_key(self, account: str) -> str:
        if account not in self.source_keys:
            self.source_keys[account] = provision.create_key(
                self.account(account), f"replicanary estate source key{self.suffix}",
                provision.own_account_key_policy(account))
        return self.source_keys[account]

    def dest_key(self, dest_account: str, source_account: str) -> str:
        """A customer-managed key of `dest_account` the article's way: its own IAM may use it,
        and `source_account` (its replication role) may encrypt under it."""
        if (dest_account, source_account) not in self.dest_keys:
            self.dest_keys[(dest_account, source_account)] = provision.create_key(
                self.account(dest_account), f"replicanary estate key for {source_account}{self.suffix}",
                provision.destination_key_policy(dest_account, source_account))
        return self.dest_keys[(dest_account, source_account)]

    def replication_role(self, account: str, replica_keys: list[str]) -> str:
        """The source account's replication role (trusted by s3.amazonaws.com) for every
        estate bucket of this suffix; the lab evaluates only the destination's bucket policy."""
        if account not in self.replication_roles:
            name = f"replicanary-estate-replication{self.suffix}"
            self.replication_roles[account] = provision.create_role(
                self.account(account), name, _trust_service("s3.amazonaws.com"),
                provision.replication_role_policy(f"*{self.suffix}", [f"*{self.suffix}"], replica_keys))
        return self.replication_roles[account]

    def bucket(self, account: str, name: str, key_arn: str | None, policy: str | None = None,
               versioned: bool = True, owner_enforced: bool = False) -> None:
        """A bucket: versioned, default SSE-KMS under `key_arn` (None: S3's default SSE-S3),
        public access blocked, an optional bucket policy."""
        s3 = self.account(account).s3
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if key_arn:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                "BucketKeyEnabled": True}]})
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
        if owner_enforced:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={
                "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        if policy:
            s3.put_bucket_policy(Bucket=name, Policy=policy)


def _tag(s3, bucket: str, value: str | None) -> None:
    if value is not None:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
            {"Key": TAG_KEY, "Value": value}, {"Key": "team", "Value": "storage"}]})


# ---------------------------------------------------------------------------
# The estate
# ---------------------------------------------------------------------------


def provision_estate(endpoint: str, suffix: str | None = None, canary_prefix: str = CANARY_PREFIX,
                     external_id: str | None = None, workers: int = 8) -> Estate:
    """Build ESTATE on the lab at `endpoint` and return it with its expected conclusions."""
    started = time.monotonic()
    suffix = provision.make_suffix(suffix)
    b = Builder(endpoint, suffix, canary_prefix, external_id)
    estate = Estate(endpoint, suffix, canary_prefix=canary_prefix, external_id=external_id)
    source_of = {r.dest: c for c in ESTATE for r in c.rules}   # destination label -> its source case

    # Keys, then the replication roles (their policies name the keys), then the probe roles.
    for case in ESTATE:
        b.source_key(case.account)
    for dest in DESTS.values():
        if dest.label in source_of:
            b.dest_key(dest.account, source_of[dest.label].account)
    for account in {c.account for c in ESTATE}:
        b.replication_role(account, [k for (d, s), k in b.dest_keys.items() if s == account])
    for account in SOURCE_ACCOUNTS:
        ensure_probe_role(endpoint, account, "source", canary_prefix, external_id)
    for account in (DEST_ACCOUNT, SECOND_SOURCE_ACCOUNT):
        ensure_probe_role(endpoint, account, "destination", canary_prefix, external_id)

    def build_dest(dest: Dest) -> None:
        source = source_of[dest.label]
        key = b.dest_key(dest.account, source.account)
        b.bucket(dest.account, b.dst_name(dest.label), key if dest.default_sse_kms else None,
                 provision.destination_bucket_policy(b.dst_name(dest.label), b.replication_roles[source.account]),
                 owner_enforced=dest.owner_enforced)

    def build_source(case: Case) -> None:
        name = b.src_name(case.label)
        s3 = b.account(case.account).s3
        b.bucket(case.account, name, b.source_key(case.account))
        _tag(s3, name, case.tag_value)
        if case.rules:
            rules = [make_rule(r, b.dst_name(r.dest), DESTS[r.dest].account,
                               b.dest_key(DESTS[r.dest].account, case.account)) for r in case.rules]
            s3.put_bucket_replication(Bucket=name, ReplicationConfiguration={
                "Role": b.replication_roles[case.account], "Rules": rules})

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(build_dest, [d for d in DESTS.values() if d.label in source_of]))
        list(pool.map(build_source, ESTATE))

    for case in ESTATE:
        name = b.src_name(case.label)
        estate.buckets[case.label] = name
        record_case(estate, b, case)
    estate.notes += [
        f"{SOURCE_ACCOUNT} and {SECOND_SOURCE_ACCOUNT} are the source accounts; {DEST_ACCOUNT} and "
        f"{SECOND_SOURCE_ACCOUNT} have {DESTINATION_PROBE_ROLE}; {UNPROBED_ACCOUNT} has no probe role.",
        "Only the buckets this provisioning made are listed; others in the same accounts are not.",
    ]
    estate.seconds = time.monotonic() - started
    return estate


def record_case(estate: Estate, b: Builder, case: Case) -> None:
    """What discovery should conclude about one case, read back where S3 decided (rule ids)."""
    name = b.src_name(case.label)
    ids = [r.rule_id for r in case.rules]
    if any(i is None for i in ids):  # S3 generated them: read them back, as discovery will
        got = b.account(case.account).s3.get_bucket_replication(Bucket=name)["ReplicationConfiguration"]["Rules"]
        ids = [g["ID"] for g in got]
    if case.skip in ("untagged", "no_replication_configuration"):
        detail = {None: "no tags", TAG_VALUE: ""}.get(case.tag_value, f"{TAG_KEY}={case.tag_value}")
        estate.add_skip(account=case.account, bucket=name, rule_id=None, reason=case.skip,
                        detail=detail or case.notes)
        if case.skip == "untagged":  # what tagging it at runtime should bring
            _record_rules(estate.dormant, estate, b, case, ids)
            for rule, rule_id in zip(case.rules, ids):
                _record_unmonitored(estate, b, case, rule, rule_id, "untagged")
        return
    _record_rules(estate.replications, estate, b, case, ids)


def _record_unmonitored(estate: Estate, b: Builder, case: Case, rule: Rule, rule_id: str | None,
                        reason: str) -> None:
    if rule.status != "Enabled":
        return
    dest = DESTS[rule.dest]
    estate.add_unmonitored(
        account=case.account, bucket=b.src_name(case.label), rule_id=rule_id,
        destination_bucket=b.dst_name(rule.dest),
        destination_account=dest.account if rule.account_in_rule else None,
        replica_kms_key_id=b.dest_key(dest.account, case.account) if rule.select_sse_kms else None,
        reason=reason)


def _record_rules(into: dict, estate: Estate, b: Builder, case: Case, ids: list) -> None:
    name = b.src_name(case.label)
    for rule, rule_id in zip(case.rules, ids):
        if rule.skip:
            estate.add_skip(account=case.account, bucket=name, rule_id=rule_id, reason=rule.skip, detail=rule.notes)
            if rule.skip in ("shadowed", "unsatisfiable_filter", "invalid_rule") and into is estate.replications:
                _record_unmonitored(estate, b, case, rule, rule_id, rule.skip)
            continue
        dest = DESTS[rule.dest]
        expected_key = b.dest_key(dest.account, case.account) if dest.default_sse_kms else None
        estate.add_replication(
            into=into,
            account=case.account, bucket=name, rule_id=rule_id, prefix="" if rule.v1 else (rule.prefix or ""),
            tags=rule.tags, priority=None if rule.v1 else rule.priority, verdict=rule.verdict,
            findings=rule.findings, notes=rule.notes or case.notes,
            destinations=[{
                "bucket": b.dst_name(rule.dest), "account": dest.account,
                "account_from": "rule" if rule.account_in_rule else "bucket_owner",
                "role_arn": DESTINATION_ROLE_TEMPLATE.format(account=dest.account),
                "expected_kms_key_arn": expected_key,
                "replica_kms_key_arn": b.dest_key(dest.account, case.account) if rule.select_sse_kms else None,
            }])


# ---------------------------------------------------------------------------
# Many buckets (discovery at scale, ListBuckets pagination)
# ---------------------------------------------------------------------------


def extra_bucket_name(index: int, suffix: str) -> str:
    return f"rx-{index:05d}{suffix}"


def add_extra_buckets(estate: Estate, count: int, account: str = SOURCE_ACCOUNT, workers: int = 8) -> float:
    """`count` more buckets in `account`, made fast: every 10th tagged (half of those with
    one simple healthy rule to a shared destination), every 25th untagged one with a rule
    too (never to be probed), the rest bare. Returns the seconds it took."""
    started = time.monotonic()
    b = Builder(estate.endpoint, estate.suffix, estate.canary_prefix, estate.external_id)
    if account not in estate.source_accounts:
        estate.source_accounts.append(account)
    ensure_probe_role(estate.endpoint, account, "source", estate.canary_prefix, estate.external_id)
    ensure_probe_role(estate.endpoint, DEST_ACCOUNT, "destination", estate.canary_prefix, estate.external_id)
    source_key = provision.create_key(b.account(account), f"replicanary estate extra source key{estate.suffix}",
                                      provision.own_account_key_policy(account))
    dest_key = b.dest_key(DEST_ACCOUNT, account)
    role = provision.create_role(b.account(account), f"replicanary-estate-extra-replication{estate.suffix}",
                                 _trust_service("s3.amazonaws.com"),
                                 provision.replication_role_policy(f"rx-*{estate.suffix}", [f"rx-*{estate.suffix}"],
                                                                   [dest_key]))
    dest = f"rx-dst{estate.suffix}"
    b.bucket(DEST_ACCOUNT, dest, dest_key, provision.destination_bucket_policy(dest, role))
    s3 = b.account(account).s3
    rule = Rule("extra", "extra")

    def kind(i: int) -> str:
        if i % 20 == 0:
            return "tagged-rule"
        if i % 10 == 0:
            return "tagged"
        if i % 25 == 5:
            return "untagged-rule"
        return "bare"

    def build(i: int) -> None:
        name, k = extra_bucket_name(i, estate.suffix), kind(i)
        if k == "bare" or k == "tagged":
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": source_key},
                "BucketKeyEnabled": True}]})
            s3.put_bucket_replication(Bucket=name, ReplicationConfiguration={
                "Role": role, "Rules": [make_rule(rule, dest, DEST_ACCOUNT, dest_key)]})
        if k.startswith("tagged"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": TAG_KEY, "Value": TAG_VALUE}]})

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(build, range(count)))
    for i in range(count):
        name, k = extra_bucket_name(i, estate.suffix), kind(i)
        if k == "tagged-rule":
            estate.add_replication(
                account=account, bucket=name, rule_id="extra", prefix="", tags=[], priority=1, verdict="ok",
                destinations=[{"bucket": dest, "account": DEST_ACCOUNT, "account_from": "rule",
                               "role_arn": DESTINATION_ROLE_TEMPLATE.format(account=DEST_ACCOUNT),
                               "expected_kms_key_arn": dest_key, "replica_kms_key_arn": dest_key}],
                notes="an extra bucket (scale)")
        elif k == "tagged":
            estate.add_skip(account=account, bucket=name, rule_id=None, reason="no_replication_configuration",
                            detail="an extra bucket (scale)")
        else:
            estate.add_skip(account=account, bucket=name, rule_id=None, reason="untagged",
                            detail="an extra bucket (scale)" + (", with a rule" if k == "untagged-rule" else ""))
    seconds = time.monotonic() - started
    estate.notes.append(f"{count} extra buckets rx-NNNNN{estate.suffix} in {account} "
                        f"(made in {seconds:.1f}s); their shared destination is {dest}")
    return seconds


# ---------------------------------------------------------------------------
# provision.py's scenarios, opted in
# ---------------------------------------------------------------------------


def tag_scenarios(endpoint: str, scenarios=provision.SCENARIOS, suffix: str | None = None,
                  canary_prefix: str = CANARY_PREFIX, external_id: str | None = None,
                  world: provision.World | None = None) -> Estate:
    """provision.py's scenario world (built here unless `world` is given), its source buckets
    opted in and the fixed-name account-wide probe roles in 111/222, so that a discovery-only
    configuration finds exactly the scenarios. Each destination bucket's default SSE-KMS key
    (what discovery reads as the expected key) is the scenario's expected key, so the
    verdicts are the explicit configuration's."""
    started = time.monotonic()
    if world is None:
        world = provision.provision(endpoint, scenarios, suffix)
    estate = Estate(endpoint, world.suffix, world.region, [SOURCE_ACCOUNT], canary_prefix, external_id)
    ensure_probe_role(endpoint, SOURCE_ACCOUNT, "source", canary_prefix, external_id)
    ensure_probe_role(endpoint, DEST_ACCOUNT, "destination", canary_prefix, external_id)
    s3 = provision.Account(endpoint, SOURCE_ACCOUNT).s3
    for sc in world.scenarios.values():
        _tag(s3, sc.source_bucket, TAG_VALUE)
        estate.buckets[sc.name] = sc.source_bucket
        rules = s3.get_bucket_replication(Bucket=sc.source_bucket)["ReplicationConfiguration"]["Rules"]
        for rule, dest in zip(rules, sc.destinations):
            notes = f"scenario {sc.name}" + (f", destination {dest.name}" if dest.name != dest.bucket else "")
            if sc.name in DISCOVERY_DIFFERS:
                notes += f"; {DISCOVERY_DIFFERS[sc.name]}"
            estate.add_replication(
                account=SOURCE_ACCOUNT, bucket=sc.source_bucket, rule_id=rule["ID"],
                prefix=rule.get("Filter", {}).get("Prefix", ""), tags=[], priority=rule.get("Priority"),
                verdict=SCENARIO_VERDICTS[sc.name][rule["ID"]], notes=notes,
                destinations=[{"bucket": dest.bucket, "account": DEST_ACCOUNT, "account_from": "rule",
                               "role_arn": DESTINATION_ROLE_TEMPLATE.format(account=DEST_ACCOUNT),
                               "expected_kms_key_arn": dest.expected_kms_key_arn,
                               "replica_kms_key_arn": dest.replica_kms_key_arn}])
    estate.notes.append(f"provision.py's scenarios {', '.join(world.scenarios)} (suffix {world.suffix!r}), "
                        f"opted in; the explicit per-scenario probe roles exist too, unused here")
    estate.seconds = time.monotonic() - started
    return estate


# ---------------------------------------------------------------------------
# The configuration
# ---------------------------------------------------------------------------


def config_dict(estate: Estate, interval: str = "2s", replication_timeout: str = "10s",
                poll_initial: str = "200ms", poll_max: str = "2s", discovery_interval: str = "5s",
                expected_kms_keys: dict | None = None) -> dict:
    discovery = {
        "interval": discovery_interval,
        "regions": [estate.region],
        "source_accounts": list(estate.source_accounts),
        "source_role_arn": SOURCE_ROLE_TEMPLATE,
        "destination_role_arn": DESTINATION_ROLE_TEMPLATE,
    }
    if estate.external_id is not None:
        discovery["external_id"] = estate.external_id
    discovery["bucket_tag"] = {"key": TAG_KEY, "value": TAG_VALUE}
    if expected_kms_keys:
        discovery["expected_kms_keys"] = dict(expected_kms_keys)
    return {
        "defaults": {"interval": interval, "replication_timeout": replication_timeout,
                     "poll": {"initial": poll_initial, "max": poll_max},
                     "canary_prefix": estate.canary_prefix, "cleanup": True},
        "aws": {"endpoint_url": estate.endpoint, "force_path_style": True},
        "discovery": discovery,
    }


def render_config(estate: Estate, **settings) -> str:
    import yaml

    header = (f"# replicanary configuration for the estate on the lab at {estate.endpoint} "
              f"(suffix {estate.suffix!r}): discovery only.\n"
              f"# Base credentials: AWS_ACCESS_KEY_ID={MONITOR_ACCOUNT} AWS_SECRET_ACCESS_KEY=test.\n"
              f"# Discovery should find {len(estate.replications)} replications and skip "
              f"{len(estate.skipped)} buckets/rules (estate.py --expected-out).\n")
    return header + yaml.safe_dump(config_dict(estate, **settings), sort_keys=False, default_flow_style=False,
                                   width=200, allow_unicode=True)


# ---------------------------------------------------------------------------
# Runtime helpers (tests call them while replicanary runs)
# ---------------------------------------------------------------------------


def bucket_tags(bucket: str, account: str = SOURCE_ACCOUNT, endpoint: str | None = None) -> dict:
    """The bucket's tags as a dict ({} when it has none)."""
    s3 = provision.Account(_endpoint(endpoint), account).s3
    try:
        return {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchTagSet":
            return {}
        raise


def tag_bucket(bucket: str, account: str = SOURCE_ACCOUNT, key: str = TAG_KEY, value: str = TAG_VALUE,
               endpoint: str | None = None) -> dict:
    """Opt a bucket in (set `key`=`value`, keeping its other tags), as its account's root.
    Returns the bucket's tags afterwards."""
    tags = bucket_tags(bucket, account, endpoint)
    tags[key] = value
    provision.Account(_endpoint(endpoint), account).s3.put_bucket_tagging(
        Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    return tags


def untag_bucket(bucket: str, account: str = SOURCE_ACCOUNT, key: str = TAG_KEY,
                 endpoint: str | None = None) -> dict:
    """Opt a bucket out (remove tag `key`, keeping the others; no tag left: DeleteBucketTagging).
    Returns the bucket's tags afterwards."""
    tags = bucket_tags(bucket, account, endpoint)
    tags.pop(key, None)
    s3 = provision.Account(_endpoint(endpoint), account).s3
    if tags:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    else:
        s3.delete_bucket_tagging(Bucket=bucket)
    return tags


def bucket_owner(bucket: str, endpoint: str | None = None, accounts=KNOWN_ACCOUNTS) -> str | None:
    """The account among `accounts` that owns `bucket` (HeadBucket with x-amz-expected-bucket-owner
    as each account's root: 200 only for the owner), or None."""
    for account in accounts:
        try:
            provision.Account(_endpoint(endpoint), account).s3.head_bucket(Bucket=bucket,
                                                                           ExpectedBucketOwner=account)
            return account
        except ClientError:
            continue
    return None


def default_kms_key(bucket: str, account: str, endpoint: str | None = None) -> str | None:
    """The bucket's default SSE-KMS key ARN, or None (SSE-S3)."""
    rules = provision.Account(_endpoint(endpoint), account).s3.get_bucket_encryption(Bucket=bucket)[
        "ServerSideEncryptionConfiguration"]["Rules"]
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
    return default.get("KMSMasterKeyID") if default.get("SSEAlgorithm") == "aws:kms" else None


def _replication(bucket: str, account: str, endpoint: str | None) -> dict:
    s3 = provision.Account(_endpoint(endpoint), account).s3
    return s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]


def _put_replication(bucket: str, account: str, endpoint: str | None, config: dict) -> None:
    provision.Account(_endpoint(endpoint), account).s3.put_bucket_replication(
        Bucket=bucket, ReplicationConfiguration=config)


def add_rule(bucket: str, rule_id: str, destination_bucket: str, account: str = SOURCE_ACCOUNT,
             prefix: str = "", tags: dict | None = None, priority: int | None = None, status: str = "Enabled",
             destination_account: str | None = None, replica_kms_key_arn: str | None = None,
             select_sse_kms: bool = True, endpoint: str | None = None) -> dict:
    """Append a rule to the bucket's replication configuration (it must have one: the estate's
    buckets do), as the account's root. `priority` defaults to one above every existing rule (so
    the new rule is shadowed by none); the destination account defaults to the bucket's owner,
    the ReplicaKmsKeyID to the destination's default SSE-KMS key. Returns the rule as put."""
    config = _replication(bucket, account, endpoint)
    if priority is None:
        priority = max((r.get("Priority", 0) for r in config["Rules"]), default=0) + 1
    destination_account = destination_account or bucket_owner(destination_bucket, endpoint)
    if destination_account is None:
        raise ValueError(f"no known account owns {destination_bucket}; pass destination_account=")
    if select_sse_kms and replica_kms_key_arn is None:
        replica_kms_key_arn = default_kms_key(destination_bucket, destination_account, endpoint)
    tag_list = list((tags or {}).items())
    spec = Rule(rule_id, "", priority=priority, prefix=prefix if (prefix or not tag_list) else None,
                tags=tag_list, status=status, select_sse_kms=select_sse_kms)
    rule = make_rule(spec, destination_bucket, destination_account, replica_kms_key_arn)
    config["Rules"].append(rule)
    _put_replication(bucket, account, endpoint, config)
    return rule


def remove_rule(bucket: str, rule_id: str, account: str = SOURCE_ACCOUNT, endpoint: str | None = None) -> int:
    """Remove the rule `rule_id` (the last one: DeleteBucketReplication). Returns the rules left."""
    config = _replication(bucket, account, endpoint)
    left = [r for r in config["Rules"] if r.get("ID") != rule_id]
    if len(left) == len(config["Rules"]):
        raise KeyError(f"{bucket} has no rule {rule_id!r}")
    if left:
        _put_replication(bucket, account, endpoint, {**config, "Rules": left})
    else:
        provision.Account(_endpoint(endpoint), account).s3.delete_bucket_replication(Bucket=bucket)
    return len(left)


def set_rule_status(bucket: str, rule_id: str, status: str, account: str = SOURCE_ACCOUNT,
                    endpoint: str | None = None) -> None:
    """Enable or disable one rule (`status` Enabled|Disabled)."""
    config = _replication(bucket, account, endpoint)
    rules = [r for r in config["Rules"] if r.get("ID") == rule_id]
    if not rules:
        raise KeyError(f"{bucket} has no rule {rule_id!r}")
    rules[0]["Status"] = status
    _put_replication(bucket, account, endpoint, config)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", required=True, help="the lab, e.g. http://127.0.0.1:4566")
    p.add_argument("--out", required=True, help="replicanary configuration to write ('-' = stdout)")
    p.add_argument("--expected-out", metavar="FILE", help="write what discovery should conclude (JSON; '-' = stdout)")
    p.add_argument("--suffix", help="appended to every bucket name (default: random, e.g. -3fa9c1)")
    p.add_argument("--tag-scenarios", action="store_true",
                   help="instead of the estate: provision.py's scenarios, opted in")
    p.add_argument("--scenarios", default=",".join(provision.SCENARIOS), help="with --tag-scenarios: which")
    p.add_argument("--extra-buckets", type=int, default=0, metavar="N",
                   help="N more buckets (every 10th tagged, half of those with a rule), for discovery at scale")
    p.add_argument("--extra-account", default=SOURCE_ACCOUNT, metavar="ACCOUNT",
                   help=f"the account of the extra buckets (default {SOURCE_ACCOUNT}; another becomes a source "
                        f"account with its own {SOURCE_PROBE_ROLE})")
    p.add_argument("--interval", default="2s")
    p.add_argument("--replication-timeout", default="10s")
    p.add_argument("--poll-initial", default="200ms")
    p.add_argument("--poll-max", default="2s")
    p.add_argument("--discovery-interval", default="5s")
    p.add_argument("--canary-prefix", default=CANARY_PREFIX,
                   help="defaults.canary_prefix, and the probe roles' CanaryPrefix (default replicanary/)")
    p.add_argument("--external-id", help="sts:ExternalId the probe roles require (written to the configuration)")
    return p.parse_args(argv)


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
    else:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)


def main(argv=None) -> None:
    args = parse_args(argv)
    provision.wait_for_lab(args.endpoint)
    try:
        if args.tag_scenarios:
            scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
            estate = tag_scenarios(args.endpoint, scenarios, args.suffix, args.canary_prefix, args.external_id)
        else:
            estate = provision_estate(args.endpoint, args.suffix, args.canary_prefix, args.external_id)
        extra = add_extra_buckets(estate, args.extra_buckets, args.extra_account) if args.extra_buckets else 0.0
    except ValueError as exc:
        sys.exit(f"estate: {exc}")
    _write(args.out, render_config(estate, interval=args.interval, replication_timeout=args.replication_timeout,
                                   poll_initial=args.poll_initial, poll_max=args.poll_max,
                                   discovery_interval=args.discovery_interval))
    if args.expected_out:
        _write(args.expected_out, json.dumps(estate.expected(), indent=2, ensure_ascii=False) + "\n")
    extra_note = f" + {args.extra_buckets} extra buckets in {extra:.1f}s" if args.extra_buckets else ""
    print(f"estate: {len(estate.replications)} replications to discover, {len(estate.skipped)} skips, "
          f"suffix {estate.suffix!r} on {args.endpoint} in {estate.seconds:.1f}s{extra_note} -> {args.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
