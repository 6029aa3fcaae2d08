//! The one seam between replicanary and AWS.
//!
//! Everything above this module sees two traits: [`ObjectStore`] (the object operations
//! of a probe and of cleanup) and [`SetupReader`] (the bucket-level reads of diagnosis),
//! both per side (one role, one region). [`s3::S3Store`] implements them with the AWS SDK
//! — the same code runs against AWS and the lab; only the endpoint differs — and the unit
//! tests implement them in memory. Every failure arrives as an [`AwsError`], classified in
//! [`classify`].

pub mod classify;
pub mod clients;
pub mod s3;
pub mod setup;

use std::collections::HashMap;
use std::future::Future;
use std::time::SystemTime;

pub use crate::model::{AwsError, ErrorClass};
pub use setup::{DefaultEncryption, DefaultRetention, ReplicationSetup, RuleSetup};

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

    /// `GetObject` of one version, reading at most `limit` bytes of the body. A longer
    /// body is cut at `limit + 1` bytes, so the caller sees it is too long.
    fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<u8>, AwsError>> + Send;

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
}
