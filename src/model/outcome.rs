//! The verdicts: one per probe and destination, declared in precedence order — the first
//! that applies wins.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// AssumeRole (or the base credential chain) failed for a side.
    CredentialsFailed,
    /// The canary could not be written (not a transient fault), or the source is not versioned.
    SourceWriteFailed,
    /// No replication status appeared: no enabled rule selects the canary.
    NotReplicated,
    /// S3 reported `FAILED` for this destination.
    ReplicationFailed,
    /// Still `PENDING` after `replication_timeout`.
    ReplicationTimeout,
    /// The source says `COMPLETED` but the replica version is not there.
    ReplicaMissing,
    /// S3 itself refuses the destination role the replica (HEAD 403): ownership, a bucket
    /// policy, the probe role's permissions.
    Unreadable,
    /// KMS refuses the destination the replica's key (denied, disabled, pending deletion,
    /// not found).
    Undecryptable,
    /// The replica's bytes differ from the canary's.
    ContentMismatch,
    /// The replica is readable but not SSE-KMS.
    NotKmsEncrypted,
    /// The replica is readable but under another key than expected.
    WrongKmsKey,
    /// A transient fault (throttling, 5xx, network, timeout) prevented a verdict.
    Error,
    /// Replicated, under the expected key, readable, identical.
    Ok,
}

impl Outcome {
    pub const ALL: [Outcome; 13] = [
        Outcome::CredentialsFailed,
        Outcome::SourceWriteFailed,
        Outcome::NotReplicated,
        Outcome::ReplicationFailed,
        Outcome::ReplicationTimeout,
        Outcome::ReplicaMissing,
        Outcome::Unreadable,
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
            Outcome::Unreadable => "unreadable",
            Outcome::Undecryptable => "undecryptable",
            Outcome::ContentMismatch => "content_mismatch",
            Outcome::NotKmsEncrypted => "not_kms_encrypted",
            Outcome::WrongKmsKey => "wrong_kms_key",
            Outcome::Error => "error",
            Outcome::Ok => "ok",
        }
    }

    /// Whether the verdict says something about the replication. `error` does not: a
    /// transient fault concludes nothing, so the previous verdict stands.
    pub fn is_conclusive(self) -> bool {
        self != Outcome::Error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_declaration_order_and_labels_are_snake_case() {
        let mut sorted = Outcome::ALL;
        sorted.sort();
        assert_eq!(sorted, Outcome::ALL);
        for o in Outcome::ALL {
            let json = serde_json::to_string(&o).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", o.as_str()));
        }
    }
}
