//! Say why: findings that name the cause behind a failed verdict.
//!
//! [`diagnose`] is a pure function of what the probe roles can read of the setup
//! ([`setup`]), the configuration, and — after a probe — the verdict with the replica's
//! headers and the AWS error. Each [`Finding`] has a bounded id (a label value), a
//! one-line explanation and a one-line fix. The prober reads the setup only after a
//! failed verdict, at most every [`SETUP_TTL`], so diagnosis never multiplies the
//! probe's AWS calls.

pub mod cache;
pub mod policy;
pub mod readers;
pub mod setup;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::aws::precedence::{Reach, applying, contenders, reach};
use crate::aws::{DefaultEncryption, DefaultRetention, RuleSetup};
use crate::config::{Destination, KmsKeyArn, Replication};
use crate::model::{DestinationVerdict, Finding, FindingId, Outcome};
use setup::{DestinationSetup, Read, SourceSetup, Unknown};

/// How long a read of the setup is reused before it is read again.
pub const SETUP_TTL: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, id: FindingId, explanation: impl Into<String>, fix: impl Into<String>) {
        if !self.0.iter().any(|f| f.id == id) {
            self.0.push(Finding {
                id,
                explanation: explanation.into(),
                fix: fix.into(),
            });
        }
    }

    /// `cannot_inspect:<operation>` for a setup read the probe role was refused.
    fn cannot_inspect(&mut self, unknown: &Unknown, side: &str, bucket: &str) {
        let Unknown::Denied(op) = unknown else {
            return;
        };
        // Diagnosis reads nothing else: an operation without a finding names no cause.
        let Some(id) = FindingId::cannot_inspect(op) else {
            return;
        };
        let action = match id {
            FindingId::CannotInspectGetBucketReplication => "s3:GetReplicationConfiguration",
            FindingId::CannotInspectGetBucketEncryption => "s3:GetEncryptionConfiguration",
            FindingId::CannotInspectGetBucketPolicy => "s3:GetBucketPolicy",
            FindingId::CannotInspectGetBucketOwnershipControls => "s3:GetBucketOwnershipControls",
            FindingId::CannotInspectGetObjectLockConfiguration => {
                "s3:GetBucketObjectLockConfiguration"
            }
            FindingId::CannotInspectGetBucketVersioning => "s3:GetBucketVersioning",
            // GetKeyPolicy is the readers' (diagnose/readers.rs), not a setup read.
            _ => return,
        };
        self.add(
            id,
            format!("the {side} probe role may not call {op} on {bucket}, so that part of the setup was not checked"),
            format!("grant {action} on arn:aws:s3:::{bucket} to the {side} probe role (deploy/iam/*-diagnosis-policy.json), or ignore this"),
        );
    }
}

/// Findings for one destination. `verdict` is `None` for `audit` (no canary written).
pub fn diagnose(
    rep: &Replication,
    dest: &Destination,
    source: &SourceSetup,
    destination: &DestinationSetup,
    verdict: Option<&DestinationVerdict>,
) -> Vec<Finding> {
    let mut f = Findings::default();
    let src_bucket = rep.source.bucket.as_str();
    versioning(
        &mut f,
        &source.versioning,
        "source",
        src_bucket,
        FindingId::SourceNotVersioned,
    );
    versioning(
        &mut f,
        &destination.versioning,
        "destination",
        &dest.bucket,
        FindingId::DestinationNotVersioned,
    );
    key_unknown(&mut f, dest);
    let canary_kms = source_encryption(&mut f, rep, source);
    let (role, winner) = match &source.replication {
        Err(u) => {
            f.cannot_inspect(u, "source", src_bucket);
            (None, None)
        }
        Ok(None) => {
            f.add(
                FindingId::NoReplicationConfiguration,
                format!("the source bucket {src_bucket} has no replication configuration"),
                format!(
                    "add a replication rule to {src_bucket} with destination arn:aws:s3:::{}",
                    dest.bucket
                ),
            );
            (None, None)
        }
        Ok(Some(cfg)) => {
            let winner = rules(&mut f, rep, dest, &cfg.rules, canary_kms, verdict);
            (Some(cfg.role.as_str()), winner)
        }
    };
    destination_encryption(&mut f, dest, &destination.encryption);
    if let Some(role) = role {
        destination_policy(&mut f, dest, &destination.policy, role);
    }
    let source_owned = winner.and_then(|w| replica_owner(&mut f, dest, w, &destination.ownership));
    bucket_retention(&mut f, rep, dest, &destination.retention, verdict.is_none());
    if let Some(v) = verdict {
        from_verdict(&mut f, rep, dest, v, source_owned);
    }
    f.0
}

