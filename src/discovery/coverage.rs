//! Coverage: the enabled replication rules of the estate that no probe stands for.
//!
//! With `discovery.coverage` (on unless set to `false`), a pass also reads — read-only, as
//! the source role — the replication configuration of every bucket that did not opt in
//! (one `GetBucketReplication` per such bucket). A rule is **unmonitored** when it is
//! enabled, no explicit replication stands for it (the explicit-wins rule: same source
//! bucket, same destination bucket) and discovery does not probe it for a fact of the
//! estate:
//! - its bucket did not opt in (`untagged`);
//! - it is opted in, but discovery cannot probe the rule itself: another rule to the same
//!   destination selects its canaries first (`shadowed`), no canary can satisfy its filter
//!   (`unsatisfiable_filter`), or it cannot be named or aimed (`invalid_rule`).
//!
//! Rules discovery could not read or resolve (errors) are not counted here: they are meant
//! to be probed, and `replicanary_discovery_errors_total` counts them. Disabled rules
//! replicate nothing and are not counted either. A coverage read that fails is such an
//! error (its bounded reason, in the same counter); the rules found there before stand
//! until a read succeeds, and opted-in buckets are discovered as always.

use std::collections::{BTreeSet, HashMap};

use super::{Pass, SkipReason, same_rule_as};
use crate::aws::RuleSetup;
use crate::config::Replication;
use crate::metrics::Metrics;
use crate::model::UnmonitoredRule;

/// Whether a rule skipped for `reason` is one nobody monitors.
pub fn unmonitored_reason(reason: SkipReason) -> bool {
    matches!(
        reason,
        SkipReason::Untagged
            | SkipReason::Shadowed
            | SkipReason::UnsatisfiableFilter
            | SkipReason::InvalidRule
    )
}

/// One rule as an unmonitored rule.
pub fn of_rule(
    account: &str,
    region: &str,
    bucket: &str,
    rule: &RuleSetup,
    reason: SkipReason,
) -> UnmonitoredRule {
    UnmonitoredRule {
        source_account: account.to_owned(),
        region: region.to_owned(),
        bucket: bucket.to_owned(),
        rule_id: (!rule.id.is_empty()).then(|| rule.id.clone()),
        destination_bucket: rule.destination_bucket_name().to_owned(),
        destination_account: rule.destination_account.clone(),
        replica_kms_key_id: rule.replica_kms_key_id.clone(),
        reason: reason.as_str(),
    }
}

/// Every enabled rule of a bucket that did not opt in.
pub fn of_bucket(
    account: &str,
    region: &str,
    bucket: &str,
    rules: &[RuleSetup],
) -> Vec<UnmonitoredRule> {
    rules
        .iter()
        .filter(|r| r.enabled)
        .map(|r| of_rule(account, region, bucket, r, SkipReason::Untagged))
        .collect()
}

/// Whether an explicit replication stands for `rule` (and so monitors it).
pub fn covered(rule: &UnmonitoredRule, explicit: &[Replication]) -> bool {
    explicit
        .iter()
        .any(|e| same_rule_as(e, &rule.bucket, &[rule.destination_bucket.as_str()]))
}

/// The unmonitored rules of a pass, without those explicit replications cover, in
/// account, region, bucket and rule order.
pub fn uncovered(pass: &Pass, explicit: &[Replication]) -> Vec<UnmonitoredRule> {
    let mut out: Vec<UnmonitoredRule> = pass
        .scopes
        .iter()
        .flat_map(|s| &s.unmonitored)
        .filter(|r| !covered(r, explicit))
        .cloned()
        .collect();
    out.sort();
    out
}

/// The unmonitored rules remembered between passes, per source account and region: a
/// read that failed keeps what an earlier pass found there.
#[derive(Debug, Default)]
pub struct CoverageMemory {
    previous: HashMap<(String, String), Vec<UnmonitoredRule>>,
}

impl CoverageMemory {
    /// Forgets everything and drops every count it exported (coverage or discovery off).
    pub fn clear(&mut self, metrics: &Metrics) {
        for (account, region) in self.previous.keys() {
            metrics.remove_unmonitored_rules(account, region);
        }
        self.previous.clear();
    }
}

impl CoverageMemory {
    /// The unmonitored rules after `pass` (explicit replications' rules left out), and
    /// `replicanary_unmonitored_replication_rules` per source account and region. Without
    /// `discovery.coverage` nothing is read, so nothing is exported or returned.
    pub fn settle(
        &mut self,
        pass: &Pass,
        explicit: &[Replication],
        metrics: &Metrics,
    ) -> Vec<UnmonitoredRule> {
        if !pass.coverage {
            self.clear(metrics);
            return Vec::new();
        }
        let mut now = HashMap::new();
        let mut all = Vec::new();
        for scope in &pass.scopes {
            let key = (scope.account.clone(), scope.region.clone());
            let before = self.previous.remove(&key).unwrap_or_default();
            let settled = if scope.listed.is_none() {
                before
            } else {
                let kept: BTreeSet<&String> = scope.coverage_kept.iter().collect();
                let mut s = scope.unmonitored.clone();
                s.extend(before.into_iter().filter(|r| kept.contains(&r.bucket)));
                s
            };
            let shown: Vec<UnmonitoredRule> = settled
                .iter()
                .filter(|r| !covered(r, explicit))
                .cloned()
                .collect();
            metrics.set_unmonitored_rules(&scope.account, &scope.region, shown.len());
            all.extend(shown);
            now.insert(key, settled);
        }
        // An account or region no longer configured: its count goes.
        for (account, region) in self.previous.keys() {
            metrics.remove_unmonitored_rules(account, region);
        }
        self.previous = now;
        all.sort();
        all
    }
}
