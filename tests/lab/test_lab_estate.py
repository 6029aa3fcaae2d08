"""Tests of the estate for discovery (estate.py) and of lab_estate_plugin's corrections:
what replicanary's discovery reads (ListBuckets, GetBucketTagging, GetBucketReplication,
GetBucketEncryption, HeadBucket with an expected owner) as the fixed-name, account-wide
probe roles, and that every replication discovery should find behaves as the expected
JSON says when a canary is written where the rule selects it.

Run: tests/lab/.venv/bin/python -m pytest tests/lab/test_lab_estate.py -q
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from botocore.exceptions import ClientError

import estate
import lab
import lab_estate_plugin
import provision

ROLE = "arn:aws:iam::111111111111:role/replication-fx"  # a rule's role (the lab does not check it)
SRC, DST, SECOND, UNPROBED = (estate.SOURCE_ACCOUNT, estate.DEST_ACCOUNT, estate.SECOND_SOURCE_ACCOUNT,
                              estate.UNPROBED_ACCOUNT)


def code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def status(exc: ClientError) -> int:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def built(lab_server):
    """The estate on the session lab (suffix -es)."""
    return estate.provision_estate(lab_server.endpoint, "-es")


@pytest.fixture(scope="module")
def expected(built):
    return built.expected()


def source_role(endpoint: str, account: str):
    return lab.s3_as(endpoint, lab.assume(endpoint, estate.SOURCE_ROLE_TEMPLATE.format(account=account)))


def destination_role(endpoint: str, account: str):
    return lab.s3_as(endpoint, lab.assume(endpoint, estate.DESTINATION_ROLE_TEMPLATE.format(account=account)))


def list_all(s3, page: int, **kwargs) -> tuple[list[dict], int]:
    """Every bucket ListBuckets gives, following continuation tokens; (buckets, pages)."""
    buckets, pages, token = [], 0, None
    while True:
        resp = s3.list_buckets(MaxBuckets=page, **({"ContinuationToken": token} if token else {}), **kwargs)
        pages += 1
        buckets += resp["Buckets"]
        token = resp.get("ContinuationToken")
        if not token:
            return buckets, pages


def root(endpoint: str, account: str):
    return provision.Account(endpoint, account).s3


def make_bucket(s3, name: str, versioned: bool = True) -> str:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": provision.REGION})
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


# ---------------------------------------------------------------------------
# lab_estate_plugin: each correction against what stock ministack does
# ---------------------------------------------------------------------------


def test_list_buckets_continuation_token_is_opaque_and_pages_cover_every_bucket(lab_server):
    s3 = root(lab_server.endpoint, "121212121212")
    names = {make_bucket(s3, f"lb-{i}-fx", versioned=False) for i in range(7)}
    first = s3.list_buckets(MaxBuckets=3)
    token = first["ContinuationToken"]
    assert token not in names and not token.startswith("lb-"), "the token must not be a bucket name"
    assert all(b["BucketRegion"] == provision.REGION for b in first["Buckets"])
    buckets, pages = list_all(s3, 3)
    assert [b["Name"] for b in buckets] == sorted(names) and pages == 3
    with pytest.raises(ClientError) as exc:
        s3.list_buckets(MaxBuckets=3, ContinuationToken="lb-2-fx")  # a name is no token we issued
    assert (status(exc.value), code(exc.value)) == (400, "InvalidArgument")
    assert {b["Name"] for b in s3.list_buckets(BucketRegion=provision.REGION)["Buckets"]} == names


def test_list_buckets_pages_by_ten_thousand_when_filtering_without_max_buckets():
    """AWS: with prefix, bucket-region or continuation-token but no max-buckets, pages of 10,000."""
    seen = []

    def orig(params, region):
        seen.append(dict(params))
        return 200, {}, b"<ListAllMyBucketsResult><ContinuationToken>b-9</ContinuationToken></ListAllMyBucketsResult>"

    _, _, body = lab_estate_plugin.list_buckets({"prefix": ["b"]}, None, _orig=orig)
    lab_estate_plugin.list_buckets({}, None, _orig=orig)
    lab_estate_plugin.list_buckets({"bucket-region": ["ap-northeast-1"], "max-buckets": ["5"]}, None, _orig=orig)
    assert seen[0]["max-buckets"] == ["10000"]
    assert "max-buckets" not in seen[1]                   # unpaginated: every bucket, as AWS
    assert seen[2]["max-buckets"] == ["5"]
    assert lab_estate_plugin.decode_token(body.decode().split("<ContinuationToken>")[1].split("<")[0]) == "b-9"


def test_expected_bucket_owner_other_than_the_owner_is_403(lab_server):
    s3 = root(lab_server.endpoint, SRC)
    name = make_bucket(s3, "owner-check-fx", versioned=False)
    s3.head_bucket(Bucket=name, ExpectedBucketOwner=SRC)
    for call in (lambda: s3.head_bucket(Bucket=name, ExpectedBucketOwner=DST),
                 lambda: s3.get_bucket_location(Bucket=name, ExpectedBucketOwner=DST),
                 lambda: s3.put_object(Bucket=name, Key="k", Body=b"x", ExpectedBucketOwner=DST)):
        with pytest.raises(ClientError) as exc:
            call()
        assert status(exc.value) == 403
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="no-such-bucket-fx", ExpectedBucketOwner=SRC)
    assert status(exc.value) == 404
    assert root(lab_server.endpoint, SRC).list_objects_v2(Bucket=name)["KeyCount"] == 0, "the refused put wrote"


def test_rule_without_id_gets_a_generated_48_character_id(lab_server):
    s3 = root(lab_server.endpoint, SRC)
    src, dst = make_bucket(s3, "noid-src-fx"), make_bucket(s3, "noid-dst-fx")
    s3.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": ROLE, "Rules": [
        {"Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
         "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": f"arn:aws:s3:::{dst}"}}]})
    first = s3.get_bucket_replication(Bucket=src)["ReplicationConfiguration"]["Rules"][0]["ID"]
    again = s3.get_bucket_replication(Bucket=src)["ReplicationConfiguration"]["Rules"][0]["ID"]
    assert first == again and len(first) == 48
    uuid.UUID(base64.b64decode(first).decode())


def test_v1_rule_keeps_its_empty_prefix(lab_server):
    s3 = root(lab_server.endpoint, SRC)
    src, dst = make_bucket(s3, "v1-src-fx"), make_bucket(s3, "v1-dst-fx")
    s3.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": ROLE, "Rules": [
        {"ID": "old", "Status": "Enabled", "Prefix": "", "Destination": {"Bucket": f"arn:aws:s3:::{dst}"}}]})
    rule = s3.get_bucket_replication(Bucket=src)["ReplicationConfiguration"]["Rules"][0]
    assert rule["Prefix"] == "" and "Filter" not in rule and "Priority" not in rule


V2 = {"ID": "r", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
      "DeleteMarkerReplication": {"Status": "Disabled"}}


@pytest.mark.parametrize("change,error", [
    ({"Priority": None}, "InvalidRequest"),
    ({"DeleteMarkerReplication": None}, "InvalidRequest"),
    ({"Filter": {"Prefix": "a/", "Tag": {"Key": "k", "Value": "v"}}}, "MalformedXML"),
    ({"Filter": {"Tag": {"Key": "k", "Value": "v"}}, "DeleteMarkerReplication": {"Status": "Enabled"}},
     "InvalidRequest"),
    ({"Filter": {"And": {"Prefix": "a/", "Tags": [{"Key": "k", "Value": "v"}]}},
      "DeleteMarkerReplication": {"Status": "Enabled"}}, "InvalidRequest"),
    ({"Filter": {"Prefix": "a/"}, "DeleteMarkerReplication": {"Status": "Enabled"}}, None),
    ({"Filter": {"And": {"Prefix": "a/", "Tags": [{"Key": "k", "Value": "v"}]}}}, None),
])
def test_v2_rules_aws_refuses_are_refused(lab_server, change, error):
    s3 = root(lab_server.endpoint, SRC)
    src, dst = f"v2-src-fx-{uuid.uuid4().hex[:6]}", f"v2-dst-fx-{uuid.uuid4().hex[:6]}"
    make_bucket(s3, src), make_bucket(s3, dst)
    rule = {**V2, **change, "Destination": {"Bucket": f"arn:aws:s3:::{dst}"}}
    rule = {k: v for k, v in rule.items() if v is not None}
    put = lambda: s3.put_bucket_replication(  # noqa: E731
        Bucket=src, ReplicationConfiguration={"Role": ROLE, "Rules": [rule]})
    if error is None:
        put()
        assert s3.get_bucket_replication(Bucket=src)["ReplicationConfiguration"]["Rules"][0]["ID"] == "r"
    else:
        with pytest.raises(ClientError) as exc:
            put()
        assert (status(exc.value), code(exc.value)) == (400, error)


def test_put_object_with_tags_needs_put_object_tagging(lab_server):
    acct = provision.Account(lab_server.endpoint, SRC)
    name = make_bucket(acct.s3, "tagging-perm-fx", versioned=False)
    trust = provision.probe_trust("arn:aws:iam::333333333333:root", None)
    only_put = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{name}/*"}]})
    arn = provision.create_role(acct, "put-only-fx", trust, only_put)
    s3 = lab.s3_as(lab_server.endpoint, lab.assume(lab_server.endpoint, arn))
    s3.put_object(Bucket=name, Key="plain", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=name, Key="tagged", Body=b"x", Tagging="k=v")
    assert (status(exc.value), code(exc.value)) == (403, "AccessDenied")
    assert "s3:PutObjectTagging" in exc.value.response["Error"]["Message"]
    acct.iam.put_role_policy(RoleName="put-only-fx", PolicyName="tagging", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:PutObjectTagging", "Resource": f"arn:aws:s3:::{name}/*"}]}))
    s3.put_object(Bucket=name, Key="tagged", Body=b"x", Tagging="k=v")
    assert acct.s3.get_object_tagging(Bucket=name, Key="tagged")["TagSet"] == [{"Key": "k", "Value": "v"}]


def test_keys_longer_than_1024_bytes_are_refused(lab_server):
    s3 = root(lab_server.endpoint, SRC)
    name = make_bucket(s3, "long-key-fx", versioned=False)
    s3.put_object(Bucket=name, Key="ü" * 512, Body=b"x")          # 1,024 bytes
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=name, Key="ü" * 512 + "x", Body=b"x")  # 1,025 bytes
    assert (status(exc.value), code(exc.value)) == (400, "KeyTooLongError")


def test_discovery_reads_need_their_iam_actions(lab_server, built):
    """Without deploy/iam's discovery policy a role can list buckets but read none of them:
    each read is authorised by the action AWS names (HeadBucket as s3:ListBucket)."""
    acct = provision.Account(lab_server.endpoint, SRC)
    trust = provision.probe_trust("arn:aws:iam::333333333333:root", None)
    list_only = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]})
    arn = provision.create_role(acct, "list-only-fx", trust, list_only)
    s3 = lab.s3_as(lab_server.endpoint, lab.assume(lab_server.endpoint, arn))
    name = built.buckets["healthy"]
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    for call in (s3.get_bucket_tagging, s3.get_bucket_replication, s3.get_bucket_encryption, s3.head_bucket):
        with pytest.raises(ClientError) as exc:
            call(Bucket=name)
        assert status(exc.value) == 403, call
    acct.iam.put_role_policy(RoleName="list-only-fx", PolicyName="discovery", PolicyDocument=json.dumps(
        provision.iam_document("source-probe-discovery-policy.json", {})))
    assert s3.get_bucket_tagging(Bucket=name)["TagSet"]
    assert s3.get_bucket_replication(Bucket=name)["ReplicationConfiguration"]["Rules"][0]["ID"] == "healthy"
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=name)  # s3:ListBucket: the destination's discovery policy grants it, not this one
    assert status(exc.value) == 403


def test_stock_answers_discovery_relies_on(lab_server):
    """Verified as stock ministack already answers as AWS documents."""
    s3 = root(lab_server.endpoint, SRC)
    name = make_bucket(s3, "stock-fx", versioned=False)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=name)
    assert (status(exc.value), code(exc.value)) == (404, "NoSuchTagSet")
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_replication(Bucket=name)
    assert (status(exc.value), code(exc.value)) == (404, "ReplicationConfigurationNotFoundError")
    default = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert default["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == provision.REGION
    with pytest.raises(ClientError) as exc:
        root(lab_server.endpoint, DST).head_bucket(Bucket=name)  # another account, no bucket policy
    assert status(exc.value) == 403


# ---------------------------------------------------------------------------
# The estate as discovery reads it
# ---------------------------------------------------------------------------


def test_estate_config_has_only_discovery(built, tmp_path):
    import yaml

    doc = yaml.safe_load(estate.render_config(built))
    assert set(doc) == {"defaults", "aws", "discovery"}
    assert doc["discovery"]["source_accounts"] == [SRC, SECOND]
    assert doc["discovery"]["source_role_arn"] == "arn:aws:iam::{account}:role/replicanary-source-probe"
    assert doc["discovery"]["destination_role_arn"] == "arn:aws:iam::{account}:role/replicanary-destination-probe"
    assert doc["discovery"]["bucket_tag"] == {"key": "replicanary", "value": "enabled"}
    assert doc["aws"] == {"endpoint_url": built.endpoint, "force_path_style": True}


def test_expected_conclusions_cover_every_bucket_and_rule(built, expected):
    covered = ({s["bucket"] for s in expected["skipped"]}
               | {r["source_bucket"] for r in expected["replications"].values()})
    assert covered == {built.buckets[c.label] for c in estate.ESTATE}
    reasons = {(s["bucket"].split("-src")[0][3:], s["rule_id"]): s["reason"] for s in expected["skipped"]}
    assert reasons == {
        ("priority", "shadowed"): "shadowed", ("disabled", "disabled"): "rule_disabled",
        ("unknown-account", "to-777"): "destination_role_unavailable", ("untagged", None): "untagged",
        ("other-value", None): "untagged", ("no-config", None): "no_replication_configuration",
        ("unsatisfiable", "conflicting-tags"): "unsatisfiable_filter",
        ("unsatisfiable", "key-too-long"): "unsatisfiable_filter",
    }
    names = set(expected["replications"])
    assert {"re-priority-src-es/high", "re-priority-src-es/low", "re-odd-id-src-es/odd id/ü ✓",
            "re-v1-src-es/legacy", "re-second-account-src-es/healthy"} <= names
    generated = [n for n in names if n.startswith("re-no-id-src-es/")]
    assert len(generated) == 1 and len(generated[0].split("/", 1)[1]) == 48
    no_key = expected["replications"]["re-no-default-sse-src-es/no-default-key"]
    assert no_key["destinations"][0]["expected_kms_key_arn"] is None
    assert no_key["findings"] == ["expected_kms_key_unknown"]
    assert set(expected["dormant"]) == {"re-untagged-src-es/untagged", "re-other-value-src-es/other-value"}


@pytest.mark.parametrize("account", [SRC, SECOND])
def test_source_probe_role_reads_what_discovery_needs(lab_server, built, expected, account):
    s3 = source_role(lab_server.endpoint, account)
    buckets, pages = list_all(s3, 2)
    names = [b["Name"] for b in buckets]
    assert len(names) == len(set(names)) and pages == (len(names) + 1) // 2
    mine = {c.label: built.buckets[c.label] for c in estate.ESTATE if c.account == account}
    assert set(mine.values()) <= set(names)
    assert all(b["BucketRegion"] == provision.REGION for b in buckets)
    other = estate.SECOND_SOURCE_ACCOUNT if account == SRC else SRC
    assert not {built.buckets[c.label] for c in estate.ESTATE if c.account == other} & set(names)
    for case in (c for c in estate.ESTATE if c.account == account):
        name = mine[case.label]
        try:
            tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
        except ClientError as exc:
            assert code(exc) == "NoSuchTagSet" and case.tag_value is None
            tags = {}
        assert tags.get("replicanary") == case.tag_value
        try:
            rules = s3.get_bucket_replication(Bucket=name)["ReplicationConfiguration"]["Rules"]
        except ClientError as exc:
            assert code(exc) == "ReplicationConfigurationNotFoundError" and not case.rules
            continue
        assert len(rules) == len(case.rules)
        for got, want in zip(rules, case.rules):
            assert got["Status"] == want.status
            if want.rule_id is not None:
                assert got["ID"] == want.rule_id
            if want.v1:
                assert got["Prefix"] == "" and "Priority" not in got
            else:
                assert got["Priority"] == want.priority and got["DeleteMarkerReplication"] == {"Status": "Disabled"}
                f = got["Filter"]
                tags_got = [f["Tag"]] if "Tag" in f else f.get("And", {}).get("Tags", [])
                prefix_got = f.get("Prefix", f.get("And", {}).get("Prefix"))
                assert [(t["Key"], t["Value"]) for t in tags_got] == want.tags
                assert prefix_got == (want.prefix if want.prefix is not None else None)
            assert ("Account" in got["Destination"]) == want.account_in_rule
            assert ("SourceSelectionCriteria" in got) == want.select_sse_kms
            # GetEncryptionConfiguration of the source bucket (the canary's default key)
            enc = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
            assert enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


def test_destination_probe_roles_read_expected_keys_and_tell_owners(lab_server, expected):
    roles = {DST: destination_role(lab_server.endpoint, DST), SECOND: destination_role(lab_server.endpoint, SECOND)}
    for name, rep in expected["replications"].items():
        for d in rep["destinations"]:
            s3 = roles[d["account"]]
            default = s3.get_bucket_encryption(Bucket=d["bucket"])["ServerSideEncryptionConfiguration"]["Rules"][0][
                "ApplyServerSideEncryptionByDefault"]
            assert default.get("KMSMasterKeyID") == d["expected_kms_key_arn"], name
            s3.head_bucket(Bucket=d["bucket"], ExpectedBucketOwner=d["account"])
            wrong = SECOND if d["account"] == DST else DST
            with pytest.raises(ClientError) as exc:
                roles[wrong].head_bucket(Bucket=d["bucket"], ExpectedBucketOwner=wrong)
            assert status(exc.value) == 403, name
    no_account = expected["replications"]["re-no-account-src-es/no-account"]["destinations"][0]
    assert no_account["account"] == SECOND and no_account["account_from"] == "bucket_owner"


def test_account_without_probe_role_cannot_be_assumed(lab_server):
    with pytest.raises(ClientError) as exc:
        lab.assume(lab_server.endpoint, estate.DESTINATION_ROLE_TEMPLATE.format(account=UNPROBED))
    assert status(exc.value) in (403, 404)


def test_untrusted_account_cannot_assume_the_fixed_name_roles(lab_server, built):
    with pytest.raises(ClientError) as exc:
        lab.assume(lab_server.endpoint, estate.SOURCE_ROLE_TEMPLATE.format(account=SRC), base_access_key="444444444444")
    assert code(exc.value) == "AccessDenied"


def _canary(endpoint: str, rep: dict, roles: dict) -> tuple[str, str, str]:
    """Write a canary where the rule selects it, as the account's source probe role."""
    key = rep["canary_key_prefix"] + uuid.uuid4().hex
    kwargs = {"Tagging": urlencode(rep["tags"])} if rep["tags"] else {}
    resp = roles[rep["source_account"]].put_object(Bucket=rep["source_bucket"], Key=key, Body=b"canary", **kwargs)
    return rep["source_bucket"], key, resp["VersionId"]


