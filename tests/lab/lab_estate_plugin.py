"""Corrections to ministack 1.5.33 for what discovery reads: the bucket listing,
replication configurations and the owner checks (installed by labserver.py after
lab_plugin; left out with --stock).

Checked against AWS (sources next to each knob, and in tests/lab/README.md,
"The estate: discovery"); what stock ministack already does as AWS does is listed
there too. What this module changes:

1. ListBuckets' continuation token is the last bucket name in clear text.
   -> An opaque token (AWS: "ContinuationToken is obfuscated and is not a real key");
      a token we did not issue answers 400 InvalidArgument (the code is unverified).
   ListBuckets with `prefix`, `bucket-region` or `continuation-token` but no
   `max-buckets` returned every bucket. -> Pages of 10,000 with a continuation token
   (AWS: "Amazon S3 applies a default page size of 10,000").
2. `x-amz-expected-bucket-owner` was ignored. -> A request naming another account than
   the bucket's owner answers 403 AccessDenied (HEAD: no body), on every bucket and
   object operation (AWS, every operation's ExpectedBucketOwner: "If the account ID
   that you provide does not match the actual owner of the bucket, the request fails
   with the HTTP status code 403 Forbidden (access denied)").
3. A replication rule without an ID got 8 random hex characters. -> A 48-character
   id, the base64 of a UUID (the shape of the id in the AWS CLI reference's
   get-bucket-replication example, "ZmUwNzE4ZmQ4tMjVhOS00MTlkLOGI4NDkzZTIWJjNTUtYTA1";
   the algorithm itself is unverified). A V1 rule's empty Prefix was dropped from
   GetBucketReplication -> returned as "" (the same example shows "Prefix": "").
4. PutBucketReplication accepted V2 rules AWS refuses:
   - a `Filter` with not exactly one of Prefix, Tag, And -> MalformedXML (AWS
     ReplicationRule reference: "A Filter must specify exactly one Prefix, Tag, or an
     And child element");
   - a rule with a `Filter` but no `Priority` or no `DeleteMarkerReplication`
     -> InvalidRequest (AWS GetBucketReplication / PutBucketReplication reference: "If
     you include the Filter element in a replication configuration, you must also
     include the DeleteMarkerReplication and Priority elements"; the message wording
     is unverified);
   - a tag-based filter with DeleteMarkerReplication Enabled -> InvalidRequest (AWS
     ReplicationRule reference: "If your Filter includes a Tag element, the
     DeleteMarkerReplication Status must be set to Disabled"; wording unverified).
5. PutObject with `x-amz-tagging` needed only s3:PutObject. -> It also needs
   s3:PutObjectTagging on the object (AWS PutObject reference: "To successfully set
   the tag-set with your PutObject request, you must have the s3:PutObjectTagging in
   your IAM permissions"). Canaries that carry a rule's filter tags depend on it.
6. Object keys longer than 1,024 bytes were accepted. -> 400 KeyTooLongError "Your key
   is too long." (S3 User Guide, object key naming: a key's UTF-8 encoding is at most
   1,024 bytes; the error code is the one S3's error list names, unverified here).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import uuid

from defusedxml.ElementTree import fromstring
from ministack.core import iam_actions as ms_iam_actions
from ministack.services import s3 as ms_s3

log = logging.getLogger("lab.estate_plugin")

DEFAULT_PAGE = 10_000          # ListBuckets' page when paginating without max-buckets
MAX_KEY_BYTES = 1024
EXPECTED_OWNER_HEADER = "x-amz-expected-bucket-owner"
_TOKEN_PREFIX = "lab1:"        # inside the opaque token: a token we issued carries it

_installed = False


# ---------------------------------------------------------------------------
# 1. ListBuckets
# ---------------------------------------------------------------------------


def encode_token(last_name: str) -> str:
    """The opaque continuation token for a page that ended at `last_name`."""
    return base64.urlsafe_b64encode((_TOKEN_PREFIX + last_name).encode()).decode()


def decode_token(token: str) -> str | None:
    """The bucket name a token we issued stands for, or None for any other token."""
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return text[len(_TOKEN_PREFIX):] if text.startswith(_TOKEN_PREFIX) else None


def list_buckets(query_params=None, signed_region=None, _orig=None):
    """Stock ListBuckets with an opaque continuation token and AWS's default page."""
    params = {k: (v if isinstance(v, list) else [v]) for k, v in (query_params or {}).items()}
    token = ms_s3._qp(params, "continuation-token", "")
    if token:
        name = decode_token(token)
        if name is None:
            return ms_s3._error("InvalidArgument", "The continuation token provided is incorrect", 400,
                                extra={"ArgumentName": "continuation-token"})
        params["continuation-token"] = [name]
    paginated = any(ms_s3._qp(params, k, "") for k in ("prefix", "bucket-region", "continuation-token"))
    if paginated and not ms_s3._qp(params, "max-buckets", ""):
        params["max-buckets"] = [str(DEFAULT_PAGE)]
    status, headers, body = _orig(params, signed_region)
    if status != 200:
        return status, headers, body
    text = body.decode() if isinstance(body, (bytes, bytearray)) else body

    def opaque(m: re.Match) -> str:
        return f"<ContinuationToken>{encode_token(m.group(1))}</ContinuationToken>"

    text = re.sub(r"<ContinuationToken>([^<]*)</ContinuationToken>", opaque, text)
    return status, headers, text.encode()


