//! A real Prometheus (Debian's `prometheus`) with `deploy/prometheus/replicanary.rules.yml`,
//! scraping replicanary that probes the lab's `wrong-key` and `healthy` scenarios: through
//! Prometheus' HTTP API, `ReplicanaryReplicaUndecryptable` fires for `wrong-key` within a
//! bounded time, no alert (pending or firing) ever names `healthy` (the `ALERTS` series over
//! the whole run, not only the alerts at the end), and every rule evaluates without error.
//! The two-instance shapes (an HA pair, shards) are tests/e2e_deploy_ha.rs.
//!
//! Skipped when `prometheus` is not installed, unless `CI` is set: in CI a missing
//! Prometheus is a failure (`.ci/run` installs it). Prometheus itself: tests/support/prometheus.rs.

mod support;

use std::time::{Duration, Instant};

use support::prometheus::{LAB_ARGS, PROBE_ARGS, Prometheus, label, prometheus_binary};
use support::{Daemon, Lab, poll_until, wait_until};

#[test]
fn undecryptable_alert_fires_for_wrong_key_and_nothing_for_healthy() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    // Probes well inside their interval (see PROBE_ARGS for why that matters).
    let lab = Lab::start(LAB_ARGS);
    let config = lab.provision(&["healthy", "wrong-key"], PROBE_ARGS);
    let daemon = Daemon::start(&config, &[]);
    let prometheus = Prometheus::start(&binary, &[daemon.port]);

    let started = Instant::now();
    let bound = Duration::from_secs(60);
    let fired = poll_until(bound, || {
        prometheus.alerts().iter().any(|a| {
            label(a, "alertname") == "ReplicanaryReplicaUndecryptable"
                && label(a, "replication") == "wrong-key"
                && a["state"] == "firing"
        })
    });
    assert!(
        fired,
        "ReplicanaryReplicaUndecryptable did not fire for wrong-key within {bound:?}\nalerts: {:?}\nprometheus log:\n{}\nreplicanary log:\n{}",
        prometheus.alerts(),
        prometheus.log_text(),
        daemon.log_text()
    );
    eprintln!(
        "ReplicanaryReplicaUndecryptable firing for wrong-key {:.1}s after Prometheus started",
        started.elapsed().as_secs_f64()
    );

    // The healthy replication has been probed and scraped (several ok verdicts)...
    wait_until(
        Duration::from_secs(30),
        "two ok verdicts of healthy in Prometheus",
        || {
            prometheus
                .query(r#"replicanary_probes_total{replication="healthy",outcome="ok"} >= 2"#)
                .len()
                == 1
        },
    );
    let success = prometheus.query(r#"replicanary_probe_success{replication="healthy"}"#);
    assert_eq!(success.len(), 1, "{success:?}");
    assert_eq!(success[0]["value"][1], "1", "{success:?}");
    // The rules have seen those verdicts.
    prometheus.wait_for_evaluations(2);
    prometheus.assert_rules_healthy();

    // ...and no alert ever named it, nor was any alert about replicanary itself active
    // (after the first scrape)...
    let ever = prometheus.alert_history(r#"replication="healthy""#);
    assert!(
        ever.is_empty(),
        "alerts for healthy during the run: {ever:?}"
    );
    let ever = prometheus.self_alerts_ever();
    assert!(
        ever.is_empty(),
        "alerts about replicanary during the run: {ever:?}"
    );
    // ...nor does now.
    let alerts = prometheus.alerts();
    let about_healthy: Vec<_> = alerts
        .iter()
        .filter(|a| label(a, "replication") == "healthy" || label(a, "replication").is_empty())
        .collect();
    assert!(
        about_healthy.is_empty(),
        "alerts for healthy (or replicanary itself): {about_healthy:?}"
    );
    let wrong_key: Vec<&str> = alerts
        .iter()
        .filter(|a| label(a, "replication") == "wrong-key")
        .map(|a| label(a, "alertname"))
        .collect();
    assert!(
        wrong_key.contains(&"ReplicanaryReplicaUndecryptable"),
        "{wrong_key:?}"
    );
    // The undecryptable replica is not also reported as "under the wrong key".
    assert!(
        !wrong_key.contains(&"ReplicanaryReplicaWrongKmsKey"),
        "{wrong_key:?}"
    );
    let firing = alerts
        .iter()
        .find(|a| label(a, "alertname") == "ReplicanaryReplicaUndecryptable")
        .expect("the alert");
    assert_eq!(label(firing, "severity"), "critical");
    assert!(
        firing["annotations"]["runbook_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("docs/runbook.md#replicanaryreplicaundecryptable")),
        "{firing}"
    );
}
