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
use std::time::{Duration, Instant, SystemTime};

use crate::aws::{ErrorClass, ObjectStore, VersionEntry};
use crate::canary::{carries_marker, is_canary_key};
use crate::metrics::Metrics;
use crate::model::Side;

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

/// A canary key whose versions are not all known: a PutObject that failed or timed out
/// may still have been stored (and replicated) under a version id never seen. Versions of
/// exactly this key that carry the marker are listed and deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Uncertain {
    pub side: Side,
    /// `None` for the source, `Some(i)` for destination `i`.
    pub destination: Option<usize>,
    pub bucket: String,
    pub key: String,
    /// A replica may still arrive until then: destinations are watched that long.
    pub until: Instant,
}

/// Versions written and not yet deleted, per replication; retried after each probe.
pub struct Ledger {
    replication: String,
    key_prefix: String,
    pending: Vec<Written>,
    uncertain: Vec<Uncertain>,
    metrics: Arc<Metrics>,
}

/// More pending deletes than this means deletes fail for good; stop growing.
const MAX_PENDING: usize = 10_000;
/// Uncertain keys cost a listing per flush each: watch at most this many.
const MAX_UNCERTAIN: usize = 64;

impl Ledger {
    pub fn new(replication: &str, key_prefix: &str, metrics: Arc<Metrics>) -> Ledger {
        Ledger {
            replication: replication.to_owned(),
            key_prefix: key_prefix.to_owned(),
            pending: Vec::new(),
            uncertain: Vec::new(),
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

    /// Records a canary key whose versions may not all be known.
    pub fn add_uncertain(&mut self, u: Uncertain) {
        if !is_canary_key(&self.key_prefix, &u.key) {
            return;
        }
        // Under a long outage only the newest are watched; the start-up sweep is the backstop.
        if self.uncertain.len() >= MAX_UNCERTAIN {
            self.uncertain.remove(0);
        }
        self.uncertain.push(u);
    }

    pub fn pending(&self) -> usize {
        self.pending.len() + self.uncertain.len()
    }

    /// Deletes the marker-carrying versions of uncertain keys; keeps watching a destination
    /// until its replica can no longer arrive.
    async fn flush_uncertain<S: ObjectStore>(&mut self, source: &S, destinations: &[S]) {
        let mut still = Vec::new();
        for u in std::mem::take(&mut self.uncertain) {
            let Some(store) = store_for(source, destinations, u.destination) else {
                continue;
            };
            // A write that timed out may land after the answer did, and its replica later
            // still: every side is watched until `until`.
            let mut done = Instant::now() >= u.until;
            match store.list_versions(&u.bucket, &u.key, 100).await {
                Ok(versions) => {
                    for v in versions.iter().filter(|v| v.key == u.key) {
                        let marked = match store.head(&u.bucket, &v.key, &v.version_id).await {
                            Ok(h) => carries_marker(&h.metadata),
                            Err(e) if e.class == ErrorClass::NotFound => false,
                            Err(_) => {
                                done = false;
                                false
                            }
                        };
                        if !marked {
                            continue;
                        }
                        match store.delete_version(&u.bucket, &v.key, &v.version_id).await {
                            Ok(()) => {
                                tracing::info!(replication = %self.replication, side = u.side.as_str(),
                                key = %v.key, version_id = %v.version_id, "deleted a canary version left by a failed write")
                            }
                            Err(e) if e.class == ErrorClass::NotFound => {}
                            Err(_) => {
                                self.metrics.cleanup_failed(&self.replication, u.side);
                                done = false;
                            }
                        }
                    }
                }
                Err(_) => {
                    self.metrics.cleanup_failed(&self.replication, u.side);
                    done = false;
                }
            }
            if !done {
                still.push(u);
            }
        }
        self.uncertain = still;
    }

    /// Tries to delete every pending version; failures stay for the next round.
    pub async fn flush<S: ObjectStore>(&mut self, source: &S, destinations: &[S]) {
        self.flush_versions(source, destinations).await;
        if !self.uncertain.is_empty() {
            self.flush_uncertain(source, destinations).await;
        }
    }

    async fn flush_versions<S: ObjectStore>(&mut self, source: &S, destinations: &[S]) {
        let mut still = Vec::new();
        for w in std::mem::take(&mut self.pending) {
            let Some(store) = store_for(source, destinations, w.destination) else {
                continue;
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

/// The store of the source (`None`) or of destination `i`.
fn store_for<'a, S>(
    source: &'a S,
    destinations: &'a [S],
    destination: Option<usize>,
) -> Option<&'a S> {
    match destination {
        None => Some(source),
        Some(i) => destinations.get(i),
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

/// Property tests of the deletion rule (issue 6, campaign 4): for arbitrary keys, prefixes,
/// metadata, ages and version lists — and a store whose listing even lies about the prefix —
/// nothing outside "this process wrote this exact version under the prefix" (the ledger)
/// or "canary-shaped, marker-carrying, old enough" (the sweep) is ever deleted.
#[cfg(test)]
mod props {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;
    use crate::canary::{Canary, MARKER_KEY, MARKER_VALUE, SHA256_KEY};
    use crate::testing::{MemStore, Obj};

    /// The canary key shape, written independently of `is_canary_key`: a name of exactly
    /// `DDDDDDDDTDDDDDDZ-HHHHHHHHHHHHHHHH` (D a digit, H lowercase hex) after the prefix.
    fn oracle_canary_key(prefix: &str, key: &str) -> bool {
        const SHAPE: &str = "DDDDDDDDTDDDDDDZ-HHHHHHHHHHHHHHHH";
        let Some(name) = key.strip_prefix(prefix) else {
            return false;
        };
        name.chars().count() == SHAPE.len()
            && name.chars().zip(SHAPE.chars()).all(|(c, s)| match s {
                'D' => c.is_ascii_digit(),
                'H' => matches!(c, '0'..='9' | 'a'..='f'),
                lit => c == lit,
            })
    }

    fn oracle_marker(meta: &HashMap<String, String>) -> bool {
        meta.get("replicanary").map(String::as_str) == Some("canary-v1")
            && meta
                .get("replicanary-sha256")
                .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
    }

    fn prefix() -> impl Strategy<Value = String> {
        prop_oneof![
            "replicanary/[a-z0-9-]{1,10}/",
            "[a-z]{1,6}/[a-z]{1,6}/",
            "\\PC{0,12}",
            Just(String::new()),
            Just("replicanary/".to_owned()),
        ]
    }

    fn canary_name() -> impl Strategy<Value = String> {
        "[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}"
    }

    /// A key that is a canary under `prefix`, a near miss of one, under another prefix, or
    /// anything at all.
    fn key_for(own: String) -> impl Strategy<Value = String> {
        let p1 = own.clone();
        let p2 = own.clone();
        let p3 = own;
        prop_oneof![
            3 => canary_name().prop_map(move |n| format!("{p1}{n}")),
            3 => (canary_name(), any::<prop::sample::Index>(), any::<char>(), 0..5u8)
                .prop_map(move |(n, at, c, how)| mutate(&format!("{p2}{n}"), at, c, how)),
            1 => (prefix(), canary_name()).prop_map(|(p, n)| format!("{p}{n}")),
            1 => (canary_name(), "\\PC{0,3}").prop_map(move |(n, s)| format!("{s}{p3}{n}")),
            2 => "\\PC{0,48}",
        ]
    }

    /// One edit of a key: replace, insert or delete a character, upper-case it, or append.
    fn mutate(key: &str, at: prop::sample::Index, c: char, how: u8) -> String {
        let mut chars: Vec<char> = key.chars().collect();
        let i = at
            .index(chars.len().max(1))
            .min(chars.len().saturating_sub(1));
        match how {
            0 if !chars.is_empty() => chars[i] = c,
            1 => chars.insert(i, c),
            2 if !chars.is_empty() => {
                chars.remove(i);
            }
            3 => return key.to_uppercase(),
            _ => chars.push(c),
        }
        chars.into_iter().collect()
    }

    fn metadata() -> impl Strategy<Value = HashMap<String, String>> {
        let name = prop_oneof![
            Just(MARKER_KEY.to_owned()),
            Just(SHA256_KEY.to_owned()),
            Just("Replicanary".to_owned()),
            "[a-z-]{0,12}",
        ];
        let value = prop_oneof![
            Just(MARKER_VALUE.to_owned()),
            Just("canary-v2".to_owned()),
            Just("CANARY-V1".to_owned()),
            "[0-9a-f]{64}",
            "[0-9a-fA-F]{63,65}",
            "[0-9a-z]{64}",
            "\\PC{0,16}",
        ];
        prop::collection::hash_map(name, value, 0..4)
    }

    /// A marker that is always right, to make sure the sweep's other conditions are tested.
    fn good_marker() -> HashMap<String, String> {
        HashMap::from([
            (MARKER_KEY.to_owned(), MARKER_VALUE.to_owned()),
            (SHA256_KEY.to_owned(), "ab".repeat(32)),
        ])
    }

    fn object(prefix: String) -> impl Strategy<Value = Obj> {
        let version = prop_oneof![
            Just(String::new()),
            Just("null".to_owned()),
            "[A-Za-z0-9._]{1,32}",
        ];
        let meta = prop_oneof![metadata(), Just(good_marker())];
        (key_for(prefix), version, prop::option::of(0..7200u64), meta).prop_map(
            |(key, version_id, age, metadata)| Obj {
                key,
                version_id,
                age,
                metadata,
            },
        )
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn with_prefix<T: std::fmt::Debug, S: Strategy<Value = T>>(
        f: impl Fn(String) -> S,
    ) -> impl Strategy<Value = (String, T)> {
        prefix().prop_flat_map(move |p| (Just(p.clone()), f(p)))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// The shape check is exactly the documented shape, for any prefix and key.
        #[test]
        fn canary_key_shape_is_exact((p, key) in with_prefix(key_for)) {
            prop_assert_eq!(is_canary_key(&p, &key), oracle_canary_key(&p, &key), "key {:?} prefix {:?}", key, p);
        }

        /// A canary this process makes is always deletable under its own prefix, never under
        /// a different one that is not a prefix of it.
        #[test]
        fn own_canaries_are_recognised(name in "[a-z0-9-]{1,20}", other in "[a-z0-9-]{1,20}", secs in 0u64..4_000_000_000) {
            let p = format!("replicanary/{name}/");
            let c = Canary::new(&p, SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
            prop_assert!(is_canary_key(&p, &c.key), "{}", c.key);
            prop_assert!(carries_marker(&c.metadata));
            let q = format!("replicanary/{other}/");
            prop_assert_eq!(is_canary_key(&q, &c.key), name == other);
        }

        /// The marker check is exactly "replicanary: canary-v1" plus a 64-hex-digit digest.
        #[test]
        fn marker_is_exact(meta in metadata()) {
            prop_assert_eq!(carries_marker(&meta), oracle_marker(&meta), "{:?}", meta);
        }

        /// The ledger accepts only canary keys under the prefix with a version id.
        #[test]
        fn written_rule((p, key) in with_prefix(key_for), version in "[A-Za-z0-9]{0,3}") {
            let w = Written { side: Side::Source, destination: None, bucket: "b".into(), key: key.clone(), version_id: version.clone() };
            prop_assert_eq!(may_delete_written(&p, &w), oracle_canary_key(&p, &key) && !version.is_empty());
        }

        /// The sweep's listing filter: canary shape, a real version id, known age ≥ min_age.
        #[test]
        fn sweep_filter((p, o) in with_prefix(object), min_age in 0u64..7200) {
            let now = SystemTime::now();
            let v = VersionEntry { key: o.key.clone(), version_id: o.version_id.clone(), last_modified: o.age.map(|a| now - Duration::from_secs(a)) };
            let expected = oracle_canary_key(&p, &o.key) && !o.version_id.is_empty() && o.version_id != "null"
                && o.age.is_some_and(|a| a >= min_age);
            prop_assert_eq!(sweep_may_consider(&p, &v, now, Duration::from_secs(min_age)), expected, "{:?}", o);
        }

        /// A whole sweep over an arbitrary bucket (listing that ignores the prefix, HEAD and
        /// DELETE failures) deletes only canary-shaped, marker-carrying, old-enough versions,
        /// each by its own version id — and every such version it could inspect and delete.
        #[test]
        fn sweep_deletes_only_old_marked_canaries(
            (p, objects) in with_prefix(|p| prop::collection::vec(object(p), 0..24)),
            min_age in 0u64..7200,
            fail_head in prop::collection::hash_set(0usize..24, 0..4),
            fail_delete in prop::collection::hash_set(0usize..24, 0..4),
        ) {
            let now = SystemTime::now();
            let bucket = MemStore::bucket(now, objects.clone()).failing_heads(fail_head.clone()).failing_deletes(fail_delete.clone());
            let report = block_on(sweep(&bucket, "bkt", &p, Duration::from_secs(min_age), now));
            let deleted = bucket.deleted.lock().unwrap().clone();
            let eligible = |o: &Obj| oracle_canary_key(&p, &o.key) && !o.version_id.is_empty() && o.version_id != "null"
                && o.age.is_some_and(|a| a >= min_age) && oracle_marker(&o.metadata);
            for (b, key, version) in &deleted {
                prop_assert_eq!(b, "bkt");
                // Every object with this exact key and version must be eligible (duplicates
                // in the listing are the same version).
                let same: Vec<&Obj> = objects.iter().filter(|o| &o.key == key && &o.version_id == version).collect();
                prop_assert!(!same.is_empty(), "deleted a version that was never listed: {key:?} {version:?}");
                prop_assert!(same.iter().all(|o| eligible(o)), "deleted a non-canary: {same:?} under {p:?}");
            }
            // Completeness: each eligible version whose first listing entry could be inspected
            // and deleted is gone.
            for (i, o) in objects.iter().enumerate() {
                let first = bucket.find(&o.key, &o.version_id) == Some(i);
                if first && eligible(o) && !fail_head.contains(&i) && !fail_delete.contains(&i) {
                    prop_assert!(deleted.iter().any(|(_, k, v)| *k == o.key && *v == o.version_id), "left behind: {o:?}");
                }
            }
            prop_assert_eq!(report.deleted, deleted.len());
        }

        /// The ledger deletes exactly the (bucket, key, version) triples recorded as written
        /// that pass the rule — never another version of the same key — retrying failed
        /// deletes until they succeed, and the outstanding gauge returns to 0.
        #[test]
        fn ledger_deletes_exactly_what_was_written(
            (p, writes) in with_prefix(|p| prop::collection::vec((key_for(p), "[A-Za-z0-9]{0,4}", prop::option::of(0usize..2)), 0..16)),
            failures in prop::collection::hash_set(0usize..16, 0..6),
        ) {
            let metrics = Arc::new(Metrics::new());
            let mut ledger = Ledger::new("r", &p, metrics.clone());
            let written: Vec<Written> = writes.iter().map(|(key, version, dest)| Written {
                side: if dest.is_some() { Side::Destination } else { Side::Source },
                destination: *dest,
                bucket: dest.map_or("src".to_owned(), |i| format!("dst{i}")),
                key: key.clone(),
                version_id: version.clone(),
            }).collect();
            for w in &written {
                ledger.add(w.clone());
            }
            let accepted: Vec<&Written> = written.iter().filter(|w| oracle_canary_key(&p, &w.key) && !w.version_id.is_empty()).collect();
            prop_assert_eq!(ledger.pending(), accepted.len());
            prop_assert_eq!(metrics.canaries_outstanding(), accepted.len() as i64);
            // Each store holds the written versions plus a user's version of every key.
            let store = |bucket: &str| {
                let mut objects = Vec::new();
                for w in written.iter().filter(|w| w.bucket == bucket) {
                    for version_id in [w.version_id.clone(), format!("{}-user", w.version_id)] {
                        objects.push(Obj { key: w.key.clone(), version_id, age: Some(0), metadata: HashMap::new() });
                    }
                }
                let fail: HashSet<usize> = failures.iter().copied().filter(|i| *i < objects.len()).collect();
                MemStore::bucket(SystemTime::now(), objects).failing_deletes(fail)
            };
            let (src, dsts) = (store("src"), vec![store("dst0"), store("dst1")]);
            for _ in 0..3 {
                block_on(ledger.flush(&src, &dsts));
            }
            prop_assert_eq!(ledger.pending(), 0);
            prop_assert_eq!(metrics.canaries_outstanding(), 0);
            let mut all: Vec<(String, String, String)> = src.deleted.lock().unwrap().clone();
            for d in &dsts {
                all.extend(d.deleted.lock().unwrap().iter().cloned());
            }
            let mut expected: Vec<(String, String, String)> = accepted.iter().map(|w| (w.bucket.clone(), w.key.clone(), w.version_id.clone())).collect();
            all.sort();
            expected.sort();
            prop_assert_eq!(all, expected);
        }
    }
}
