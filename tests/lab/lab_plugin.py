"""Corrections to ministack 1.5.33 so that S3 replication of SSE-KMS objects
behaves as on AWS, applied by monkeypatching ministack's S3 module at start-up.

What stock ministack gets wrong and what this plugin does instead:

1. Replication is synchronous inside PutObject, so PENDING is never seen.
   -> The source is stamped PENDING; the replica is written (and the source
      flipped to COMPLETED or FAILED) after a delay on the event loop
      (`LabState.delay_for`). Until then the replica does not exist.
2. `ReplicaKmsKeyID` is ignored. -> An SSE-KMS replica is encrypted under the
   rule's `ReplicaKmsKeyID`, reported as the key ARN.
3. SSE-KMS objects replicate even when no rule selects them. -> An SSE-KMS
   object is replicated only by rules with
   `SourceSelectionCriteria.SseKmsEncryptedObjects.Status = Enabled`; when no
   rule selects it, it carries no replication status at all.
4. The replica gets a new version id. -> It keeps the source's version id.
5. GetObject never checks KMS. -> GetObject of an SSE-KMS object requires
   kms:Decrypt on its key (key policy + the caller's identity policy), and
   reports disabled / pending-deletion / missing keys as S3 does.
   PutObject (any SSE-KMS write) likewise requires kms:GenerateDataKey.
   HeadObject needs no KMS permission, as on AWS.
6. KMS key ids are echoed as given. -> Stored and reported as the key ARN.
7. Only the first matching rule replicates. -> Every enabled rule that selects
   the object replicates to its destination (highest Priority wins per
   destination bucket); the source is COMPLETED when all destinations are,
   FAILED when any failed.
8. A GET by version id ignores `Range`. -> 206 with the bytes asked (readers' `bytes=0-0`).

Also: a `fail` pattern in the lab config forces FAILED for matching source objects.

AWS behaviours the probe's verdicts rely on, modelled here (sources in tests/lab/README.md,
"AWS behaviours modelled for the probe's verdicts"):

- Archive classes: ministack already answers GetObject of a GLACIER / DEEP_ARCHIVE
  object 403 InvalidObjectState before this plugin's KMS check, and HeadObject works;
  the plugin only makes sure the rule's Destination.StorageClass lands on the replica.
- Replica ownership: without the rule's owner override (AccessControlTranslation) a
  replica in a bucket whose Object Ownership is not BucketOwnerEnforced stays owned by
  the source account; every principal of another account gets 403 AccessDenied on
  HeadObject and GetObject of it (the bucket owner may still delete it).
- Object Lock on replicas: the source version's retention, else the destination
  bucket's default retention, counted from the replica's creation; a "day" lasts
  `object_lock_day_seconds` (also for PutObject into a locked bucket).
  HeadObject/GetObject report x-amz-object-lock-mode / -retain-until-date only to a
  caller with s3:GetObjectRetention, x-amz-object-lock-legal-hold only with
  s3:GetObjectLegalHold.
- Per-destination timing and outcome (`destination_delays`, `destination_fail`,
  `lose_replicas`); the source turns FAILED as soon as one destination failed, even
  while another is still pending (the lab's choice, unverified on AWS).
- A missing key or version id answers HeadObject/GetObject 404 only to a caller with
  s3:ListBucket on the bucket, else 403 AccessDenied (ministack: 404 always).
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import datetime as _dt
import functools
import logging
from dataclasses import dataclass

from ministack.core import iam_evaluator as iam_eval
from ministack.core import responses as ms_responses
from ministack.core.router import extract_access_key_id
from ministack.services import kms as ms_kms
from ministack.services import s3 as ms_s3

from lab_state import LabState

log = logging.getLogger("lab.plugin")

KMS_ACCESS_DENIED = (
    "The ciphertext refers to a customer master key that does not exist, "
    "does not exist in this region, or you are not allowed to access."
)
SSE_HEADER = "x-amz-server-side-encryption"
KMS_KEY_HEADER = "x-amz-server-side-encryption-aws-kms-key-id"

_STATE: LabState | None = None


@dataclass(frozen=True)
class Caller:
    """Who sent the current S3 request, captured before ministack re-scopes it."""

    access_key: str
    account: str
    region: str


_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("lab_caller", default=None)


# ---------------------------------------------------------------------------
# KMS helpers
# ---------------------------------------------------------------------------


def _arn_parts(arn: str) -> tuple[str, str, str] | None:
    """(region, account, resource) of an ARN, or None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return parts[3], parts[4], parts[5]


