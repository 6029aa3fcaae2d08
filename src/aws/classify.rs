//! Classification of AWS failures: the one place that decides what an answer means.
//!
//! The probe never looks at HTTP statuses or error strings; it asks [`AwsError::class`].
//! The central rule: a transient fault (throttling, 5xx, timeouts, broken connections)
//! is [`ErrorClass::Transient`] and can only ever produce the `error` verdict. Among the
//! 403s only `AccessDenied` (or a bodiless 403, as HEAD answers) may mean that KMS
//! refused; every other 403 code is S3's own refusal ([`ErrorClass::Forbidden`]), and
//! `InvalidObjectState` means an archived object ([`ErrorClass::Archived`]).

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_runtime_api::http::Response as HttpResponse;

use crate::model::{AwsError, ErrorClass};

/// How a request failed, before its answer is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The service answered with an error.
    Service,
    /// No answer within the timeout.
    Timeout,
    /// The request could not be sent or the connection broke.
    Dispatch,
    /// An answer came that could not be read.
    Response,
    /// The request could not be built.
    Construction,
}

/// Error codes that S3, STS and KMS give for load or outages.
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "BandwidthLimitExceeded",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "IDPCommunicationError",
    "PriorRequestNotComplete",
    "KMS.ThrottlingException",
    "KMS.KMSInternalException",
    "KMS.DependencyTimeoutException",
    // The SDK corrects its clock after this and retries; if it persists the probe host's
    // clock is wrong — a fault of the probe, never a verdict about replication.
    "RequestTimeTooSkewed",
];

/// Codes that mean the caller's credentials, not its permissions, are wrong.
const CREDENTIAL_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidToken",
    "SignatureDoesNotMatch",
];

/// The bounded set of codes that may appear as the `code` label; anything else is `other`.
const LABELLED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "NoSuchKey",
    "NoSuchVersion",
    "NoSuchBucket",
    "NotFound",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "InvalidRequest",
    "InvalidArgument",
    "InvalidBucketState",
    "InvalidObjectState",
    "AccountProblem",
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "KMS.DisabledException",
    "KMS.KMSInvalidStateException",
    "KMS.NotFoundException",
    "KMS.ThrottlingException",
    "timeout",
    "connection",
];

/// Classifies a failure from its kind, HTTP status and error code.
pub fn classify(failure: Failure, status: Option<u16>, code: Option<&str>) -> ErrorClass {
    match failure {
        Failure::Timeout | Failure::Dispatch | Failure::Response => return ErrorClass::Transient,
        Failure::Construction => return ErrorClass::Other,
        Failure::Service => {}
    }
    if let Some(code) = code {
        if TRANSIENT_CODES.contains(&code) {
            return ErrorClass::Transient;
        }
        if CREDENTIAL_CODES.contains(&code) {
            return ErrorClass::Credentials;
        }
        match code {
            "KMS.DisabledException" => return ErrorClass::KmsDisabled,
            "KMS.KMSInvalidStateException" => return ErrorClass::KmsInvalidState,
            "KMS.NotFoundException" => return ErrorClass::KmsNotFound,
            "NoSuchKey" | "NoSuchVersion" | "NoSuchBucket" | "NotFound" => {
                return ErrorClass::NotFound;
            }
            "AccessDenied" | "AccessDeniedException" => return ErrorClass::AccessDenied,
            "InvalidObjectState" => return ErrorClass::Archived,
            _ if status == Some(403) => return ErrorClass::Forbidden,
            _ => {}
        }
    }
    match status {
        Some(429) => ErrorClass::Transient,
        Some(s) if s >= 500 => ErrorClass::Transient,
        Some(404) => ErrorClass::NotFound,
        // HeadObject answers carry no body, so no code: a bare 403 is S3's AccessDenied.
        Some(403) => ErrorClass::AccessDenied,
        _ => ErrorClass::Other,
    }
}

/// The `code` label value of a failed call: a known code, else `other` (never `ok`).
pub fn code_label(err: &AwsError) -> &'static str {
    let code = err.code.as_deref().or(match (err.class, err.status) {
        (ErrorClass::NotFound, Some(404)) => Some("NotFound"),
        (ErrorClass::AccessDenied, Some(403)) => Some("AccessDenied"),
        _ => None,
    });
    code.and_then(|c| LABELLED_CODES.iter().find(|k| **k == c).copied())
        .unwrap_or("other")
}