def _final_status(s3, bucket: str, key: str, version: str, timeout: float = 8.0) -> str | None:
    deadline = time.monotonic() + timeout
    while True:
        got = s3.head_object(Bucket=bucket, Key=key, VersionId=version).get("ReplicationStatus")
        if got != "PENDING" or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def _replica_head(dst, bucket: str, key: str, version: str, wait: float) -> tuple[dict | None, int]:
    """HeadObject of the replica as the destination role, looked at again until `wait` passes
    while it is missing: (headers or None, HTTP status of the last answer)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return dst.head_object(Bucket=bucket, Key=key, VersionId=version), 200
        except ClientError as exc:
            if status(exc) != 404 or time.monotonic() > deadline:
                return None, status(exc)
        time.sleep(0.2)


def check_replications(endpoint: str, replications: dict) -> dict:
    """Write a canary for each replication as discovery would place it and judge it the way
    replicanary's probe does, with its one destination: {name: verdict}."""
    sources = {a: source_role(endpoint, a) for a in {r["source_account"] for r in replications.values()}}
    dests = {d["account"]: destination_role(endpoint, d["account"])
             for r in replications.values() for d in r["destinations"]}
    written = {name: _canary(endpoint, rep, sources) for name, rep in replications.items()}
    with ThreadPoolExecutor(max_workers=8) as pool:  # the waits overlap
        verdicts = pool.map(lambda name: _judge(name, replications[name], written[name], sources, dests), written)
        return dict(zip(written, verdicts))


