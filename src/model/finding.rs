//! Findings: the named causes behind a verdict, and the one table that says what each is.
//!
//! A [`FindingId`] is an enum, so a finding that is not in the table cannot be written.
//! [`FINDINGS`] holds, for each, its label value (`replicanary_finding{finding=…}`, the log
//! line's `findings=`, the reports and the status page), its severity, what it means in a
//! line, and — derived from the label — its section of docs/runbook.md. A [`Finding`] is
//! one occurrence: the id with an explanation and a fix that name the buckets, keys and
//! roles involved.

use serde::{Serialize, Serializer};

/// One occurrence of a finding, as diagnosis produced it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Which finding: serialized (and labelled) as its table label.
    pub id: FindingId,
    pub explanation: String,
    pub fix: String,
}

/// How bad a finding is: the severity of the alert that brings it to a person
/// (`deploy/prometheus/replicanary.rules.yml`), or, for a finding no alert keys on, of the
/// verdict alerts it explains (a broken replication: critical) — `info` for notes that
/// break nothing (a part of the setup not read, canaries kept by Object Lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// The alert rules' `severity` label value.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "no output shows it (outputs stay as they are); the check against the alert rules and the runbook reads it"
        )
    )]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Every finding replicanary names. The order is the table's ([`FINDINGS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingId {
    SourceNotVersioned,
    DestinationNotVersioned,
    SourceNotSseKms,
    NoReplicationConfiguration,
    RuleDestinationMismatch,
    RuleDisabled,
    RuleFilterExcludesCanaries,
    RuleShadowed,
    RuleSkipsSseKms,
    ReplicaKmsKeyMissing,
    ReplicaKmsKeyOtherAccount,
    ReplicaKmsKeyOtherRegion,
    ReplicaKmsKeyNotExpected,
    DestinationDefaultKeyNotExpected,
    DestinationPolicyMissingReplicationRole,
    ReplicationTimeControlDisabled,
    ReplicaKmsDenied,
    ReplicaOwnedBySourceAccount,
    ProbeRoleCannotReadReplica,
    ProbeRoleCannotListBucket,
    ProbeRoleKmsDenied,
    CanariesRetainedByObjectLock,
    KmsKeyDisabled,
    KmsKeyPendingDeletion,
    KmsKeyNotFound,
    ExpectedKmsKeyUnknown,
    CannotInspectGetBucketReplication,
    CannotInspectGetBucketVersioning,
    CannotInspectGetBucketEncryption,
    CannotInspectGetBucketPolicy,
    CannotInspectGetBucketOwnershipControls,
    CannotInspectGetObjectLockConfiguration,
    ReaderKmsNotGranted,
    ReaderS3Denied,
    ReaderCannotBeAssumed,
    CannotInspectGetKeyPolicy,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FindingSpec {
    pub id: FindingId,
    /// The label value: bounded snake_case (`cannot_inspect:<S3 or KMS operation>`).
    pub label: &'static str,
    pub severity: Severity,
    /// What the finding means, in a line (an occurrence's explanation names the details).
    pub meaning: &'static str,
}

const fn row(
    id: FindingId,
    label: &'static str,
    severity: Severity,
    meaning: &'static str,
) -> FindingSpec {
    FindingSpec {
        id,
        label,
        severity,
        meaning,
    }
}

use FindingId as F;
use Severity::{Critical, Info, Warning};