/// Findings that need no setup read, for a verdict that is `ok`: what the replica's own
/// headers tell (its Object Lock retention, which explains the canaries' cost).
pub fn from_replica(rep: &Replication, dest: &Destination, v: &DestinationVerdict) -> Vec<Finding> {
    let mut f = Findings::default();
    key_unknown(&mut f, dest);
    replica_retention(&mut f, rep, dest, v);
    f.0
}

/// A discovered destination that names no key: the replica's key is not judged.
fn key_unknown(f: &mut Findings, dest: &Destination) {
    if dest.expected_kms_key.is_none() {
        let bucket = &dest.bucket;
        f.add(
            FindingId::ExpectedKmsKeyUnknown,
            format!("no key is expected of replicas in {bucket}: discovery.expected_kms_keys names none for it, and its default encryption names no SSE-KMS key (or could not be read), so a replica under the wrong key is not caught (wrong_kms_key is not judged)"),
            format!("name the key in discovery.expected_kms_keys.{bucket}, or set {bucket}'s default encryption to SSE-KMS with the key replicas must be under"),
        );
    }
}

/// The expected key, for a fix to name.
fn expected_text(dest: &Destination) -> String {
    dest.expected_kms_key.as_ref().map_or_else(
        || "a customer-managed key of the destination account".to_owned(),
        ToString::to_string,
    )
}

/// Whether replicas land owned by the source account: the rule has no owner override and
/// the destination's Object Ownership lets the writer own objects (`ObjectWriter`,
/// `BucketOwnerPreferred`, or no ownership controls at all — a bucket made before
/// `BucketOwnerEnforced` became the default). `None`: cannot be told.
fn replica_owner(
    f: &mut Findings,
    dest: &Destination,
    winner: &RuleSetup,
    ownership: &Read<String>,
) -> Option<bool> {
    if winner.owner_override {
        return Some(false);
    }
    let setting = match ownership {
        Ok(Some(o)) if o == "BucketOwnerEnforced" => return Some(false),
        Ok(Some(o)) => o.clone(),
        Ok(None) => "no ownership controls (ObjectWriter)".to_owned(),
        Err(u) => {
            f.cannot_inspect(u, "destination", &dest.bucket);
            return None;
        }
    };
    f.add(
        FindingId::ReplicaOwnedBySourceAccount,
        format!(
            "replicas stay owned by the source account: the rule to {} ({}) has no owner override and the destination bucket's Object Ownership is {setting}, so S3 refuses the destination account its replicas",
            dest.bucket, winner.id
        ),
        format!(
            "set the destination bucket {}'s Object Ownership to BucketOwnerEnforced, or add AccessControlTranslation Owner=Destination to the rule (and allow s3:ObjectOwnerOverrideToBucketOwner to the replication role in the destination bucket policy)",
            dest.bucket
        ),
    );
    Some(true)
}

/// Whether canaries are SSE-KMS at the source (unknown counts as yes: that is the setup
/// under test); a finding when they are not.
fn source_encryption(f: &mut Findings, rep: &Replication, source: &SourceSetup) -> bool {
    let bucket = rep.source.bucket.as_str();
    let canary_kms = rep.source.sse_kms_key_id.is_some()
        || match &source.encryption {
            Ok(Some(e)) => e.algorithm.starts_with("aws:kms"),
            Ok(None) => false,
            Err(u) => {
                f.cannot_inspect(u, "source", bucket);
                true
            }
        };
    if !canary_kms {
        f.add(
            FindingId::SourceNotSseKms,
            format!("the source bucket {bucket}'s default encryption is not SSE-KMS, so canaries (and its objects) are not KMS-encrypted"),
            "set the source bucket's default encryption to SSE-KMS, or give `source.sse_kms_key_id` in the configuration",
        );
    }
    canary_kms
}