def _judge(name: str, rep: dict, canary: tuple, sources: dict, dests: dict) -> str:
    """The verdict of one canary for the replication's (one) destination."""
    bucket, key, version = canary
    src = sources[rep["source_account"]]
    try:
        return _verdict(name, rep, canary, src, dests[rep["destinations"][0]["account"]])
    finally:  # after the verdict: the lab drops a pending replication whose source version is gone
        src.delete_object(Bucket=bucket, Key=key, VersionId=version)


def _verdict(name: str, rep: dict, canary: tuple, src, dst) -> str:
    bucket, key, version = canary
    final = _final_status(src, bucket, key, version)
    d = rep["destinations"][0]
    if final is None:
        return "not_replicated"
    if final == "PENDING":
        return "replication_timeout"
    # FAILED may be another destination's failure (another rule): look at this one's replica.
    head, head_status = _replica_head(dst, d["bucket"], key, version, wait=8.0 if final == "FAILED" else 0)
    if head is None:
        if final == "FAILED":
            return "replication_failed"
        return "unreadable" if head_status == 403 else "replica_missing"
    assert head["ReplicationStatus"] == "REPLICA", name
    expected_key = d["expected_kms_key_arn"]
    wrong_key = bool(expected_key) and head.get("SSEKMSKeyId") != expected_key
    if head.get("StorageClass") in ("GLACIER", "DEEP_ARCHIVE"):  # read skipped: the HEAD decides
        return "wrong_kms_key" if wrong_key else "ok"
    try:
        body = dst.get_object(Bucket=d["bucket"], Key=key, VersionId=version)["Body"].read()
    except ClientError as exc:
        return "undecryptable" if code(exc).startswith(("AccessDenied", "KMS.")) else code(exc)
    assert body == b"canary", name
    return "wrong_kms_key" if wrong_key else "ok"


