//! What a scan concludes about one real object and one destination: its class.
//!
//! The classes, in the order they are tried (the first that applies wins), are the
//! contract of `replicanary scan` and of the `class` label of `replicanary_scan_objects`.

/// One object's class for one destination, in precedence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScanClass {
    /// The source version has no replication status: written before the rule, or not selected.
    NotReplicated,
    /// The source version's status is `FAILED`.
    ReplicationFailed,
    /// `PENDING`, younger than the replication timeout.
    Pending,
    /// `PENDING` for longer than the replication timeout.
    PendingTooLong,
    /// The status says replicated, and the destination has no replica of that version.
    ReplicaMissing,
    /// S3 refuses the destination role the replica.
    Unreadable,
    /// KMS refuses the destination role the replica (a ranged read, with `--read`).
    Undecryptable,
    /// The replica is not SSE-KMS.
    NotKmsEncrypted,
    /// The replica is under another key than expected.
    WrongKmsKey,
    /// Replicated under the expected key (and readable, with `--read`).
    Ok,
    /// A transient fault prevented a judgement after retries.
    Error,
}

impl ScanClass {
    pub const ALL: [ScanClass; 11] = [
        ScanClass::NotReplicated,
        ScanClass::ReplicationFailed,
        ScanClass::Pending,
        ScanClass::PendingTooLong,
        ScanClass::ReplicaMissing,
        ScanClass::Unreadable,
        ScanClass::Undecryptable,
        ScanClass::NotKmsEncrypted,
        ScanClass::WrongKmsKey,
        ScanClass::Ok,
        ScanClass::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScanClass::NotReplicated => "not_replicated",
            ScanClass::ReplicationFailed => "replication_failed",
            ScanClass::Pending => "pending",
            ScanClass::PendingTooLong => "pending_too_long",
            ScanClass::ReplicaMissing => "replica_missing",
            ScanClass::Unreadable => "unreadable",
            ScanClass::Undecryptable => "undecryptable",
            ScanClass::NotKmsEncrypted => "not_kms_encrypted",
            ScanClass::WrongKmsKey => "wrong_kms_key",
            ScanClass::Ok => "ok",
            ScanClass::Error => "error",
        }
    }

    /// Its position in [`ScanClass::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether an object of this class makes the scan fail (exit 1): anything but `ok`
    /// and `pending`.
    pub fn is_failing(self) -> bool {
        !matches!(self, ScanClass::Ok | ScanClass::Pending)
    }

    /// Whether re-replicating the source version (an S3 Batch Replication job) fixes it.
    pub fn in_manifest(self) -> bool {
        matches!(
            self,
            ScanClass::NotReplicated
                | ScanClass::ReplicationFailed
                | ScanClass::ReplicaMissing
                | ScanClass::WrongKmsKey
                | ScanClass::Undecryptable
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order_and_names_are_unique() {
        for (i, c) in ScanClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        let mut names: Vec<&str> = ScanClass::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ScanClass::ALL.len());
    }

    #[test]
    fn only_ok_and_pending_pass() {
        let passing: Vec<_> = ScanClass::ALL
            .into_iter()
            .filter(|c| !c.is_failing())
            .collect();
        assert_eq!(passing, [ScanClass::Pending, ScanClass::Ok]);
    }
}
