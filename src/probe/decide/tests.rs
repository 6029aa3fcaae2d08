//! The decision table, row by row, as the verdicts are defined (README "Verdicts"):
//! (stage, what AWS answered) → verdict. One screen to check against the definitions.

use super::*;
use Answer::*;
use ErrorClass as E;
use Outcome as O;
use SourceSaid::{Completed, Failed as SrcFailed, Pending};
use Stage::*;

/// `None`: no verdict yet, the probe goes on (`Next`); `Some(o)`: verdict `o`.
const ROWS: &[(Stage, Answer, Option<Outcome>)] = &[
    // credentials_failed: AssumeRole (or the base chain) failed for a side
    (Write, Failed(E::Credentials), Some(O::CredentialsFailed)),
    (Await, Failed(E::Credentials), Some(O::CredentialsFailed)),
    (
        Inspect(Completed),
        Failed(E::Credentials),
        Some(O::CredentialsFailed),
    ),
    (
        Read(Completed),
        Failed(E::Credentials),
        Some(O::CredentialsFailed),
    ),
    // source_write_failed: the canary could not be written (not transient), or no versioning
    (Write, Failed(E::AccessDenied), Some(O::SourceWriteFailed)),
    (Write, Failed(E::KmsDisabled), Some(O::SourceWriteFailed)),
    (Write, Failed(E::Other), Some(O::SourceWriteFailed)),
    (Write, NoVersionId, Some(O::SourceWriteFailed)),
    (Write, Ok, None),
    // not_replicated: no replication status appeared
    (Await, NoStatus, Some(O::NotReplicated)),
    (Await, Ok, None),
    // replication_failed / replication_timeout / replica_missing: no replica, by source status
    (
        Inspect(SrcFailed),
        Failed(E::NotFound),
        Some(O::ReplicationFailed),
    ),
    (
        Inspect(Pending),
        Failed(E::NotFound),
        Some(O::ReplicationTimeout),
    ),
    (
        Inspect(Completed),
        Failed(E::NotFound),
        Some(O::ReplicaMissing),
    ),
    (Inspect(Completed), NotAReplica, Some(O::ReplicaMissing)),
    // ...a HEAD 403 whose listing shows no such version: missing, seen without s3:ListBucket
    (Inspect(Completed), RefusedAbsent, Some(O::ReplicaMissing)),
    (
        Inspect(SrcFailed),
        RefusedAbsent,
        Some(O::ReplicationFailed),
    ),
    (Inspect(Pending), RefusedAbsent, Some(O::ReplicationTimeout)),
    (
        Read(Completed),
        Failed(E::NotFound),
        Some(O::ReplicaMissing),
    ),
    // ...a 403 while the source did not say COMPLETED may be a replica not there yet
    (
        Inspect(SrcFailed),
        Failed(E::AccessDenied),
        Some(O::ReplicationFailed),
    ),
    (
        Inspect(Pending),
        Failed(E::AccessDenied),
        Some(O::ReplicationTimeout),
    ),
    // unreadable: S3 refuses the destination role the replica (HEAD 403): one that is
    // listed, whatever the source says; or, after COMPLETED, one whose existence is unknown
    (Inspect(Completed), RefusedPresent, Some(O::Unreadable)),
    (Inspect(SrcFailed), RefusedPresent, Some(O::Unreadable)),
    (Inspect(Pending), RefusedPresent, Some(O::Unreadable)),
    (
        Inspect(Completed),
        Failed(E::AccessDenied),
        Some(O::Unreadable),
    ),
    (
        Inspect(Completed),
        Failed(E::Forbidden),
        Some(O::Unreadable),
    ),
    (Read(Completed), Failed(E::Forbidden), Some(O::Unreadable)),
    (Inspect(Completed), Ok, None),
    (Inspect(SrcFailed), Ok, None),
    // undecryptable: KMS refuses (GET denied after a HEAD that worked; KMS.* codes)
    (
        Read(Completed),
        Failed(E::AccessDenied),
        Some(O::Undecryptable),
    ),
    (
        Read(SrcFailed),
        Failed(E::AccessDenied),
        Some(O::Undecryptable),
    ),
    (
        Read(Completed),
        Failed(E::KmsDisabled),
        Some(O::Undecryptable),
    ),
    (
        Read(Completed),
        Failed(E::KmsInvalidState),
        Some(O::Undecryptable),
    ),
    (
        Read(Completed),
        Failed(E::KmsNotFound),
        Some(O::Undecryptable),
    ),
    (Read(Completed), Ok, None),
    // error: a transient fault, at any stage, never a replication verdict
    (Write, Failed(E::Transient), Some(O::Error)),
    (Await, Failed(E::Transient), Some(O::Error)),
    (Await, Failed(E::AccessDenied), Some(O::Error)),
    (Inspect(Completed), Failed(E::Transient), Some(O::Error)),
    (Inspect(Completed), Failed(E::Other), Some(O::Error)),
    (Read(Completed), Failed(E::Transient), Some(O::Error)),
    (Read(Completed), Failed(E::Other), Some(O::Error)),
];

