//! The deletion rule, the ledger's backoff and bounds, and the sweeps: unit tests and
//! property tests.

use std::collections::HashSet;
use std::sync::Arc;

use super::sweep::{SweepLimits, SweepMemory, sweep_bucket};
use super::*;
use crate::canary::carries_marker;
use crate::metrics::Metrics;

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
        site: Site::Source,
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

// ---- the ledger's retention, backoff and bounds, against a simulated clock --------------

mod ledger_bounds {
    use std::collections::HashMap;
    use std::time::Instant;

    use super::super::ledger::{
        Clock, FINAL_FLUSH_CALLS, FLUSH_EXTRA_CALLS, WATCH_LISTINGS_PER_FLUSH,
    };
    use super::*;
    use crate::testing::{MemStore, Obj};

    const PREFIX: &str = "replicanary/r/";
    const INTERVAL: Duration = Duration::from_secs(60);

    fn key(i: usize) -> String {
        format!("{PREFIX}20260101T000000Z-{i:016x}")
    }

    fn written(i: usize) -> Written {
        Written {
            site: Site::Destination(0),
            bucket: "dst".to_owned(),
            key: key(i),
            version_id: format!("v{i}"),
        }
    }

    fn objects(n: usize) -> Vec<Obj> {
        (0..n)
            .map(|i| Obj {
                key: key(i),
                version_id: format!("v{i}"),
                age: Some(0),
                metadata: HashMap::new(),
            })
            .collect()
    }

    /// A simulated time `at` after `t0`, with the store's clock set to it.
    struct Sim {
        t0: Instant,
        w0: SystemTime,
    }

    impl Sim {
        fn new() -> Sim {
            Sim {
                t0: Instant::now(),
                w0: SystemTime::now(),
            }
        }
        fn at(&self, store: &MemStore, at: Duration) -> Clock {
            store.set_clock(self.w0 + at);
            Clock {
                now: self.t0 + at,
                wall: self.w0 + at,
            }
        }
    }

    fn ledger(metrics: &Arc<Metrics>) -> Ledger {
        Ledger::new("r", PREFIX, Retry::every(INTERVAL), metrics.clone())
    }