# ---------------------------------------------------------------------------
# 2. x-amz-expected-bucket-owner, 6. key length (checked before ministack routes)
# ---------------------------------------------------------------------------


def expected_owner_refusal(method: str, bucket: str, key: str, headers: dict) -> tuple | None:
    """403 AccessDenied when the request names an expected owner the bucket does not have."""
    expected = (headers.get(EXPECTED_OWNER_HEADER) or "").strip()
    if not expected or not bucket:
        return None
    owner = ms_s3._bucket_owner_account(bucket)
    if owner is None or owner == expected:
        return None  # a missing bucket keeps its own answer (404 NoSuchBucket)
    if method == "HEAD":
        return 403, {"Content-Type": "application/xml"}, b""
    return ms_s3._error("AccessDenied", "Access Denied", 403, f"/{bucket}/{key}" if key else f"/{bucket}")


def key_too_long(method: str, bucket: str, key: str) -> tuple | None:
    if method not in ("PUT", "POST") or not key or len(key.encode("utf-8")) <= MAX_KEY_BYTES:
        return None
    return ms_s3._error("KeyTooLongError", "Your key is too long.", 400, f"/{bucket}/{key}",
                        extra={"Size": str(len(key.encode("utf-8"))), "MaxSizeAllowed": str(MAX_KEY_BYTES)})


def _wrap_handle_request(orig):
    async def handle_request(method, path, headers, body, query_params, *args, **kwargs):
        bucket, key = ms_s3._parse_bucket_key(path, headers)
        refused = expected_owner_refusal(method, bucket, key, headers) or key_too_long(method, bucket, key)
        if refused is not None:
            status, resp_headers, resp_body = refused
            resp_headers.setdefault("x-amz-request-id", ms_s3.new_uuid())
            return status, resp_headers, resp_body
        return await orig(method, path, headers, body, query_params, *args, **kwargs)

    return handle_request


# ---------------------------------------------------------------------------
# 3. + 4. PutBucketReplication
# ---------------------------------------------------------------------------


def generated_rule_id() -> str:
    """A rule id as S3 makes one for a rule sent without: 48 characters, base64 of a UUID."""
    return base64.b64encode(str(uuid.uuid4()).encode()).decode()


def _local(el) -> str:
    return el.tag.rsplit("}", 1)[-1]


def _child(el, name: str):
    return next((c for c in el if _local(c) == name), None)