def test_every_replication_to_discover_behaves_as_expected(lab_server, expected):
    """With the account-wide roles from deploy/iam/ and canaries where each rule selects them
    (under the rule's prefix, with its filter tags), each replication gives its expected verdict."""
    outcomes = check_replications(lab_server.endpoint, expected["replications"])
    assert outcomes == {n: r["expected_verdict"] for n, r in expected["replications"].items()}


def test_skipped_rules_cannot_be_probed_as_written(lab_server, built, expected):
    s3 = source_role(lab_server.endpoint, SRC)
    disabled = built.buckets["disabled"]
    resp = s3.put_object(Bucket=disabled, Key=f"replicanary/{disabled}/disabled/x", Body=b"canary")
    assert s3.head_object(Bucket=disabled, Key=f"replicanary/{disabled}/disabled/x",
                          VersionId=resp["VersionId"]).get("ReplicationStatus") is None  # no enabled rule
    tagged = built.buckets["tag"]  # a canary without the rule's filter tag is not selected
    key = f"replicanary/{tagged}/tagged/untagged-canary"
    resp = s3.put_object(Bucket=tagged, Key=key, Body=b"canary")
    assert s3.head_object(Bucket=tagged, Key=key, VersionId=resp["VersionId"]).get("ReplicationStatus") is None
    unsat = built.buckets["unsatisfiable"]
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=unsat, Key=estate.LONG_PREFIX + f"replicanary/{unsat}/key-too-long/x", Body=b"c")
    assert code(exc.value) == "KeyTooLongError"
    # The probe roles reach only canary keys: anything else in an estate bucket is refused.
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=built.buckets["healthy"], Key="user-data/x", Body=b"x")
    assert code(exc.value) == "AccessDenied"