    /// `replicanary_cleanup_failures_total` of the destination side (0 when never counted).
    fn failures(metrics: &Metrics) -> u64 {
        metrics
            .encode()
            .lines()
            .find(|l| {
                l.starts_with(
                    "replicanary_cleanup_failures_total{replication=\"r\",side=\"destination\"}",
                )
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn the_wait_doubles_from_the_interval_up_to_a_day() {
        let r = Retry::every(INTERVAL);
        let waits: Vec<u64> = (1..=14).map(|f| r.after(f).as_secs()).collect();
        assert_eq!(
            waits,
            [
                60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 30720, 61440, 86400, 86400, 86400
            ]
        );
        assert_eq!(
            Retry::every(Duration::from_secs(2 * 86400)).after(5),
            Duration::from_secs(2 * 86400)
        );
    }

    #[tokio::test]
    async fn a_failing_delete_is_never_retried_sooner_than_its_backoff() {
        let metrics = Arc::new(Metrics::new());
        let mut l = ledger(&metrics);
        let store = MemStore::bucket(SystemTime::now(), objects(1));
        *store.delete_fails.lock().unwrap() = usize::MAX;
        let sim = Sim::new();
        l.add(written(0));
        // Two flushes per probe, a probe every 30 s, for three days.
        let step = Duration::from_secs(15);
        let mut t = Duration::ZERO;
        while t < Duration::from_secs(3 * 86400) {
            l.flush_at(
                &store,
                std::slice::from_ref(&store),
                sim.at(&store, t),
                false,
            )
            .await;
            t += step;
        }
        let calls: Vec<Duration> = store
            .delete_calls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, at)| at.duration_since(sim.w0).unwrap_or_default())
            .collect();
        let gaps: Vec<u64> = calls.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
        // 60 s, doubling, then once a day: 13 calls in three days instead of 17,280.
        assert_eq!(calls.len(), 13, "{gaps:?}");
        for (i, gap) in gaps.iter().enumerate() {
            let wait = Retry::every(INTERVAL).after(i as u32 + 1).as_secs();
            assert!(
                *gap >= wait && *gap < wait + 15,
                "gap {i}: {gap} s, expected {wait} s"
            );
        }
        assert_eq!(failures(&metrics), 13);
        assert_eq!(l.pending(), 1, "still pending, never dropped");
    }

    #[tokio::test]
    async fn one_flush_makes_a_bounded_number_of_calls_whatever_is_queued() {
        let metrics = Arc::new(Metrics::new());
        let mut l = ledger(&metrics);
        let store = MemStore::bucket(SystemTime::now(), objects(1_010));
        *store.delete_fails.lock().unwrap() = usize::MAX;
        let sim = Sim::new();
        let stores = std::slice::from_ref(&store);
        let calls = || store.count("DeleteObject");
        for i in 0..1_000 {
            l.add(written(i));
        }
        // The probe that wrote them tries each once...
        l.flush_at(&store, stores, sim.at(&store, Duration::ZERO), false)
            .await;
        assert_eq!(calls(), 1_000);
        // ...then, all due again, a flush retries only a few.
        let later = Duration::from_secs(7 * 86400);
        l.flush_at(&store, stores, sim.at(&store, later), false)
            .await;
        assert_eq!(calls(), 1_000 + FLUSH_EXTRA_CALLS);
        // A new probe's three versions are tried, plus the few.
        for i in 1_000..1_003 {
            l.add(written(i));
        }
        l.flush_at(&store, stores, sim.at(&store, later), false)
            .await;
        assert_eq!(calls(), 1_000 + 2 * FLUSH_EXTRA_CALLS + 3);
        // The last flush at shutdown tries more, still bounded.
        l.flush_at(&store, stores, sim.at(&store, later), true)
            .await;
        assert_eq!(
            calls(),
            1_000 + 2 * FLUSH_EXTRA_CALLS + 3 + FINAL_FLUSH_CALLS
        );
    }

    #[tokio::test]
    async fn a_retained_version_is_deleted_after_its_retain_until_date_never_before() {
        let metrics = Arc::new(Metrics::new());
        let mut l = ledger(&metrics);
        let sim = Sim::new();
        let until = sim.w0 + Duration::from_secs(3_600);
        let store = MemStore::bucket(SystemTime::now(), objects(1)).locked(&key(0), "v0", until);
        let stores = std::slice::from_ref(&store);
        l.add(written(0));
        l.note_retention(Site::Destination(0), &key(0), "v0", until);
        for minute in 0..60 {
            l.flush_at(
                &store,
                stores,
                sim.at(&store, Duration::from_secs(minute * 60)),
                false,
            )
            .await;
            // Even the last flush respects the date.
            l.flush_at(
                &store,
                stores,
                sim.at(&store, Duration::from_secs(minute * 60 + 30)),
                true,
            )
            .await;
        }
        assert_eq!(
            store.count("DeleteObject"),
            0,
            "never tried before the date"
        );
        assert_eq!(l.retained(Side::Destination, sim.w0), 1);
        assert_eq!(l.retained(Side::Source, sim.w0), 0);
        l.flush_at(
            &store,
            stores,
            sim.at(&store, Duration::from_secs(3_601)),
            false,
        )
        .await;
        assert_eq!(store.count("DeleteObject"), 1);
        assert_eq!(store.deleted.lock().unwrap().len(), 1);
        assert_eq!(l.pending(), 0);
        assert_eq!(
            l.retained(Side::Destination, sim.w0 + Duration::from_secs(3_601)),
            0
        );
        assert_eq!(failures(&metrics), 0, "retention is no failure");
    }

    #[tokio::test]
    async fn a_refusal_is_retention_when_the_version_shows_a_retain_until_date() {
        // The retention was not known (no HeadObject showed it): the 403 makes the ledger
        // look, and the version is then retained, not failed.
        let metrics = Arc::new(Metrics::new());
        let mut l = ledger(&metrics);
        let sim = Sim::new();
        let until = sim.w0 + Duration::from_secs(600);
        let store = MemStore::bucket(SystemTime::now(), objects(1)).locked(&key(0), "v0", until);
        let stores = std::slice::from_ref(&store);
        l.add(written(0));
        l.flush_at(&store, stores, sim.at(&store, Duration::ZERO), false)
            .await;
        assert_eq!(store.count("DeleteObject"), 1);
        assert_eq!(store.count("HeadObject"), 1);
        assert_eq!(l.retained(Side::Destination, sim.w0), 1);
        assert_eq!(failures(&metrics), 0, "retention is no failure");
        for s in (15..600).step_by(15) {
            l.flush_at(
                &store,
                stores,
                sim.at(&store, Duration::from_secs(s)),
                false,
            )
            .await;
        }
        assert_eq!(
            store.count("DeleteObject"),
            1,
            "not retried before the date"
        );
        l.flush_at(
            &store,
            stores,
            sim.at(&store, Duration::from_secs(601)),
            false,
        )
        .await;
        assert_eq!(store.deleted.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_refusal_without_retention_is_a_failure_with_backoff() {
        let metrics = Arc::new(Metrics::new());
        let mut l = ledger(&metrics);
        let sim = Sim::new();
        let store = MemStore::bucket(SystemTime::now(), objects(1)).denying_deletes();
        let stores = std::slice::from_ref(&store);
        l.add(written(0));
        for s in (0..600).step_by(15) {
            l.flush_at(
                &store,
                stores,
                sim.at(&store, Duration::from_secs(s)),
                false,
            )
            .await;
        }
        // At 0, 60, 180, 420 s: each refusal looked at once, each counted.
        assert_eq!(store.count("DeleteObject"), 4);
        assert_eq!(store.count("HeadObject"), 4);
        assert_eq!(failures(&metrics), 4);
        assert_eq!(l.retained(Side::Destination, sim.w0), 0);
    }

    #[tokio::test]
    async fn uncertain_keys_are_listed_a_bounded_number_of_times() {
        let metrics = Arc::new(Metrics::new());
        let mut l = ledger(&metrics);
        let sim = Sim::new();
        let store = MemStore::default().listing(Err(crate::testing::err(
            crate::aws::ErrorClass::AccessDenied,
            403,
            "AccessDenied",
        )));
        let stores = std::slice::from_ref(&store);
        for i in 0..40 {
            l.add_uncertain(Uncertain {
                site: Site::Destination(0),
                bucket: "dst".to_owned(),
                key: key(i),
                until: sim.t0 + Duration::from_secs(120),
            });
        }
        l.flush_at(&store, stores, sim.at(&store, Duration::ZERO), false)
            .await;
        assert_eq!(store.count("ListObjectVersions"), WATCH_LISTINGS_PER_FLUSH);
        // Over a day of flushes every 15 s, each key is listed on the backoff schedule
        // (60 s doubling up to a day): 12 listings each at most, not 5,760.
        for s in (15..86_400).step_by(15) {
            l.flush_at(
                &store,
                stores,
                sim.at(&store, Duration::from_secs(s)),
                false,
            )
            .await;
        }
        let listings = store.count("ListObjectVersions");
        assert!(listings <= 40 * 12, "{listings} listings for 40 keys");
        assert!(
            listings >= 40 * 10,
            "each key is still looked at: {listings}"
        );
        assert_eq!(l.pending(), 40, "kept until a listing works");
        // The last flush, at shutdown, lists every one once more.
        let before = store.count("ListObjectVersions");
        l.flush_at(
            &store,
            stores,
            sim.at(&store, Duration::from_secs(86_400)),
            true,
        )
        .await;
        assert_eq!(store.count("ListObjectVersions") - before, 40);
    }

    #[tokio::test]
    async fn a_marker_carrying_version_of_an_uncertain_key_is_deleted_after_its_retention() {
        let metrics = Arc::new(Metrics::new());
        let mut l = ledger(&metrics);
        let sim = Sim::new();
        let mut objs = objects(1);
        objs[0].metadata = HashMap::from([
            ("replicanary".to_owned(), "canary-v1".to_owned()),
            ("replicanary-sha256".to_owned(), "ab".repeat(32)),
        ]);
        let until = sim.w0 + Duration::from_secs(300);
        let store = MemStore::bucket(SystemTime::now(), objs).locked(&key(0), "v0", until);
        let stores = std::slice::from_ref(&store);
        l.add_uncertain(Uncertain {
            site: Site::Destination(0),
            bucket: "dst".to_owned(),
            key: key(0),
            until: sim.t0 + Duration::from_secs(30),
        });
        for s in (0..300).step_by(15) {
            l.flush_at(
                &store,
                stores,
                sim.at(&store, Duration::from_secs(s)),
                false,
            )
            .await;
        }
        assert_eq!(store.count("DeleteObject"), 0, "retained until its date");
        assert_eq!(l.retained(Side::Destination, sim.w0), 1);
        l.flush_at(
            &store,
            stores,
            sim.at(&store, Duration::from_secs(301)),
            false,
        )
        .await;
        assert_eq!(store.deleted.lock().unwrap().len(), 1);
        assert_eq!(l.pending(), 0);
        assert_eq!(metrics.canaries_outstanding(), 0);
    }
}

/// One sweep of one bucket with the default limits, nothing remembered or skipped.
async fn sweep<S: crate::aws::ObjectStore>(
    store: &S,
    bucket: &str,
    key_prefix: &str,
    min_age: Duration,
    now: SystemTime,
) -> SweepReport {
    let s = Sweep {
        bucket,
        key_prefix,
        min_age,
        now,
        limits: SweepLimits::default(),
    };
    sweep_bucket(store, &s, &mut SweepMemory::default(), &HashSet::new()).await
}

// ---- the sweeps' bounds and memory -------------------------------------------------------

mod sweep_bounds {
    use std::collections::{HashMap, HashSet};

    use super::super::sweep::{Sweep, SweepLimits, SweepMemory, sweep_bucket};
    use super::*;
    use crate::testing::{MemStore, Obj};

    const PREFIX: &str = "replicanary/r/";

    fn canaries(n: usize) -> Vec<Obj> {
        (0..n)
            .map(|i| Obj {
                key: format!("{PREFIX}20250101T000000Z-{i:016x}"),
                version_id: format!("v{i}"),
                age: Some(7_200),
                metadata: HashMap::from([
                    ("replicanary".to_owned(), "canary-v1".to_owned()),
                    ("replicanary-sha256".to_owned(), "ab".repeat(32)),
                ]),
            })
            .collect()
    }

    fn plan(now: SystemTime, max_calls: usize) -> Sweep<'static> {
        Sweep {
            bucket: "dst",
            key_prefix: PREFIX,
            min_age: Duration::from_secs(3_600),
            now,
            limits: SweepLimits {
                max_calls,
                deadline: None,
            },
        }
    }

    #[tokio::test]
    async fn a_sweep_makes_at_most_its_budget_of_calls() {
        let now = SystemTime::now();
        let store = MemStore::bucket(now, canaries(1_000));
        let mut memory = SweepMemory::default();
        let r = sweep_bucket(&store, &plan(now, 100), &mut memory, &HashSet::new()).await;
        assert!(r.truncated);
        assert_eq!(r.calls, 100);
        assert_eq!(store.count("HeadObject") + store.count("DeleteObject"), 100);
        assert_eq!(r.deleted, 50);
        // A deadline already passed: nothing but the listing.
        let store = MemStore::bucket(now, canaries(10));
        let mut s = plan(now, 100);
        s.limits.deadline = Some(std::time::Instant::now());
        let r = sweep_bucket(&store, &s, &mut memory, &HashSet::new()).await;
        assert_eq!((r.calls, r.truncated), (0, true));
        assert_eq!(store.calls(), ["ListObjectVersions"]);
    }

    #[tokio::test]
    async fn retained_versions_are_not_looked_at_again_before_their_date() {
        let now = SystemTime::now();
        let mut store = MemStore::bucket(now, canaries(20));
        for i in 0..10 {
            let o = &store.objects[i];
            let (k, v) = (o.key.clone(), o.version_id.clone());
            store = store.locked(&k, &v, now + Duration::from_secs(86_400));
        }
        store.set_clock(now);
        let mut memory = SweepMemory::default();
        let r = sweep_bucket(&store, &plan(now, 500), &mut memory, &HashSet::new()).await;
        assert_eq!((r.deleted, r.retained), (10, 10));
        assert_eq!(
            store.count("DeleteObject"),
            10,
            "no delete tried under retention"
        );
        assert_eq!(memory.retained(now), 10);
        // The next sweep, an hour later: the retained ones cost nothing.
        let later = now + Duration::from_secs(3_600);
        let heads = store.count("HeadObject");
        let r = sweep_bucket(&store, &plan(later, 500), &mut memory, &HashSet::new()).await;
        assert_eq!(r.retained, 10);
        // (the ten deleted ones are still listed by this store; they alone are looked at)
        assert_eq!(store.count("HeadObject") - heads, 10);
        // After the date they are deleted.
        let after = now + Duration::from_secs(86_401);
        store.set_clock(after);
        let r = sweep_bucket(&store, &plan(after, 500), &mut memory, &HashSet::new()).await;
        assert_eq!(memory.retained(after), 0);
        assert_eq!(r.retained, 0);
        // (this store lists deleted versions again: the unlocked ten were deleted by each
        // of the three sweeps, the retained ten by the last one only)
        assert_eq!(store.deleted.lock().unwrap().len(), 40);
    }

    #[tokio::test]
    async fn what_the_ledger_tracks_is_left_to_it() {
        let now = SystemTime::now();
        let store = MemStore::bucket(now, canaries(5));
        let skip: HashSet<(String, String)> = store
            .objects
            .iter()
            .take(3)
            .map(|o| (o.key.clone(), o.version_id.clone()))
            .collect();
        let r = sweep_bucket(&store, &plan(now, 500), &mut SweepMemory::default(), &skip).await;
        assert_eq!(r.deleted, 2);
        assert_eq!(store.count("HeadObject"), 2);
    }
}

/// Property tests of the deletion rule: for arbitrary keys, prefixes,
/// metadata, ages and version lists — and a store whose listing even lies about the prefix —
/// nothing outside "this process wrote this exact version under the prefix" (the ledger)
/// or "canary-shaped, marker-carrying, old enough" (the sweep) is ever deleted.
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
            let w = Written { site: Site::Source, bucket: "b".into(), key: key.clone(), version_id: version.clone() };
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
            // Retried at once (a zero interval): every flush may retry.
            let mut ledger = Ledger::new("r", &p, Retry::every(Duration::ZERO), metrics.clone());
            let written: Vec<Written> = writes.iter().map(|(key, version, dest)| Written {
                site: dest.map_or(Site::Source, Site::Destination),
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

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever fails and whatever is locked: no version is tried before its
        /// retain-until date, no failed delete is retried sooner than one interval later,
        /// one flush never makes more delete calls than the versions of the last probe plus
        /// a few — and, once the failures stop and the dates pass, everything written is
        /// deleted, nothing else.
        #[test]
        fn ledger_backoff_and_bounds_hold(
            probes in prop::collection::vec(0usize..4, 1..12),
            locked_for in prop::collection::vec(prop::option::of(0u64..4_000), 48),
            failing in 0usize..16,
            steps in prop::collection::vec(10u64..120, 60),
        ) {
            use std::time::Instant;
            use super::super::ledger::{Clock, FLUSH_EXTRA_CALLS};
            let interval = Duration::from_secs(60);
            let p = "replicanary/r/";
            let metrics = Arc::new(Metrics::new());
            let mut ledger = Ledger::new("r", p, Retry::every(interval), metrics.clone());
            let (t0, w0) = (Instant::now(), SystemTime::now());
            let key = |i: usize| format!("{p}20260101T000000Z-{i:016x}");
            let objects = (0..48).map(|i| Obj { key: key(i), version_id: format!("v{i}"), age: Some(0), metadata: HashMap::new() }).collect();
            let mut store = MemStore::bucket(w0, objects);
            let mut locks = HashMap::new();
            for (i, l) in locked_for.iter().enumerate() {
                if let Some(secs) = l {
                    let until = w0 + Duration::from_secs(*secs);
                    locks.insert((key(i), format!("v{i}")), until);
                    store = store.locked(&key(i), &format!("v{i}"), until);
                }
            }
            *store.delete_fails.lock().unwrap() = failing;
            let stores = std::slice::from_ref(&store);
            let mut written = Vec::new();
            let mut told = HashSet::new();
            let mut t = Duration::ZERO;
            let flush = |ledger: &mut Ledger, t: Duration| {
                store.set_clock(w0 + t);
                block_on(ledger.flush_at(&store, stores, Clock { now: t0 + t, wall: w0 + t }, false));
            };
            // Probes at the given steps, each writing some versions; then quiet hours.
            for (n, new) in probes.iter().enumerate() {
                for _ in 0..*new {
                    let i = written.len();
                    let w = Written { site: Site::Destination(0), bucket: "dst".into(), key: key(i), version_id: format!("v{i}") };
                    ledger.add(w.clone());
                    if let Some(until) = locks.get(&(key(i), format!("v{i}"))) {
                        // Half of them had their date shown by a HeadObject.
                        if i % 2 == 0 {
                            ledger.note_retention(Site::Destination(0), &w.key, &w.version_id, *until);
                            told.insert((w.key.clone(), w.version_id.clone()));
                        }
                    }
                    written.push(w);
                }
                let before = store.count("DeleteObject");
                flush(&mut ledger, t);
                let made = store.count("DeleteObject") - before;
                prop_assert!(made <= new + FLUSH_EXTRA_CALLS, "{} calls with {} new", made, new);
                for step in steps.iter().skip(n * 5).take(5) {
                    t += Duration::from_secs(*step);
                    let before = store.count("DeleteObject");
                    flush(&mut ledger, t);
                    prop_assert!(store.count("DeleteObject") - before <= FLUSH_EXTRA_CALLS);
                }
            }
            // Quiet days: the failures run out, the dates pass, the backoff (≤ 1 day) lets go.
            for _ in 0..60 {
                t += Duration::from_secs(6 * 3_600);
                flush(&mut ledger, t);
            }
            let calls = store.delete_calls.lock().unwrap().clone();
            let mut last: HashMap<(String, String), SystemTime> = HashMap::new();
            for (k, v, at) in &calls {
                prop_assert!(written.iter().any(|w| &w.key == k && &w.version_id == v), "deleted what was not written");
                if let Some(until) = locks.get(&(k.clone(), v.clone())) {
                    // Tried under retention only when nothing had shown the date yet, and
                    // then only once before the date (the refusal makes the ledger look).
                    let id = (k.clone(), v.clone());
                    let early = calls.iter().filter(|(k2, v2, at2)| (k2, v2) == (&id.0, &id.1) && at2 < until).count();
                    prop_assert!(early <= usize::from(!told.contains(&id)), "{k} {v} tried {early} times before its date");
                }
                if let Some(prev) = last.insert((k.clone(), v.clone()), *at) {
                    prop_assert!(at.duration_since(prev).unwrap_or_default() >= interval, "{k} {v} retried too soon");
                }
            }
            prop_assert_eq!(ledger.pending(), 0);
            let deleted: HashSet<(String, String)> = store.deleted.lock().unwrap().iter().map(|(_, k, v)| (k.clone(), v.clone())).collect();
            let expected: HashSet<(String, String)> = written.iter().map(|w| (w.key.clone(), w.version_id.clone())).collect();
            prop_assert_eq!(deleted, expected);
        }
    }
}

// ---- the janitor: what a probe left ------------------------------------------------------

mod janitor {
    use std::time::{Duration, Instant, SystemTime};

    use super::super::janitor::{Janitor, Leftovers};
    use super::*;
    use crate::aws::Stores;
    use crate::canary::Canary;
    use crate::config::{Config, Replication};
    use crate::testing::{MemStore, SharedBody};

    fn replication(cleanup: bool) -> Replication {
        let yaml = format!(
            "defaults: {{cleanup: {cleanup}}}\nreplications:\n  - name: r\n    source: {{bucket: src-bucket, region: ap-northeast-1}}\n    destinations:\n      - {{name: d, bucket: dst-bucket, region: ap-northeast-1, expected_kms_key_arn: 'arn:aws:kms:ap-northeast-1:222222222222:key/1111aaaa-12ab-34cd-56ef-1234567890ab'}}\n"
        );
        Config::parse(&yaml).expect("valid").replications.remove(0)
    }

    /// A janitor of `replication(cleanup)`, its metrics, and a source and a destination
    /// store to delete in.
    fn janitor_for(cleanup: bool) -> (Replication, Arc<Metrics>, Janitor, MemStore, MemStore) {
        let rep = replication(cleanup);
        let metrics = Arc::new(Metrics::new());
        let janitor = Janitor::new(&rep, metrics.clone());
        let body = SharedBody::default();
        (
            rep,
            metrics,
            janitor,
            MemStore::new(&body),
            MemStore::new(&body),
        )
    }

    /// A probe's leftovers: the source version, its replica under Object Lock, and the
    /// key watched on every destination.
    fn leftovers(rep: &Replication, until: SystemTime) -> (String, Leftovers) {
        let key = Canary::new(&rep.key_prefix(), SystemTime::now()).key;
        let mut left = Leftovers::default();
        left.wrote(Site::Source, &key, "v1", false);
        left.wrote(Site::Destination(0), &key, "v1", false);
        left.retained_until(Site::Destination(0), until);
        left.watch_destinations(&key, Instant::now());
        (key, left)
    }

    #[tokio::test]
    async fn the_janitor_deletes_what_a_probe_left_never_before_its_retention() {
        let (rep, metrics, mut janitor, source, destination) = janitor_for(true);
        let stores = Stores {
            source: &source,
            destinations: std::slice::from_ref(&destination),
        };
        let until = SystemTime::now() + Duration::from_secs(3600);
        let (key, left) = leftovers(&rep, until);
        janitor.record(&rep, stores, left).await;
        assert_eq!(
            *source.deleted.lock().unwrap(),
            [("src-bucket".to_owned(), key, "v1".to_owned())]
        );
        assert_eq!(
            destination.count("DeleteObject"),
            0,
            "the replica is retained until its date"
        );
        assert_eq!(
            destination.count("ListObjectVersions"),
            1,
            "the uncertain key is listed"
        );
        assert_eq!(metrics.canaries_outstanding(), 1);
        assert!(
            metrics.encode().contains(
                "replicanary_canaries_retained{replication=\"r\",side=\"destination\"} 1"
            )
        );
    }

    #[tokio::test]
    async fn without_cleanup_the_janitor_takes_nothing_over() {
        let (rep, metrics, mut janitor, source, destination) = janitor_for(false);
        let stores = Stores {
            source: &source,
            destinations: std::slice::from_ref(&destination),
        };
        let (_, left) = leftovers(&rep, SystemTime::now());
        janitor.record(&rep, stores, left).await;
        janitor.finish(stores).await;
        assert!(source.calls().is_empty(), "{:?}", source.calls());
        assert!(destination.calls().is_empty(), "{:?}", destination.calls());
        assert_eq!(metrics.canaries_outstanding(), 0);
    }
}
