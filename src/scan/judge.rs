//! The scan's decision table: what the source's HEAD, the replica's HEAD and (with
//! `--read`) a one-byte read say about one object and one destination. Pure functions;
//! the first class that applies wins, in the order of [`ScanClass`].

use std::time::Duration;

use crate::aws::ObjectHead;
use crate::config::KmsKeyArn;
use crate::model::{ErrorClass, ScanClass};

/// What the source version's replication status says, for every destination at once:
/// a class, or `None` when it says replicated and the replica must be looked at.
pub fn by_source(
    status: Option<&str>,
    age: Option<Duration>,
    timeout: Duration,
) -> Option<ScanClass> {
    match status {
        Some("COMPLETED") => None,
        Some("FAILED") => Some(ScanClass::ReplicationFailed),
        Some("PENDING") if age.is_some_and(|a| a > timeout) => Some(ScanClass::PendingTooLong),
        Some("PENDING") => Some(ScanClass::Pending),
        // No status (written before the rule, or not selected); `REPLICA` (the source is
        // itself a destination) is not a replication of this rule either.
        _ => Some(ScanClass::NotReplicated),
    }
}

/// The replica's class from its HEAD (as the destination role) and, with `--read`, the
/// ranged read (`None`: not read — no `--read`, or an archived replica S3 will not serve).
pub fn by_replica(
    head: Result<&ObjectHead, ErrorClass>,
    read: Option<Result<(), ErrorClass>>,
    expected: Option<&KmsKeyArn>,
) -> ScanClass {
    let head = match head {
        Ok(h) => h,
        Err(ErrorClass::NotFound) => return ScanClass::ReplicaMissing,
        Err(ErrorClass::AccessDenied | ErrorClass::Forbidden) => return ScanClass::Unreadable,
        Err(_) => return ScanClass::Error,
    };
    let sse_kms = head
        .server_side_encryption
        .as_deref()
        .is_some_and(|s| s.starts_with("aws:kms"));
    match read {
        None | Some(Ok(())) | Some(Err(ErrorClass::Archived)) => {}
        // HEAD allowed it: an AccessDenied on the read of an SSE-KMS replica is KMS's.
        Some(Err(ErrorClass::AccessDenied)) if sse_kms => return ScanClass::Undecryptable,
        Some(Err(
            ErrorClass::KmsDisabled | ErrorClass::KmsInvalidState | ErrorClass::KmsNotFound,
        )) => return ScanClass::Undecryptable,
        Some(Err(ErrorClass::AccessDenied | ErrorClass::Forbidden)) => {
            return ScanClass::Unreadable;
        }
        Some(Err(ErrorClass::NotFound)) => return ScanClass::ReplicaMissing,
        Some(Err(_)) => return ScanClass::Error,
    }
    if !sse_kms {
        return ScanClass::NotKmsEncrypted;
    }
    let key_matches = match (expected, head.kms_key_id.as_deref()) {
        (Some(expected), Some(reported)) => expected.matches(reported),
        (Some(_), None) => false,
        (None, _) => true, // no expected key known: the key is not judged
    };
    if key_matches {
        ScanClass::Ok
    } else {
        ScanClass::WrongKmsKey
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPECTED: &str =
        "arn:aws:kms:ap-northeast-1:222222222222:key/1111aaaa-0000-0000-0000-000000000000";
    const OTHER: &str =
        "arn:aws:kms:ap-northeast-1:111111111111:key/2222bbbb-0000-0000-0000-000000000000";

    /// A replica HEAD answer, a read answer, and the class they give.
    type Case<'a> = (
        Result<&'a ObjectHead, ErrorClass>,
        Option<Result<(), ErrorClass>>,
        ScanClass,
    );

    fn kms(key: &str) -> ObjectHead {
        ObjectHead {
            replication_status: Some("REPLICA".into()),
            server_side_encryption: Some("aws:kms".into()),
            kms_key_id: Some(key.into()),
            ..ObjectHead::default()
        }
    }

    #[test]
    fn the_source_status_decides_first() {
        let t = Duration::from_secs(900);
        let young = Some(Duration::from_secs(10));
        let old = Some(Duration::from_secs(901));
        assert_eq!(by_source(None, young, t), Some(ScanClass::NotReplicated));
        assert_eq!(
            by_source(Some("REPLICA"), young, t),
            Some(ScanClass::NotReplicated)
        );
        assert_eq!(
            by_source(Some("FAILED"), young, t),
            Some(ScanClass::ReplicationFailed)
        );
        assert_eq!(
            by_source(Some("PENDING"), young, t),
            Some(ScanClass::Pending)
        );
        assert_eq!(
            by_source(Some("PENDING"), old, t),
            Some(ScanClass::PendingTooLong)
        );
        assert_eq!(
            by_source(Some("PENDING"), None, t),
            Some(ScanClass::Pending)
        );
        assert_eq!(by_source(Some("COMPLETED"), old, t), None);
    }

    #[test]
    fn the_replica_table() {
        let expected = KmsKeyArn::parse(EXPECTED).ok();
        let e = expected.as_ref();
        let good = kms(EXPECTED);
        let wrong = kms(OTHER);
        let sse_s3 = ObjectHead {
            server_side_encryption: Some("AES256".into()),
            ..ObjectHead::default()
        };
        let cases: &[Case<'_>] = &[
            (Err(ErrorClass::NotFound), None, ScanClass::ReplicaMissing),
            (Err(ErrorClass::AccessDenied), None, ScanClass::Unreadable),
            (Err(ErrorClass::Forbidden), None, ScanClass::Unreadable),
            (Err(ErrorClass::Transient), None, ScanClass::Error),
            (Ok(&good), None, ScanClass::Ok),
            (Ok(&good), Some(Ok(())), ScanClass::Ok),
            (Ok(&good), Some(Err(ErrorClass::Archived)), ScanClass::Ok),
            (Ok(&wrong), None, ScanClass::WrongKmsKey),
            (
                Ok(&wrong),
                Some(Err(ErrorClass::AccessDenied)),
                ScanClass::Undecryptable,
            ),
            (
                Ok(&good),
                Some(Err(ErrorClass::KmsDisabled)),
                ScanClass::Undecryptable,
            ),
            (
                Ok(&good),
                Some(Err(ErrorClass::NotFound)),
                ScanClass::ReplicaMissing,
            ),
            (
                Ok(&good),
                Some(Err(ErrorClass::Transient)),
                ScanClass::Error,
            ),
            (Ok(&sse_s3), None, ScanClass::NotKmsEncrypted),
            (
                Ok(&sse_s3),
                Some(Err(ErrorClass::AccessDenied)),
                ScanClass::Unreadable,
            ),
        ];
        for (head, read, class) in cases {
            assert_eq!(by_replica(*head, *read, e), *class, "{head:?} {read:?}");
        }
        assert_eq!(
            by_replica(Ok(&wrong), None, None),
            ScanClass::Ok,
            "no expected key: not judged"
        );
    }
}
