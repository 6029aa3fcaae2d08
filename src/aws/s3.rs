//! [`ObjectStore`] over the AWS SDK's S3 client, counting every call in
//! `replicanary_aws_requests_total`.

use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::classify::{code_label, error_chain, from_sdk};
use super::{
    AwsError, BucketHome, BucketPage, DefaultEncryption, DefaultRetention, ErrorClass,
    EstateReader, GotObject, ListedBucket, ObjectHead, ObjectStore, PutRequest, ReplicationSetup,
    RuleSetup, SetupReader, VersionEntry,
};
use crate::metrics::Metrics;
use crate::model::Side;

/// The headers replicanary reads, from a `HeadObject`'s or a `GetObject`'s output (the
/// SDK gives both the same accessors, on two types).
macro_rules! object_head {
    ($out:expr) => {{
        let out = &$out;
        ObjectHead {
            replication_status: out.replication_status().map(|s| s.as_str().to_owned()),
            server_side_encryption: out.server_side_encryption().map(|s| s.as_str().to_owned()),
            kms_key_id: out.ssekms_key_id().map(str::to_owned),
            storage_class: out.storage_class().map(|c| c.as_str().to_owned()),
            retain_until: out
                .object_lock_retain_until_date()
                .and_then(|t| SystemTime::try_from(*t).ok()),
            metadata: out.metadata().cloned().unwrap_or_default(),
            content_length: out.content_length().and_then(|l| u64::try_from(l).ok()),
        }
    }};
}

/// A `GetObject` whose body broke off: the connection's fault, transient.
fn body_failed(e: &(dyn std::error::Error + 'static)) -> AwsError {
    AwsError {
        code: Some("connection".to_owned()),
        message: Some(error_chain(e)),
        ..AwsError::new("GetObject", ErrorClass::Transient)
    }
}

/// One side's S3 access (one role, one region) on behalf of one replication.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    /// KMS on the same credentials: only `GetKeyPolicy`, for the diagnosis of readers.
    kms: Option<aws_sdk_kms::Client>,
    metrics: Arc<Metrics>,
    replication: String,
    side: Side,
}

impl S3Store {
    pub fn new(client: Client, metrics: Arc<Metrics>, replication: &str, side: Side) -> S3Store {
        S3Store {
            client,
            kms: None,
            metrics,
            replication: replication.to_owned(),
            side,
        }
    }

    /// The same side with KMS access on the same credentials.
    pub fn with_kms(mut self, kms: aws_sdk_kms::Client) -> S3Store {
        self.kms = Some(kms);
        self
    }

    /// The SDK client (the scan's read-only calls are in `scan.rs`).
    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// Counts a call and converts its error.
    pub(super) fn done<T, E>(
        &self,
        operation: &'static str,
        result: Result<T, aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
    ) -> Result<T, AwsError>
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        match result {
            Ok(v) => {
                self.metrics
                    .aws_request(&self.replication, self.side, operation, "ok");
                Ok(v)
            }
            Err(e) => {
                let err = from_sdk(operation, &e);
                // A call refused for want of credentials never reached S3.
                if err.class != ErrorClass::Credentials {
                    self.metrics.aws_request(
                        &self.replication,
                        self.side,
                        operation,
                        code_label(&err),
                    );
                }
                Err(err)
            }
        }
    }
}

impl ObjectStore for S3Store {
    async fn put(&self, req: PutRequest<'_>) -> Result<Option<String>, AwsError> {
        let mut call = self
            .client
            .put_object()
            .bucket(req.bucket)
            .key(req.key)
            .body(ByteStream::from(req.body.to_vec()))
            .set_metadata(Some(req.metadata.clone()));
        if let Some(key) = req.sse_kms_key_id {
            call = call
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(key);
        }
        if !req.tags.is_empty() {
            call = call.tagging(tagging(req.tags));
        }
        let out = self.done("PutObject", call.send().await)?;
        Ok(out.version_id().map(str::to_owned))
    }

    async fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<ObjectHead, AwsError> {
        let call = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .version_id(version_id);
        let out = self.done("HeadObject", call.send().await)?;
        Ok(object_head!(out))
    }

