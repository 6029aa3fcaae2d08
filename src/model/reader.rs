//! What one reader concluded about one replica: a principal that must be able to read the
//! replicas (a restore role, an analytics role) reading the probe's replica as itself.
//!
//! Reader outcomes never change the destination's own verdict; they ride on it.

use serde::Serialize;

use super::{AwsError, ErrorClass, Finding};

/// The outcome of one reader's read of one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaderOutcome {
    /// The ranged GetObject returned the replica's first byte.
    Ok,
    /// The GET was refused while the HEAD worked: KMS refuses the reader the key (or the
    /// key is disabled, pending deletion, gone).
    Undecryptable,
    /// S3 refuses the reader the replica (the HEAD is refused too).
    Unreadable,
    /// The reader's role could not be assumed.
    CredentialsFailed,
    /// A transient fault: nothing concluded.
    Error,
    /// No replica to read (the destination found none), or an archived one.
    Skipped,
}

impl ReaderOutcome {
    pub const ALL: [ReaderOutcome; 6] = [
        ReaderOutcome::Ok,
        ReaderOutcome::Undecryptable,
        ReaderOutcome::Unreadable,
        ReaderOutcome::CredentialsFailed,
        ReaderOutcome::Error,
        ReaderOutcome::Skipped,
    ];

    /// The `outcome` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReaderOutcome::Ok => "ok",
            ReaderOutcome::Undecryptable => "undecryptable",
            ReaderOutcome::Unreadable => "unreadable",
            ReaderOutcome::CredentialsFailed => "credentials_failed",
            ReaderOutcome::Error => "error",
            ReaderOutcome::Skipped => "skipped",
        }
    }

    /// `replicanary_reader_readable`: 1, 0, or nothing claimed (`skipped`, `error`).
    pub fn readable(self) -> Option<bool> {
        match self {
            ReaderOutcome::Ok => Some(true),
            ReaderOutcome::Undecryptable
            | ReaderOutcome::Unreadable
            | ReaderOutcome::CredentialsFailed => Some(false),
            ReaderOutcome::Error | ReaderOutcome::Skipped => None,
        }
    }

    /// Whether `check` may call this reader fine (`skipped` claims nothing either way).
    pub fn is_failure(self) -> bool {
        !matches!(self, ReaderOutcome::Ok | ReaderOutcome::Skipped)
    }
}

/// One reader's result for one destination's replica.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReaderVerdict {
    /// The `reader` label.
    pub reader: String,
    pub role_arn: String,
    pub outcome: ReaderOutcome,
    /// One sentence on why, when the outcome is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The AWS error behind the outcome, as `operation: code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_error: Option<String>,
    /// The causes found (`reader_kms_not_granted`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The class of the GetObject's failure, if it failed (what the diagnosis looks at).
    #[serde(skip)]
    pub get_error: Option<ErrorClass>,
}

impl ReaderVerdict {
    pub fn new(reader: &str, role_arn: &str, outcome: ReaderOutcome) -> ReaderVerdict {
        ReaderVerdict {
            reader: reader.to_owned(),
            role_arn: role_arn.to_owned(),
            outcome,
            reason: None,
            aws_error: None,
            findings: Vec::new(),
            get_error: None,
        }
    }

    pub fn with_reason(mut self, reason: &str) -> ReaderVerdict {
        self.reason = Some(reason.to_owned());
        self
    }

    pub fn with_error(mut self, e: Option<&AwsError>) -> ReaderVerdict {
        self.aws_error = e.map(|e| match &e.code {
            Some(c) => format!("{}: {c}", e.operation),
            None => e.to_string(),
        });
        self
    }
}
