"""ASGI middleware in front of ministack: the /_lab/ admin API, request
statistics and fault injection (errors and latency).

Admin API (JSON in, JSON out):

    GET  /_lab/config          current configuration
    POST /_lab/config          apply any subset of the configuration
    POST /_lab/reset-faults    faults back to none
    GET  /_lab/stats           request counts by service/operation and account
    POST /_lab/stats/reset     zero the counters
    POST /_lab/bulk-objects    many replicated objects at once (lab_bulk.py)

Faults and stats never touch /_lab/ or /_ministack/ paths.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from urllib.parse import parse_qs

from lab_state import ConfigError, LabState


def _bulk(payload: dict) -> dict:
    """POST /_lab/bulk-objects (lab_bulk.py): imported on first use, after ministack."""
    import lab_bulk

    return lab_bulk.bulk_objects(payload)

_CREDENTIAL_RE = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ACCOUNT_RE = re.compile(r"^\d{12}$")

# S3 sub-resources that name a bucket operation, in lookup order.
_S3_BUCKET_SUBRESOURCES = {
    "versioning": "BucketVersioning", "replication": "BucketReplication", "encryption": "BucketEncryption",
    "policy": "BucketPolicy", "publicAccessBlock": "PublicAccessBlock", "ownershipControls":
    "BucketOwnershipControls", "acl": "BucketAcl", "tagging": "BucketTagging", "lifecycle":
    "BucketLifecycleConfiguration", "cors": "BucketCors", "notification": "BucketNotificationConfiguration",
    "object-lock": "ObjectLockConfiguration", "location": "BucketLocation", "metrics": "BucketMetricsConfiguration",
}
_S3_OBJECT_SUBRESOURCES = {"tagging": "ObjectTagging", "acl": "ObjectAcl", "retention": "ObjectRetention",
                           "legal-hold": "ObjectLegalHold", "attributes": "ObjectAttributes"}
_VERB = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}


# ---------------------------------------------------------------------------
# Request classification
# ---------------------------------------------------------------------------


def _s3_bucket_operation(method: str, query: dict, headers: dict) -> str:
    for sub, name in _S3_BUCKET_SUBRESOURCES.items():
        if sub in query:
            return ("Get" if sub == "location" else _VERB.get(method, method)) + name
    if "versions" in query:
        return "ListObjectVersions"
    if "uploads" in query:
        return "ListMultipartUploads"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "GET":
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method, method + "Bucket")


def _s3_object_operation(method: str, query: dict, headers: dict) -> str:
    for sub, name in _S3_OBJECT_SUBRESOURCES.items():
        if sub in query:
            return _VERB.get(method, method) + name
    if "uploadId" in query:
        if method == "PUT":
            return "UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart"
        return {"POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload", "GET": "ListParts"}.get(
            method, method)
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "PUT":
        return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, method + "Object")


def s3_operation(method: str, path: str, query: dict, headers: dict) -> str:
    """The S3 API name of a path-style request."""
    parts = path.lstrip("/").split("/", 1)
    if not parts[0]:
        return "ListBuckets"
    if len(parts) == 1 or not parts[1]:
        return _s3_bucket_operation(method, query, headers)
    return _s3_object_operation(method, query, headers)


def classify(method: str, path: str, query: dict, headers: dict, body: bytes) -> tuple[str, str, str]:
    """(service, operation, access key id) of a request."""
    match = _CREDENTIAL_RE.search(headers.get("authorization", ""))
    if match:
        access_key, service = match.group(1), match.group(3)
    else:
        cred = (query.get("X-Amz-Credential") or [""])[0].split("/")
        access_key = cred[0]
        service = cred[3] if len(cred) > 3 else "s3"
    if service == "s3":
        return service, s3_operation(method, path, query, headers), access_key
    target = headers.get("x-amz-target", "")
    if target:
        return service, target.rsplit(".", 1)[-1], access_key
    action = (query.get("Action") or [""])[0]
    if not action and body and "x-www-form-urlencoded" in headers.get("content-type", ""):
        action = (parse_qs(body.decode("utf-8", "replace")).get("Action") or [""])[0]
    return service, action or method, access_key


def account_of(access_key: str) -> str:
    """The account an access key acts in: 12 digits are a root key, else an STS session."""
    if not access_key:
        return "anonymous"
    if _ACCOUNT_RE.match(access_key):
        return access_key
    from ministack.core.responses import _account_from_sts_session

    return _account_from_sts_session(access_key) or "unknown"


# ---------------------------------------------------------------------------
# Injected errors, each in its service's protocol
# ---------------------------------------------------------------------------

_S3_ERRORS = {503: ("SlowDown", "Please reduce your request rate."),
              500: ("InternalError", "We encountered an internal error. Please try again.")}
_QUERY_ERRORS = {503: ("Receiver", "ServiceUnavailable", "Service is unavailable. Please try again later."),
                 500: ("Receiver", "InternalFailure", "An internal error occurred.")}
_JSON_ERRORS = {503: ("ServiceUnavailableException", "Service is unavailable. Please try again later."),
                500: ("KMSInternalException", "An internal error occurred.")}


def fault_response(service: str, status: int) -> tuple[int, dict, bytes]:
    request_id = uuid.uuid4().hex.upper()[:16]
    if service == "s3":
        code, message = _S3_ERRORS.get(status, ("SlowDown" if status in (429, 400) else "ServiceUnavailable",
                                                "Please reduce your request rate."))
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>{request_id}</RequestId><HostId>lab-fault</HostId></Error>").encode()
        return status, {"content-type": "application/xml", "x-amz-request-id": request_id}, body
    if service in ("sts", "iam"):
        kind, code, message = _QUERY_ERRORS.get(status, ("Sender", "Throttling", "Rate exceeded"))
        ns = "https://sts.amazonaws.com/doc/2011-06-15/" if service == "sts" else "https://iam.amazonaws.com/doc/2010-05-08/"
        body = (f'<ErrorResponse xmlns="{ns}"><Error><Type>{kind}</Type><Code>{code}</Code>'
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        return status, {"content-type": "text/xml", "x-amzn-requestid": request_id}, body
    code, message = _JSON_ERRORS.get(status, ("ThrottlingException", "Rate exceeded"))
    body = json.dumps({"__type": code, "message": message}).encode()
    return status, {"content-type": "application/x-amz-json-1.1", "x-amzn-requestid": request_id}, body


# ---------------------------------------------------------------------------
# ASGI plumbing
# ---------------------------------------------------------------------------


async def _send(send, status: int, headers: dict, body: bytes, head: bool = False) -> None:
    raw = [(k.encode(), str(v).encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _send_json(send, status: int, payload) -> None:
    await _send(send, status, {"content-type": "application/json"}, json.dumps(payload, indent=1).encode())


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive):
    """A receive callable that yields `body` once, then defers to the real one."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