def replication_rule_error(rule_el) -> tuple | None:
    """The error AWS gives a V2 rule ministack would accept, or None."""
    filter_el = _child(rule_el, "Filter")
    if filter_el is None:
        return None  # the V1 schema (rule-level Prefix): none of these checks apply
    kinds = [_local(c) for c in filter_el]
    if len(kinds) != 1 or kinds[0] not in ("Prefix", "Tag", "And"):
        return ms_s3._error("MalformedXML", ms_s3._MALFORMED_XML, 400)
    if _child(rule_el, "Priority") is None:
        return ms_s3._error("InvalidRequest", "Priority must be specified for this version of Cross Region "
                            "Replication configuration schema. Please refer to S3 Developer Guide for more "
                            "information.", 400)
    dmr = _child(rule_el, "DeleteMarkerReplication")
    if dmr is None:
        return ms_s3._error("InvalidRequest", "DeleteMarkerReplication must be specified for this version of "
                            "Cross Region Replication configuration schema. Please refer to S3 Developer Guide "
                            "for more information.", 400)
    tag_based = kinds[0] == "Tag" or (kinds[0] == "And" and _child(filter_el[0], "Tag") is not None)
    status = _child(dmr, "Status")
    if tag_based and status is not None and (status.text or "") == "Enabled":
        return ms_s3._error("InvalidRequest", "DeleteMarkerReplication cannot be Enabled for a rule with a "
                            "Tag-based filter.", 400)
    return None


def _wrap_put_bucket_replication(orig):
    def put_bucket_replication(bucket_name: str, body: bytes):
        try:
            root = fromstring(body)
        except Exception:
            return orig(bucket_name, body)  # ministack answers MalformedXML
        rule_els = [el for el in root if _local(el) == "Rule"]
        for rule_el in rule_els:
            error = replication_rule_error(rule_el)
            if error is not None:
                return error
        result = orig(bucket_name, body)
        if result[0] != 200:
            return result
        rules = (ms_s3._bucket_replication.get(bucket_name) or {}).get("Rules", [])
        for rule_el, rule in zip(rule_els, rules):
            id_el = _child(rule_el, "ID")
            if id_el is None or not (id_el.text or ""):
                rule["ID"] = generated_rule_id()
            # A V1 rule's empty <Prefix/> is kept and returned (the AWS CLI reference's
            # get-bucket-replication example shows "Prefix": ""); ministack dropped it.
            if _child(rule_el, "Filter") is None and _child(rule_el, "Prefix") is not None:
                rule["Prefix"] = _child(rule_el, "Prefix").text or ""
        return result

    return put_bucket_replication


# ---------------------------------------------------------------------------
# 5. PutObject with x-amz-tagging needs s3:PutObjectTagging
# ---------------------------------------------------------------------------


def _wrap_additional_checks(orig):
    def s3_additional_checks(method, path, headers, body, query_params):
        checks = list(orig(method, path, headers, body, query_params))
        parts = [p for p in path.split("/") if p]
        query_params = query_params or {}
        # PutObject itself (SDKs may add `x-id=PutObject`): not UploadPart, not CopyObject.
        put_object = (method == "PUT" and len(parts) >= 2 and "uploadId" not in query_params
                      and "x-amz-copy-source" not in headers
                      and ms_iam_actions._s3_action(method, path, query_params) == "PutObject")
        if put_object and headers.get("x-amz-tagging"):
            checks.append(("s3:PutObjectTagging", f"arn:aws:s3:::{parts[0]}/{'/'.join(parts[1:])}"))
        return checks

    return s3_additional_checks


# ---------------------------------------------------------------------------


def install() -> None:
    """Apply every correction once, after lab_plugin.install (it wraps the same entry point)."""
    global _installed
    if _installed:
        return
    _installed = True
    orig_list = ms_s3._list_buckets
    ms_s3._list_buckets = lambda query_params=None, signed_region=None: list_buckets(
        query_params, signed_region, _orig=orig_list)
    ms_s3.handle_request = _wrap_handle_request(ms_s3.handle_request)
    ms_s3._put_bucket_replication = _wrap_put_bucket_replication(ms_s3._put_bucket_replication)
    ms_iam_actions.s3_additional_checks = _wrap_additional_checks(ms_iam_actions.s3_additional_checks)
