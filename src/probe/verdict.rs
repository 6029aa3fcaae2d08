//! The verdicts of SPEC.md §3 and the one event a probe emits per destination.
//!
//! A [`DestinationVerdict`] is the single value that writes the verdict's log line and
//! updates every metric derived from it ([`DestinationVerdict::emit`]), so that logs and
//! metrics never disagree.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::aws::AwsError;
use crate::diagnose::Finding;
use crate::metrics::Metrics;

/// One verdict per probe and destination; declared in precedence order (SPEC.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    CredentialsFailed,
    SourceWriteFailed,
    NotReplicated,
    ReplicationFailed,
    ReplicationTimeout,
    ReplicaMissing,
    Undecryptable,
    ContentMismatch,
    NotKmsEncrypted,
    WrongKmsKey,
    Error,
    Ok,
}

impl Outcome {
    pub const ALL: [Outcome; 12] = [
        Outcome::CredentialsFailed,
        Outcome::SourceWriteFailed,
        Outcome::NotReplicated,
        Outcome::ReplicationFailed,
        Outcome::ReplicationTimeout,
        Outcome::ReplicaMissing,
        Outcome::Undecryptable,
        Outcome::ContentMismatch,
        Outcome::NotKmsEncrypted,
        Outcome::WrongKmsKey,
        Outcome::Error,
        Outcome::Ok,
    ];

    /// The `outcome` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::CredentialsFailed => "credentials_failed",
            Outcome::SourceWriteFailed => "source_write_failed",
            Outcome::NotReplicated => "not_replicated",
            Outcome::ReplicationFailed => "replication_failed",
            Outcome::ReplicationTimeout => "replication_timeout",
            Outcome::ReplicaMissing => "replica_missing",
            Outcome::Undecryptable => "undecryptable",
            Outcome::ContentMismatch => "content_mismatch",
            Outcome::NotKmsEncrypted => "not_kms_encrypted",
            Outcome::WrongKmsKey => "wrong_kms_key",
            Outcome::Error => "error",
            Outcome::Ok => "ok",
        }
    }
}

/// What the probe learned about one destination's replica, for metrics and reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplicaFacts {
    /// `x-amz-server-side-encryption` of the replica, if it was seen.
    pub server_side_encryption: Option<String>,
    /// The replica's KMS key as S3 reported it.
    pub kms_key: Option<String>,
    /// Whether that key is the expected one (`None`: no replica seen).
    pub key_matches: Option<bool>,
    /// Whether the replica's body could be read (`None`: not tried).
    pub readable: Option<bool>,
}

/// The verdict for one destination of one probe.
#[derive(Debug, Clone, Serialize)]
pub struct DestinationVerdict {
    pub replication: String,
    pub destination: String,
    pub outcome: Outcome,
    /// PutObject → first poll that saw `COMPLETED`.
    #[serde(serialize_with = "seconds")]
    pub latency: Option<Duration>,
    pub key: Option<String>,
    pub version_id: Option<String>,
    pub expected_kms_key: String,
    pub replica: ReplicaFacts,
    /// One sentence on why, when the outcome is not `ok`.
    pub reason: Option<String>,
    /// The AWS error behind the verdict, if any.
    #[serde(serialize_with = "aws_error")]
    pub aws_error: Option<AwsError>,
    /// The causes found behind a failed verdict (SPEC.md §7a). `None`: not looked at this
    /// time (`error`), so the previous findings stand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<Finding>>,
    #[serde(skip)]
    pub finished_at: SystemTime,
}

fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

fn aws_error<S: serde::Serializer>(e: &Option<AwsError>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Shown<'a> {
        operation: &'a str,
        http_status: Option<u16>,
        code: Option<&'a str>,
        message: Option<&'a str>,
        request_id: Option<&'a str>,
    }
    match e {
        None => s.serialize_none(),
        Some(e) => Shown {
            operation: e.operation,
            http_status: e.status,
            code: e.code.as_deref(),
            message: e.message.as_deref(),
            request_id: e.request_id.as_deref(),
        }
        .serialize(s),
    }
}

impl DestinationVerdict {
    /// Writes the verdict's log line and updates its metrics: the verdict's one event.
    pub fn emit(&self, metrics: &Metrics) {
        metrics.record_verdict(self);
        let latency_seconds = self.latency.map(|d| d.as_secs_f64());
        let findings = self
            .findings
            .as_ref()
            .map(|f| f.iter().map(|f| f.id).collect::<Vec<_>>().join(","));
        let (code, message, request_id) = match &self.aws_error {
            Some(e) => (
                e.code.as_deref(),
                e.message.as_deref(),
                e.request_id.as_deref(),
            ),
            None => (None, None, None),
        };
        macro_rules! verdict_event {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    replication = %self.replication,
                    destination = %self.destination,
                    outcome = self.outcome.as_str(),
                    latency_seconds,
                    key = self.key.as_deref(),
                    version_id = self.version_id.as_deref(),
                    expected_kms_key = %self.expected_kms_key,
                    replica_kms_key = self.replica.kms_key.as_deref(),
                    reason = self.reason.as_deref(),
                    aws_operation = self.aws_error.as_ref().map(|e| e.operation),
                    aws_error_code = code,
                    aws_error_message = message,
                    aws_request_id = request_id,
                    findings = findings.as_deref().filter(|f| !f.is_empty()),
                    "probe verdict"
                )
            };
        }
        match self.outcome {
            Outcome::Ok => verdict_event!(tracing::Level::INFO),
            _ => verdict_event!(tracing::Level::WARN),
        }
    }

    pub fn finished_unix(&self) -> f64 {
        self.finished_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}
