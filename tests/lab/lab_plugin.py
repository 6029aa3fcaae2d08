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

Also: a `fail` pattern in the lab config forces FAILED for matching source objects.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
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
# Patched S3 entry points
# ---------------------------------------------------------------------------

_orig_handle_request = ms_s3.handle_request
_orig_resolve_sse_write_headers = ms_s3._resolve_sse_write_headers
_orig_get_object = ms_s3._get_object


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


def get_object(bucket_name: str, key: str, headers: dict, query_params: dict = None):
    """Stock GetObject, then the KMS check S3 makes to decrypt an SSE-KMS object."""
    result = _orig_get_object(bucket_name, key, headers, query_params)
    status, resp_headers, _ = result
    if status not in (200, 206) or not resp_headers.get(SSE_HEADER, "").startswith("aws:kms"):
        return result
    key_ref = resp_headers.get(KMS_KEY_HEADER)
    if not key_ref:
        return result
    denied = kms_use_error(key_ref, "kms:Decrypt", f"/{bucket_name}/{key}")
    return denied if denied is not None else result


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
    """One source object version waiting to be replicated to its destinations."""

    account: str
    region: str
    bucket: str
    key: str
    obj: dict
    data: bytes
    rules: list
    role: str

    @property
    def object_path(self) -> str:
        return f"{self.bucket}/{self.key}"

    def run(self) -> None:
        try:
            with ms_responses.request_scope(self.account, self.region):
                self._run()
        except Exception:  # never let a replication bug take the server down
            log.exception("replication of %s failed in the lab", self.object_path)
            with ms_responses.request_scope(self.account, self.region):
                self._set_source_status("FAILED")
        finally:
            _STATE.replication_finished()

    def _run(self) -> None:
        version_id = self.obj.get("version_id")
        if not self._source_version_exists(version_id):
            log.info("source %s version %s is gone; replication dropped", self.object_path, version_id)
            return
        if _STATE.forced_failure(self.object_path):
            self._set_source_status("FAILED")
            return
        results = [self._replicate_to(rule, version_id) for rule in self.rules]
        self._set_source_status("COMPLETED" if all(results) else "FAILED")

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

    def _replicate_to(self, rule: dict, version_id: str) -> bool:
        target = ms_s3._replication_destination(self.bucket, self.key, rule, self.role)
        if target is None:
            return False
        dest_name, dest_account, dest_bucket = target
        dest_region = dest_bucket.get("region") or self.region
        replica = self._replica_record(rule, dest_account, dest_region)
        if replica is None:
            return False
        tags = ms_s3._object_tags.get((self.bucket, self.key, version_id))
        with ms_responses.request_scope(dest_account, self.region):
            _store_replica(dest_name, dest_bucket, self.key, replica, self.data, version_id, tags)
        return True


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
    """Replacement for ms_s3._maybe_replicate: stamp PENDING and schedule the copy.

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
    _STATE.replication_started()
    _schedule(_STATE.delay_for(job.object_path), job.run)


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