/// The table: one row per [`FindingId`], in its order (checked when compiling).
#[rustfmt::skip]
pub const FINDINGS: &[FindingSpec] = &[
    row(F::SourceNotVersioned, "source_not_versioned", Critical, "the source bucket is not versioned"),
    row(F::DestinationNotVersioned, "destination_not_versioned", Critical, "the destination bucket is not versioned"),
    row(F::SourceNotSseKms, "source_not_sse_kms", Critical, "canaries are not SSE-KMS at the source"),
    row(F::NoReplicationConfiguration, "no_replication_configuration", Critical, "the source bucket has no replication configuration"),
    row(F::RuleDestinationMismatch, "rule_destination_mismatch", Critical, "no rule replicates to the destination, or its account differs"),
    row(F::RuleDisabled, "rule_disabled", Critical, "the rule to the destination is disabled"),
    row(F::RuleFilterExcludesCanaries, "rule_filter_excludes_canaries", Critical, "the rule's filter does not select the canaries"),
    row(F::RuleShadowed, "rule_shadowed", Critical, "a rule of higher priority wins over the correct one"),
    row(F::RuleSkipsSseKms, "rule_skips_sse_kms", Critical, "the rule does not select SSE-KMS objects"),
    row(F::ReplicaKmsKeyMissing, "replica_kms_key_missing", Critical, "the rule names no ReplicaKmsKeyID"),
    row(F::ReplicaKmsKeyOtherAccount, "replica_kms_key_other_account", Critical, "the rule's replica key belongs to another account"),
    row(F::ReplicaKmsKeyOtherRegion, "replica_kms_key_other_region", Critical, "the rule's replica key is in another region"),
    row(F::ReplicaKmsKeyNotExpected, "replica_kms_key_not_expected", Critical, "the rule's replica key is not the expected key"),
    row(F::DestinationDefaultKeyNotExpected, "destination_default_key_not_expected", Critical, "the destination's default encryption is not the expected key"),
    row(F::DestinationPolicyMissingReplicationRole, "destination_policy_missing_replication_role", Critical, "the destination bucket policy does not let the replication role in"),
    row(F::ReplicationTimeControlDisabled, "replication_time_control_disabled", Warning, "the rule has no Replication Time Control"),
    row(F::ReplicaKmsDenied, "replica_kms_denied", Critical, "KMS refuses the destination the replica's key"),
    row(F::ReplicaOwnedBySourceAccount, "replica_owned_by_source_account", Critical, "replicas stay owned by the source account"),
    row(F::ProbeRoleCannotReadReplica, "probe_role_cannot_read_replica", Warning, "replicanary's destination probe role may not read the replica"),
    row(F::ProbeRoleCannotListBucket, "probe_role_cannot_list_bucket", Warning, "replicanary's destination probe role may not list the key's versions"),
    row(F::ProbeRoleKmsDenied, "probe_role_kms_denied", Warning, "replicanary's destination probe role may not decrypt with the expected key"),
    row(F::CanariesRetainedByObjectLock, "canaries_retained_by_object_lock", Info, "Object Lock keeps every canary replica for its retention"),
    row(F::KmsKeyDisabled, "kms_key_disabled", Critical, "the replica's key is disabled"),
    row(F::KmsKeyPendingDeletion, "kms_key_pending_deletion", Critical, "the replica's key is pending deletion"),
    row(F::KmsKeyNotFound, "kms_key_not_found", Critical, "the replica's key does not exist"),
    row(F::ExpectedKmsKeyUnknown, "expected_kms_key_unknown", Info, "no key is expected of the replicas, so their key is not judged"),
    row(F::CannotInspectGetBucketReplication, "cannot_inspect:GetBucketReplication", Info, "the source probe role may not read the replication configuration"),
    row(F::CannotInspectGetBucketVersioning, "cannot_inspect:GetBucketVersioning", Info, "a probe role may not read the bucket's versioning"),
    row(F::CannotInspectGetBucketEncryption, "cannot_inspect:GetBucketEncryption", Info, "a probe role may not read the bucket's default encryption"),
    row(F::CannotInspectGetBucketPolicy, "cannot_inspect:GetBucketPolicy", Info, "the destination probe role may not read the bucket policy"),
    row(F::CannotInspectGetBucketOwnershipControls, "cannot_inspect:GetBucketOwnershipControls", Info, "the destination probe role may not read Object Ownership"),
    row(F::CannotInspectGetObjectLockConfiguration, "cannot_inspect:GetObjectLockConfiguration", Info, "the destination probe role may not read the Object Lock configuration"),
    row(F::ReaderKmsNotGranted, "reader_kms_not_granted", Critical, "the key policy does not allow the reader kms:Decrypt"),
    row(F::ReaderS3Denied, "reader_s3_denied", Critical, "S3 refuses the reader the replica"),
    row(F::ReaderCannotBeAssumed, "reader_cannot_be_assumed", Warning, "replicanary cannot assume the reader's role"),
    row(F::CannotInspectGetKeyPolicy, "cannot_inspect:GetKeyPolicy", Info, "the destination probe role may not read the key policy"),
];

