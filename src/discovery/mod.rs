//! Discovery: every opted-in replication rule of the estate, as replications to probe.
//!
//! One pass reads, in each source account and region (as the source role from
//! `discovery.source_role_arn`): the buckets (`ListBuckets`, paginated, limited to the
//! region), each bucket's tags (`GetBucketTagging`: only buckets carrying `bucket_tag` go
//! further — never a canary in a bucket nobody opted in) and each opted-in bucket's rules
//! (`GetBucketReplication`). `rules.rs` decides which rules become replications and where
//! their canaries go; `read.rs` then finds each destination's account, region and expected
//! key, as that account's destination role (`discovery.destination_role_arn`):
//! - account: the rule's `Destination.Account`; else the configured account whose
//!   destination role `HeadBucket` with `ExpectedBucketOwner` accepts (the source account
//!   first, then the other source accounts, then every account a rule of the pass names);
//! - region: `HeadBucket`'s `x-amz-bucket-region`;
//! - expected key: `discovery.expected_kms_keys` for the bucket, else the destination
//!   bucket's default SSE-KMS key (`GetBucketEncryption`); when neither says, the
//!   replication is probed without one (`wrong_kms_key` not judged).
//!
//! A bucket or rule not probed is a [`Skip`] with a bounded [`SkipReason`]. A read that
//! failed keeps what the previous pass found there ([`Discoverer::settle`]): a throttled
//! `ListBuckets` must not stop every probe of an account.
//!
//! AWS is reached only through [`crate::aws::EstateReader`]; the tests drive all of this
//! with an in-memory estate.

pub mod coverage;
mod read;
mod reason;
pub mod render;
pub mod rules;
mod sdk;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::config::{Destination, KmsKeyArn, ProbeSettings, Reader, Replication, Role, Source};
use crate::metrics::Metrics;
use crate::model::UnmonitoredRule;

pub use read::{Progress, Readers, discover};
pub use reason::{SkipReason, Unprobed};
pub use rules::Placement;
pub use sdk::SdkReaders;

/// The replications to probe: the explicit ones first; a discovered one is left out when
/// an explicit one probes the same rule ([`same_rule`]), or when an earlier one has its name.
pub fn merge(explicit: &[Replication], discovered: &[Replication]) -> Vec<Replication> {
    let mut out: Vec<Replication> = explicit.to_vec();
    for d in discovered {
        let taken =
            out.iter().any(|e| e.name == d.name) || explicit.iter().any(|e| same_rule(e, d));
        if !taken {
            out.push(d.clone());
        }
    }
    out
}

/// The explicit-wins rule: an explicit replication stands for a discovered one when it has
/// the same source bucket and the same set of destination buckets. (Explicit replications
/// carry no rule id; two rules of one bucket to one destination bucket are told apart by
/// their filters, which an explicit replication may reproduce with `rule_prefix` and
/// `canary_tags` — it then stands for both, and the discovered ones are not probed.)
pub fn same_rule(explicit: &Replication, discovered: &Replication) -> bool {
    let buckets: Vec<&str> = discovered
        .destinations
        .iter()
        .map(|d| d.bucket.as_str())
        .collect();
    same_rule_as(explicit, &discovered.source.bucket, &buckets)
}

/// [`same_rule`] against a source bucket and destination buckets.
pub fn same_rule_as(explicit: &Replication, source_bucket: &str, destinations: &[&str]) -> bool {
    let mut theirs: Vec<&str> = explicit
        .destinations
        .iter()
        .map(|d| d.bucket.as_str())
        .collect();
    let mut ours = destinations.to_vec();
    theirs.sort_unstable();
    theirs.dedup();
    ours.sort_unstable();
    ours.dedup();
    explicit.source.bucket == source_bucket && theirs == ours
}

/// The `replication` label of the AWS calls discovery makes in a source account.
pub fn calls_label(account: &str) -> String {
    format!("discovery:{account}")
}

/// A replication discovery found: one enabled rule of an opted-in bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// `<source bucket>/<rule id>`.
    pub name: String,
    pub source_account: String,
    /// The source bucket's region.
    pub region: String,
    pub bucket: String,
    pub source_role: Role,
    pub rule_id: String,
    pub priority: i32,
    pub placement: Placement,
    /// Another rule may replicate the same canaries to another destination.
    pub source_fans_out: bool,
    pub destination: FoundDestination,
}