/// The destination bucket's default encryption should be SSE-KMS with the expected key.
fn destination_encryption(f: &mut Findings, dest: &Destination, read: &Read<DefaultEncryption>) {
    let Some(expected) = &dest.expected_kms_key else {
        return;
    };
    match read {
        Ok(Some(e))
            if e.algorithm.starts_with("aws:kms")
                && e.kms_key_id.as_deref().is_some_and(|k| expected.matches(k)) => {}
        Ok(enc) => {
            let now = enc
                .as_ref()
                .map_or("no default encryption".to_owned(), |e| {
                    match &e.kms_key_id {
                        Some(k) => format!("{} with {k}", e.algorithm),
                        None => e.algorithm.clone(),
                    }
                });
            f.add(
                FindingId::DestinationDefaultKeyNotExpected,
                format!("the destination bucket {}'s default encryption is {now}, not SSE-KMS with the expected key", dest.bucket),
                format!("set {}'s default encryption to SSE-KMS with {expected} (and S3 Bucket Keys)", dest.bucket),
            );
        }
        Err(u) => f.cannot_inspect(u, "destination", &dest.bucket),
    }
}

/// Cross-account: the destination bucket policy must let the replication role in.
fn destination_policy(f: &mut Findings, dest: &Destination, read: &Read<String>, role: &str) {
    if role
        .split(':')
        .nth(4)
        .is_some_and(|a| Some(a) == dest.account())
    {
        return;
    }
    match read {
        Ok(Some(p)) if policy::grants_replication(p, role, &dest.bucket) != Some(false) => {}
        Ok(p) => f.add(
            FindingId::DestinationPolicyMissingReplicationRole,
            format!(
                "the destination bucket {}'s policy {} s3:ReplicateObject to the replication role {role}",
                dest.bucket,
                if p.is_some() { "does not grant" } else { "is missing, so nothing grants" }
            ),
            format!(
                "allow s3:ReplicateObject and s3:ReplicateDelete on arn:aws:s3:::{}/* for Principal \"*\" with Condition ArnLike aws:PrincipalArn = {role}",
                dest.bucket
            ),
        ),
        Err(u) => f.cannot_inspect(u, "destination", &dest.bucket),
    }
}

fn versioning(f: &mut Findings, read: &Read<String>, side: &str, bucket: &str, id: FindingId) {
    match read {
        Ok(Some(s)) if s == "Enabled" => {}
        Ok(s) => f.add(
            id,
            format!(
                "the {side} bucket {bucket} is not versioned ({}); replication needs versioning on both buckets",
                s.as_deref().unwrap_or("never enabled")
            ),
            format!("enable versioning on {bucket}"),
        ),
        Err(u) => f.cannot_inspect(u, side, bucket),
    }
}

/// The rule checks; returns the rule that replicates canaries to `dest`, if there is one.
fn rules<'r>(
    f: &mut Findings,
    rep: &Replication,
    dest: &Destination,
    rules: &'r [RuleSetup],
    canary_kms: bool,
    verdict: Option<&DestinationVerdict>,
) -> Option<&'r RuleSetup> {
    let (winner, covering) = winning_rule(f, rep, dest, rules)?;
    winner_checks(f, dest, winner, &covering, canary_kms, verdict);
    Some(winner)
}

/// The enabled rule to this destination that S3 applies to canaries, with every rule that
/// selects them all; or findings that say why there is none.
fn winning_rule<'r>(
    f: &mut Findings,
    rep: &Replication,
    dest: &Destination,
    rules: &'r [RuleSetup],
) -> Option<(&'r RuleSetup, Vec<&'r RuleSetup>)> {
    let key_prefix = rep.key_prefix();
    let to_dest: Vec<&RuleSetup> = rules
        .iter()
        .filter(|r| r.destination_bucket_name() == dest.bucket)
        .collect();
    if to_dest.is_empty() {
        let elsewhere: Vec<&str> = rules
            .iter()
            .map(|r| r.destination_bucket.as_str())
            .collect();
        f.add(
            FindingId::RuleDestinationMismatch,
            format!(
                "no replication rule of {} replicates to {} (rules go to: {})",
                rep.source.bucket,
                dest.bucket,
                if elsewhere.is_empty() { "nowhere".to_owned() } else { elsewhere.join(", ") }
            ),
            format!("point a rule's Destination.Bucket at arn:aws:s3:::{}, or fix the destination in the configuration", dest.bucket),
        );
        return None;
    }
    let enabled: Vec<&RuleSetup> = to_dest.iter().copied().filter(|r| r.enabled).collect();
    if enabled.is_empty() {
        f.add(
            FindingId::RuleDisabled,
            format!(
                "the replication rule to {} ({}) is disabled",
                dest.bucket, to_dest[0].id
            ),
            "set the rule's Status to Enabled",
        );
        return None;
    }
    // S3's precedence (aws/precedence.rs): the rule that selects every canary and comes
    // first; rules that select only some canaries are passed over.
    let ranked = contenders(rules, &dest.bucket, &key_prefix, &rep.canary_tags);
    let covering: Vec<&RuleSetup> = ranked
        .iter()
        .filter(|c| c.reach == Reach::Every)
        .map(|c| c.rule)
        .collect();
    let Some(winner) = applying(&ranked) else {
        let r = enabled[0];
        let why = if reach(r, &r.prefix, &rep.canary_tags) == Reach::None {
            let tags: Vec<String> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "its filter requires the tags {}, which canaries do not carry (canary_tags)",
                tags.join(", ")
            )
        } else {
            format!(
                "its filter prefix `{}` does not cover `{key_prefix}`",
                r.prefix
            )
        };
        f.add(
            FindingId::RuleFilterExcludesCanaries,
            format!("the rule to {} ({}) does not select canaries: {why}", dest.bucket, r.id),
            format!("widen the rule's filter to cover `{key_prefix}`, or set canary_prefix inside the replicated prefix"),
        );
        return None;
    };
    Some((winner, covering))
}