# ---------------------------------------------------------------------------
# Changes at runtime (the helpers the Rust end-to-end tests call)
# ---------------------------------------------------------------------------


def test_tagging_and_untagging_at_runtime_shows(lab_server, built, expected):
    s3 = source_role(lab_server.endpoint, SRC)
    name = built.buckets["untagged"]
    with pytest.raises(ClientError):
        s3.get_bucket_tagging(Bucket=name)
    try:
        assert estate.tag_bucket(name, endpoint=lab_server.endpoint) == {"replicanary": "enabled"}
        assert s3.get_bucket_tagging(Bucket=name)["TagSet"] == [{"Key": "replicanary", "Value": "enabled"}]
        dormant = {k: v for k, v in expected["dormant"].items() if v["source_bucket"] == name}
        assert check_replications(lab_server.endpoint, dormant) == {k: "ok" for k in dormant}
    finally:
        assert estate.untag_bucket(name, endpoint=lab_server.endpoint) == {}
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=name)
    assert code(exc.value) == "NoSuchTagSet"
    other = built.buckets["other-value"]
    estate.tag_bucket(other, endpoint=lab_server.endpoint)
    assert estate.untag_bucket(other, endpoint=lab_server.endpoint) == {"team": "storage"}
    estate.tag_bucket(other, value="disabled", endpoint=lab_server.endpoint)