_TAMPER_CHUNK = b"\x00" * 65536


async def _never():
    """A receive for the app once the watcher owns the real one: the body was replayed."""
    await asyncio.Event().wait()


def _tampering(send, tamper: dict, state: LabState, gone: asyncio.Event):
    """A `send` that rewrites a successful answer: headers set as configured, and the body
    replaced by `body_bytes` bytes (streamed; stops when the client hangs up, and counts
    what went out until then)."""
    ok = False
    done = False
    body_bytes = tamper["body_bytes"]

    async def tampered(message):
        nonlocal ok, done
        if message["type"] == "http.response.start":
            ok = 200 <= message["status"] < 300
            if ok:
                drop = set(tamper["headers"]) | ({"content-length"} if body_bytes is not None else set())

                def dropped(name: str) -> bool:  # a replaced body keeps no checksum of the old one
                    return name in drop or (body_bytes is not None and name.startswith("x-amz-checksum-"))
                headers = [(k, v) for k, v in message.get("headers", []) if not dropped(k.decode("latin-1").lower())]
                headers += [(k.encode(), v.encode()) for k, v in tamper["headers"].items()]
                if body_bytes is not None:
                    headers.append((b"content-length", str(body_bytes).encode()))
                message = {**message, "headers": headers}
            return await send(message)
        if message["type"] != "http.response.body" or not ok or body_bytes is None:
            return await send(message)
        if done or message.get("more_body"):
            return None  # the original body is swallowed
        done = True
        sent = 0
        try:
            while sent < body_bytes and not gone.is_set():
                n = min(len(_TAMPER_CHUNK), body_bytes - sent)
                await send({"type": "http.response.body", "body": _TAMPER_CHUNK[:n],
                            "more_body": sent + n < body_bytes})
                sent += n
                await asyncio.sleep(0)  # let a disconnect be noticed
        except Exception:  # the client went away: stop sending
            pass
        finally:
            state.count_tampered(sent)
        return None

    return tampered


class LabMiddleware:
    """Wraps ministack's ASGI app."""

    def __init__(self, app, state: LabState):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path.startswith("/_lab/") or path == "/_lab":
            return await self.admin(scope, receive, send)
        if path.startswith("/_ministack/"):
            return await self.app(scope, receive, send)
        return await self.aws(scope, receive, send)

    async def aws(self, scope, receive, send):
        method = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
        body = await _read_body(receive)
        service, operation, access_key = classify(method, scope["path"], query, headers, body)
        self.state.count(service, operation, account_of(access_key))
        latency, status = self.state.draw_fault(service, operation)
        if latency:
            await asyncio.sleep(latency)
        if status is not None:
            self.state.count_fault(service, operation)
            code, resp_headers, resp_body = fault_response(service, status)
            return await _send(send, code, resp_headers, resp_body, head=method == "HEAD")
        tamper = self.state.tamper_for(service, operation, scope["path"])
        if tamper is None:
            return await self.app(scope, _replay(body, receive), send)
        # Watch for the client hanging up, so a hostile body stops when nobody reads it.
        gone = asyncio.Event()

        async def watch():
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            return await self.app(scope, _replay(body, _never), _tampering(send, tamper, self.state, gone))
        finally:
            watcher.cancel()

    async def admin(self, scope, receive, send):
        method, path = scope["method"], scope["path"].rstrip("/")
        body = await _read_body(receive)
        try:
            payload = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError as exc:
            return await _send_json(send, 400, {"error": f"invalid JSON: {exc}"})
        routes = {
            ("GET", "/_lab/config"): lambda: self.state.config(),
            ("POST", "/_lab/config"): lambda: self.state.update(payload),
            ("POST", "/_lab/reset-faults"): lambda: self.state.reset_faults(),
            ("GET", "/_lab/stats"): lambda: self.state.stats(),
            ("POST", "/_lab/stats/reset"): lambda: (self.state.reset_stats(), self.state.stats())[1],
            ("POST", "/_lab/bulk-objects"): lambda: _bulk(payload),
        }
        handler = routes.get((method, path))
        if handler is None:
            return await _send_json(send, 404, {"error": f"no such lab endpoint: {method} {path}",
                                                "endpoints": [f"{m} {p}" for m, p in routes]})
        try:
            return await _send_json(send, 200, handler())
        except ConfigError as exc:
            return await _send_json(send, 400, {"error": str(exc)})
