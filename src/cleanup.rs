//! Deleting canaries, and nothing else.
//!
//! Two paths delete, and both go through a rule in this file:
//! - the [`Ledger`]: versions this process wrote (the canary's source version, and the
//!   replica of that same version id), deleted after each probe and retried until gone;
//! - the start-up [`sweep`]: leftovers of a crash, deleted only when the key has the
//!   exact canary shape under the replication's prefix, the version is older than
//!   `sweep_min_age`, and `HeadObject` shows the canary marker.
//!
//! Every delete addresses one version id. Nothing here can delete a key's current
//! version "in general", list-and-delete a prefix, or touch a key outside the prefix.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::aws::{ErrorClass, ObjectStore, VersionEntry};
use crate::metrics::{Metrics, Side};
use crate::probe::canary::{carries_marker, is_canary_key};

/// One version this process wrote, to be deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub side: Side,
    /// Which store wrote or holds it: `None` for the source, `Some(i)` for destination `i`.
    pub destination: Option<usize>,
    pub bucket: String,
    pub key: String,
    pub version_id: String,
}

/// The deletion rule for versions this process wrote: a canary key under the prefix.
pub fn may_delete_written(key_prefix: &str, w: &Written) -> bool {
    is_canary_key(key_prefix, &w.key) && !w.version_id.is_empty()
}

/// The sweep's first filter, on what a listing shows: canary-shaped key under the prefix,
/// a version id, and old enough that no live probe can still own it.
pub fn sweep_may_consider(
    key_prefix: &str,
    v: &VersionEntry,
    now: SystemTime,
    min_age: Duration,
) -> bool {
    let old_enough = v
        .last_modified
        .and_then(|t| now.duration_since(t).ok())
        .is_some_and(|age| age >= min_age);
    is_canary_key(key_prefix, &v.key)
        && !v.version_id.is_empty()
        && v.version_id != "null"
        && old_enough
}

/// Versions written and not yet deleted, per replication; retried after each probe.
pub struct Ledger {
    replication: String,
    key_prefix: String,
    pending: Vec<Written>,
    metrics: Arc<Metrics>,
}

/// More pending deletes than this means deletes fail for good; stop growing.
const MAX_PENDING: usize = 10_000;

impl Ledger {
    pub fn new(replication: &str, key_prefix: &str, metrics: Arc<Metrics>) -> Ledger {
        Ledger {
            replication: replication.to_owned(),
            key_prefix: key_prefix.to_owned(),
            pending: Vec::new(),
            metrics,
        }
    }

    /// Records a version as written (and counts it outstanding).
    pub fn add(&mut self, w: Written) {
        if !may_delete_written(&self.key_prefix, &w) {
            tracing::error!(replication = %self.replication, key = %w.key, "refusing to track a non-canary key for deletion");
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            tracing::error!(replication = %self.replication, key = %w.key, version_id = %w.version_id,
                "too many canaries wait for deletion; this one is left in the bucket");
            return;
        }
        self.metrics.canary_written();
        self.pending.push(w);
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Tries to delete every pending version; failures stay for the next round.
    pub async fn flush<S: ObjectStore>(&mut self, source: &S, destinations: &[S]) {
        let mut still = Vec::new();
        for w in std::mem::take(&mut self.pending) {
            let store = match w.destination {
                None => source,
                Some(i) => match destinations.get(i) {
                    Some(s) => s,
                    None => continue,
                },
            };
            match store.delete_version(&w.bucket, &w.key, &w.version_id).await {
                Ok(()) => self.metrics.canary_deleted(),
                Err(e) if e.class == ErrorClass::NotFound => self.metrics.canary_deleted(),
                Err(e) => {
                    self.metrics.cleanup_failed(&self.replication, w.side);
                    tracing::warn!(
                        replication = %self.replication,
                        side = w.side.as_str(),
                        key = %w.key,
                        version_id = %w.version_id,
                        aws_error_code = e.code.as_deref(),
                        error = %e,
                        "canary delete failed; will retry"
                    );
                    still.push(w);
                }
            }
        }
        self.pending = still;
    }
}

/// What one sweep of one bucket did.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct SweepReport {
    pub listed: usize,
    pub deleted: usize,
    pub failed: usize,
}

/// At most this many versions are examined per bucket and sweep.
const SWEEP_MAX: usize = 10_000;

/// Deletes crash leftovers in one bucket: canary-shaped, old enough, marker-carrying.
pub async fn sweep<S: ObjectStore>(
    store: &S,
    bucket: &str,
    key_prefix: &str,
    min_age: Duration,
    now: SystemTime,
) -> SweepReport {
    let mut report = SweepReport::default();
    let versions = match store.list_versions(bucket, key_prefix, SWEEP_MAX).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(bucket, prefix = key_prefix, error = %e, "sweep could not list canaries");
            return report;
        }
    };
    report.listed = versions.len();
    for v in versions
        .iter()
        .filter(|v| sweep_may_consider(key_prefix, v, now, min_age))
    {
        let head = match store.head(bucket, &v.key, &v.version_id).await {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!(bucket, key = %v.key, error = %e, "sweep skips a version it cannot inspect");
                continue;
            }
        };
        if !carries_marker(&head.metadata) {
            continue;
        }
        match store.delete_version(bucket, &v.key, &v.version_id).await {
            Ok(()) => report.deleted += 1,
            Err(_) => report.failed += 1,
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, age_secs: u64) -> VersionEntry {
        VersionEntry {
            key: key.to_owned(),
            version_id: "v1".to_owned(),
            last_modified: Some(SystemTime::now() - Duration::from_secs(age_secs)),
        }
    }

    #[test]
    fn sweep_considers_only_old_canary_keys() {
        let p = "replicanary/r/";
        let canary = "replicanary/r/20261128T154049Z-0123456789abcdef";
        let hour = Duration::from_secs(3600);
        let now = SystemTime::now();
        assert!(sweep_may_consider(p, &entry(canary, 7200), now, hour));
        assert!(
            !sweep_may_consider(p, &entry(canary, 60), now, hour),
            "too young"
        );
        assert!(!sweep_may_consider(
            p,
            &entry("replicanary/r/notes.txt", 7200),
            now,
            hour
        ));
        assert!(!sweep_may_consider(
            p,
            &entry("data/20261128T154049Z-0123456789abcdef", 7200),
            now,
            hour
        ));
        let mut unknown_age = entry(canary, 7200);
        unknown_age.last_modified = None;
        assert!(
            !sweep_may_consider(p, &unknown_age, now, hour),
            "unknown age is never old enough"
        );
        let mut null_version = entry(canary, 7200);
        null_version.version_id = "null".to_owned();
        assert!(!sweep_may_consider(p, &null_version, now, hour));
    }

    #[test]
    fn only_canary_keys_may_be_deleted_as_written() {
        let w = |key: &str| Written {
            side: Side::Source,
            destination: None,
            bucket: "b".to_owned(),
            key: key.to_owned(),
            version_id: "v".to_owned(),
        };
        assert!(may_delete_written(
            "p/r/",
            &w("p/r/20261128T154049Z-0123456789abcdef")
        ));
        assert!(!may_delete_written("p/r/", &w("p/r/user-file")));
        assert!(!may_delete_written("p/r/", &w("elsewhere")));
    }
}