def resolve_key(key_ref: str, account: str, region: str) -> dict | None:
    """The KMS key record a key id, alias, key ARN or alias ARN names.

    An ARN is resolved in the account and region it names; a bare id or alias
    in `account`/`region` (the requester's, as on AWS)."""
    parts = _arn_parts(key_ref) if key_ref.startswith("arn:") else None
    if parts:
        region, account, _ = parts
    with ms_responses.request_scope(account, region):
        return ms_kms._resolve_key(key_ref)


def _current_caller() -> Caller:
    caller = _caller.get()
    if caller is not None:
        return caller
    return Caller("", ms_responses.get_account_id(), ms_responses.get_region())


def _kms_allowed(caller: Caller, action: str, key: dict) -> bool:
    """Whether the caller may perform `action` on `key`: the key policy must
    allow (directly, or by delegating to the caller's account), and across
    accounts or when delegated, the caller's identity policy must allow too."""
    if not caller.access_key:  # anonymous requests never get to use a KMS key
        return False
    region, owner, _ = _arn_parts(key["Arn"])
    with ms_responses.request_scope(caller.account, caller.region):
        principal = iam_eval.resolve_principal(caller.access_key, caller.account)
    if isinstance(principal, iam_eval.AuthError):
        return False
    ctx = iam_eval.EvalContext(
        principal_arn=principal.arn,
        principal_type=principal.type,
        principal_account=principal.account,
        action=action,
        resource_arn=key["Arn"],
        region=region,
        principal_keys=principal.keys,
    )
    if principal.policies is None:  # an account root holds every identity permission
        identity = iam_eval.EvalResult("Allow", principal_arn=principal.arn)
    else:
        identity = iam_eval.evaluate(ctx, principal.policies, *principal.limits)
    decision = iam_eval.combine_resource_policy(
        identity, ctx, key.get("Policy") or "", owner, required=True, limits=principal.limits)
    return decision.decision == "Allow"


def _kms_error(code: str, message: str, status: int, resource: str) -> tuple:
    return ms_s3._error(code, message, status, resource)


def kms_use_error(key_ref: str, action: str, resource: str) -> tuple | None:
    """The S3 error a request using `key_ref` for `action` gets, or None when allowed."""
    caller = _current_caller()
    key = resolve_key(key_ref, caller.account, caller.region)
    if key is None:
        return _kms_error("KMS.NotFoundException", f"Invalid keyId '{key_ref}'", 400, resource)
    if not _kms_allowed(caller, action, key):
        if action == "kms:Decrypt":
            return _kms_error("AccessDenied", KMS_ACCESS_DENIED, 403, resource)
        return _kms_error("AccessDenied", f"User: {_principal_arn(caller)} is not authorized to perform: "
                          f"{action} on resource: {key['Arn']}", 403, resource)
    state = key.get("KeyState")
    if state == "Disabled":
        return _kms_error("KMS.DisabledException", f"{key['Arn']} is disabled.", 400, resource)
    if state in ("PendingDeletion", "PendingReplicaDeletion"):
        return _kms_error("KMS.KMSInvalidStateException", f"{key['Arn']} is pending deletion.", 400, resource)
    if state != "Enabled":
        return _kms_error("KMS.KMSInvalidStateException", f"{key['Arn']} is {state}.", 400, resource)
    return None


def _principal_arn(caller: Caller) -> str:
    with ms_responses.request_scope(caller.account, caller.region):
        principal = iam_eval.resolve_principal(caller.access_key, caller.account)
    return getattr(principal, "arn", f"arn:aws:iam::{caller.account}:root")


# ---------------------------------------------------------------------------
# S3 permissions of the caller, for the answers that depend on them
# ---------------------------------------------------------------------------


