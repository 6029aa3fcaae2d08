//! The probe's decisions as data: which AWS answer at which stage gives which verdict.
//!
//! [`decide`] is one table, read top to bottom; the stages come in the order of the
//! verdicts' precedence (write → await → inspect → read), so the first verdict a probe
//! meets is the one that applies. The destination's `GetObject` comes first (`Fetch`):
//! a replica it shows goes straight to [`judge`]; anything else is inspected with
//! `HeadObject`, and the `GetObject`'s failure is then judged as the `Read` rows say. [`judge`] weighs a replica that could be inspected.
//! Both are pure; `tests.rs` checks them row by row against the verdicts' definitions.

use crate::model::{ErrorClass, Outcome};

/// A stage of the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// PutObject of the canary, as the source role.
    Write,
    /// HeadObject of the canary's version until its replication status settles, as the
    /// source role.
    Await,
    /// GetObject of the replica (same key, same version id), as the destination role: its
    /// headers and its body at once.
    Fetch(SourceSaid),
    /// HeadObject of the replica, as the destination role, after a GetObject that did not
    /// show it: why not.
    Inspect(SourceSaid),
    /// The GetObject's failure, judged once HeadObject saw the replica.
    Read(SourceSaid),
}

/// The source's replication status when polling ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceSaid {
    Completed,
    /// `FAILED`: with several destinations, some destination failed — maybe not this one.
    Failed,
    /// Still `PENDING` at `replication_timeout`.
    Pending,
}

/// What AWS answered at a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The call gave what the stage needs: a version id, a settled status, a replica, a body.
    Ok,
    /// PutObject succeeded without a version id: the source bucket is not versioned.
    NoVersionId,
    /// The canary's version carries no replication status at all.
    NoStatus,
    /// HeadObject found an object at the canary's version, but not a replica.
    NotAReplica,
    /// HeadObject was refused (403), and listing the key's versions as the destination role
    /// shows the replica's version: S3 refuses a replica that is there.
    RefusedPresent,
    /// HeadObject was refused (403), and listing the key's versions shows no such version:
    /// the replica is missing (a missing object answers 403 without `s3:ListBucket`).
    RefusedAbsent,
    /// The call failed with this class of error.
    Failed(ErrorClass),
}

/// What follows from an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// On to the next stage.
    Next,
    /// The GetObject did not show the replica: a HeadObject tells why (a replica that is not
    /// there, refused by S3 or by KMS, archived, or a fault).
    Inspect,
    /// The replica is in an archive storage class: no read; judge it by its HeadObject.
    SkipRead,
    /// The verdict, with one sentence on why.
    Verdict(Outcome, &'static str),
}

