//! Which replication rule S3 applies to an object: the filter, the status, and the
//! precedence among the rules that select it. Pure; diagnosis (which rule replicates the
//! canaries, and what it gets wrong) and discovery (which rules can be probed on their
//! own) both ask it here.
//!
//! What AWS documents — the Amazon S3 API Reference, `ReplicationRule`
//! (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ReplicationRule.html: `Priority`,
//! `Filter`, the deprecated `Prefix`), `ReplicationRuleFilter` and
//! `ReplicationRuleAndOperator`; the S3 User Guide's "Replication configuration file
//! elements" was not found to read, so nothing here rests on it alone:
//! - A rule's `Filter` selects by key prefix, by tags, or both (`And`): an object is
//!   selected when its key starts with the prefix and it carries every tag of the filter.
//! - S3 tries to replicate an object according to every rule that selects it; when two or
//!   more rules with the same destination bucket select it, the one with the highest
//!   `Priority` applies ("the higher the number, the higher the priority"). Rules to other
//!   destinations replicate it too.
//! - Without a `Filter` S3 takes the configuration for the earlier version, V1 (API
//!   Reference, `DeleteMarkerReplication`): the rule's own `Prefix` selects, and it has no
//!   `Priority`. `aws/s3.rs` reads such a rule as a prefix filter of priority 0. How S3
//!   orders overlapping V1 rules is unverified.
//! - Equal priorities among rules to one destination that select the same object: which
//!   one S3 applies is not documented (unverified). [`applying`] names the later rule in
//!   the configuration, one answer for every reader of a report; [`rivals`] counts a tie as a
//!   rule that may take the object, so discovery never probes a rule S3 may not apply.
//! - A disabled rule selects nothing. Whether a rule that does not replicate SSE-KMS
//!   objects still takes precedence over one that does is not documented (unverified):
//!   `SourceSelectionCriteria` plays no part here.

use super::RuleSetup;

/// How a rule's filter meets the objects whose keys start with a prefix and that carry a
/// set of tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The filter selects every such object: its prefix is a prefix of theirs, and each
    /// of its tags is among theirs.
    Every,
    /// It may select some: its prefix is longer than theirs and starts with it, and each
    /// of its tags is among theirs.
    Some,
    /// It selects none.
    None,
}

/// How `rule`'s filter meets the objects under `key_prefix` carrying `tags`.
pub fn reach(rule: &RuleSetup, key_prefix: &str, tags: &[(String, String)]) -> Reach {
    if !rule.tags.iter().all(|t| tags.contains(t)) {
        Reach::None
    } else if key_prefix.starts_with(&rule.prefix) {
        Reach::Every
    } else if rule.prefix.starts_with(key_prefix) {
        Reach::Some
    } else {
        Reach::None
    }
}

/// A rule that may replicate the objects to the destination.
#[derive(Debug, Clone, Copy)]
pub struct Contender<'r> {
    /// The rule's position in the configuration.
    pub index: usize,
    pub rule: &'r RuleSetup,
    pub reach: Reach,
}

/// The enabled rules to the bucket `destination` (its name) whose filter reaches the
/// objects under `key_prefix` carrying `tags`, in S3's precedence: the highest priority
/// first; among equal priorities, the later rule in the configuration first.
pub fn contenders<'r>(
    rules: &'r [RuleSetup],
    destination: &str,
    key_prefix: &str,
    tags: &[(String, String)],
) -> Vec<Contender<'r>> {
    let mut out: Vec<Contender<'r>> = rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.enabled && r.destination_bucket_name() == destination)
        .map(|(index, rule)| Contender {
            index,
            rule,
            reach: reach(rule, key_prefix, tags),
        })
        .filter(|c| c.reach != Reach::None)
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse((c.rule.priority, c.index)));
    out
}

/// The rule that replicates every one of the objects: the first contender that selects
/// them all. A contender that selects only some of them is passed over.
pub fn applying<'r>(contenders: &[Contender<'r>]) -> Option<&'r RuleSetup> {
    contenders
        .iter()
        .find(|c| c.reach == Reach::Every)
        .map(|c| c.rule)
}

/// The contenders that may take some of the objects from the rule at `index` (which must
/// select them all to apply): those of higher priority and — S3's choice among equal
/// priorities being undocumented — those of equal priority; in configuration order.
pub fn rivals<'a, 'r>(
    contenders: &'a [Contender<'r>],
    index: usize,
) -> impl Iterator<Item = &'a Contender<'r>> {
    let own = contenders
        .iter()
        .find(|c| c.index == index)
        .map(|c| c.rule.priority);
    let mut out: Vec<&'a Contender<'r>> = contenders
        .iter()
        .filter(move |c| c.index != index && own.is_some_and(|p| c.rule.priority >= p))
        .collect();
    out.sort_by_key(|c| c.index);
    out.into_iter()
}

#[cfg(test)]
mod tests;