def test_adding_a_rule_at_runtime_shows(lab_server, built, monkeypatch):
    monkeypatch.setenv("ENDPOINT", lab_server.endpoint)  # as the Rust tests call the helpers
    s3 = source_role(lab_server.endpoint, SRC)
    name, dest = built.buckets["healthy"], "re-healthy-dst-es"
    rule = estate.add_rule(name, "added", dest, prefix="added/")
    try:
        rules = {r["ID"]: r for r in s3.get_bucket_replication(Bucket=name)["ReplicationConfiguration"]["Rules"]}
        assert set(rules) == {"healthy", "added"}
        added = rules["added"]
        assert added["Priority"] == 2 and added["Filter"] == {"Prefix": "added/"}
        assert added["Destination"]["Account"] == DST
        assert added["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"] == estate.default_kms_key(dest, DST)
        assert rule["ID"] == "added"
        rep = {"source_account": SRC, "source_bucket": name, "tags": {},
               "canary_key_prefix": f"added/replicanary/{name}/added/",
               "destinations": [{"account": DST, "bucket": dest,
                                 "expected_kms_key_arn": estate.default_kms_key(dest, DST)}]}
        assert check_replications(lab_server.endpoint, {"added": rep}) == {"added": "ok"}
        estate.set_rule_status(name, "added", "Disabled")
        assert {r["ID"]: r["Status"] for r in s3.get_bucket_replication(Bucket=name)["ReplicationConfiguration"][
            "Rules"]} == {"healthy": "Enabled", "added": "Disabled"}
    finally:
        assert estate.remove_rule(name, "added") == 1
    assert [r["ID"] for r in s3.get_bucket_replication(Bucket=name)["ReplicationConfiguration"]["Rules"]] == ["healthy"]