/// What the rule that replicates canaries gets wrong.
fn winner_checks(
    f: &mut Findings,
    dest: &Destination,
    winner: &RuleSetup,
    covering: &[&RuleSetup],
    canary_kms: bool,
    verdict: Option<&DestinationVerdict>,
) {
    let expected = expected_text(dest);
    if let (Some(acct), Some(owner)) = (winner.destination_account.as_deref(), dest.account())
        && acct != owner
    {
        f.add(
            FindingId::RuleDestinationMismatch,
            format!("the rule's Destination.Account is {acct}, but the destination belongs to account {owner}"),
            format!("set Destination.Account to the destination bucket's owner ({owner})"),
        );
    }
    // An alias cannot be resolved without KMS: one in the right account and region may
    // well name the expected key, so it is not called wrong.
    let correct = |r: &RuleSetup| {
        (!canary_kms || r.selects_sse_kms)
            && r.replica_kms_key_id.as_deref().is_some_and(|k| {
                dest.expected_kms_key.as_ref().is_some_and(|e| e.matches(k))
                    || alias_may_be(k, dest)
            })
    };
    // Without an expected key, which rule is "correct" cannot be told.
    let judged = dest.expected_kms_key.is_some();
    if judged && !correct(winner) && covering.iter().any(|r| correct(r)) {
        f.add(
            FindingId::RuleShadowed,
            format!(
                "rule {} (priority {}) wins over a correct rule to the same destination",
                winner.id, winner.priority
            ),
            "give the correct rule the higher priority, or fix or remove the other",
        );
    }
    if canary_kms && !winner.selects_sse_kms {
        f.add(
            FindingId::RuleSkipsSseKms,
            format!("the rule to {} ({}) does not select SSE-KMS encrypted objects, so S3 skips them", dest.bucket, winner.id),
            format!(
                "enable SourceSelectionCriteria.SseKmsEncryptedObjects (\"Replicate objects encrypted with AWS KMS\") on the rule, with ReplicaKmsKeyID {expected}"
            ),
        );
    }
    match winner.replica_kms_key_id.as_deref() {
        // Without SSE-KMS selection S3 does not take a ReplicaKmsKeyID: named above.
        None if canary_kms && winner.selects_sse_kms => f.add(
            FindingId::ReplicaKmsKeyMissing,
            format!(
                "the rule to {} ({}) has no ReplicaKmsKeyID",
                dest.bucket, winner.id
            ),
            format!("set Destination.EncryptionConfiguration.ReplicaKmsKeyID to {expected}"),
        ),
        None => {}
        Some(key) => {
            if let Some(expected) = &dest.expected_kms_key {
                replica_key(f, dest, expected, key);
            }
        }
    }
    if verdict.is_some_and(|v| v.outcome == Outcome::ReplicationTimeout) && !winner.time_control {
        f.add(
            FindingId::ReplicationTimeControlDisabled,
            "the rule has no S3 Replication Time Control, so S3 promises no 15-minute replication",
            "enable Replication Time Control (and replication metrics) on the rule, or raise replication_timeout",
        );
    }
}