def s3_allowed(caller: Caller, action: str, resource_arn: str, bucket_name: str) -> bool:
    """Whether the caller holds an S3 permission: its identity policies (an account root
    holds every one) and the bucket policy, combined as S3 does (in the bucket owner's
    account either may allow; across accounts both must; an explicit Deny wins)."""
    if not caller.access_key:
        return False
    with ms_responses.request_scope(caller.account, caller.region):
        principal = iam_eval.resolve_principal(caller.access_key, caller.account)
    if isinstance(principal, iam_eval.AuthError):
        return False
    owner = ms_s3._bucket_owner_account(bucket_name)
    ctx = iam_eval.EvalContext(
        principal_arn=principal.arn, principal_type=principal.type, principal_account=principal.account,
        action=action, resource_arn=resource_arn, region=caller.region, principal_keys=principal.keys)
    if principal.policies is None:
        identity = iam_eval.EvalResult("Allow", principal_arn=principal.arn)
    else:
        identity = iam_eval.evaluate(ctx, principal.policies, *principal.limits)
    policy = ms_s3._bucket_policies.get_scoped(owner, None, bucket_name) if owner else None
    decision = iam_eval.combine_resource_policy(identity, ctx, policy or "", owner, limits=principal.limits)
    return decision.decision == "Allow"


# Replicas that stay owned by the source account: (bucket, key, version id) -> owner account.
# Only replicas another account owns are recorded; everything else is the bucket owner's.
_REPLICA_OWNER: dict[tuple[str, str, str], str] = {}

_LOCK_HEADERS = {  # response header -> the permission a caller needs to be shown it
    "x-amz-object-lock-mode": "s3:GetObjectRetention",
    "x-amz-object-lock-retain-until-date": "s3:GetObjectRetention",
    "x-amz-object-lock-legal-hold": "s3:GetObjectLegalHold",
}


def _access_denied(bucket_name: str, key: str) -> tuple:
    return ms_s3._object_error("AccessDenied", "Access Denied", 403)


def _addressed_version(bucket_name: str, key: str, query_params: dict | None) -> str | None:
    """The version id a read addresses: ?versionId=, else the current object's."""
    version_id = ms_s3._qp(query_params or {}, "versionId", "")
    if version_id:
        return version_id
    bucket = ms_s3._ensure_bucket(bucket_name)
    obj = (bucket or {}).get("objects", {}).get(key)
    return obj.get("version_id") if obj else None


def replica_refusal(caller: Caller | None, bucket_name: str, key: str, query_params: dict | None) -> tuple | None:
    """403 AccessDenied when the addressed version is a replica another account owns and the
    bucket does not enforce bucket-owner ownership. The owner's grants (ACLs) are not modelled:
    a replica owned by the source account is readable by that account only.

    Sources: S3 User Guide "Changing the replica owner" (the source object's owner owns the
    replica by default) and "Access control in Amazon S3" (the bucket owner has no permission
    on objects other accounts own, but may delete them). Inferred, unverified: the 403 on
    HEAD, and that the replica's copied ACL grants the destination nothing."""
    if caller is None or not _REPLICA_OWNER:
        return None
    version_id = _addressed_version(bucket_name, key, query_params)
    owner = _REPLICA_OWNER.get((bucket_name, key, version_id)) if version_id else None
    if owner is None or owner == caller.account:
        return None
    bucket = ms_s3._ensure_bucket(bucket_name)
    if bucket is not None and ms_s3._bucket_owner_enforced(bucket):
        return None  # BucketOwnerEnforced: the bucket owner owns every object, whoever wrote it
    return _access_denied(bucket_name, key)


def _missing_object(result: tuple) -> bool:
    status, _, body = result
    return status == 404 and isinstance(body, (bytes, bytearray)) and (
        b"<Code>NoSuchKey</Code>" in body or b"<Code>NoSuchVersion</Code>" in body)


def hide_missing_without_list(caller: Caller | None, bucket_name: str, key: str, result: tuple) -> tuple:
    """A missing key or version id is 404 only to a caller allowed s3:ListBucket; others get 403.

    Source: S3 API Reference, HeadObject / GetObject, Permissions ("If the object you request
    doesn't exist, the error ... depends on whether you also have the s3:ListBucket
    permission"). Unverified: the same for a missing version id; s3:prefix conditions."""
    if caller is None or not _missing_object(result):
        return result
    if s3_allowed(caller, "s3:ListBucket", f"arn:aws:s3:::{bucket_name}", bucket_name):
        return result
    return _access_denied(bucket_name, key)


