//! The daemon's background scan (`scan:` in `defaults`) of the lab's backlog scenario:
//! `/metrics` exports the same counts per class as `replicanary scan`, the status page
//! shows them, a reload that keeps the replication keeps the pass under way (one pass, not
//! two), and under a real Prometheus with the shipped rules ReplicanaryScanFoundBrokenReplicas
//! fires for the wrong-key replicas and for no other class.

mod support;

use std::time::Duration;

use support::prometheus::{LAB_ARGS, Prometheus, label, prometheus_binary};
use support::{Daemon, Lab, http_get, http_post, poll_until, wait_until};

const SCAN_DONE: &str = "replicanary_scan_last_complete_timestamp_seconds";

#[test]
fn the_background_scan_exports_the_counts_and_the_alert_fires() {
    let lab = Lab::start(LAB_ARGS);
    // 14 objects, ~33 requests at 4 per second: a pass of about 8 s, long enough to reload
    // in the middle of it.
    let (config, expect) = support::backlog::provision(
        &lab,
        &[
            "--interval",
            "3s",
            "--scan",
            r#"{"interval": "1h", "rate": 4}"#,
        ],
    );
    let destination = expect["destination"]
        .as_str()
        .expect("destination bucket")
        .to_owned();
    // The reload below is a POST /-/reload: the lifecycle API must be on.
    let daemon = Daemon::start_with(&config, &["--web.enable-lifecycle"], &[]);

    // The pass is under way: progress counts up; then a reload with the same file.
    wait_until(Duration::from_secs(30), "the scan to make progress", || {
        daemon
            .metrics()
            .get(
                "replicanary_scan_progress_objects",
                &[("replication", "backlog")],
            )
            .is_some_and(|n| n > 0.0)
    });
    assert!(
        daemon
            .metrics()
            .get(SCAN_DONE, &[("replication", "backlog")])
            .is_none(),
        "no pass complete yet"
    );
    let (status, body) = http_post(daemon.port, "/-/reload", "").expect("reload answers");
    assert_eq!(status, 200, "{body}");

    wait_until(Duration::from_secs(60), "a complete scan pass", || {
        daemon
            .metrics()
            .get(SCAN_DONE, &[("replication", "backlog")])
            .is_some()
    });
    let metrics = daemon.metrics();
    for (class, n) in support::backlog::COUNTS {
        let got = metrics.get(
            "replicanary_scan_objects",
            &[
                ("replication", "backlog"),
                ("destination", &destination),
                ("class", class),
            ],
        );
        assert_eq!(got, Some(*n as f64), "{class}");
    }
    assert_eq!(
        metrics.get(
            "replicanary_scan_progress_objects",
            &[("replication", "backlog")]
        ),
        Some(0.0),
        "no pass under way after the pass"
    );
    let log = daemon.log_text();
    assert_eq!(
        log.matches("scan pass starting").count(),
        1,
        "the reload kept the pass under way instead of starting another:\n{log}"
    );

    let (status, page) = http_get(daemon.port, "/").expect("the status page answers");
    assert_eq!(status, 200);
    assert!(page.contains("Scans: every real object"), "{page}");
    assert!(page.contains("<b>3</b> wrong_kms_key"), "{page}");
    assert!(page.contains("<b>4</b> ok"), "{page}");

    // The alert, under a real Prometheus with the shipped rules.
    let Some(binary) = prometheus_binary() else {
        return;
    };
    let prometheus = Prometheus::start(&binary, &[daemon.port]);
    let fired = poll_until(Duration::from_secs(60), || {
        prometheus
            .alerts_named("ReplicanaryScanFoundBrokenReplicas")
            .iter()
            .any(|a| {
                label(a, "replication") == "backlog"
                    && label(a, "class") == "wrong_kms_key"
                    && a["state"] == "firing"
            })
    });
    assert!(
        fired,
        "ReplicanaryScanFoundBrokenReplicas did not fire: {:?}\n{}",
        prometheus.alerts(),
        prometheus.log_text()
    );
    let classes: Vec<String> = prometheus
        .alerts_named("ReplicanaryScanFoundBrokenReplicas")
        .iter()
        .map(|a| label(a, "class").to_owned())
        .collect();
    assert_eq!(
        classes,
        ["wrong_kms_key"],
        "only the failing classes the alert names"
    );
    prometheus.assert_rules_healthy();
}