/// Whether a `ReplicaKmsKeyID` is an alias (`arn:aws:kms:REGION:ACCOUNT:alias/NAME`, or a
/// bare `alias/NAME`) that may name the expected key: one whose ARN names the expected
/// key's account and the destination's region.
fn alias_may_be(key: &str, dest: &Destination) -> bool {
    let parts: Vec<&str> = key.splitn(6, ':').collect();
    match parts.as_slice() {
        [_, _, _, region, account, resource] if resource.starts_with("alias/") => {
            Some(*account) == dest.account() && *region == dest.region
        }
        _ => key.starts_with("alias/"),
    }
}

fn replica_key(f: &mut Findings, dest: &Destination, expected: &KmsKeyArn, key: &str) {
    if expected.matches(key) {
        return;
    }
    let parts: Vec<&str> = key.splitn(6, ':').collect();
    let alias = parts.last().is_some_and(|r| r.starts_with("alias/"));
    if parts.len() == 6 && parts[0] == "arn" {
        if parts[4] != expected.account() {
            f.add(
                FindingId::ReplicaKmsKeyOtherAccount,
                format!("the rule's ReplicaKmsKeyID {key} is a key of account {}, not of the destination account {}", parts[4], expected.account()),
                format!("set ReplicaKmsKeyID to a customer-managed key of the destination account: {expected}"),
            );
        }
        if parts[3] != dest.region {
            f.add(
                FindingId::ReplicaKmsKeyOtherRegion,
                format!("the rule's ReplicaKmsKeyID {key} is in {}, not in the destination bucket's region {}", parts[3], dest.region),
                format!("set ReplicaKmsKeyID to a key in {}: {expected}", dest.region),
            );
        }
    }
    if alias {
        // Which key an alias names cannot be told without KMS: not judged from the rule
        // alone (a replica under another key is `wrong_kms_key` all the same).
        return;
    }
    f.add(
        FindingId::ReplicaKmsKeyNotExpected,
        format!("the rule's ReplicaKmsKeyID is {key}, not the expected {expected}"),
        format!("set Destination.EncryptionConfiguration.ReplicaKmsKeyID to {expected} (or fix expected_kms_key_arn)"),
    );
}

fn from_verdict(
    f: &mut Findings,
    rep: &Replication,
    dest: &Destination,
    v: &DestinationVerdict,
    source_owned: Option<bool>,
) {
    match v.outcome {
        Outcome::Undecryptable => kms_refusal(f, dest, v),
        Outcome::Unreadable => head_refusal(f, dest, v, source_owned),
        _ => {}
    }
    replica_retention(f, rep, dest, v);
}

/// Why S3 refused the destination probe role the replica's HeadObject.
fn head_refusal(
    f: &mut Findings,
    dest: &Destination,
    v: &DestinationVerdict,
    source_owned: Option<bool>,
) {
    if v.aws_error.as_ref().map(|e| e.operation) != Some("HeadObject") {
        return;
    }
    let bucket = &dest.bucket;
    match v.replica.listed {
        // The replica is there; if the setup does not make it the source account's, the
        // refusal is about replicanary's own role (its IAM policy or the bucket policy).
        Some(true) if source_owned == Some(false) => f.add(
            FindingId::ProbeRoleCannotReadReplica,
            format!("the replica is in {bucket} and owned by the destination account, but S3 refuses the destination probe role HeadObject on it: the role's IAM policy or the bucket policy denies it (replicanary's own access, not the replication)"),
            format!("allow the destination probe role s3:GetObject and s3:GetObjectVersion on arn:aws:s3:::{bucket}/<canary_prefix>* (deploy/iam/destination-probe-policy.json), and check the bucket policy for a Deny"),
        ),
        Some(_) => {}
        None => f.add(
            FindingId::ProbeRoleCannotListBucket,
            "S3 answered HeadObject with 403 and the destination probe role may not list the key's versions either, so a missing replica cannot be told from one S3 refuses (a missing object answers 403 without s3:ListBucket)",
            format!("allow the destination probe role s3:ListBucket and s3:ListBucketVersions on arn:aws:s3:::{bucket} (deploy/iam/destination-probe-policy.json: ReplicaExistence, SweepReplicas)"),
        ),
    }
}

/// The bucket's Object Lock default retention keeps every canary replica (setup read).
fn bucket_retention(
    f: &mut Findings,
    rep: &Replication,
    dest: &Destination,
    read: &Read<DefaultRetention>,
    audit: bool,
) {
    match read {
        Ok(Some(r)) => retained(
            f,
            rep,
            dest,
            r.period(),
            &format!("its Object Lock default retention, {} mode", r.mode),
        ),
        Ok(None) => {}
        // Only informative (the replica's own headers tell it after a probe): named in
        // `audit` only.
        Err(u) if audit => f.cannot_inspect(u, "destination", &dest.bucket),
        Err(_) => {}
    }
}

