//! The reconciler: the diff alone, then the fleet running in-memory probers — kept tasks
//! untouched, changed ones restarted, removed ones cleaned up and gone from `/metrics`,
//! new ones staggered.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::{Changes, Fleet, MakeProber, plan};
use crate::config::{AwsSettings, Replication};
use crate::daemon::tests::fake::{Fake, config, reps, verdicts, wait_for};
use crate::metrics::Metrics;
use crate::testing::InFlight;

/// One running task of a replication, told apart from another by identity: each task the
/// fleet starts has its own `removed` flag.
#[derive(Debug, Clone)]
struct TaskRef(Arc<AtomicBool>);

impl PartialEq for TaskRef {
    fn eq(&self, other: &TaskRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<M: MakeProber> Fleet<M> {
    fn with_sweeps_at_once(mut self, permits: usize) -> Fleet<M> {
        self.sweeps = Arc::new(Semaphore::new(permits));
        self
    }

    fn task_of(&self, name: &str) -> Option<TaskRef> {
        self.running.get(name).map(|r| TaskRef(r.removed.clone()))
    }
}

fn names(v: &[Replication]) -> Vec<&str> {
    v.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn plan_sorts_replications_into_kept_changed_removed_and_added() {
    let running = reps(&[
        ("kept", "1m", 1),
        ("changed", "1m", 1),
        ("removed", "1m", 1),
    ]);
    let desired = reps(&[("added", "1m", 1), ("changed", "2m", 1), ("kept", "1m", 1)]);
    let p = plan(&running, desired, false);
    assert_eq!(p.keep, ["kept"]);
    assert_eq!(names(&p.restart), ["changed"]);
    assert_eq!(p.restart[0].settings.interval, Duration::from_secs(120));
    assert_eq!(p.stop, ["removed"]);
    assert_eq!(names(&p.start), ["added"]);
}

#[test]
fn any_difference_is_a_change() {
    let base = reps(&[("r", "1m", 2)]);
    let mut other_destination = base.clone();
    other_destination[0].destinations[1].bucket = "elsewhere".to_owned();
    let mut fewer_destinations = base.clone();
    fewer_destinations[0].destinations.pop();
    let mut other_source = base.clone();
    other_source[0].source.region = "eu-west-1".to_owned();
    let mut other_prefix = base.clone();
    other_prefix[0].settings.canary_prefix = "other/".to_owned();
    for desired in [
        other_destination,
        fewer_destinations,
        other_source,
        other_prefix,
    ] {
        let p = plan(&base, desired, false);
        assert_eq!(names(&p.restart), ["r"]);
        assert!(p.keep.is_empty() && p.stop.is_empty() && p.start.is_empty());
    }
    assert_eq!(plan(&base, base.clone(), false).keep, ["r"]);
}

#[test]
fn new_clients_restart_everything_and_a_duplicate_name_keeps_its_first_entry() {
    let running = reps(&[("a", "1m", 1), ("b", "1m", 1)]);
    let p = plan(&running, running.clone(), true);
    assert_eq!(names(&p.restart), ["a", "b"]);
    assert!(p.keep.is_empty());

    let mut desired = reps(&[("a", "1m", 1)]);
    desired.extend(reps(&[("a", "5m", 1)]));
    let p = plan(&running, desired, false);
    assert_eq!(p.keep, ["a"]);
    assert_eq!(p.stop, ["b"]);
}

fn fleet(fake: &Fake, grace: Duration) -> (Fleet<Fake>, AwsSettings) {
    let aws = config(&[("x", "1m", 1)]).aws;
    (
        Fleet::new(fake.clone(), &aws, fake.sinks.clone(), grace),
        aws,
    )
}

#[tokio::test]
async fn a_reload_keeps_unchanged_tasks_and_restarts_changed_ones() {
    let metrics = Arc::new(Metrics::new());
    let fake = Fake::new(&metrics);
    let (mut fleet, aws) = fleet(&fake, Duration::from_secs(5));
    let first = fleet
        .reconcile(reps(&[("a", "50ms", 1), ("b", "50ms", 1)]), &aws)
        .await;
    assert_eq!(first.started, 2);
    wait_for("two verdicts each", || {
        verdicts(&metrics, "a", "d0") >= 2 && verdicts(&metrics, "b", "d0") >= 2
    })
    .await;
    let (task_a, task_b) = (fleet.task_of("a"), fleet.task_of("b"));
    let (a_before, b_before) = (verdicts(&metrics, "a", "d0"), verdicts(&metrics, "b", "d0"));

    let changes = fleet
        .reconcile(reps(&[("a", "50ms", 1), ("b", "80ms", 1)]), &aws)
        .await;
    assert_eq!(
        changes,
        Changes {
            started: 0,
            restarted: 1,
            stopped: 0,
            unchanged: 1
        }
    );
    assert_eq!(fleet.task_of("a"), task_a, "a kept its task");
    assert_ne!(fleet.task_of("b"), task_b, "b got a new task");
    wait_for("b probing again", || {
        verdicts(&metrics, "b", "d0") >= b_before + 2
    })
    .await;
    // a's counter went on counting; b's series stayed (same name), never reset.
    assert!(verdicts(&metrics, "a", "d0") > a_before);
    assert_eq!(fake.builds("a").len(), 1, "a was built once");
    assert_eq!(fake.builds("b").len(), 2, "b was built again");
    let text = metrics.encode();
    assert!(text.contains("replicanary_probe_interval_seconds{replication=\"b\"} 0.08\n"));
    assert!(text.contains("replicanary_probe_interval_seconds{replication=\"a\"} 0.05\n"));
    // The old b task deleted what it wrote before the new one started.
    let old_b = &fake.builds("b")[0];
    assert_eq!(
        old_b.source.deleted.lock().map(|d| d.len()).unwrap_or(0),
        old_b.source.count("PutObject")
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_removed_replication_finishes_cleans_up_and_leaves_metrics() {
    let metrics = Arc::new(Metrics::new());
    let fake = Fake::new(&metrics);
    let (mut fleet, aws) = fleet(&fake, Duration::from_secs(5));
    fleet
        .reconcile(reps(&[("a", "50ms", 1), ("gone", "50ms", 2)]), &aws)
        .await;
    wait_for("verdicts", || {
        verdicts(&metrics, "a", "d0") >= 1 && verdicts(&metrics, "gone", "d1") >= 2
    })
    .await;
    let changes = fleet.reconcile(reps(&[("a", "50ms", 1)]), &aws).await;
    assert_eq!((changes.stopped, changes.unchanged), (1, 1));
    assert_eq!(fleet.names().collect::<Vec<_>>(), ["a"]);
    wait_for("gone's series to vanish", || {
        !metrics.encode().contains("replication=\"gone\"")
    })
    .await;
    // Every canary and every replica it wrote was deleted (exact version ids).
    let gone = &fake.builds("gone")[0];
    let puts = gone.source.count("PutObject");
    assert!(puts >= 2);
    for store in std::iter::once(&gone.source).chain(&gone.destinations) {
        let deleted = store.deleted.lock().map(|d| d.clone()).unwrap_or_default();
        assert_eq!(deleted.len(), puts, "one delete per canary version");
        assert!(
            deleted
                .iter()
                .all(|(_, key, v)| { key.starts_with("replicanary/gone/") && v == "v1" })
        );
    }
    // a goes on.
    let a = verdicts(&metrics, "a", "d0");
    wait_for("a to go on", || verdicts(&metrics, "a", "d0") > a).await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_stopped_probe_in_flight_is_cancelled_after_the_grace_period() {
    let metrics = Arc::new(Metrics::new());
    let mut fake = Fake::new(&metrics);
    fake.pending = vec!["stuck".to_owned()];
    let (mut fleet, aws) = fleet(&fake, Duration::from_millis(100));
    fleet.reconcile(reps(&[("stuck", "1m", 1)]), &aws).await;
    wait_for("the canary written", || {
        fake.builds("stuck")
            .first()
            .is_some_and(|b| b.source.count("PutObject") == 1)
    })
    .await;
    let started = std::time::Instant::now();
    fleet.reconcile(Vec::new(), &aws).await;
    wait_for("the stuck replication's series to vanish", || {
        !metrics.encode().contains("replication=\"stuck\"")
    })
    .await;
    // Cancelled after 100 ms, far from its 5 s replication timeout; the canary deleted.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let b = &fake.builds("stuck")[0];
    assert_eq!(b.source.deleted.lock().map(|d| d.len()).unwrap_or(0), 1);
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_dropped_destination_leaves_metrics_and_the_others_stay() {
    let metrics = Arc::new(Metrics::new());
    let fake = Fake::new(&metrics);
    let (mut fleet, aws) = fleet(&fake, Duration::from_secs(5));
    fleet.reconcile(reps(&[("r", "50ms", 2)]), &aws).await;
    wait_for("verdicts", || verdicts(&metrics, "r", "d1") >= 1).await;
    let kept = verdicts(&metrics, "r", "d0");
    fleet.reconcile(reps(&[("r", "50ms", 1)]), &aws).await;
    wait_for("d1's series to vanish", || {
        !metrics.encode().contains("destination=\"d1\"")
    })
    .await;
    assert!(verdicts(&metrics, "r", "d0") >= kept, "d0's counter stayed");
    wait_for("d0 probed again", || verdicts(&metrics, "r", "d0") > kept).await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn new_replications_start_staggered_over_their_interval() {
    let metrics = Arc::new(Metrics::new());
    let fake = Fake::new(&metrics);
    let (mut fleet, aws) = fleet(&fake, Duration::from_secs(5));
    let names = ["s0", "s1", "s2", "s3"];
    let spec: Vec<(&str, &str, usize)> = names.iter().map(|n| (*n, "2s", 1)).collect();
    fleet.reconcile(reps(&spec), &aws).await;
    // First probes at 0, 0.5, 1 and 1.5 s: after 250 ms only the first has run.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let probed: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| verdicts(&metrics, n, "d0") > 0)
        .collect();
    assert_eq!(probed, ["s0"]);
    wait_for("the second one", || verdicts(&metrics, "s1", "d0") > 0).await;
    assert_eq!(verdicts(&metrics, "s3", "d0"), 0);
    fleet.shutdown().await;
}

#[tokio::test]
async fn sweeps_run_a_bounded_number_at_once_and_each_before_its_first_probe() {
    let metrics = Arc::new(Metrics::new());
    let mut fake = Fake::new(&metrics);
    let listings = Arc::new(InFlight::default());
    fake.slow_listing = Some((listings.clone(), Duration::from_millis(60)));
    let (fleet, aws) = fleet(&fake, Duration::from_secs(5));
    let mut fleet = fleet.with_sweeps_at_once(3);
    // 24 replications starting within 200 ms: unbounded, ~20 listings would overlap.
    let names: Vec<String> = (0..24).map(|i| format!("r{i}")).collect();
    let spec: Vec<(&str, &str, usize)> = names.iter().map(|n| (n.as_str(), "200ms", 1)).collect();
    fleet.reconcile(reps(&spec), &aws).await;
    wait_for("every replication's first verdict", || {
        names.iter().all(|n| verdicts(&metrics, n, "d0") >= 1)
    })
    .await;
    assert_eq!(listings.most(), 3, "the bound was reached and never passed");
    assert!(listings.total() >= 2 * names.len(), "{}", listings.total());
    for n in &names {
        let built = &fake.builds(n)[0];
        let calls = built.source.calls();
        let swept = calls.iter().position(|c| c == "ListObjectVersions");
        let probed = calls.iter().position(|c| c == "PutObject");
        assert!(swept.is_some() && swept < probed, "{n}: {calls:?}");
        assert!(
            built.destinations[0].count("ListObjectVersions") >= 1,
            "{n}"
        );
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn without_a_permit_the_first_probe_waits_and_later_sweeps_are_postponed() {
    let metrics = Arc::new(Metrics::new());
    let fake = Fake::new(&metrics);
    let (fleet, aws) = fleet(&fake, Duration::from_secs(5));
    let mut fleet = fleet.with_sweeps_at_once(1);
    let held = fleet
        .sweeps
        .clone()
        .acquire_owned()
        .await
        .expect("open gate");
    let mut desired = reps(&[("a", "50ms", 1)]);
    desired[0].settings.sweep_interval = Duration::from_millis(1);
    fleet.reconcile(desired, &aws).await;
    wait_for("the prober built", || !fake.builds("a").is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = fake.builds("a")[0].source.clone();
    assert!(a.calls().is_empty(), "{:?}", a.calls());
    assert_eq!(verdicts(&metrics, "a", "d0"), 0);

    drop(held);
    wait_for("periodic sweeps between probes", || {
        a.count("ListObjectVersions") >= 3
    })
    .await;
    assert_eq!(
        a.calls()[0],
        "ListObjectVersions",
        "the start-up sweep came first"
    );

    // Every permit taken: probes go on, sweeps wait.
    let held = fleet
        .sweeps
        .clone()
        .acquire_owned()
        .await
        .expect("open gate");
    let (lists, probes) = (a.count("ListObjectVersions"), verdicts(&metrics, "a", "d0"));
    wait_for("three more probes", || {
        verdicts(&metrics, "a", "d0") >= probes + 3
    })
    .await;
    assert_eq!(a.count("ListObjectVersions"), lists);
    drop(held);
    wait_for("sweeping again", || a.count("ListObjectVersions") > lists).await;
    fleet.shutdown().await;
}
