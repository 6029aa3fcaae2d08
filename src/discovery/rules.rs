//! Which rules of one source bucket become replications, and where their canaries go.
//! Pure: the rules as `GetBucketReplication` gave them in, a plan out.
//!
//! A rule's canaries are placed where the rule selects them: under its prefix filter
//! (`<rule prefix><canary_prefix><bucket>/<rule id>/<stamp>-<nonce>`) and tagged with its
//! tag filter (`Tag`, or `And`'s tags). A rule is skipped, with its reason, when
//! - it is disabled (`rule_disabled`);
//! - it has no ID, an ID another rule of the bucket also has, an ID with control
//!   characters, or a destination that is not a bucket ARN (`invalid_rule`);
//! - no canary can satisfy its filter: one tag key required with two values, more tags
//!   than an object may carry (10), or a key longer than S3's 1,024 bytes
//!   (`unsatisfiable_filter`);
//! - another enabled rule to the same destination bucket, of higher priority — or of equal
//!   priority, where S3's choice is not documented — may select its canaries: that rule's
//!   settings would replicate them (`shadowed`).
//!
//! "May select" and the precedence are S3's, as `aws/precedence.rs` reads them: the other
//! rule's filter reaches every canary or some of them, and it is a rival when its priority
//! is not lower. A rule that does not replicate SSE-KMS objects counts too, so a canary is
//! never judged by a rule that might not be the one replicating it.
//!
//! The same test tells whether a canary also replicates elsewhere: another enabled rule
//! to **another** destination that may select it makes the source's status cover two
//! destinations (`source_fans_out`), and the probe then looks past a `FAILED` that may be
//! the other destination's.

use crate::aws::RuleSetup;
use crate::aws::precedence::{Contender, Reach, contenders, reach, rivals};
use crate::canary;
use crate::config::check_bucket;
pub(crate) use crate::config::{MAX_KEY_BYTES, MAX_OBJECT_TAGS};

use super::SkipReason;

/// Where a rule's canaries go so that the rule selects them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The rule's prefix filter; canaries live under `<prefix><canary_prefix><name>/`.
    pub prefix: String,
    /// The rule's tag filter, each key once, sorted by key.
    pub tags: Vec<(String, String)>,
}

/// A rule to probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub rule_id: String,
    /// `<source bucket>/<rule id>`.
    pub name: String,
    pub priority: i32,
    pub destination_bucket: String,
    /// `Destination.Account`, when the rule names it.
    pub destination_account: Option<String>,
    pub placement: Placement,
    /// Another rule may replicate the same canaries to another destination.
    pub source_fans_out: bool,
}

/// A rule not to probe, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSkip {
    /// The rule's position in the bucket's configuration.
    pub index: usize,
    /// `None` when the rule has no ID.
    pub rule_id: Option<String>,
    pub reason: SkipReason,
    pub detail: String,
}

/// The replication name of a rule.
pub fn name(bucket: &str, rule_id: &str) -> String {
    format!("{bucket}/{rule_id}")
}

/// The plan for one bucket's rules: those to probe, in the configuration's order, and
/// those skipped.
pub fn plan(
    bucket: &str,
    rules: &[RuleSetup],
    canary_prefix: &str,
) -> (Vec<Planned>, Vec<RuleSkip>) {
    let mut planned = Vec::new();
    let mut skips = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        match candidate(bucket, rules, i, canary_prefix) {
            Ok(p) => planned.push(p),
            Err((reason, detail)) => skips.push(RuleSkip {
                index: i,
                rule_id: (!rule.id.is_empty()).then(|| rule.id.clone()),
                reason,
                detail,
            }),
        }
    }
    (planned, skips)
}

