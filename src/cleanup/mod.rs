//! Deleting canaries, and nothing else.
//!
//! Two paths delete, and both go through the rule in this file:
//! - the [`Ledger`] (`ledger.rs`): versions this process wrote (the canary's source version,
//!   and the replica of that same version id), deleted after each probe and retried — with
//!   backoff, and a bounded number of calls per flush — until gone; a version under Object
//!   Lock retention is deleted after its retain-until date, never before;
//! - the [`sweep`]s (`sweep.rs`), at start-up and then every `sweep_interval`: leftovers of
//!   a crash and replicas that arrived after their probe stopped watching, deleted only when
//!   the key has the exact canary shape under the replication's prefix, the version is
//!   older than `sweep_min_age`, and `HeadObject` shows the canary marker.
//!
//! Every delete addresses one version id. Nothing here can delete a key's current
//! version "in general", list-and-delete a prefix, or touch a key outside the prefix.

pub mod janitor;
mod ledger;
mod sweep;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant, SystemTime};

use crate::aws::{Site, VersionEntry};
use crate::canary::is_canary_key;
use crate::model::Side;

pub use janitor::{Janitor, Leftovers};
pub use ledger::Ledger;
pub use sweep::{SWEEP_MAX_CALLS, Sweep, SweepLimits, SweepMemory, SweepReport, sweep_bucket};

/// One version this process wrote, to be deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Which store wrote or holds it.
    pub site: Site,
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

/// A canary key whose versions are not all known: a PutObject that failed or timed out
/// may still have been stored (and replicated) under a version id never seen. Versions of
/// exactly this key that carry the marker are listed and deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Uncertain {
    pub site: Site,
    pub bucket: String,
    pub key: String,
    /// A replica may still arrive until then: destinations are watched that long.
    pub until: Instant,
}

/// How a failing call is retried: never sooner than `base` after a failure (the probe
/// interval), the wait doubling with each further failure up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    pub base: Duration,
    pub cap: Duration,
}

/// The longest wait between two attempts of one failing delete.
pub const RETRY_CAP: Duration = Duration::from_secs(24 * 3600);

impl Retry {
    /// Retries every `base` (the probe interval), doubling up to [`RETRY_CAP`].
    pub fn every(base: Duration) -> Retry {
        Retry {
            base,
            cap: RETRY_CAP.max(base),
        }
    }

    /// The wait after the `failures`-th failure in a row (1 → `base`, 2 → 2·`base`, …).
    pub fn after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }
}

impl Written {
    pub fn side(&self) -> Side {
        self.site.side()
    }
}

impl Uncertain {
    pub fn side(&self) -> Side {
        self.site.side()
    }
}
