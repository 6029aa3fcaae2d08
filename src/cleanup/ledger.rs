//! The ledger: the versions this process wrote, deleted after each probe — and only those.
//!
//! What keeps deletes from turning into a storm of calls:
//! - a version whose `HeadObject` showed an Object Lock retain-until date is not tried
//!   before that date (it counts as retained, not as a failure);
//! - a failed delete is tried again no sooner than one probe interval later, the wait
//!   doubling with each failure up to a day ([`Retry`]); a 403 on a version that shows (or
//!   showed) a retain-until date is retention, not failure;
//! - one flush makes at most one delete per version of the probe that just ran plus
//!   [`FLUSH_EXTRA_CALLS`], whatever is queued (the last flush, at shutdown, tries every
//!   due version once, up to [`FINAL_FLUSH_CALLS`] more);
//! - uncertain keys (a write that failed or timed out) are listed at most
//!   [`WATCH_LISTINGS_PER_FLUSH`] per flush (all of them, at most [`MAX_UNCERTAIN`], at
//!   shutdown), with the same backoff when a listing fails.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::{Retry, Uncertain, Written, may_delete_written};
use crate::aws::{AwsError, ErrorClass, ObjectStore, Site, Stores};
use crate::canary::{carries_marker, is_canary_key};
use crate::metrics::Metrics;
use crate::model::Side;

/// Calls a flush may make beyond one per version the last probe added.
pub const FLUSH_EXTRA_CALLS: usize = 4;
/// Calls the last flush (at shutdown) may make beyond those: every due version once.
pub const FINAL_FLUSH_CALLS: usize = 64;
/// Uncertain keys listed per flush, at most.
pub const WATCH_LISTINGS_PER_FLUSH: usize = 8;
/// Versions of one uncertain key examined per listing.
const WATCH_VERSIONS: usize = 4;
/// More pending deletes than this means deletes fail for good; stop growing.
const MAX_PENDING: usize = 10_000;
/// Uncertain keys cost a listing each: watch at most this many (the oldest make way; the
/// periodic sweep is the backstop).
pub const MAX_UNCERTAIN: usize = 64;

/// When a flush happens: the monotonic clock for backoff, the wall clock for retain-until
/// dates.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: Instant,
    pub wall: SystemTime,
}

