//! A replication's setup as S3 reports it, reduced to the facts replicanary uses: what
//! [`super::SetupReader`] returns. `s3.rs` fills these from the SDK's types.

/// One replication rule of a source bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSetup {
    pub id: String,
    pub enabled: bool,
    /// V2 rules: higher wins among rules to the same destination (`precedence.rs`); 0 for
    /// a V1 rule, which has none.
    pub priority: i32,
    /// The key prefix the rule's filter (or legacy `Prefix`) selects; empty = everything.
    pub prefix: String,
    /// The tags the filter requires (`Filter.Tag`, or `Filter.And.Tags`), as written.
    pub tags: Vec<(String, String)>,
    /// `Destination.Bucket` as written (an ARN).
    pub destination_bucket: String,
    pub destination_account: Option<String>,
    /// `SourceSelectionCriteria.SseKmsEncryptedObjects.Status == Enabled`.
    pub selects_sse_kms: bool,
    pub replica_kms_key_id: Option<String>,
    pub time_control: bool,
    /// `Destination.AccessControlTranslation` (Owner=Destination) is set.
    pub owner_override: bool,
}

impl RuleSetup {
    /// The destination bucket's name, from its ARN.
    pub fn destination_bucket_name(&self) -> &str {
        self.destination_bucket
            .strip_prefix("arn:aws:s3:::")
            .or_else(|| self.destination_bucket.rsplit_once(":::").map(|(_, b)| b))
            .unwrap_or(&self.destination_bucket)
    }
}

/// A bucket's replication configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicationSetup {
    /// The replication role S3 assumes.
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

/// A bucket's Object Lock default retention (`GetObjectLockConfiguration`): every new
/// version — replicas included — is kept at least this long.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultRetention {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub mode: String,
    pub days: Option<i32>,
    pub years: Option<i32>,
}

impl DefaultRetention {
    /// The retention period, for a cost estimate (a year taken as 365 days; how S3 counts
    /// a year is unverified).
    pub fn period(&self) -> std::time::Duration {
        let n = |v: Option<i32>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
        std::time::Duration::from_secs((n(self.days) + n(self.years) * 365) * 86_400)
    }
}