impl Found {
    /// The replication `run` and `check` probe for this rule, with `defaults` as its
    /// settings: its canaries under the rule's prefix, with its tags; the `destination`
    /// label is the destination bucket.
    pub fn replication(&self, defaults: &ProbeSettings) -> Replication {
        let d = &self.destination;
        Replication {
            name: self.name.clone(),
            settings: defaults.clone(),
            source: Source {
                bucket: self.bucket.clone(),
                region: self.region.clone(),
                role: Some(self.source_role.clone()),
                sse_kms_key_id: None,
            },
            destinations: vec![Destination {
                name: d.bucket.clone(),
                bucket: d.bucket.clone(),
                region: d.region.clone(),
                role: Some(d.role.clone()),
                expected_kms_key: d.expected_kms_key.clone(),
                readers: d.readers.clone(),
            }],
            rule_prefix: self.placement.prefix.clone(),
            canary_tags: self.placement.tags.clone(),
            source_fans_out: self.source_fans_out,
        }
    }
}

/// The destination of a discovered rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundDestination {
    pub bucket: String,
    pub account: String,
    pub account_from: AccountFrom,
    pub region: String,
    pub role: Role,
    /// `None`: neither an override nor a default SSE-KMS key names one.
    pub expected_kms_key: Option<KmsKeyArn>,
    pub key_from: KeyFrom,
    /// `discovery.readers` in the destination's account.
    pub readers: Vec<Reader>,
}

/// How a destination's account was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountFrom {
    /// The rule's `Destination.Account`.
    Rule,
    /// `HeadBucket` with `ExpectedBucketOwner`, as that account's destination role.
    BucketOwner,
}

impl AccountFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountFrom::Rule => "rule",
            AccountFrom::BucketOwner => "bucket_owner",
        }
    }
}

/// Where a destination's expected key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFrom {
    /// `discovery.expected_kms_keys`.
    Override,
    /// The destination bucket's default encryption.
    DefaultEncryption,
    /// None: why (one sentence).
    Unknown(String),
}

/// A bucket or rule discovery does not probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    pub source_account: String,
    pub region: String,
    /// Empty when the whole account and region could not be listed.
    pub bucket: String,
    /// `None` for the whole bucket (or a rule without ID).
    pub rule_id: Option<String>,
    pub reason: SkipReason,
    /// One sentence for people; not a label.
    pub detail: String,
}

/// What one pass found in one source account and region.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub account: String,
    pub region: String,
    /// Buckets `ListBuckets` named in the region; `None` when listing failed.
    pub listed: Option<usize>,
    pub found: Vec<Found>,
    pub skips: Vec<Skip>,
    /// Buckets a failed read left undecided: what was found there before stands.
    pub kept_buckets: BTreeSet<String>,
    /// Enabled rules no probe stands for (`discovery.coverage`), explicit ones not yet
    /// taken out ([`coverage::uncovered`]).
    pub unmonitored: Vec<UnmonitoredRule>,
    /// Buckets whose tags or rules could not be read: the unmonitored rules found there
    /// before stand.
    pub coverage_kept: BTreeSet<String>,
}

/// One discovery pass over every configured account and region.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    pub scopes: Vec<Scope>,
    pub took: Duration,
    /// Whether the pass read the rules of buckets that did not opt in (`discovery.coverage`).
    pub coverage: bool,
}

impl Pass {
    /// Every replication found, in account, region, bucket and rule order.
    pub fn found(&self) -> impl Iterator<Item = &Found> {
        self.scopes.iter().flat_map(|s| &s.found)
    }

    pub fn skips(&self) -> impl Iterator<Item = &Skip> {
        self.scopes.iter().flat_map(|s| &s.skips)
    }

    /// Whether something could not be read (a skip that is an error).
    pub fn had_errors(&self) -> bool {
        self.skips().any(|s| s.reason.is_error())
    }
}

/// What earlier passes learnt that saves calls in the next.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hints {
    /// Destination bucket → the account found to own it (rules without
    /// `Destination.Account`): asked first, so the other accounts' roles are not tried.
    pub owners: HashMap<String, String>,
}