def test_rule_with_tag_filter_added_at_runtime(lab_server, built):
    name, dest = built.buckets["prefix"], "re-prefix-dst-es"
    estate.add_rule(name, "tagged-later", dest, prefix="", tags={"copy": "me too"}, endpoint=lab_server.endpoint)
    try:
        got = [r for r in source_role(lab_server.endpoint, SRC).get_bucket_replication(Bucket=name)[
            "ReplicationConfiguration"]["Rules"] if r["ID"] == "tagged-later"][0]
        assert got["Filter"] == {"Tag": {"Key": "copy", "Value": "me too"}}
    finally:
        estate.remove_rule(name, "tagged-later", endpoint=lab_server.endpoint)


# ---------------------------------------------------------------------------
# provision.py's scenarios, opted in
# ---------------------------------------------------------------------------


def test_tag_scenarios_gives_the_explicit_configurations_verdicts(lab_server, world):
    tagged = estate.tag_scenarios(lab_server.endpoint, world=world)
    exp = tagged.expected()
    assert exp["discovery"]["source_accounts"] == [SRC]
    assert len(exp["replications"]) == sum(len(sc.destinations) for sc in world.scenarios.values())
    s3 = source_role(lab_server.endpoint, SRC)
    for sc in world.scenarios.values():
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=sc.source_bucket)["TagSet"]}
        assert tags["replicanary"] == "enabled"
    dst = destination_role(lab_server.endpoint, DST)
    for name, rep in exp["replications"].items():
        d = rep["destinations"][0]
        default = dst.get_bucket_encryption(Bucket=d["bucket"])["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert default["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == d["expected_kms_key_arn"], name
    fast = {n: r for n, r in exp["replications"].items() if r["expected_verdict"] != "replication_timeout"}
    assert check_replications(lab_server.endpoint, fast) == {n: r["expected_verdict"] for n, r in fast.items()}
    assert {r["expected_verdict"] for r in exp["replications"].values()} >= {
        "ok", "undecryptable", "wrong_kms_key", "not_replicated", "replication_failed", "replication_timeout"}


# ---------------------------------------------------------------------------
# Many buckets
# ---------------------------------------------------------------------------


SCALE = 300  # the always-run size; 1,000 is measured with the CLI (README)


def test_many_buckets_paginate(lab_server):
    account = "666666666666"  # its own account: ListBuckets counts exactly these
    many = estate.Estate(lab_server.endpoint, "-mb", source_accounts=[])
    seconds = estate.add_extra_buckets(many, SCALE, account)
    assert seconds < 60
    assert many.source_accounts == [account]
    s3 = source_role(lab_server.endpoint, account)
    started = time.monotonic()
    buckets, pages = list_all(s3, 100)
    listing = time.monotonic() - started
    assert len(buckets) == SCALE and pages == 3 and listing < 10
    assert len({b["Name"] for b in buckets}) == SCALE
    exp = many.expected()
    assert len(exp["replications"]) == SCALE // 20
    assert len(exp["skipped"]) == SCALE - SCALE // 20
    tagged = 0
    for b in buckets:
        try:
            s3.get_bucket_tagging(Bucket=b["Name"])
            tagged += 1
        except ClientError as exc:
            assert code(exc) == "NoSuchTagSet"
    assert tagged == SCALE // 10
    # a sample of what discovery would find really replicates
    sample = dict(list(exp["replications"].items())[:3])
    assert check_replications(lab_server.endpoint, sample) == {n: "ok" for n in sample}


def test_cli_writes_config_and_expected(lab_server, tmp_path):
    import subprocess
    import sys

    out, exp = tmp_path / "estate.yaml", tmp_path / "expected.json"
    proc = subprocess.run([sys.executable, estate.__file__, "--endpoint", lab_server.endpoint, "--out", str(out),
                           "--expected-out", str(exp), "--suffix=-cli"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "discovery:" in out.read_text() and "replications:" not in out.read_text()
    data = json.loads(exp.read_text())
    assert "re-healthy-src-cli/healthy" in data["replications"]
    assert "14 replications to discover" in proc.stderr


def test_the_unmonitored_rules_expected_are_what_the_source_role_reads(lab_server, built, expected):
    """Coverage's expectations (`unmonitored`): the enabled rules of the buckets that did not
    opt in, and the opted-in rules discovery cannot probe — each as the source probe role
    reads it with GetBucketReplication (rule id, destination bucket and account,
    ReplicaKmsKeyID), on a bucket nobody opted in too."""
    got = {(u["bucket"], u["rule_id"]): u for u in expected["unmonitored"]}
    assert set(got) == {
        (built.buckets["untagged"], "untagged"), (built.buckets["other-value"], "other-value"),
        (built.buckets["priority"], "shadowed"), (built.buckets["unsatisfiable"], "conflicting-tags"),
        (built.buckets["unsatisfiable"], "key-too-long"),
    }
    assert {u["reason"] for u in got.values()} == {"untagged", "shadowed", "unsatisfiable_filter"}
    s3 = source_role(lab_server.endpoint, SRC)
    for (bucket, rule_id), u in got.items():
        rules = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]["Rules"]
        rule = next(r for r in rules if r["ID"] == rule_id)
        assert rule["Status"] == "Enabled"
        dest = rule["Destination"]
        assert dest["Bucket"] == f"arn:aws:s3:::{u['destination_bucket']}"
        assert dest.get("Account") == u["destination_account"]
        assert dest.get("EncryptionConfiguration", {}).get("ReplicaKmsKeyID") == u["replica_kms_key_id"]
