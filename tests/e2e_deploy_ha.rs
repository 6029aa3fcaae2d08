//! Two replicanary instances and a real Prometheus (Debian's `prometheus`) with
//! `deploy/prometheus/replicanary.rules.yml`, against the lab. Prometheus scrapes both as
//! one job, each with its own `instance` label.
//!
//! - An HA pair (both unsharded, same configuration: `healthy`, `wrong-key`, `fan-out`):
//!   both instances' verdicts reach Prometheus, yet `ReplicanaryReplicaUndecryptable` fires
//!   exactly once per undecryptable (replication, destination), no alert but
//!   ReplicanaryDown carries `instance`, nothing ever fires for the healthy destinations, and
//!   every rule evaluates without error (a "many-to-many matching" error would show). Then
//!   one instance stops: the alert keeps firing, once, from the same moment (not resolved
//!   and fired again); `up` is 0 for the stopped instance and ReplicanaryDown is pending
//!   for it alone — it fires after its `for` of 5 minutes, too long for a test, so pending
//!   is what is asserted (with the rule's duration) — and ReplicanaryShardMissing stays
//!   silent.
//! - Two shards (`--shard-count 2`, indexes 0 and 1) over five scenarios: the union of the
//!   two instances' `replicanary_probes_total` series, queried through Prometheus, covers
//!   every (replication, destination) of the configuration exactly once, both shards probe
//!   something, and the rules stay healthy. Then shard 1 stops: ReplicanaryShardMissing is
//!   pending for shard 1 of 2.
//!
//! Each takes about 11 s; they run one at a time. Skipped when `prometheus` is not
//! installed, unless `CI` is set (then it is a failure).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use support::prometheus::{LAB_ARGS, PROBE_ARGS, Prometheus, label, prometheus_binary};
use support::{Daemon, Lab, wait_until};

/// A (replication, destination) pair, as the metrics label it.
type Pair = (String, String);

/// Each test runs a lab, two daemons and Prometheus: one at a time, on small machines.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every (replication, destination) of a configuration (a destination is named by its
/// `name`, or else its bucket).
fn destinations_of(config: &Path) -> BTreeSet<Pair> {
    let text = std::fs::read_to_string(config).expect("config");
    let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("provisioned YAML");
    let mut pairs = BTreeSet::new();
    for rep in doc["replications"].as_array().expect("replications") {
        for dest in rep["destinations"].as_array().expect("destinations") {
            let name = dest["name"].as_str().or(dest["bucket"].as_str());
            pairs.insert((
                rep["name"].as_str().expect("name").to_owned(),
                name.expect("destination name").to_owned(),
            ));
        }
    }
    pairs
}

fn pair_of(series: &serde_json::Value) -> Pair {
    (
        label(series, "replication").to_owned(),
        label(series, "destination").to_owned(),
    )
}

fn value_of(series: &serde_json::Value) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// `promql` (a vector by replication and destination) as a map.
fn by_pair(prometheus: &Prometheus, promql: &str) -> BTreeMap<Pair, f64> {
    prometheus
        .query(promql)
        .iter()
        .map(|s| (pair_of(s), value_of(s)))
        .collect()
}

/// How many instances report a standing verdict for each destination.
fn reporting(prometheus: &Prometheus) -> BTreeMap<Pair, f64> {
    by_pair(
        prometheus,
        "count by (replication, destination) (replicanary_verdict == 1)",
    )
}

/// The active ReplicanaryReplicaUndecryptable alerts by destination, with their
/// `activeAt`; panics if one is not firing or is there twice.
fn undecryptable_alerts(prometheus: &Prometheus) -> BTreeMap<Pair, String> {
    let mut out = BTreeMap::new();
    for a in prometheus.alerts_named("ReplicanaryReplicaUndecryptable") {
        assert_eq!(a["state"], "firing", "{a}");
        let before = out.insert(pair_of(&a), a["activeAt"].to_string());
        assert!(before.is_none(), "twice for one destination: {a}");
    }
    out
}

/// Convention 1 of the rules: one alert per thing, never per instance (ReplicanaryDown
/// aside, which names the target on purpose).
fn assert_no_alert_per_instance(prometheus: &Prometheus) {
    let per_instance: Vec<_> = prometheus
        .alerts()
        .into_iter()
        .filter(|a| label(a, "alertname") != "ReplicanaryDown")
        .filter(|a| !label(a, "instance").is_empty() || !label(a, "pod").is_empty())
        .collect();
    assert!(
        per_instance.is_empty(),
        "alerts per instance: {per_instance:#?}"
    );
}