// The table has one row per id, in the enum's order: `spec` can index it.
const _: () = {
    assert!(FINDINGS.len() == FindingId::CannotInspectGetKeyPolicy as usize + 1);
    let mut i = 0;
    while i < FINDINGS.len() {
        assert!(FINDINGS[i].id as usize == i);
        i += 1;
    }
};

impl FindingId {
    /// Every id, in the table's order.
    pub fn all() -> impl Iterator<Item = FindingId> {
        FINDINGS.iter().map(|s| s.id)
    }

    /// Its row of [`FINDINGS`].
    pub fn spec(self) -> &'static FindingSpec {
        &FINDINGS[self as usize]
    }

    /// The label value (`replicanary_finding{finding=…}`, reports, the log line, the page).
    pub fn as_str(self) -> &'static str {
        self.spec().label
    }

    /// Its row's severity.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "no output shows it (outputs stay as they are); the check against the alert rules and the runbook reads it"
        )
    )]
    pub fn severity(self) -> Severity {
        self.spec().severity
    }

    /// Its section of docs/runbook.md (`### Finding `<label>``), as GitHub names the
    /// anchor and the alert rules link to it: lower case, `:` dropped.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "no output shows it (outputs stay as they are); the check against the alert rules and the runbook reads it"
        )
    )]
    pub fn runbook_anchor(self) -> String {
        format!("finding-{}", self.as_str().to_lowercase().replace(':', ""))
    }

    /// A `cannot_inspect:*` finding: a part of the setup a probe role may not read.
    pub fn is_cannot_inspect(self) -> bool {
        self.as_str().starts_with("cannot_inspect:")
    }

    /// `cannot_inspect:<operation>` for a setup read the probe role was refused; `None` for
    /// an operation diagnosis does not read.
    pub fn cannot_inspect(operation: &str) -> Option<FindingId> {
        FindingId::all().find(|id| id.as_str().strip_prefix("cannot_inspect:") == Some(operation))
    }
}

impl std::fmt::Display for FindingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FindingId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Tests compare ids with their labels.
impl PartialEq<&str> for FindingId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_bounded_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for id in FindingId::all() {
            let label = id.as_str();
            assert!(seen.insert(label), "{label} twice");
            let name = label.strip_prefix("cannot_inspect:").unwrap_or(label);
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{label}"
            );
            assert!(!id.spec().meaning.is_empty() && !id.spec().meaning.contains('\n'));
        }
        assert_eq!(seen.len(), 36);
    }

    #[test]
    fn anchors_and_lookups() {
        assert_eq!(
            FindingId::CannotInspectGetBucketPolicy.runbook_anchor(),
            "finding-cannot_inspectgetbucketpolicy"
        );
        assert_eq!(
            FindingId::RuleShadowed.runbook_anchor(),
            "finding-rule_shadowed"
        );
        assert_eq!(
            FindingId::cannot_inspect("GetObjectLockConfiguration"),
            Some(FindingId::CannotInspectGetObjectLockConfiguration)
        );
        assert_eq!(FindingId::cannot_inspect("PutObject"), None);
        assert_eq!(
            FindingId::all().filter(|i| i.is_cannot_inspect()).count(),
            7
        );
        assert!(!FindingId::ProbeRoleKmsDenied.is_cannot_inspect());
        assert_eq!(
            serde_json::to_string(&FindingId::ReaderS3Denied)
                .ok()
                .as_deref(),
            Some("\"reader_s3_denied\"")
        );
    }
}