#[test]
fn every_row_of_the_table() {
    for (stage, answer, expected) in ROWS {
        let got = match decide(*stage, *answer) {
            Decision::Next => None,
            Decision::Verdict(o, reason) => {
                assert!(
                    !reason.is_empty(),
                    "{stage:?} {answer:?}: a verdict says why"
                );
                Some(o)
            }
            Decision::SkipRead => panic!("{stage:?} {answer:?}: unexpected SkipRead"),
            Decision::Inspect => panic!("{stage:?} {answer:?}: unexpected Inspect"),
        };
        assert_eq!(got, *expected, "{stage:?} {answer:?}");
    }
}

/// The GetObject that comes first: a replica it shows goes on to be judged; anything
/// else (a refusal, a missing or archived replica, a fault) is looked at with HeadObject,
/// so that the HeadObject-first rows above still decide. Missing credentials end it.
#[test]
fn a_get_that_shows_no_replica_is_inspected() {
    let classes = [
        E::Transient,
        E::AccessDenied,
        E::Forbidden,
        E::NotFound,
        E::Archived,
        E::KmsDisabled,
        E::KmsInvalidState,
        E::KmsNotFound,
        E::Other,
    ];
    for said in [Completed, SrcFailed, Pending] {
        assert_eq!(decide(Fetch(said), Ok), Decision::Next, "{said:?}");
        assert_eq!(
            decide(Fetch(said), NotAReplica),
            Decision::Inspect,
            "{said:?}"
        );
        for class in classes {
            assert_eq!(
                decide(Fetch(said), Failed(class)),
                Decision::Inspect,
                "{said:?} {class:?}"
            );
        }
        assert!(matches!(
            decide(Fetch(said), Failed(E::Credentials)),
            Decision::Verdict(O::CredentialsFailed, _)
        ));
    }
}

#[test]
fn an_archived_replica_is_not_read_but_judged() {
    for said in [Completed, SrcFailed, Pending] {
        assert_eq!(decide(Read(said), Failed(E::Archived)), Decision::SkipRead);
    }
}

#[test]
fn no_403_but_access_denied_on_a_read_is_blamed_on_kms() {
    let classes = [
        E::Transient,
        E::Credentials,
        E::AccessDenied,
        E::Forbidden,
        E::NotFound,
        E::Archived,
        E::KmsDisabled,
        E::KmsInvalidState,
        E::KmsNotFound,
        E::Other,
    ];
    for class in classes {
        for stage in [
            Write,
            Await,
            Fetch(Completed),
            Inspect(Completed),
            Inspect(SrcFailed),
            Read(Completed),
        ] {
            let kms = matches!(
                decide(stage, Failed(class)),
                Decision::Verdict(O::Undecryptable, _)
            );
            let may_be_kms = matches!(stage, Read(_))
                && matches!(
                    class,
                    E::AccessDenied | E::KmsDisabled | E::KmsInvalidState | E::KmsNotFound
                );
            assert_eq!(kms, may_be_kms, "{stage:?} {class:?}");
        }
    }
}

#[test]
fn judging_a_replica_follows_the_precedence() {
    let r = |sse_kms, key_matches, body_matches| Replica {
        sse_kms,
        key_matches,
        body_matches,
    };
    let cases = [
        (r(true, Some(true), Some(true)), O::Ok),
        (r(true, Some(true), None), O::Ok), // archived, judged by its HEAD
        (r(true, Some(false), None), O::WrongKmsKey), // the seed's wrong key in DEEP_ARCHIVE
        (r(true, Some(false), Some(true)), O::WrongKmsKey),
        (r(true, None, Some(true)), O::Ok), // no expected key: the key is not judged
        (r(false, Some(false), Some(true)), O::NotKmsEncrypted),
        (r(false, Some(false), Some(false)), O::ContentMismatch),
        (r(true, Some(true), Some(false)), O::ContentMismatch),
    ];
    for (replica, expected) in cases {
        assert_eq!(judge(replica).0, expected, "{replica:?}");
    }
}