    async fn read_first_byte(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<(), AwsError> {
        let call = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(version_id)
            .range("bytes=0-0");
        let out = self.done("GetObject", call.send().await)?;
        // One byte at most; S3 has decrypted to answer it, the byte itself is not needed.
        let _ = out.body.collect().await.map_err(|e| body_failed(&e))?;
        Ok(())
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        limit: usize,
    ) -> Result<GotObject, AwsError> {
        let call = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(version_id);
        let out = self.done("GetObject", call.send().await)?;
        let head = object_head!(out);
        let mut body = out.body;
        let mut data = Vec::new();
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    let room = (limit + 1).saturating_sub(data.len());
                    data.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if data.len() > limit {
                        break; // too long: no need to read the rest
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(body_failed(&e));
                }
            }
        }
        Ok(GotObject { head, body: data })
    }

    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<(), AwsError> {
        let call = self
            .client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .version_id(version_id);
        self.done("DeleteObject", call.send().await).map(|_| ())
    }

    async fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<VersionEntry>, AwsError> {
        let mut entries = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut version_marker: Option<String> = None;
        loop {
            let call = self
                .client
                .list_object_versions()
                .bucket(bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take());
            let out = self.done("ListObjectVersions", call.send().await)?;
            for v in out.versions() {
                let (Some(key), Some(version_id)) = (v.key(), v.version_id()) else {
                    continue;
                };
                entries.push(VersionEntry {
                    key: key.to_owned(),
                    version_id: version_id.to_owned(),
                    last_modified: v
                        .last_modified()
                        .and_then(|t| SystemTime::try_from(*t).ok()),
                });
                if entries.len() >= max {
                    return Ok(entries);
                }
            }
            if out.is_truncated() != Some(true) {
                return Ok(entries);
            }
            key_marker = out.next_key_marker().map(str::to_owned);
            version_marker = out.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                return Ok(entries);
            }
        }
    }
}

impl SetupReader for S3Store {
    async fn key_policy(&self, key_arn: &str) -> Result<String, AwsError> {
        let Some(kms) = &self.kms else {
            return Err(AwsError::new("GetKeyPolicy", ErrorClass::Other));
        };
        let call = kms.get_key_policy().key_id(key_arn).policy_name("default");
        let out = self.done("GetKeyPolicy", call.send().await)?;
        Ok(out.policy().unwrap_or_default().to_owned())
    }

    async fn replication(&self, bucket: &str) -> Result<ReplicationSetup, AwsError> {
        let call = self.client.get_bucket_replication().bucket(bucket);
        let out = self.done("GetBucketReplication", call.send().await)?;
        let Some(cfg) = out.replication_configuration() else {
            return Ok(ReplicationSetup::default());
        };
        let rules = cfg
            .rules()
            .iter()
            .map(|r| {
                let filter = r.filter();
                let and = filter.and_then(|f| f.and());
                // V1 rules carry their prefix outside a filter; still valid in S3.
                #[allow(deprecated)]
                let legacy_prefix = r.prefix();
                let prefix = filter
                    .and_then(|f| f.prefix().or(and.and_then(|a| a.prefix())))
                    .or(legacy_prefix)
                    .unwrap_or_default();
                let tags: Vec<(String, String)> = filter
                    .and_then(|f| f.tag())
                    .into_iter()
                    .chain(and.map(|a| a.tags()).unwrap_or_default())
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect();
                let dest = r.destination();
                RuleSetup {
                    id: r.id().unwrap_or_default().to_owned(),
                    enabled: r.status().as_str() == "Enabled",
                    priority: r.priority().unwrap_or(0),
                    prefix: prefix.to_owned(),
                    tags,
                    destination_bucket: dest.map(|d| d.bucket().to_owned()).unwrap_or_default(),
                    destination_account: dest.and_then(|d| d.account()).map(str::to_owned),
                    selects_sse_kms: r
                        .source_selection_criteria()
                        .and_then(|c| c.sse_kms_encrypted_objects())
                        .is_some_and(|s| s.status().as_str() == "Enabled"),
                    replica_kms_key_id: dest
                        .and_then(|d| d.encryption_configuration())
                        .and_then(|e| e.replica_kms_key_id())
                        .map(str::to_owned),
                    time_control: dest
                        .and_then(|d| d.replication_time())
                        .is_some_and(|t| t.status().as_str() == "Enabled"),
                    owner_override: dest.and_then(|d| d.access_control_translation()).is_some(),
                }
            })
            .collect();
        Ok(ReplicationSetup {
            role: cfg.role().to_owned(),
            rules,
        })
    }

    async fn versioning(&self, bucket: &str) -> Result<Option<String>, AwsError> {
        let call = self.client.get_bucket_versioning().bucket(bucket);
        let out = self.done("GetBucketVersioning", call.send().await)?;
        Ok(out.status().map(|s| s.as_str().to_owned()))
    }