/// A skip as remembered between passes (logged again only when it changes).
type SkipKey = (String, String, String, Option<String>, SkipReason);

/// What discovery found so far, per source account and region: the memory that lets a
/// failed read keep the replications found before.
#[derive(Debug, Default)]
pub struct Discoverer {
    previous: HashMap<(String, String), Vec<Found>>,
    skipped: std::collections::HashSet<SkipKey>,
    coverage: coverage::CoverageMemory,
}

impl Discoverer {
    /// The replications to probe after `pass`: what it found, plus — where a read failed —
    /// what was found there before. Records the discovery metrics (every error counts, each
    /// pass) and logs each skip that is new since the previous pass.
    pub fn settle(&mut self, pass: &Pass, metrics: &Metrics) -> Vec<Found> {
        let mut now = HashMap::new();
        let mut skipped = std::collections::HashSet::new();
        for scope in &pass.scopes {
            let key = (scope.account.clone(), scope.region.clone());
            let before = self.previous.remove(&key).unwrap_or_default();
            let settled = settle_scope(scope, before);
            metrics.set_discovered(&scope.account, &scope.region, settled.len());
            for skip in &scope.skips {
                let id = (
                    skip.source_account.clone(),
                    skip.region.clone(),
                    skip.bucket.clone(),
                    skip.rule_id.clone(),
                    skip.reason,
                );
                if !self.skipped.contains(&id) {
                    log_skip(skip);
                }
                skipped.insert(id);
                if skip.reason.is_error() {
                    metrics.discovery_error(
                        &skip.source_account,
                        &skip.region,
                        skip.reason.as_str(),
                    );
                }
            }
            now.insert(key, settled);
        }
        self.previous = now;
        self.skipped = skipped;
        let mut all: Vec<Found> = self.previous.values().flatten().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

impl Discoverer {
    /// The rules nobody monitors after `pass` (see [`coverage`]): what it found, explicit
    /// replications' rules left out, and — where a read failed — what was found before.
    /// Sets `replicanary_unmonitored_replication_rules`.
    pub fn settle_coverage(
        &mut self,
        pass: &Pass,
        explicit: &[Replication],
        metrics: &Metrics,
    ) -> Vec<UnmonitoredRule> {
        self.coverage.settle(pass, explicit, metrics)
    }

    /// Discovery is off: drops `replicanary_unmonitored_replication_rules` and what the
    /// earlier passes found.
    pub fn clear_coverage(&mut self, metrics: &Metrics) {
        self.coverage.clear(metrics);
    }

    /// What the next pass may use: the owners found for destinations without
    /// `Destination.Account`.
    pub fn hints(&self) -> Hints {
        let owners = self
            .previous
            .values()
            .flatten()
            .filter(|f| f.destination.account_from == AccountFrom::BucketOwner)
            .map(|f| (f.destination.bucket.clone(), f.destination.account.clone()))
            .collect();
        Hints { owners }
    }
}

/// One scope's replications: the pass's, or — where it could not read — the earlier ones.
fn settle_scope(scope: &Scope, before: Vec<Found>) -> Vec<Found> {
    if scope.listed.is_none() {
        return before;
    }
    let mut settled = scope.found.clone();
    for f in before {
        let kept = scope.kept_buckets.contains(&f.bucket);
        if kept && !settled.iter().any(|s| s.name == f.name) {
            settled.push(f);
        }
    }
    settled
}

fn log_skip(s: &Skip) {
    let rule = s.rule_id.as_deref().unwrap_or("");
    if s.reason.is_error() {
        tracing::warn!(source_account = %s.source_account, region = %s.region, bucket = %s.bucket,
            rule_id = rule, reason = s.reason.as_str(), detail = %s.detail, "discovery skipped a bucket or rule");
    } else if s.reason == SkipReason::Untagged {
        tracing::debug!(source_account = %s.source_account, region = %s.region, bucket = %s.bucket,
            reason = s.reason.as_str(), "discovery skipped a bucket that is not opted in");
    } else {
        tracing::info!(source_account = %s.source_account, region = %s.region, bucket = %s.bucket,
            rule_id = rule, reason = s.reason.as_str(), detail = %s.detail, "discovery skipped a bucket or rule");
    }
}
