//! The sweeps: at start-up and then every `sweep_interval`, leftovers of crashes and
//! replicas that arrived after their probe stopped watching are deleted — only versions
//! whose key has the exact canary shape under the prefix, older than `sweep_min_age`, whose
//! `HeadObject` shows the canary marker.
//!
//! A sweep is bounded: at most [`SWEEP_MAX_CALLS`] HEAD and DELETE calls per bucket (and
//! none past a deadline), after one listing of at most [`SWEEP_MAX_LISTED`] versions. It
//! leaves alone what the ledger already tracks, and remembers ([`SweepMemory`]) versions
//! whose HEAD showed a future Object Lock retain-until date, so that retained canaries are
//! not looked at again before that date.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use super::sweep_may_consider;
use crate::aws::{ErrorClass, ObjectStore};
use crate::canary::carries_marker;

/// HEAD + DELETE calls one sweep makes in one bucket, at most.
pub const SWEEP_MAX_CALLS: usize = 500;
/// Versions one sweep lists per bucket, at most.
pub const SWEEP_MAX_LISTED: usize = 10_000;
/// Retained versions remembered per bucket, at most (beyond, they are looked at again).
const MEMORY_MAX: usize = 10_000;

/// What one sweep of one bucket may spend.
#[derive(Debug, Clone, Copy)]
pub struct SweepLimits {
    /// HEAD + DELETE calls.
    pub max_calls: usize,
    /// No call is started after this (the replication's next probe).
    pub deadline: Option<Instant>,
}

impl Default for SweepLimits {
    fn default() -> Self {
        SweepLimits {
            max_calls: SWEEP_MAX_CALLS,
            deadline: None,
        }
    }
}

/// One bucket's sweep.
#[derive(Debug, Clone, Copy)]
pub struct Sweep<'a> {
    pub bucket: &'a str,
    pub key_prefix: &'a str,
    pub min_age: Duration,
    pub now: SystemTime,
    pub limits: SweepLimits,
}

/// What the sweeps of one bucket remember between runs: canary versions whose HEAD showed
/// a future retain-until date.
#[derive(Debug, Default)]
pub struct SweepMemory {
    retained: HashMap<(String, String), SystemTime>,
}

impl SweepMemory {
    /// Remembered versions still retained at `wall`.
    pub fn retained(&self, wall: SystemTime) -> usize {
        self.retained.values().filter(|t| **t > wall).count()
    }
}

/// What one sweep of one bucket did.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct SweepReport {
    pub listed: usize,
    pub deleted: usize,
    pub failed: usize,
    /// Canary versions left for their Object Lock retention.
    pub retained: usize,
    /// HEAD and DELETE calls made.
    pub calls: usize,
    /// The call budget or the deadline ended the sweep early.
    pub truncated: bool,
}

/// Deletes leftovers in one bucket within `s.limits`, skipping `(key, version id)`s in
/// `skip` (the ledger's) and versions `memory` knows to be retained.
pub async fn sweep_bucket<S: ObjectStore>(
    store: &S,
    s: &Sweep<'_>,
    memory: &mut SweepMemory,
    skip: &HashSet<(String, String)>,
) -> SweepReport {
    let mut report = SweepReport::default();
    memory.retained.retain(|_, until| *until > s.now);
    let versions = match store
        .list_versions(s.bucket, s.key_prefix, SWEEP_MAX_LISTED)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(bucket = s.bucket, prefix = s.key_prefix, error = %e, "sweep could not list canaries");
            return report;
        }
    };
    report.listed = versions.len();
    // One call taken from the budget; none left: the sweep stops, truncated.
    let take_call = |r: &mut SweepReport| {
        let left =
            r.calls < s.limits.max_calls && s.limits.deadline.is_none_or(|d| Instant::now() < d);
        if left {
            r.calls += 1;
        } else {
            r.truncated = true;
        }
        left
    };
    for v in versions
        .iter()
        .filter(|v| sweep_may_consider(s.key_prefix, v, s.now, s.min_age))
    {
        let id = (v.key.clone(), v.version_id.clone());
        if skip.contains(&id) {
            continue;
        }
        if memory.retained.contains_key(&id) {
            report.retained += 1;
            continue;
        }
        if !take_call(&mut report) {
            break;
        }
        let head = match store.head(s.bucket, &v.key, &v.version_id).await {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!(bucket = s.bucket, key = %v.key, error = %e, "sweep skips a version it cannot inspect");
                continue;
            }
        };
        if !carries_marker(&head.metadata) {
            continue;
        }
        if let Some(until) = head.retain_until.filter(|t| *t > s.now) {
            if memory.retained.len() < MEMORY_MAX {
                memory.retained.insert(id, until);
            }
            report.retained += 1;
            continue;
        }
        if !take_call(&mut report) {
            break;
        }
        match store.delete_version(s.bucket, &v.key, &v.version_id).await {
            Ok(()) => report.deleted += 1,
            // S3 still holds it under Object Lock (its clock and ours differ): next sweep.
            Err(e)
                if head.retain_until.is_some()
                    && matches!(e.class, ErrorClass::AccessDenied | ErrorClass::Forbidden) =>
            {
                report.retained += 1;
            }
            Err(_) => report.failed += 1,
        }
    }
    report
}