impl Clock {
    pub fn now() -> Clock {
        Clock {
            now: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// One version waiting for its delete.
#[derive(Debug)]
struct Entry {
    w: Written,
    /// The version's Object Lock retain-until date, as its HeadObject last showed it.
    retain_until: Option<SystemTime>,
    /// S3 refused the delete (403) although the known retain-until date had passed by our
    /// clock: still retained by S3's; tried again later, not counted as a failure.
    refused_while_locked: bool,
    /// Failed attempts in a row.
    failures: u32,
    /// Not tried again before then.
    next_try: Option<Instant>,
    /// Added since the last flush (the probe that just ran): always within the budget.
    fresh: bool,
}

/// An uncertain key being watched.
#[derive(Debug)]
struct Watch {
    u: Uncertain,
    failures: u32,
    next_try: Option<Instant>,
}

/// Calls one flush may still make.
struct Budget {
    fresh: usize,
    extra: usize,
}

impl Budget {
    fn take(&mut self, fresh: bool) -> bool {
        if fresh && self.fresh > 0 {
            self.fresh -= 1;
            true
        } else if self.extra > 0 {
            self.extra -= 1;
            true
        } else {
            false
        }
    }
}

/// Versions written and not yet deleted, per replication; flushed around each probe.
pub struct Ledger {
    replication: String,
    key_prefix: String,
    retry: Retry,
    pending: Vec<Entry>,
    watches: Vec<Watch>,
    metrics: Arc<Metrics>,
}

impl Ledger {
    pub fn new(replication: &str, key_prefix: &str, retry: Retry, metrics: Arc<Metrics>) -> Ledger {
        Ledger {
            replication: replication.to_owned(),
            key_prefix: key_prefix.to_owned(),
            retry,
            pending: Vec::new(),
            watches: Vec::new(),
            metrics,
        }
    }

    /// The replication whose versions these are.
    pub fn replication(&self) -> &str {
        &self.replication
    }

    /// Records a version as written (and counts it outstanding).
    pub fn add(&mut self, w: Written) {
        if self.push(w, None, true) {
            self.metrics.canary_written();
        }
    }

    /// Records a version that was counted outstanding as it was written (the probe counts
    /// its canary at once; the ledger takes it over after the probe). One the ledger does
    /// not take is counted out again.
    pub fn add_counted(&mut self, w: Written) {
        if !self.push(w, None, true) {
            self.metrics.canary_deleted();
        }
    }

    /// Whether the version was taken (it is tracked now, and was not before).
    fn push(&mut self, w: Written, retain_until: Option<SystemTime>, fresh: bool) -> bool {
        if !may_delete_written(&self.key_prefix, &w) {
            tracing::error!(replication = %self.replication, key = %w.key, "refusing to track a non-canary key for deletion");
            return false;
        }
        let same =
            |e: &Entry| e.w.site == w.site && e.w.key == w.key && e.w.version_id == w.version_id;
        if self.pending.iter().any(same) {
            return false;
        }
        if self.pending.len() >= MAX_PENDING {
            tracing::error!(replication = %self.replication, key = %w.key, version_id = %w.version_id,
                "too many canaries wait for deletion; this one is left to the periodic sweep");
            return false;
        }
        self.pending.push(Entry {
            w,
            retain_until,
            refused_while_locked: false,
            failures: 0,
            next_try: None,
            fresh,
        });
        true
    }

    /// Records what a HeadObject showed of a written version: its Object Lock retain-until
    /// date. The version is not tried before then.
    pub fn note_retention(&mut self, site: Site, key: &str, version_id: &str, until: SystemTime) {
        let same =
            |e: &&mut Entry| e.w.site == site && e.w.key == key && e.w.version_id == version_id;
        if let Some(e) = self.pending.iter_mut().find(same) {
            e.retain_until = Some(until);
        }
    }

    /// Records a canary key whose versions may not all be known.
    pub fn add_uncertain(&mut self, u: Uncertain) {
        if !is_canary_key(&self.key_prefix, &u.key) {
            return;
        }
        // Under a long outage only the newest are watched; the periodic sweep is the backstop.
        if self.watches.len() >= MAX_UNCERTAIN {
            self.watches.remove(0);
        }
        self.watches.push(Watch {
            u,
            failures: 0,
            next_try: None,
        });
    }

    /// Versions and keys still to be dealt with.
    pub fn pending(&self) -> usize {
        self.pending.len() + self.watches.len()
    }

    /// Versions of one side that wait for their Object Lock retention to pass.
    pub fn retained(&self, side: Side, wall: SystemTime) -> usize {
        self.pending
            .iter()
            .filter(|e| e.w.side() == side)
            .filter(|e| e.refused_while_locked || e.retain_until.is_some_and(|t| t > wall))
            .count()
    }

    /// `(key, version id)` of every version pending in `bucket` of one store: the sweeps
    /// leave them to the ledger.
    pub fn tracked(&self, site: Site, bucket: &str) -> HashSet<(String, String)> {
        self.pending
            .iter()
            .filter(|e| e.w.site == site && e.w.bucket == bucket)
            .map(|e| (e.w.key.clone(), e.w.version_id.clone()))
            .collect()
    }

    /// A flush after a probe: due versions, within the budget.
    pub async fn flush<S: ObjectStore>(&mut self, source: &S, destinations: &[S]) {
        self.flush_at(source, destinations, Clock::now(), false)
            .await;
    }

    /// The last flush, at shutdown: every version whose retention allows is tried once,
    /// backoff or not, within [`FINAL_FLUSH_CALLS`].
    pub async fn flush_final<S: ObjectStore>(&mut self, source: &S, destinations: &[S]) {
        self.flush_at(source, destinations, Clock::now(), true)
            .await;
    }

    /// A flush at `clock`; `last`: the one at shutdown.
    pub async fn flush_at<S: ObjectStore>(
        &mut self,
        source: &S,
        destinations: &[S],
        clock: Clock,
        last: bool,
    ) {
        if !self.watches.is_empty() {
            self.flush_watches(source, destinations, clock, last).await;
        }
        let stores = Stores {
            source,
            destinations,
        };
        let fresh = self.pending.iter().filter(|e| e.fresh).count();
        let extra = if last {
            FINAL_FLUSH_CALLS
        } else {
            FLUSH_EXTRA_CALLS
        };
        let mut budget = Budget { fresh, extra };
        let mut still = Vec::with_capacity(self.pending.len());
        for mut e in std::mem::take(&mut self.pending) {
            let fresh = std::mem::replace(&mut e.fresh, false);
            let Some(store) = stores.at(e.w.site) else {
                continue;
            };
            let retained = e.retain_until.is_some_and(|t| t > clock.wall);
            let due = last || e.next_try.is_none_or(|t| t <= clock.now);
            if retained || !due || !budget.take(fresh) {
                still.push(e);
                continue;
            }
            let w = &e.w;
            match store.delete_version(&w.bucket, &w.key, &w.version_id).await {
                Ok(()) => self.metrics.canary_deleted(),
                Err(err) if err.class == ErrorClass::NotFound => self.metrics.canary_deleted(),
                Err(err) => {
                    self.failed(store, &mut e, &err, clock, &mut budget).await;
                    still.push(e);
                }
            }
        }
        self.pending = still;
    }

    /// A delete failed: retention (not a failure) when the version shows a retain-until
    /// date, else a failure; either way the next try waits.
    async fn failed<S: ObjectStore>(
        &self,
        store: &S,
        e: &mut Entry,
        err: &AwsError,
        clock: Clock,
        budget: &mut Budget,
    ) {
        // Object Lock refuses a version's delete with 403 AccessDenied: ask the version's
        // retention before calling the refusal a failure.
        let refused = matches!(err.class, ErrorClass::AccessDenied | ErrorClass::Forbidden);
        if refused && budget.take(false) {
            let w = &e.w;
            if let Ok(head) = store.head(&w.bucket, &w.key, &w.version_id).await
                && head.retain_until.is_some()
            {
                e.retain_until = head.retain_until;
            }
        }
        let w = &e.w;
        if let Some(until) = e.retain_until.filter(|t| refused && *t > clock.wall) {
            // Retained, not failed: tried again after the date (and never sooner than an
            // interval after this try).
            e.refused_while_locked = false;
            e.next_try = Some(clock.now + self.retry.after(1));
            tracing::info!(replication = %self.replication, side = w.side().as_str(), key = %w.key,
                version_id = %w.version_id, retain_until = %humantime::format_rfc3339_seconds(until),
                "canary version retained by Object Lock; it is deleted after its retain-until date");
            return;
        }
        e.failures += 1;
        let wait = self.retry.after(e.failures);
        e.next_try = Some(clock.now + wait);
        if refused && e.retain_until.is_some() {
            e.refused_while_locked = true;
            tracing::info!(replication = %self.replication, side = w.side().as_str(), key = %w.key,
                version_id = %w.version_id, retry_in_seconds = wait.as_secs_f64(),
                "S3 still retains a canary version past its retain-until date; retrying later");
            return;
        }
        self.metrics.cleanup_failed(&self.replication, w.side());
        tracing::warn!(
            replication = %self.replication,
            side = w.side().as_str(),
            key = %w.key,
            version_id = %w.version_id,
            aws_error_code = err.code.as_deref(),
            error = %err,
            failures = e.failures,
            retry_in_seconds = wait.as_secs_f64(),
            "canary delete failed; will retry"
        );
    }

    /// Lists due uncertain keys (a bounded number per flush) and hands their marker-carrying
    /// versions to the ledger; keeps watching a destination until its replica can no
    /// longer arrive.
    async fn flush_watches<S: ObjectStore>(
        &mut self,
        source: &S,
        destinations: &[S],
        clock: Clock,
        last: bool,
    ) {
        let mut listings = if last {
            MAX_UNCERTAIN
        } else {
            WATCH_LISTINGS_PER_FLUSH
        };
        let stores = Stores {
            source,
            destinations,
        };
        let mut still = Vec::with_capacity(self.watches.len());
        let mut found = Vec::new();
        for mut w in std::mem::take(&mut self.watches) {
            let Some(store) = stores.at(w.u.site) else {
                continue;
            };
            let due = last || w.next_try.is_none_or(|t| t <= clock.now);
            if !due || listings == 0 {
                still.push(w);
                continue;
            }
            listings -= 1;
            // A write that timed out may land after the answer did, and its replica later
            // still: every side is watched until `until`.
            let time_up = clock.now >= w.u.until;
            let failed = self.look(store, &w.u, &mut found).await;
            if failed {
                w.failures += 1;
                w.next_try = Some(clock.now + self.retry.after(w.failures));
                self.metrics.cleanup_failed(&self.replication, w.u.side());
                tracing::warn!(replication = %self.replication, side = w.u.side().as_str(), key = %w.u.key,
                    failures = w.failures, "cannot list an uncertain canary key; will retry");
            }
            // Done once its time is up and a listing after that worked.
            if failed || !time_up {
                still.push(w);
            }
        }
        self.watches = still;
        for (w, retain_until) in found {
            tracing::info!(replication = %self.replication, side = w.side().as_str(), key = %w.key,
                version_id = %w.version_id, "found a canary version left by a failed write; deleting it");
            if self.push(w, retain_until, false) {
                self.metrics.canary_written();
            }
        }
    }

    /// Lists one uncertain key; its marker-carrying versions not yet pending go to `found`.
    /// Returns whether a call failed (the key must be looked at again).
    async fn look<S: ObjectStore>(
        &self,
        store: &S,
        u: &Uncertain,
        found: &mut Vec<(Written, Option<SystemTime>)>,
    ) -> bool {
        let versions = match store.list_versions(&u.bucket, &u.key, 100).await {
            Ok(v) => v,
            Err(_) => return true,
        };
        let mut failed = false;
        let known = self.tracked(u.site, &u.bucket);
        let unknown = versions
            .iter()
            .filter(|v| v.key == u.key && !known.contains(&(v.key.clone(), v.version_id.clone())))
            .take(WATCH_VERSIONS);
        for v in unknown {
            match store.head(&u.bucket, &v.key, &v.version_id).await {
                Ok(h) if carries_marker(&h.metadata) => found.push((
                    Written {
                        site: u.site,
                        bucket: u.bucket.clone(),
                        key: v.key.clone(),
                        version_id: v.version_id.clone(),
                    },
                    h.retain_until,
                )),
                Ok(_) => {}
                Err(e) if e.class == ErrorClass::NotFound => {}
                Err(_) => failed = true,
            }
        }
        failed
    }
}