def strip_lock_headers(caller: Caller | None, bucket_name: str, key: str, result: tuple) -> tuple:
    """Object Lock headers only for a caller with the permission to read them.

    Source: S3 API Reference, HeadObject / GetObject: ObjectLockMode and
    ObjectLockRetainUntilDate are "only returned if the requester has the
    s3:GetObjectRetention permission", the legal hold status with s3:GetObjectLegalHold."""
    status, headers, body = result
    present = [h for h in _LOCK_HEADERS if h in headers]
    if caller is None or not present:
        return result
    resource = f"arn:aws:s3:::{bucket_name}/{key}"
    allowed: dict[str, bool] = {}
    headers = dict(headers)
    for name in present:
        action = _LOCK_HEADERS[name]
        if action not in allowed:
            allowed[action] = s3_allowed(caller, action, resource, bucket_name)
        if not allowed[action]:
            del headers[name]
    return status, headers, body


# ---------------------------------------------------------------------------
# Object Lock retention periods on the lab's clock
# ---------------------------------------------------------------------------


def _iso(when: _dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def retain_until(default_retention: dict, start: _dt.datetime | None = None) -> str | None:
    """Retain-until date of a default retention (Days or Years) counted from `start` (now):
    a day lasts `object_lock_day_seconds` (lab knob, default 86400), a year 365 such days
    (unverified: AWS may count calendar years)."""
    day = _STATE.lock_day_seconds() if _STATE is not None else 86400.0
    days = default_retention.get("Days") or 365 * (default_retention.get("Years") or 0)
    if not days:
        return None
    start = start or _dt.datetime.now(_dt.timezone.utc)
    return _iso(start + _dt.timedelta(seconds=days * day))


def apply_object_lock_from_headers(bucket_name: str, key: str, headers: dict, version_id) -> None:
    """ministack's write-time Object Lock (explicit headers, else the bucket default), with
    the default's period on the lab clock."""
    lock_mode = headers.get("x-amz-object-lock-mode", "")
    lock_until = headers.get("x-amz-object-lock-retain-until-date", "")
    if lock_mode or lock_until:
        return _orig_apply_object_lock(bucket_name, key, headers, version_id)
    lock_cfg = ms_s3._bucket_object_lock.get(bucket_name)
    default = (lock_cfg or {}).get("default_retention")
    until = retain_until(default) if default else None
    if until:
        ms_s3._object_retention[(bucket_name, key, version_id)] = {"Mode": default["Mode"],
                                                                   "RetainUntilDate": until}
    legal = (headers.get("x-amz-object-lock-legal-hold", "")
             or headers.get("x-amz-object-lock-legal-hold-status", ""))
    if legal in ("ON", "OFF"):
        ms_s3._object_legal_hold[(bucket_name, key, version_id)] = legal


# ---------------------------------------------------------------------------
# Patched S3 entry points
# ---------------------------------------------------------------------------

_orig_handle_request = ms_s3.handle_request
_orig_resolve_sse_write_headers = ms_s3._resolve_sse_write_headers
_orig_get_object = ms_s3._get_object
_orig_head_object = ms_s3._head_object
_orig_apply_object_lock = ms_s3._apply_object_lock_from_headers


async def handle_request(method, path, headers, body, query_params, *args, **kwargs):
    """Remember the caller before ministack pins the request to the bucket owner."""
    caller = Caller(extract_access_key_id(headers, query_params) or "",
                    ms_responses.get_account_id(), ms_responses.get_region())
    token = _caller.set(caller)
    try:
        return await _orig_handle_request(method, path, headers, body, query_params, *args, **kwargs)
    finally:
        _caller.reset(token)


def resolve_sse_write_headers(headers: dict, bucket_name: str):
    """Stock validation, then: the KMS key becomes its ARN, and the writer must
    be allowed to use it (kms:GenerateDataKey) while it is enabled."""
    out, err = _orig_resolve_sse_write_headers(headers, bucket_name)
    if err is not None or not out or not out.get(SSE_HEADER, "").startswith("aws:kms"):
        return out, err
    key_ref = out.get(KMS_KEY_HEADER)
    if not key_ref:  # bucket default "aws/s3" without a key id: not modelled
        return out, None
    resource = f"/{bucket_name}"
    denied = kms_use_error(key_ref, "kms:GenerateDataKey", resource)
    if denied is not None:
        return None, denied
    caller = _current_caller()
    out = dict(out)
    out[KMS_KEY_HEADER] = resolve_key(key_ref, caller.account, caller.region)["Arn"]
    return out, None


def head_object(bucket_name: str, key: str, headers: dict | None = None, query_params: dict | None = None):
    """Stock HeadObject behind the replica-ownership and s3:ListBucket rules, minus the
    Object Lock headers the caller may not see."""
    caller = _caller.get()
    refused = replica_refusal(caller, bucket_name, key, query_params)
    if refused is not None:
        return refused
    result = _orig_head_object(bucket_name, key, headers, query_params)
    result = hide_missing_without_list(caller, bucket_name, key, result)
    return strip_lock_headers(caller, bucket_name, key, result)


def get_object(bucket_name: str, key: str, headers: dict, query_params: dict = None):
    """Stock GetObject (archived objects: 403 InvalidObjectState) behind the replica-ownership
    and s3:ListBucket rules, then the KMS check S3 makes to decrypt an SSE-KMS object."""
    caller = _caller.get()
    refused = replica_refusal(caller, bucket_name, key, query_params)
    if refused is not None:
        return refused
    result = _orig_get_object(bucket_name, key, headers, query_params)
    result = hide_missing_without_list(caller, bucket_name, key, result)
    result = strip_lock_headers(caller, bucket_name, key, result)
    status, resp_headers, _ = result
    if status not in (200, 206) or not resp_headers.get(SSE_HEADER, "").startswith("aws:kms"):
        return result
    key_ref = resp_headers.get(KMS_KEY_HEADER)
    if not key_ref:
        return result
    denied = kms_use_error(key_ref, "kms:Decrypt", f"/{bucket_name}/{key}")
    return denied if denied is not None else apply_version_range(headers, result)


def apply_version_range(headers: dict, result: tuple) -> tuple:
    """Stock GetObject ignores `Range` on a GET by version id (it answers the whole body,
    200); S3 answers 206 with the bytes asked and a Content-Range, whatever addresses the
    object (S3 API reference, GetObject: "Range"). Readers read `bytes=0-0` of a version."""
    status, resp_headers, body = result
    range_header = (headers or {}).get("range", "")
    if status != 200 or not range_header or not isinstance(body, (bytes, bytearray)):
        return result
    rng = ms_s3._parse_range(range_header, len(body))
    if rng is None:
        return result
    start, end = rng
    # Whole-object checksums are not sent with a slice (as S3 does for a 206).
    out = {k: v for k, v in resp_headers.items() if not k.lower().startswith("x-amz-checksum")}
    out["Content-Length"] = str(end + 1 - start)
    out["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
    return 206, out, bytes(body[start:end + 1])


# ---------------------------------------------------------------------------
# Asynchronous, multi-destination replication
# ---------------------------------------------------------------------------


def _is_sse_kms(obj: dict) -> bool:
    return obj.get("preserved_headers", {}).get(SSE_HEADER, "").startswith("aws:kms")


def _selects_sse_kms(rule: dict) -> bool:
    ssc = rule.get("SourceSelectionCriteria") or {}
    return (ssc.get("SseKmsEncryptedObjects") or {}).get("Status") == "Enabled"


def _dest_bucket_name(rule: dict) -> str:
    ref = (rule.get("Destination") or {}).get("Bucket") or ""
    return ref.split(":::")[-1]


def selecting_rules(bucket_name: str, key: str, obj: dict, tags: dict | None) -> tuple[list[dict], str]:
    """Every enabled rule that selects this object, one per destination bucket
    (the highest Priority wins), and the configuration's role."""
    config = ms_s3._bucket_replication.get(bucket_name)
    if not config or ms_s3._bucket_versioning.get(bucket_name) != "Enabled":
        return [], ""
    tags = tags or {}
    kms_object = _is_sse_kms(obj)
    chosen: dict[str, dict] = {}
    for rule in config.get("Rules", []):
        if rule.get("Status") != "Enabled" or not key.startswith(ms_s3._replication_rule_prefix(rule)):
            continue
        if not all(tags.get(k) == v for k, v in ms_s3._replication_rule_tags(rule).items()):
            continue
        if kms_object and not _selects_sse_kms(rule):
            continue
        dest = _dest_bucket_name(rule)
        if dest not in chosen or rule.get("Priority", 0) > chosen[dest].get("Priority", 0):
            chosen[dest] = rule
    return list(chosen.values()), config.get("Role", "")


@dataclass
class ReplicationJob:
    """One source object version waiting to be replicated to its destinations.

    Each destination is replicated after its own delay (`destination_delays`, else the
    object's); destinations due at the same time are handled together. The source is
    PENDING until every destination is done, COMPLETED when all succeeded, and FAILED as
    soon as one failed, even while another is still pending. AWS documents the first two
    and "FAILED if one or more destinations fails" (S3 API Reference, HeadObject,
    x-amz-replication-status; User Guide "Getting replication status information"); that
    FAILED shows while another destination is still in progress is the lab's choice
    (unverified): the harder case for a probe, which must keep looking at the slower one."""

    account: str
    region: str
    bucket: str
    key: str
    obj: dict
    data: bytes
    rules: list
    role: str
    remaining: int = 0       # destination groups not yet run
    failed: bool = False     # one destination failed: the source stays FAILED

    @property
    def object_path(self) -> str:
        return f"{self.bucket}/{self.key}"

    def schedule(self) -> None:
        """Group the rules by the delay of their destination and schedule each group."""
        base = _STATE.delay_for(self.object_path)
        groups: dict[float, list] = {}
        for rule in self.rules:
            delay = _STATE.destination_delay(_dest_bucket_name(rule))
            groups.setdefault(base if delay is None else delay, []).append(rule)
        self.remaining = len(groups)
        _STATE.replication_started()
        for delay, rules in sorted(groups.items()):
            _schedule(delay, functools.partial(self.run, rules))

    def run(self, rules: list) -> None:
        try:
            with ms_responses.request_scope(self.account, self.region):
                self._run(rules, last=self.remaining == 1)
        except Exception:  # never let a replication bug take the server down
            log.exception("replication of %s failed in the lab", self.object_path)
            self.failed = True
            with ms_responses.request_scope(self.account, self.region):
                self._set_source_status("FAILED")
        finally:
            self.remaining -= 1
            if self.remaining == 0:
                _STATE.replication_finished()

    def _run(self, rules: list, last: bool) -> None:
        version_id = self.obj.get("version_id")
        if not self._source_version_exists(version_id):
            log.info("source %s version %s is gone; replication dropped", self.object_path, version_id)
            return
        if _STATE.forced_failure(self.object_path):
            self.failed = True
        else:
            results = [self._replicate_to(rule, version_id) for rule in rules]
            self.failed = self.failed or not all(results)
        if self.failed:
            self._set_source_status("FAILED")
        elif last:
            self._set_source_status("COMPLETED")

    def _source_version_exists(self, version_id) -> bool:
        versions = ms_s3._object_versions.get((self.bucket, self.key), [])
        return any(v["version_id"] == version_id and not v.get("is_delete_marker") for v in versions)

    def _set_source_status(self, status: str) -> None:
        self.obj["replication_status"] = status
        for v in ms_s3._object_versions.get((self.bucket, self.key), []):
            if v["version_id"] == self.obj.get("version_id"):
                v["replication_status"] = status

    def _replica_record(self, rule: dict, dest_account: str, dest_region: str) -> dict | None:
        replica = copy.deepcopy({k: v for k, v in self.obj.items() if not k.startswith("_")})
        replica["replication_status"] = "REPLICA"
        dest = rule.get("Destination") or {}
        if dest.get("StorageClass"):
            replica["storage_class"] = dest["StorageClass"]
        if _is_sse_kms(self.obj):
            key_ref = (dest.get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID")
            key = resolve_key(key_ref, dest_account, dest_region) if key_ref else None
            if key is None:  # S3 cannot encrypt the replica: the replication fails
                return None
            replica["preserved_headers"][KMS_KEY_HEADER] = key["Arn"]
        return replica

    def _source_lock(self, version_id: str) -> tuple[dict | None, str | None]:
        """The source version's Object Lock retention and legal hold (read in the source's account)."""
        retention = ms_s3._object_retention.get((self.bucket, self.key, version_id))
        hold = ms_s3._object_legal_hold.get((self.bucket, self.key, version_id))
        return (dict(retention) if retention else None), hold

    def _replicate_to(self, rule: dict, version_id: str) -> bool:
        if _STATE.destination_failure(_dest_bucket_name(rule)):
            return False
        target = ms_s3._replication_destination(self.bucket, self.key, rule, self.role)
        if target is None:
            return False
        dest_name, dest_account, dest_bucket = target
        dest_region = dest_bucket.get("region") or self.region
        replica = self._replica_record(rule, dest_account, dest_region)
        if replica is None:
            return False
        if _STATE.replica_lost(dest_name):  # "replicated", then gone (lifecycle rule, a person)
            log.info("replica of %s in %s lost on purpose (lose_replicas)", self.object_path, dest_name)
            return True
        tags = ms_s3._object_tags.get((self.bucket, self.key, version_id))
        retention, legal_hold = self._source_lock(version_id)
        with ms_responses.request_scope(dest_account, self.region):
            _store_replica(dest_name, dest_bucket, self.key, replica, self.data, version_id, tags)
            _lock_replica(dest_name, self.key, version_id, retention, legal_hold)
            owner = _replica_owner(rule, dest_bucket, dest_account, self.account)
        if owner != dest_account:
            _REPLICA_OWNER[(dest_name, self.key, version_id)] = owner
        return True


def _replica_owner(rule: dict, dest_bucket: dict, dest_account: str, source_account: str) -> str:
    """Who owns a new replica: the destination account with the rule's owner override
    (AccessControlTranslation Owner=Destination) or a BucketOwnerEnforced destination;
    else the source object's owner (the lab takes it to be the source bucket's account)."""
    translation = (rule.get("Destination") or {}).get("AccessControlTranslation") or {}
    override = translation.get("Owner") == "Destination"
    if override or ms_s3._bucket_owner_enforced(dest_bucket):
        return dest_account
    return source_account


def _lock_replica(dest_name: str, key: str, version_id: str, retention: dict | None,
                  legal_hold: str | None) -> None:
    """Object Lock on a replica in a bucket with Object Lock enabled: the source version's
    retention if it has one, else the bucket's default retention counted from now (the
    replica's creation); the source's legal hold is kept. Call in the destination's scope.

    Source: S3 User Guide "What does Amazon S3 replicate?" (source retention overrides the
    destination default; without it the default applies). Unverified: that the period
    counts from the replica's creation."""
    lock_cfg = ms_s3._bucket_object_lock.get(dest_name)
    if not lock_cfg:
        return
    default = lock_cfg.get("default_retention")
    if retention is None and default:
        until = retain_until(default)
        retention = {"Mode": default["Mode"], "RetainUntilDate": until} if until else None
    if retention:
        ms_s3._object_retention[(dest_name, key, version_id)] = retention
    if legal_hold:
        ms_s3._object_legal_hold[(dest_name, key, version_id)] = legal_hold


def _store_replica(dest_name: str, dest_bucket: dict, key: str, replica: dict, data, version_id: str,
                   tags: dict | None) -> None:
    """Write the replica as the destination's current version under the source's version id."""
    prior = dest_bucket["objects"].get(key)
    dest_bucket["objects"][key] = replica
    ms_s3._record_object_version(dest_name, key, prior, replica, data)
    replica["version_id"] = version_id
    versions = ms_s3._object_versions.get((dest_name, key), [])
    if versions:
        versions[-1]["version_id"] = version_id
    if tags:
        ms_s3._object_tags[(dest_name, key, version_id)] = dict(tags)


def maybe_replicate(bucket_name: str, key: str, obj: dict, data, tags: dict | None = None) -> None:
    """Replacement for ms_s3._maybe_replicate: stamp PENDING and schedule the copies.

    Runs inside the write, before the source version id is cut; the job reads
    the version id when it runs, on the event loop, after the write finished."""
    rules, role = selecting_rules(bucket_name, key, obj, tags)
    obj.pop("_replica", None)
    if not rules:
        obj.pop("replication_status", None)
        return
    obj["replication_status"] = "PENDING"
    job = ReplicationJob(ms_responses.get_account_id(), ms_responses.get_region(), bucket_name, key,
                         obj, data if isinstance(data, bytes) else bytes(data or b""), rules, role)
    job.schedule()


def _schedule(delay: float, callback) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # called from a worker thread: hand it to the server's loop
        from ministack import app as ms_app

        loop = ms_app._MAIN_LOOP
        loop.call_soon_threadsafe(loop.call_later, delay, callback)
        return
    loop.call_later(delay, callback)


# ---------------------------------------------------------------------------


def install(state: LabState) -> None:
    """Apply every correction. Call once, after ministack is imported."""
    global _STATE
    _STATE = state
    ms_s3.handle_request = handle_request
    ms_s3._resolve_sse_write_headers = resolve_sse_write_headers
    ms_s3._get_object = get_object
    ms_s3._head_object = head_object
    ms_s3._apply_object_lock_from_headers = apply_object_lock_from_headers
    ms_s3._maybe_replicate = maybe_replicate


# ---------------------------------------------------------------------------
# Test knobs beyond the corrections (issue 6): short STS sessions, stable key ids
# ---------------------------------------------------------------------------

import threading  # noqa: E402
import uuid  # noqa: E402
from urllib.parse import parse_qsl, urlencode  # noqa: E402

from ministack.services import sts as ms_sts  # noqa: E402


def cap_session_duration(body: bytes, query_params: dict, cap: float) -> tuple[bytes, dict]:
    """An AssumeRole request (query protocol) with `DurationSeconds` at most `cap`."""
    cap = max(1, int(cap))

    def capped(current: str | None) -> str:
        try:
            requested = int(current) if current else 3600
        except ValueError:
            requested = 3600
        return str(min(requested, cap))

    if (query_params.get("Action") or [""])[0] == "AssumeRole":
        query_params = dict(query_params)
        query_params["DurationSeconds"] = [capped((query_params.get("DurationSeconds") or [None])[0])]
    if body and b"Action=AssumeRole" in body:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        current = next((v for k, v in pairs if k == "DurationSeconds"), None)
        pairs = [(k, v) for k, v in pairs if k != "DurationSeconds"] + [("DurationSeconds", capped(current))]
        body = urlencode(pairs).encode()
    return body, query_params


def _install_session_cap(state: LabState) -> None:
    """AssumeRole sessions last at most `state.sts_session_seconds` (when > 0). The body
    is rewritten after ministack checked the request's signature, before STS reads it."""
    orig = ms_sts.handle_request

    async def handle_request(method, path, headers, body, query_params, *args, **kwargs):
        cap = state.config()["sts_session_seconds"]
        if cap:
            body, query_params = cap_session_duration(body, query_params, cap)
        return await orig(method, path, headers, body, query_params, *args, **kwargs)

    ms_sts.handle_request = handle_request


_KEY_ID_NAMESPACE = uuid.UUID("6f1c52a4-5b0e-4bd1-9a57-7d0d1a1e0c11")
_next_key_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("lab_next_key_id", default=None)


def _install_deterministic_key_ids() -> None:
    """KMS key ids derived from (account, region, description, n-th such key), so that a
    lab restarted on the same port and provisioned again with the same suffix has the
    same key ARNs as before: a running replicanary's configuration stays right."""
    orig_create, orig_uuid = ms_kms._create_key, ms_kms.new_uuid
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def new_uuid():
        key_id = _next_key_id.get()
        if key_id is not None:
            _next_key_id.set(None)  # only the key id itself, once
            return key_id
        return orig_uuid()

    def create_key(data):
        seed = f"{ms_responses.get_account_id()}/{ms_responses.get_region()}/{data.get('Description', '')}"
        with lock:
            n = seen.get(seed, 0)
            seen[seed] = n + 1
        token = _next_key_id.set(str(uuid.uuid5(_KEY_ID_NAMESPACE, f"{seed}#{n}")))
        try:
            return orig_create(data)
        finally:
            _next_key_id.reset(token)

    ms_kms.new_uuid = new_uuid
    ms_kms._create_key = create_key


def _install_sessions_file(path: str) -> None:
    """STS sessions outlive the lab process: each AssumeRole session is appended to `path`
    (JSON lines) and reloaded at start-up, as AWS never forgets a live session when one of
    its servers restarts. Only JSON-serialisable fields are kept."""
    import json
    import os

    orig = ms_sts.register_session
    lock = threading.Lock()
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    access_key, session = json.loads(line)
                except (ValueError, TypeError):
                    continue
                orig(access_key, session)

    def register_session(access_key: str, session: dict) -> None:
        orig(access_key, session)
        try:
            line = json.dumps([access_key, session])
        except (TypeError, ValueError):
            return
        with lock, open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    ms_sts.register_session = register_session


def install_test_knobs(state: LabState, deterministic_key_ids: bool = False,
                       sessions_file: str | None = None) -> None:
    """The knobs tests use beyond the corrections; inert until configured."""
    _install_session_cap(state)
    if deterministic_key_ids:
        _install_deterministic_key_ids()
    if sessions_file:
        _install_sessions_file(sessions_file)