/// No alert is active for these destinations now, and none ever was during the run.
fn assert_never_alerted(prometheus: &Prometheus, quiet: &[Pair]) {
    let now: Vec<_> = prometheus
        .alerts()
        .into_iter()
        .filter(|a| quiet.contains(&pair_of(a)))
        .collect();
    assert!(now.is_empty(), "alerts for healthy destinations: {now:#?}");
    for (r, d) in quiet {
        let ever = prometheus.alert_history(&format!(r#"replication="{r}",destination="{d}""#));
        assert!(
            ever.is_empty(),
            "alerts for {r}/{d} during the run: {ever:#?}"
        );
    }
}

fn instance(d: &Daemon) -> String {
    format!("127.0.0.1:{}", d.port)
}

/// Waits until Prometheus' latest scrape of `target` failed (`up` is 0).
fn wait_down(prometheus: &Prometheus, target: &str) {
    wait_until(
        Duration::from_secs(15),
        &format!("up{{instance=\"{target}\"}} == 0"),
        || {
            let up = prometheus.query(&format!(r#"up{{instance="{target}"}}"#));
            up.len() == 1 && value_of(&up[0]) == 0.0
        },
    );
}

/// The one active alert `name`, which must be pending (its `for` not yet over) and whose
/// rule waits `for_seconds`.
fn assert_one_pending(prometheus: &Prometheus, name: &str, for_seconds: f64) -> serde_json::Value {
    let alerts = prometheus.alerts_named(name);
    assert_eq!(alerts.len(), 1, "{name}: {alerts:#?}");
    assert_eq!(alerts[0]["state"], "pending", "{:#}", alerts[0]);
    let rule = prometheus
        .rules()
        .into_iter()
        .find(|r| r["name"] == name)
        .expect("the rule");
    assert_eq!(rule["duration"].as_f64(), Some(for_seconds), "{rule}");
    alerts.into_iter().next().expect("one")
}

#[test]
fn an_ha_pair_alerts_once_per_destination_and_keeps_alerting_when_one_instance_stops() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    let _serial = one_at_a_time();
    let started = Instant::now();
    let lab = Lab::start(LAB_ARGS);
    let config = lab.provision(&["healthy", "wrong-key", "fan-out"], PROBE_ARGS);
    let all = destinations_of(&config);
    let broken: Vec<Pair> = all
        .iter()
        .filter(|(r, d)| r == "wrong-key" || d == "wrong")
        .cloned()
        .collect();
    let quiet: Vec<Pair> = all
        .difference(&broken.iter().cloned().collect())
        .cloned()
        .collect();
    assert_eq!((broken.len(), quiet.len()), (2, 2), "{all:?}");
    let first = Daemon::start(&config, &[]);
    let second = Daemon::start(&config, &[]);
    let prometheus = Prometheus::start(&binary, &[first.port, second.port]);

    // Both instances' standing verdicts for every destination, and two ok verdicts from
    // each for the healthy ones, have reached Prometheus and gone through the rules.
    wait_until(
        Duration::from_secs(60),
        "verdicts from both instances",
        || {
            let two = reporting(&prometheus);
            all.iter().all(|p| two.get(p) == Some(&2.0))
            && by_pair(
                &prometheus,
                r#"count by (replication, destination) (replicanary_probes_total{outcome="ok"} >= 2)"#,
            )
            .into_iter()
            .filter(|(p, n)| quiet.contains(p) && *n == 2.0)
            .count()
                == quiet.len()
        },
    );
    let both = Instant::now();
    prometheus.wait_for_evaluations(2);
    let undecryptable = undecryptable_alerts(&prometheus);
    assert_eq!(
        undecryptable.keys().cloned().collect::<Vec<_>>(),
        broken,
        "one ReplicanaryReplicaUndecryptable per broken destination"
    );
    let standing = by_pair(
        &prometheus,
        r#"count by (replication, destination) (replicanary_verdict{outcome="undecryptable"} == 1)"#,
    );
    assert!(
        broken.iter().all(|p| standing.get(p) == Some(&2.0)),
        "both instances say undecryptable: {standing:?}"
    );
    assert_no_alert_per_instance(&prometheus);
    assert_never_alerted(&prometheus, &quiet);
    let ever = prometheus.self_alerts_ever();
    assert!(ever.is_empty(), "alerts about replicanary: {ever:#?}");
    prometheus.assert_rules_healthy();
    eprintln!(
        "HA pair: both instances in Prometheus {:.1}s after the start",
        both.duration_since(started).as_secs_f64()
    );

    // One instance goes away: its series go stale; the other keeps every alert as it was.
    let gone = instance(&second);
    let status = second.signal_and_wait("TERM", Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    wait_down(&prometheus, &gone);
    wait_until(
        Duration::from_secs(15),
        "one instance reporting each destination",
        || {
            let one = reporting(&prometheus);
            all.iter().all(|p| one.get(p) == Some(&1.0))
        },
    );
    prometheus.wait_for_evaluations(2);
    assert_eq!(
        undecryptable_alerts(&prometheus),
        undecryptable,
        "the alerts go on, once each, active since the same moment"
    );
    let down = assert_one_pending(&prometheus, "ReplicanaryDown", 300.0);
    assert_eq!(label(&down, "instance"), gone, "{down:#}");
    let up = prometheus.query(r#"up == 0"#);
    assert_eq!(up.len(), 1, "{up:#?}");
    let missing = prometheus.alerts_named("ReplicanaryShardMissing");
    assert!(missing.is_empty(), "an HA pair is one shard: {missing:#?}");
    let absent = prometheus.alerts_named("ReplicanaryAbsent");
    assert!(absent.is_empty(), "{absent:#?}");
    assert_no_alert_per_instance(&prometheus);
    assert_never_alerted(&prometheus, &quiet);
    prometheus.assert_rules_healthy();
    drop(first);
    eprintln!("HA pair test: {:.1}s", started.elapsed().as_secs_f64());
}

#[test]
fn two_shards_cover_every_destination_exactly_once_in_prometheus() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    let _serial = one_at_a_time();
    let started = Instant::now();
    let lab = Lab::start(LAB_ARGS);
    let config = lab.provision(
        &["healthy", "wrong-key", "fan-out", "other-key", "denied"],
        PROBE_ARGS,
    );
    let all = destinations_of(&config);
    assert_eq!(all.len(), 6, "{all:?}");
    let shard =
        |i: &str| Daemon::start_with(&config, &["--shard-index", i, "--shard-count", "2"], &[]);
    let (zero, one) = (shard("0"), shard("1"));
    let prometheus = Prometheus::start(&binary, &[zero.port, one.port]);

    // Every destination has verdicts, in Prometheus.
    wait_until(
        Duration::from_secs(60),
        "a verdict for every destination",
        || {
            let probed = by_pair(
                &prometheus,
                "sum by (replication, destination) (replicanary_probes_total) >= 1",
            );
            all.iter().all(|p| probed.contains_key(p))
        },
    );
    // Which instances have series of each destination: exactly one each, both shards used.
    let mut owners: BTreeMap<Pair, Vec<String>> = BTreeMap::new();
    for s in
        prometheus.query("group by (replication, destination, instance) (replicanary_probes_total)")
    {
        owners
            .entry(pair_of(&s))
            .or_default()
            .push(label(&s, "instance").to_owned());
    }
    assert_eq!(
        owners.keys().cloned().collect::<BTreeSet<_>>(),
        all,
        "the union of the shards' series is the configuration"
    );
    let twice: Vec<_> = owners.iter().filter(|(_, i)| i.len() != 1).collect();
    assert!(twice.is_empty(), "on both shards: {twice:?}");
    let per_shard: BTreeMap<&str, usize> = owners.values().fold(BTreeMap::new(), |mut m, i| {
        *m.entry(i[0].as_str()).or_default() += 1;
        m
    });
    assert_eq!(
        per_shard.len(),
        2,
        "both shards probe something: {owners:?}"
    );
    let info: BTreeSet<(String, String, String)> = prometheus
        .query("replicanary_shard_info == 1")
        .iter()
        .map(|s| {
            (
                label(s, "instance").to_owned(),
                label(s, "index").to_owned(),
                label(s, "count").to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<_> = [(instance(&zero), "0"), (instance(&one), "1")]
        .into_iter()
        .map(|(i, x)| (i, x.to_owned(), "2".to_owned()))
        .collect();
    assert_eq!(info, expected);

    prometheus.wait_for_evaluations(2);
    let undecryptable = undecryptable_alerts(&prometheus);
    let broken: Vec<Pair> = all
        .iter()
        .filter(|(r, d)| r == "wrong-key" || d == "wrong")
        .cloned()
        .collect();
    assert_eq!(undecryptable.keys().cloned().collect::<Vec<_>>(), broken);
    assert_no_alert_per_instance(&prometheus);
    assert!(
        prometheus
            .alerts_named("ReplicanaryShardMissing")
            .is_empty()
    );
    prometheus.assert_rules_healthy();

    // Shard 1 goes away: nobody probes its replications any more.
    let gone = instance(&one);
    let status = one.signal_and_wait("TERM", Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    wait_down(&prometheus, &gone);
    prometheus.wait_for_evaluations(2);
    let missing = assert_one_pending(&prometheus, "ReplicanaryShardMissing", 300.0);
    assert_eq!(
        (label(&missing, "index"), label(&missing, "count")),
        ("1", "2"),
        "{missing:#}"
    );
    let down = assert_one_pending(&prometheus, "ReplicanaryDown", 300.0);
    assert_eq!(label(&down, "instance"), gone, "{down:#}");
    prometheus.assert_rules_healthy();
    drop(zero);
    eprintln!("shards test: {:.1}s", started.elapsed().as_secs_f64());
}
