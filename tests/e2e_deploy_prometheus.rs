//! A real Prometheus (Debian's `prometheus`) with `deploy/prometheus/replicanary.rules.yml`,
//! scraping replicanary that probes the lab's `wrong-key` and `healthy` scenarios: through
//! Prometheus' HTTP API, `ReplicanaryReplicaUndecryptable` fires for `wrong-key` within a
//! bounded time, and no alert (pending or firing) names `healthy`.
//!
//! Skipped when `prometheus` is not installed, unless `CI` is set: in CI a missing
//! Prometheus is a failure (`.ci/run` installs it). Prometheus itself: tests/support/prometheus.rs.

mod support;

use std::time::{Duration, Instant};

use support::prometheus::{Prometheus, label, prometheus_binary};
use support::{Daemon, Lab, poll_until, wait_until};

#[test]
fn undecryptable_alert_fires_for_wrong_key_and_nothing_for_healthy() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    let lab = Lab::start(&[]);
    let config = lab.provision(&["healthy", "wrong-key"], &["--interval", "1s"]);
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

    // ...and no alert names it, nor is any alert about replicanary itself active.
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