/// Rule `i` as a replication, or why not.
fn candidate(
    bucket: &str,
    rules: &[RuleSetup],
    i: usize,
    canary_prefix: &str,
) -> Result<Planned, (SkipReason, String)> {
    let rule = &rules[i];
    check_id(rules, i)?;
    if !rule.enabled {
        return Err((
            SkipReason::RuleDisabled,
            "the rule's Status is Disabled".to_owned(),
        ));
    }
    let destination = destination_of(rule)?;
    let tags = canary_tags(&rule.tags)?;
    let name = name(bucket, &rule.id);
    let key_prefix = format!("{}{canary_prefix}{name}/", rule.prefix);
    let key_len = key_prefix.len() + canary::NAME_LEN;
    if key_len > MAX_KEY_BYTES {
        return Err((
            SkipReason::UnsatisfiableFilter,
            format!(
                "a canary key under the rule's prefix would be {key_len} bytes, over S3's {MAX_KEY_BYTES}"
            ),
        ));
    }
    // Another destination's rule that may select the canaries replicates them too.
    let source_fans_out = rules.iter().enumerate().any(|(j, other)| {
        j != i
            && other.enabled
            && reach(other, &key_prefix, &tags) != Reach::None
            && destination_of(other).is_ok_and(|d| d != destination)
    });
    let ranked = contenders(rules, &destination, &key_prefix, &tags);
    let rival = rivals(&ranked, i).find(|c| destination_of(c.rule).is_ok());
    if let Some(Contender { rule: other, .. }) = rival {
        let than = if other.priority > rule.priority {
            "a higher"
        } else {
            "the same"
        };
        return Err((
            SkipReason::Shadowed,
            format!(
                "rule `{}` ({than} priority, {}) to the same destination may select its canaries",
                other.id, other.priority
            ),
        ));
    }
    Ok(Planned {
        rule_id: rule.id.clone(),
        name,
        priority: rule.priority,
        destination_bucket: destination,
        destination_account: rule.destination_account.clone(),
        placement: Placement {
            prefix: rule.prefix.clone(),
            tags,
        },
        source_fans_out,
    })
}

/// The rule's ID must name the replication: present, once in the bucket, printable.
fn check_id(rules: &[RuleSetup], i: usize) -> Result<(), (SkipReason, String)> {
    let id = &rules[i].id;
    let invalid = |why: &str| Err((SkipReason::InvalidRule, why.to_owned()));
    if id.is_empty() {
        return invalid(
            "the rule has no ID (S3 gives every rule one; this configuration lacks it)",
        );
    }
    if id.chars().any(char::is_control) {
        return invalid("the rule's ID contains control characters");
    }
    if rules[..i].iter().any(|r| &r.id == id) {
        return invalid("another rule of the bucket has the same ID");
    }
    Ok(())
}

/// The destination bucket's name, if the rule names a bucket.
fn destination_of(rule: &RuleSetup) -> Result<String, (SkipReason, String)> {
    let name = rule.destination_bucket_name();
    match check_bucket(name) {
        Ok(()) if rule.destination_bucket.starts_with("arn:") => Ok(name.to_owned()),
        _ => Err((
            SkipReason::InvalidRule,
            format!(
                "the destination `{}` is not a bucket ARN",
                rule.destination_bucket
            ),
        )),
    }
}

/// The tags a canary carries to satisfy the filter: each key once, or why none can.
fn canary_tags(filter: &[(String, String)]) -> Result<Vec<(String, String)>, (SkipReason, String)> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for (k, v) in filter {
        match tags.iter().find(|(tk, _)| tk == k) {
            Some((_, tv)) if tv == v => {}
            Some((_, tv)) => {
                return Err((
                    SkipReason::UnsatisfiableFilter,
                    format!("the filter requires tag `{k}` to be both `{tv}` and `{v}`"),
                ));
            }
            None => tags.push((k.clone(), v.clone())),
        }
    }
    // S3 does not order tags; sorted, a discovered replication equals its written form.
    tags.sort();
    if tags.len() > MAX_OBJECT_TAGS {
        return Err((
            SkipReason::UnsatisfiableFilter,
            format!(
                "the filter requires {} tags; an object carries at most {MAX_OBJECT_TAGS}",
                tags.len()
            ),
        ));
    }
    Ok(tags)
}