/// The decision table.
pub fn decide(stage: Stage, answer: Answer) -> Decision {
    use Answer::*;
    use Decision::{Inspect as Head, Next, SkipRead, Verdict};
    use ErrorClass as E;
    use Outcome as O;
    use Stage::*;
    match (stage, answer) {
        // 3. fetch the replica: a GetObject that shows a replica has all a verdict needs;
        // whatever else it answers (a fault too), HeadObject tells why, as it always did.
        (Fetch(_), Ok) => Next,
        (Fetch(_), Failed(E::Credentials)) => Verdict(
            O::CredentialsFailed,
            "no credentials for the destination role",
        ),
        (Fetch(_), _) => Head,

        // A transient fault concludes nothing, whatever the stage.
        (_, Failed(E::Transient)) => Verdict(
            O::Error,
            "a transient AWS fault (throttling, 5xx, network, timeout) outlasted the retries",
        ),
        (Write | Await, Failed(E::Credentials)) => {
            Verdict(O::CredentialsFailed, "no credentials for the source role")
        }
        (Inspect(_) | Read(_), Failed(E::Credentials)) => Verdict(
            O::CredentialsFailed,
            "no credentials for the destination role",
        ),

        // 1. write the canary
        (Write, Ok) => Next,
        (Write, NoVersionId) => Verdict(
            O::SourceWriteFailed,
            "the source bucket is not versioned (PutObject returned no version id), so replication cannot work",
        ),
        (Write, _) => Verdict(
            O::SourceWriteFailed,
            "the source role could not write the canary",
        ),

        // 2. await replication
        (Await, Ok) => Next,
        (Await, NoStatus) => Verdict(
            O::NotReplicated,
            "the source object never got a replication status: no enabled rule selects it",
        ),
        (Await, _) => Verdict(O::Error, "could not read the canary's replication status"),

        // 3b. inspect the replica (the GetObject did not show it)
        (Inspect(_), Ok) => Next,
        (Inspect(said), NotAReplica | RefusedAbsent | Failed(E::NotFound)) => missing(said),
        (Inspect(_), RefusedPresent) => Verdict(
            O::Unreadable,
            "S3 refuses the destination role a replica that is there (HeadObject 403, the version is listed; HeadObject never involves KMS)",
        ),
        // Refused, and whether the replica is there cannot be told (the listing was refused too).
        (Inspect(SourceSaid::Completed), Failed(E::AccessDenied | E::Forbidden)) => Verdict(
            O::Unreadable,
            "S3 refuses the destination role the replica (HeadObject 403; HeadObject never involves KMS), and whether it is there cannot be told",
        ),
        // Not COMPLETED: the 403 may be a replica that is not there; the source's own status
        // is the verdict.
        (Inspect(said), Failed(E::AccessDenied | E::Forbidden)) => missing(said),
        (Inspect(_), _) => Verdict(O::Error, "could not inspect the replica"),

        // 4. the GetObject's failure, once HeadObject saw the replica
        (Read(_), Ok) => Next,
        (Read(_), Failed(E::Archived)) => SkipRead,
        (Read(_), Failed(E::AccessDenied)) => Verdict(
            O::Undecryptable,
            "HeadObject saw the replica but GetObject was denied: KMS refuses the destination the replica's key",
        ),
        (Read(_), Failed(E::KmsDisabled)) => {
            Verdict(O::Undecryptable, "the replica's KMS key is disabled")
        }
        (Read(_), Failed(E::KmsInvalidState)) => Verdict(
            O::Undecryptable,
            "the replica's KMS key is in an unusable state (pending deletion or import)",
        ),
        (Read(_), Failed(E::KmsNotFound)) => {
            Verdict(O::Undecryptable, "the replica's KMS key does not exist")
        }
        (Read(_), Failed(E::Forbidden)) => Verdict(
            O::Unreadable,
            "S3 refuses the destination role the replica's body with a 403 that is not KMS's",
        ),
        (Read(said), Failed(E::NotFound)) => missing(said),
        (Read(_), _) => Verdict(O::Error, "could not read the replica"),
    }
}

/// No replica at this destination: the source's status says why.
fn missing(said: SourceSaid) -> Decision {
    match said {
        SourceSaid::Completed => Decision::Verdict(
            Outcome::ReplicaMissing,
            "the source says COMPLETED but the replica version is not in the destination",
        ),
        SourceSaid::Failed => Decision::Verdict(
            Outcome::ReplicationFailed,
            "S3 reported replication FAILED and this destination has no replica",
        ),
        SourceSaid::Pending => Decision::Verdict(
            Outcome::ReplicationTimeout,
            "replication was still PENDING when replication_timeout passed",
        ),
    }
}

/// What the probe saw of a replica it could inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replica {
    /// SSE-KMS (or DSSE-KMS) encrypted.
    pub sse_kms: bool,
    /// Under the expected key (`None`: no expected key is known, nothing to judge).
    pub key_matches: Option<bool>,
    /// The body's SHA-256 is the canary's (`None`: not read, an archived replica).
    pub body_matches: Option<bool>,
}

/// The verdict on a replica that could be inspected (and, unless archived, read).
pub fn judge(r: Replica) -> (Outcome, &'static str) {
    if r.body_matches == Some(false) {
        (
            Outcome::ContentMismatch,
            "the replica's bytes differ from the canary's",
        )
    } else if !r.sse_kms {
        (
            Outcome::NotKmsEncrypted,
            "the replica is not SSE-KMS encrypted",
        )
    } else if r.key_matches == Some(false) {
        (
            Outcome::WrongKmsKey,
            "the replica is encrypted under another KMS key than expected",
        )
    } else {
        (Outcome::Ok, "")
    }
}

#[cfg(test)]
mod tests;