/// Builds an error from the SDK's, classifying it.
pub fn from_sdk<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    if let Some((class, refusal)) = credentials_failure(err) {
        let code = if class == ErrorClass::Transient {
            "connection"
        } else {
            "credentials"
        };
        return AwsError {
            code: Some(code.to_owned()),
            message: Some(error_chain(err)),
            refusal,
            ..AwsError::new(operation, class)
        };
    }
    let (failure, code) = match err {
        SdkError::ServiceError(_) => (Failure::Service, err.code().map(str::to_owned)),
        SdkError::TimeoutError(_) => (Failure::Timeout, Some("timeout".to_owned())),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            (Failure::Timeout, Some("timeout".to_owned()))
        }
        SdkError::DispatchFailure(_) => (Failure::Dispatch, Some("connection".to_owned())),
        SdkError::ResponseError(_) => (Failure::Response, None),
        _ => (Failure::Construction, None),
    };
    let status = err.raw_response().map(|r| r.status().as_u16());
    let message = match failure {
        Failure::Service => err.message().map(str::to_owned),
        _ => Some(error_chain(err)),
    };
    AwsError {
        operation,
        class: classify(failure, status, code.as_deref()),
        code,
        message,
        request_id: err.meta().request_id().map(str::to_owned),
        status,
        refusal: None,
    }
}

/// If `err` failed because credentials could not be had, whether that is transient
/// (STS throttled or unreachable) or a refusal (`credentials_failed`); for a refusal of
/// `AssumeRole`, STS's own message.
fn credentials_failure(err: &(dyn StdError + 'static)) -> Option<(ErrorClass, Option<String>)> {
    let mut cur = Some(err);
    let mut creds: Option<&CredentialsError> = None;
    while let Some(e) = cur {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            creds = Some(c);
            break;
        }
        cur = e.source();
    }
    let creds = creds?;
    if matches!(creds, CredentialsError::ProviderTimedOut(_)) {
        return Some((ErrorClass::Transient, None));
    }
    let mut cur: Option<&(dyn StdError + 'static)> = creds.source();
    while let Some(e) = cur {
        if let Some(sts) = e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
            let inner = from_sdk("AssumeRole", sts);
            return Some(if inner.class == ErrorClass::Transient {
                (ErrorClass::Transient, None)
            } else {
                (ErrorClass::Credentials, inner.message)
            });
        }
        cur = e.source();
    }
    Some((ErrorClass::Credentials, None))
}

