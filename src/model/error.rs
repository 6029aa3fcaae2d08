//! A failed AWS call, already classified: what the probe may conclude from it.
//!
//! The classification itself (HTTP status, error code, SDK failure kind → class) is made
//! in one place, `aws/classify.rs`; everything above only asks [`AwsError::class`].

use std::fmt;

/// What a failure means for the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Throttling, 5xx, timeouts, connection errors, clock skew: retry later, never a
    /// replication verdict.
    Transient,
    /// AssumeRole or the base credential chain refused to give credentials.
    Credentials,
    /// `403 AccessDenied` (or a 403 without a body, as HEAD answers). On a GetObject of an
    /// SSE-KMS object that HeadObject could see, this is KMS refusing the decrypt.
    AccessDenied,
    /// Any other 403 code (`AccountProblem`, `AllAccessDisabled`, …): S3 refuses, KMS is
    /// not involved.
    Forbidden,
    /// 404: no such bucket, key or version.
    NotFound,
    /// `InvalidObjectState`: the object is in an archive storage class and must be
    /// restored before it can be read.
    Archived,
    /// `KMS.DisabledException`: the object's key is disabled.
    KmsDisabled,
    /// `KMS.KMSInvalidStateException`: the key is pending deletion or import.
    KmsInvalidState,
    /// `KMS.NotFoundException`: the key does not exist.
    KmsNotFound,
    /// Anything else.
    Other,
}

/// One failed AWS call, classified, with what an operator needs to look it up.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    /// The API name (`HeadObject`, `AssumeRole`, …).
    pub operation: &'static str,
    pub class: ErrorClass,
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
    pub status: Option<u16>,
    /// A [`ErrorClass::Credentials`] failure because STS refused `AssumeRole`: STS's own
    /// message (`User: … is not authorized to perform: sts:AssumeRole …`), without the
    /// SDK's layers of wrapping that `message` carries.
    pub refusal: Option<String>,
}

impl AwsError {
    /// An error of `class` with nothing else known (tests, synthesized failures).
    pub fn new(operation: &'static str, class: ErrorClass) -> AwsError {
        AwsError {
            operation,
            class,
            code: None,
            message: None,
            request_id: None,
            status: None,
            refusal: None,
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.operation)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        if let Some(c) = &self.code {
            write!(f, ": {c}")?;
        }
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}