/// The replica the probe saw carries a retain-until date.
fn replica_retention(
    f: &mut Findings,
    rep: &Replication,
    dest: &Destination,
    v: &DestinationVerdict,
) {
    if let Some(until) = v.replica.retain_until {
        let period = until.duration_since(v.finished_at).unwrap_or_default();
        retained(
            f,
            rep,
            dest,
            period,
            "the replica's Object Lock retain-until date",
        );
    }
}

/// `canaries_retained_by_object_lock`, with what it costs: one canary version per interval
/// held for the whole retention period.
fn retained(f: &mut Findings, rep: &Replication, dest: &Destination, period: Duration, from: &str) {
    let interval = rep.settings.interval;
    let held = (period.as_secs_f64() / interval.as_secs_f64().max(1.0))
        .ceil()
        .max(1.0);
    f.add(
        FindingId::CanariesRetainedByObjectLock,
        format!(
            "the destination bucket {} keeps every canary replica for about {} ({from}): at one canary every {}, about {held:.0} replicas are held at any time; replicanary deletes each once its retain-until date has passed",
            dest.bucket,
            human(period),
            humantime::format_duration(interval),
        ),
        "nothing to fix if the retention is intended; to hold fewer canaries, raise this replication's `interval` (replicas held ≈ retention ÷ interval)",
    );
}

/// A duration rounded for people: seconds below an hour, minutes below a day, then hours.
fn human(d: Duration) -> String {
    let unit = match d.as_secs() {
        s if s < 3_600 => 1,
        s if s < 86_400 => 60,
        _ => 3_600,
    };
    let rounded = Duration::from_secs((d.as_secs() + unit / 2) / unit * unit);
    humantime::format_duration(rounded).to_string()
}

/// Why KMS refused the destination the replica's key.
fn kms_refusal(f: &mut Findings, dest: &Destination, v: &DestinationVerdict) {
    let key = v
        .replica
        .kms_key
        .clone()
        .unwrap_or_else(|| "the replica's key".to_owned());
    let code = v
        .aws_error
        .as_ref()
        .and_then(|e| e.code.as_deref())
        .unwrap_or_default();
    match code {
        "KMS.DisabledException" => f.add(
            FindingId::KmsKeyDisabled,
            format!("the replica's KMS key {key} is disabled"),
            "enable the key (kms enable-key) — every replica under it is unreadable until then",
        ),
        "KMS.KMSInvalidStateException" => f.add(
            FindingId::KmsKeyPendingDeletion,
            format!("the replica's KMS key {key} is pending deletion (or otherwise unusable)"),
            "cancel the key deletion (kms cancel-key-deletion) and enable the key",
        ),
        "KMS.NotFoundException" => f.add(
            FindingId::KmsKeyNotFound,
            format!("the replica's KMS key {key} does not exist"),
            format!("point ReplicaKmsKeyID at an existing key of the destination account: {}", expected_text(dest)),
        ),
        // The replica is under the expected key, yet KMS refused: the destination probe role
        // itself may not decrypt (its kms:Decrypt, or the key policy) — replicanary's access.
        _ if v
            .replica
            .kms_key
            .as_deref()
            .zip(dest.expected_kms_key.as_ref())
            .is_some_and(|(k, e)| e.matches(k)) => f.add(
            FindingId::ProbeRoleKmsDenied,
            format!("the replica is under the expected key {key}, but KMS refuses the destination probe role kms:Decrypt: the role's IAM policy or the key policy does not allow it (replicanary's own access, not the replication)"),
            format!("allow the destination probe role kms:Decrypt on {key} (deploy/iam/destination-probe-policy.json: ExpectedKey), and let the key policy allow the account's IAM policies or the role"),
        ),
        _ => f.add(
            FindingId::ReplicaKmsDenied,
            format!("KMS refuses the destination role the replica's key {key}: nobody the probe can act as may decrypt it"),
            format!(
                "grant the destination account kms:Decrypt in the key policy of {key}, or set the rule's ReplicaKmsKeyID to {} (the replication role needs kms:Encrypt on it)",
                expected_text(dest)
            ),
        ),
    }
}