/// The whole `source()` chain as one line: the SDK's top-level messages alone are vague.
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_5xx_are_transient() {
        for code in [
            "SlowDown",
            "Throttling",
            "InternalError",
            "ServiceUnavailable",
            "RequestTimeout",
        ] {
            assert_eq!(
                classify(Failure::Service, Some(503), Some(code)),
                ErrorClass::Transient,
                "{code}"
            );
        }
        assert_eq!(
            classify(Failure::Service, Some(500), None),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(Failure::Service, Some(502), Some("Weird")),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(Failure::Service, Some(429), None),
            ErrorClass::Transient
        );
        // A throttling code wins even on a 400.
        assert_eq!(
            classify(Failure::Service, Some(400), Some("ThrottlingException")),
            ErrorClass::Transient
        );
    }

    #[test]
    fn network_failures_are_transient_whatever_the_status() {
        assert_eq!(
            classify(Failure::Timeout, None, None),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(Failure::Dispatch, None, None),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(Failure::Response, Some(200), None),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(Failure::Construction, None, None),
            ErrorClass::Other
        );
    }

    #[test]
    fn kms_codes_are_told_apart() {
        assert_eq!(
            classify(Failure::Service, Some(400), Some("KMS.DisabledException")),
            ErrorClass::KmsDisabled
        );
        assert_eq!(
            classify(
                Failure::Service,
                Some(400),
                Some("KMS.KMSInvalidStateException")
            ),
            ErrorClass::KmsInvalidState
        );
        assert_eq!(
            classify(Failure::Service, Some(400), Some("KMS.NotFoundException")),
            ErrorClass::KmsNotFound
        );
    }

    #[test]
    fn missing_and_denied_with_or_without_a_body() {
        // HeadObject answers have no body: only the status is there.
        assert_eq!(
            classify(Failure::Service, Some(404), None),
            ErrorClass::NotFound
        );
        assert_eq!(
            classify(Failure::Service, Some(403), None),
            ErrorClass::AccessDenied
        );
        assert_eq!(
            classify(Failure::Service, Some(404), Some("NoSuchVersion")),
            ErrorClass::NotFound
        );
        assert_eq!(
            classify(Failure::Service, Some(403), Some("AccessDenied")),
            ErrorClass::AccessDenied
        );
        assert_eq!(
            classify(Failure::Service, Some(403), Some("InvalidAccessKeyId")),
            ErrorClass::Credentials
        );
        assert_eq!(
            classify(Failure::Service, Some(400), Some("ExpiredToken")),
            ErrorClass::Credentials
        );
        assert_eq!(
            classify(Failure::Service, Some(400), Some("InvalidArgument")),
            ErrorClass::Other
        );
    }

    #[test]
    fn only_access_denied_403s_may_be_kms() {
        // S3's own refusals: never read as KMS refusing a key.
        for code in ["AccountProblem", "AllAccessDisabled", "InvalidPayer"] {
            assert_eq!(
                classify(Failure::Service, Some(403), Some(code)),
                ErrorClass::Forbidden,
                "{code}"
            );
        }
        assert_eq!(
            classify(Failure::Service, Some(403), Some("InvalidObjectState")),
            ErrorClass::Archived
        );
        assert_eq!(
            classify(Failure::Service, Some(403), Some("RequestTimeTooSkewed")),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(Failure::Service, Some(403), Some("AccessDenied")),
            ErrorClass::AccessDenied
        );
    }

    #[test]
    fn code_labels_are_bounded() {
        let mut e = AwsError {
            operation: "GetObject",
            class: ErrorClass::Other,
            code: Some("SomethingNew-with-a-request-id-1234".to_owned()),
            message: None,
            request_id: None,
            status: Some(400),
            refusal: None,
        };
        assert_eq!(code_label(&e), "other");
        e.code = Some("KMS.DisabledException".to_owned());
        assert_eq!(code_label(&e), "KMS.DisabledException");
        e.code = None;
        e.class = ErrorClass::NotFound;
        e.status = Some(404);
        assert_eq!(code_label(&e), "NotFound");
    }

    #[test]
    fn a_refused_assume_role_keeps_sts_own_message() {
        use aws_credential_types::provider::error::CredentialsError;
        use aws_sdk_s3::error::ErrorMetadata;
        use aws_sdk_s3::operation::get_object::GetObjectError;
        use aws_sdk_s3::primitives::SdkBody;
        let said = "User: arn:aws:sts::111122223333:assumed-role/base/x is not authorized to perform: sts:AssumeRole";
        let status = 403.try_into().expect("a status");
        let sts: SdkError<AssumeRoleError, HttpResponse> = SdkError::service_error(
            AssumeRoleError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message(said)
                    .build(),
            ),
            HttpResponse::new(status, SdkBody::empty()),
        );
        let s3: SdkError<GetObjectError, HttpResponse> =
            SdkError::construction_failure(CredentialsError::provider_error(sts));
        let e = from_sdk("GetObject", &s3);
        assert_eq!(e.class, ErrorClass::Credentials);
        assert_eq!(e.refusal.as_deref(), Some(said));
        assert!(
            e.message.as_deref().is_some_and(|m| m.contains(said)),
            "{e:?}"
        );

        // The base chain refusing: no STS answer to quote.
        let s3: SdkError<GetObjectError, HttpResponse> =
            SdkError::construction_failure(CredentialsError::not_loaded("no credentials"));
        let e = from_sdk("GetObject", &s3);
        assert_eq!(e.class, ErrorClass::Credentials);
        assert_eq!(e.refusal, None);
    }
}
