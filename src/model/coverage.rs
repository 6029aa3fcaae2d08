//! Coverage: an enabled replication rule of the estate that no probe of replicanary
//! stands for, as discovery lists it (`discover`, the status page, the
//! `replicanary_unmonitored_replication_rules` gauge).

/// One unmonitored rule: where it is, where it replicates to, and why it is not probed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnmonitoredRule {
    pub source_account: String,
    pub region: String,
    pub bucket: String,
    /// `None` for a rule without an ID.
    pub rule_id: Option<String>,
    /// The destination bucket's name (from the rule's `Destination.Bucket` ARN).
    pub destination_bucket: String,
    /// The rule's `Destination.Account`, when it names one.
    pub destination_account: Option<String>,
    /// The rule's `ReplicaKmsKeyID`, as written; `None` when it names none.
    pub replica_kms_key_id: Option<String>,
    /// Why no probe stands for it: a bounded keyword (`untagged`, `shadowed`,
    /// `unsatisfiable_filter`, `invalid_rule`).
    pub reason: &'static str,
}