    async fn encryption(&self, bucket: &str) -> Result<DefaultEncryption, AwsError> {
        let call = self.client.get_bucket_encryption().bucket(bucket);
        let out = self.done("GetBucketEncryption", call.send().await)?;
        let rule = out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default());
        Ok(DefaultEncryption {
            algorithm: rule
                .map(|r| r.sse_algorithm().as_str().to_owned())
                .unwrap_or_default(),
            kms_key_id: rule.and_then(|r| r.kms_master_key_id()).map(str::to_owned),
        })
    }

    async fn policy(&self, bucket: &str) -> Result<String, AwsError> {
        let call = self.client.get_bucket_policy().bucket(bucket);
        let out = self.done("GetBucketPolicy", call.send().await)?;
        Ok(out.policy().unwrap_or_default().to_owned())
    }

    async fn ownership(&self, bucket: &str) -> Result<String, AwsError> {
        let call = self.client.get_bucket_ownership_controls().bucket(bucket);
        let out = self.done("GetBucketOwnershipControls", call.send().await)?;
        Ok(out
            .ownership_controls()
            .and_then(|c| c.rules().first())
            .map(|r| r.object_ownership().as_str().to_owned())
            .unwrap_or_default())
    }

    async fn object_lock(&self, bucket: &str) -> Result<Option<DefaultRetention>, AwsError> {
        let call = self.client.get_object_lock_configuration().bucket(bucket);
        let out = self.done("GetObjectLockConfiguration", call.send().await)?;
        Ok(out
            .object_lock_configuration()
            .and_then(|c| c.rule())
            .and_then(|r| r.default_retention())
            .map(|d| DefaultRetention {
                mode: d.mode().map(|m| m.as_str().to_owned()).unwrap_or_default(),
                days: d.days(),
                years: d.years(),
            }))
    }
}

/// Object tags as `x-amz-tagging` wants them: URL query parameters (`k1=v1&k2=v2`), each
/// key and value percent-encoded (everything but unreserved characters).
pub fn tagging(tags: &[(String, String)]) -> String {
    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    tags.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// S3 answers at most this many buckets per `ListBuckets` page (`max-buckets` is 1 to 1,000).
const BUCKETS_PER_PAGE: i32 = 1000;

impl EstateReader for S3Store {
    async fn list_buckets(
        &self,
        region: &str,
        continuation: Option<&str>,
    ) -> Result<BucketPage, AwsError> {
        // With `bucket-region`, S3 wants the request sent to that region's endpoint: this
        // store's client is in `region`.
        let call = self
            .client
            .list_buckets()
            .bucket_region(region)
            .max_buckets(BUCKETS_PER_PAGE)
            .set_continuation_token(continuation.map(str::to_owned));
        let out = self.done("ListBuckets", call.send().await)?;
        Ok(BucketPage {
            buckets: out
                .buckets()
                .iter()
                .filter_map(|b| {
                    Some(ListedBucket {
                        name: b.name()?.to_owned(),
                        region: b.bucket_region().map(str::to_owned),
                    })
                })
                .collect(),
            continuation: out
                .continuation_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
    }

    async fn bucket_tags(&self, bucket: &str) -> Result<Option<Vec<(String, String)>>, AwsError> {
        let call = self.client.get_bucket_tagging().bucket(bucket);
        match self.done("GetBucketTagging", call.send().await) {
            Ok(out) => Ok(Some(
                out.tag_set()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect(),
            )),
            // 404 NoSuchTagSet: a bucket without tags.
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn replication_rules(&self, bucket: &str) -> Result<Option<ReplicationSetup>, AwsError> {
        match SetupReader::replication(self, bucket).await {
            Ok(setup) => Ok(Some(setup)),
            // 404 ReplicationConfigurationNotFoundError.
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn bucket_home(&self, bucket: &str, owner: &str) -> Result<BucketHome, AwsError> {
        let call = self
            .client
            .head_bucket()
            .bucket(bucket)
            .expected_bucket_owner(owner);
        let answer = call.send().await;
        // A 301 names the bucket's region in `x-amz-bucket-region` (HEAD answers carry no body).
        if let Err(e) = &answer
            && let Some(raw) = e.raw_response()
            && raw.status().as_u16() == 301
            && let Some(region) = raw.headers().get("x-amz-bucket-region")
        {
            let region = region.to_owned();
            let _ = self.done("HeadBucket", answer);
            return Ok(BucketHome::ElsewhereIn(region));
        }
        let out = self.done("HeadBucket", answer)?;
        Ok(BucketHome::Owned {
            region: out.bucket_region().map(str::to_owned),
        })
    }

    async fn default_encryption(&self, bucket: &str) -> Result<DefaultEncryption, AwsError> {
        SetupReader::encryption(self, bucket).await
    }
}

#[cfg(test)]
mod tests {
    use super::tagging;

    #[test]
    fn tags_are_sent_as_encoded_query_parameters() {
        let t = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(tagging(&[t("replicate", "yes")]), "replicate=yes");
        assert_eq!(
            tagging(&[t("team", "storage"), t("a b&c", "ü=1/2")]),
            "team=storage&a%20b%26c=%C3%BC%3D1%2F2"
        );
        assert_eq!(tagging(&[]), "");
    }
}
