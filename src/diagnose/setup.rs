//! What replicanary can read of a replication's setup with the probe roles, reduced to
//! the facts the diagnosis needs. `aws/s3.rs` fills these from the SDK's types.

use crate::aws::{AwsError, ErrorClass};

/// One replication rule of the source bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSetup {
    pub id: String,
    pub enabled: bool,
    /// V2 rules: higher wins among rules to the same destination.
    pub priority: i32,
    /// The key prefix the rule's filter (or legacy `Prefix`) selects; empty = everything.
    pub prefix: String,
    /// The filter also requires tags (canaries carry none).
    pub needs_tags: bool,
    /// `Destination.Bucket` as written (an ARN).
    pub destination_bucket: String,
    pub destination_account: Option<String>,
    /// `SourceSelectionCriteria.SseKmsEncryptedObjects.Status == Enabled`.
    pub selects_sse_kms: bool,
    pub replica_kms_key_id: Option<String>,
    pub time_control: bool,
    pub owner_override: bool,
}

impl RuleSetup {
    /// Whether the rule's filter selects a key beginning with `key_prefix`.
    pub fn selects_prefix(&self, key_prefix: &str) -> bool {
        !self.needs_tags && key_prefix.starts_with(&self.prefix)
    }

    pub fn destination_bucket_name(&self) -> &str {
        self.destination_bucket
            .strip_prefix("arn:aws:s3:::")
            .or_else(|| self.destination_bucket.rsplit_once(":::").map(|(_, b)| b))
            .unwrap_or(&self.destination_bucket)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicationSetup {
    pub role: String,
    pub rules: Vec<RuleSetup>,
}

/// A bucket's default encryption.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultEncryption {
    /// `AES256`, `aws:kms`, `aws:kms:dsse`.
    pub algorithm: String,
    pub kms_key_id: Option<String>,
}

/// The answer to one read: the value (`None`: the bucket has none), or why it is unknown.
pub type Read<T> = Result<Option<T>, Unknown>;

/// Why a piece of setup is unknown.
#[derive(Debug, Clone, PartialEq)]
pub enum Unknown {
    /// The probe role may not read it: a `cannot_inspect:<operation>` finding.
    Denied(&'static str),
    /// A transient or unexpected failure: no finding, try again next time.
    Failed(&'static str),
}

impl Unknown {
    pub fn from_error(e: &AwsError) -> Unknown {
        match e.class {
            ErrorClass::AccessDenied => Unknown::Denied(e.operation),
            _ => Unknown::Failed(e.operation),
        }
    }
}

/// A read whose "not found" means "the bucket has none".
pub fn absent_is_none<T>(r: Result<T, AwsError>) -> Read<T> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(Unknown::from_error(&e)),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceSetup {
    pub replication: Read<ReplicationSetup>,
    /// `Enabled` or `Suspended`; `None`: versioning never enabled.
    pub versioning: Read<String>,
    pub encryption: Read<DefaultEncryption>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestinationSetup {
    pub versioning: Read<String>,
    pub encryption: Read<DefaultEncryption>,
    pub policy: Read<String>,
}

/// Bucket-level reads for the diagnosis, on one side's credentials.
pub trait SetupReader: Send + Sync {
    fn replication(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<ReplicationSetup, AwsError>> + Send;
    /// The versioning status; `Ok(None)` when versioning was never enabled.
    fn versioning(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;
    fn encryption(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<DefaultEncryption, AwsError>> + Send;
    fn policy(&self, bucket: &str) -> impl Future<Output = Result<String, AwsError>> + Send;
}

pub async fn read_source<R: SetupReader>(r: &R, bucket: &str) -> SourceSetup {
    let (replication, versioning, encryption) = tokio::join!(
        r.replication(bucket),
        r.versioning(bucket),
        r.encryption(bucket)
    );
    SourceSetup {
        replication: absent_is_none(replication),
        versioning: absent_is_none(versioning).map(Option::flatten),
        encryption: absent_is_none(encryption),
    }
}

pub async fn read_destination<R: SetupReader>(r: &R, bucket: &str) -> DestinationSetup {
    let (versioning, encryption, policy) =
        tokio::join!(r.versioning(bucket), r.encryption(bucket), r.policy(bucket));
    DestinationSetup {
        versioning: absent_is_none(versioning).map(Option::flatten),
        encryption: absent_is_none(encryption),
        policy: absent_is_none(policy),
    }
}
