//! The verdict for one destination of one probe: the single value from which the log
//! line, the metrics, the reports and the status page are all made.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::{AwsError, Finding, Outcome, ReaderVerdict};

/// What the probe learned about one destination's replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplicaFacts {
    /// `x-amz-server-side-encryption` of the replica, if it was seen.
    pub server_side_encryption: Option<String>,
    /// The replica's KMS key as S3 reported it.
    pub kms_key: Option<String>,
    /// Whether that key is the expected one (`None`: no replica seen, or nothing expected).
    pub key_matches: Option<bool>,
    /// Whether the replica's body could be read (`None`: not tried).
    pub readable: Option<bool>,
    /// The replica's storage class, when S3 reported one.
    pub storage_class: Option<String>,
    /// The read was skipped: the replica is in an archive storage class and cannot be read
    /// without a restore, so the verdict rests on its HeadObject.
    pub read_skipped: bool,
    /// After a HeadObject refused with 403: whether listing the key's versions as the
    /// destination role showed the replica's version (`Some(true)`: S3 refuses a replica
    /// that is there; `Some(false)`: it is missing). `None`: not listed, or the listing was
    /// refused too, so existence is unknown.
    pub listed: Option<bool>,
    /// The replica's Object Lock retain-until date (`x-amz-object-lock-retain-until-date`):
    /// it cannot be deleted before then.
    #[serde(serialize_with = "rfc3339")]
    pub retain_until: Option<SystemTime>,
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
    /// The canary's key and version id.
    pub key: Option<String>,
    pub version_id: Option<String>,
    pub expected_kms_key: String,
    pub replica: ReplicaFacts,
    /// One sentence on why, when the outcome is not `ok`.
    pub reason: Option<String>,
    /// The AWS error behind the verdict, if any.
    #[serde(serialize_with = "aws_error")]
    pub aws_error: Option<AwsError>,
    /// The causes found behind the verdict. `None`: not looked at this time (`error`), so
    /// the previous findings stand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<Finding>>,
    /// What each of the destination's readers concluded about this replica (empty: no
    /// readers configured). Never part of the destination's own outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub readers: Vec<ReaderVerdict>,
    #[serde(skip)]
    pub finished_at: SystemTime,
}

impl DestinationVerdict {
    /// A bare verdict; the `with_*` methods add what is known.
    pub fn new(replication: &str, destination: &str, outcome: Outcome) -> DestinationVerdict {
        DestinationVerdict {
            replication: replication.to_owned(),
            destination: destination.to_owned(),
            outcome,
            latency: None,
            key: None,
            version_id: None,
            expected_kms_key: String::new(),
            replica: ReplicaFacts::default(),
            reason: None,
            aws_error: None,
            findings: None,
            readers: Vec::new(),
            finished_at: SystemTime::now(),
        }
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> DestinationVerdict {
        let reason = reason.into();
        self.reason = (!reason.is_empty()).then_some(reason);
        self
    }

    pub fn with_error(mut self, error: Option<AwsError>) -> DestinationVerdict {
        self.aws_error = error;
        self
    }

    pub fn with_replica(mut self, replica: ReplicaFacts) -> DestinationVerdict {
        self.replica = replica;
        self
    }

    /// Unix time of the verdict, in seconds.
    pub fn finished_unix(&self) -> f64 {
        self.finished_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}

fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

fn rfc3339<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string()),
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
