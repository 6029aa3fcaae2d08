//! The one seam between replicanary and AWS.
//!
//! Everything above this module sees three traits: [`ObjectStore`] (the object operations
//! of a probe and of cleanup), [`SetupReader`] (the bucket-level reads of diagnosis) and
//! [`EstateReader`] (the reads of discovery), each per side (one role, one region). [`s3::S3Store`] implements them with the AWS SDK
//! — the same code runs against AWS and the lab; only the endpoint differs — and the unit
//! tests implement them in memory. Every failure arrives as an [`AwsError`], classified in
//! [`classify`].

pub mod classify;
pub mod clients;
pub mod precedence;
pub mod s3;
pub mod scan;
pub mod setup;
mod stores;

use std::collections::HashMap;
use std::future::Future;
use std::time::SystemTime;

pub use crate::model::{AwsError, ErrorClass};
pub use setup::{DefaultEncryption, DefaultRetention, ReplicationSetup, RuleSetup};
pub use stores::{Site, Stores};

/// What `HeadObject` tells about one object version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectHead {
    /// `x-amz-replication-status`: `PENDING`, `COMPLETED`, `FAILED`, `REPLICA`, or absent.
    pub replication_status: Option<String>,
    /// `x-amz-server-side-encryption`: `aws:kms`, `aws:kms:dsse`, `AES256`, or absent.
    pub server_side_encryption: Option<String>,
    /// `x-amz-server-side-encryption-aws-kms-key-id`.
    pub kms_key_id: Option<String>,
    /// `x-amz-storage-class` (absent means `STANDARD`).
    pub storage_class: Option<String>,
    /// `x-amz-object-lock-retain-until-date`: the version cannot be deleted before then.
    /// (S3 shows it only to callers with `s3:GetObjectRetention`.)
    pub retain_until: Option<SystemTime>,
    pub metadata: HashMap<String, String>,
    pub content_length: Option<u64>,
}

impl ObjectHead {
    /// Whether the object sits in a storage class that must be restored before a read.
    pub fn is_archived(&self) -> bool {
        matches!(
            self.storage_class.as_deref(),
            Some("GLACIER" | "DEEP_ARCHIVE")
        )
    }
}

/// What `GetObject` returned: the version's headers and the start of its body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GotObject {
    pub head: ObjectHead,
    pub body: Vec<u8>,
}

/// One object version as `ListObjectVersions` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionEntry {
    pub key: String,
    pub version_id: String,
    pub last_modified: Option<SystemTime>,
}

/// A canary to write.
#[derive(Debug, Clone)]
pub struct PutRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub body: &'a [u8],
    pub metadata: &'a HashMap<String, String>,
    /// SSE-KMS with this key; `None` uses the bucket's default encryption.
    pub sse_kms_key_id: Option<&'a str>,
    /// Object tags (`x-amz-tagging`), so that a rule with a tag filter selects the canary;
    /// S3 then also requires `s3:PutObjectTagging`.
    pub tags: &'a [(String, String)],
}

/// Object operations of one side (one role, one region). Implementations count every call.
pub trait ObjectStore: Send + Sync {
    /// `PutObject`; returns the new version id (`None`: the bucket is not versioned).
    fn put(
        &self,
        req: PutRequest<'_>,
    ) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;

    /// `HeadObject` of one version.
    fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> impl Future<Output = Result<ObjectHead, AwsError>> + Send;

    /// `GetObject` of one version: its headers (the same a `HeadObject` shows) and at most
    /// `limit` bytes of the body. A longer body is cut at `limit + 1` bytes, so the caller
    /// sees it is too long.
    fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        limit: usize,
    ) -> impl Future<Output = Result<GotObject, AwsError>> + Send;

    /// `GetObject` of one version with `Range: bytes=0-0`: S3 must decrypt to answer any
    /// byte, so this proves the caller can read the object, at the cost of one byte.
    /// (Readers use it; stores without ranges read up to one byte.)
    fn read_first_byte(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        async move { self.get(bucket, key, version_id, 1).await.map(|_| ()) }
    }

    /// `DeleteObject` of exactly one version.
    fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// `ListObjectVersions` under a prefix, at most `max` entries (delete markers excluded).
    fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        max: usize,
    ) -> impl Future<Output = Result<Vec<VersionEntry>, AwsError>> + Send;
}

/// One page of `ListBuckets`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketPage {
    pub buckets: Vec<ListedBucket>,
    /// Where the next page starts; `None` on the last page.
    pub continuation: Option<String>,
}

/// A bucket as `ListBuckets` names it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedBucket {
    pub name: String,
    /// `BucketRegion`, when S3 reports it.
    pub region: Option<String>,
}

/// What `HeadBucket` with an expected owner answered.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketHome {
    /// The bucket exists and the expected account owns it; its region (`x-amz-bucket-region`)
    /// when S3 said.
    Owned { region: Option<String> },
    /// The request went to the wrong region: ask again there (a 301 that names it).
    ElsewhereIn(String),
}

/// The reads of discovery, on one side's credentials (one role, one region): what the
/// estate looks like — buckets, their opt-in tags, their replication rules, who owns a
/// destination and which key it encrypts with. Implementations count every call.
pub trait EstateReader: Send + Sync {
    /// `ListBuckets` of the caller's account, limited to `region` (`bucket-region`), one
    /// page from `continuation`.
    fn list_buckets(
        &self,
        region: &str,
        continuation: Option<&str>,
    ) -> impl Future<Output = Result<BucketPage, AwsError>> + Send;
    /// `GetBucketTagging`; `Ok(None)` when the bucket has no tag set.
    fn bucket_tags(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<Option<Vec<(String, String)>>, AwsError>> + Send;
    /// `GetBucketReplication`; `Ok(None)` when the bucket has no replication configuration.
    fn replication_rules(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<Option<ReplicationSetup>, AwsError>> + Send;
    /// `HeadBucket` with `ExpectedBucketOwner`: S3 refuses (403) unless `owner` owns it.
    fn bucket_home(
        &self,
        bucket: &str,
        owner: &str,
    ) -> impl Future<Output = Result<BucketHome, AwsError>> + Send;
    /// `GetBucketEncryption`: the bucket's default encryption.
    fn default_encryption(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<DefaultEncryption, AwsError>> + Send;
}

/// Bucket-level reads for the diagnosis, on one side's credentials.
pub trait SetupReader: Send + Sync {
    /// `GetBucketReplication`.
    fn replication(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<ReplicationSetup, AwsError>> + Send;
    /// `GetBucketVersioning`; `Ok(None)` when versioning was never enabled.
    fn versioning(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;
    /// `GetBucketEncryption`.
    fn encryption(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<DefaultEncryption, AwsError>> + Send;
    /// `GetBucketPolicy`, the policy document as JSON text.
    fn policy(&self, bucket: &str) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// `GetBucketOwnershipControls`: the bucket's Object Ownership (`BucketOwnerEnforced`,
    /// `BucketOwnerPreferred`, `ObjectWriter`). A bucket without ownership controls (made
    /// before `BucketOwnerEnforced` became the default, or whose controls were deleted)
    /// answers 404 `OwnershipControlsNotFoundError`: `ObjectWriter` semantics.
    fn ownership(&self, bucket: &str) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// `GetObjectLockConfiguration`: the default retention, `Ok(None)` when Object Lock is
    /// enabled without one. A bucket without Object Lock answers 404
    /// `ObjectLockConfigurationNotFoundError`.
    fn object_lock(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<Option<DefaultRetention>, AwsError>> + Send;
    /// `kms:GetKeyPolicy` of a key (the `default` policy), as JSON text. Stores without
    /// KMS access answer `Other` (nothing inspected).
    fn key_policy(&self, key_arn: &str) -> impl Future<Output = Result<String, AwsError>> + Send {
        let _ = key_arn;
        async { Err(AwsError::new("GetKeyPolicy", ErrorClass::Other)) }
    }
}
