//! A real Prometheus with the shipped rules, scraping replicanary on the lab's `readers`
//! scenario: `ReplicanaryReaderCannotRead` fires exactly once for each failing (replication,
//! destination, reader) — `nokms` (undecryptable) and `nos3` (unreadable) — never for the
//! reader that reads (`fine`); the unassumable reader (`locked`) gets
//! `ReplicanaryReaderRoleCannotBeAssumed` instead; no destination-level alert fires (the
//! destination's own verdict is `ok`); every rule evaluates without error.
//!
//! Skipped when `prometheus` is not installed, unless `CI` is set (see
//! tests/support/prometheus.rs).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::prometheus::{LAB_ARGS, PROBE_ARGS, Prometheus, label, prometheus_binary};
use support::{Daemon, Lab, poll_until};

#[test]
fn reader_alerts_fire_once_per_failing_reader_and_never_for_the_fine_one() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    let lab = Lab::start(LAB_ARGS);
    let mut args = PROBE_ARGS.to_vec();
    args.push("--suffix=-rp");
    let config = lab.provision(&["readers"], &args);
    let daemon = Daemon::start(&config, &[]);
    let prometheus = Prometheus::start(&binary, &[daemon.port]);

    // (alertname, reader) → how many firing alerts name it.
    let firing = || -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for a in prometheus.alerts() {
            if a["state"] == "firing" {
                let key = (
                    label(&a, "alertname").to_owned(),
                    label(&a, "reader").to_owned(),
                );
                *out.entry(key).or_default() += 1;
            }
        }
        out
    };
    let want: BTreeMap<(String, String), usize> = [
        ("ReplicanaryReaderCannotRead", "nokms"),
        ("ReplicanaryReaderCannotRead", "nos3"),
        ("ReplicanaryReaderRoleCannotBeAssumed", "locked"),
    ]
    .iter()
    .map(|(a, r)| (((*a).to_owned(), (*r).to_owned()), 1))
    .collect();
    let bound = Duration::from_secs(60);
    let fired = poll_until(bound, || firing() == want);
    assert!(
        fired,
        "expected {want:?} within {bound:?}, firing: {:?}\nalerts: {:?}\nreplicanary log:\n{}",
        firing(),
        prometheus.alerts(),
        daemon.log_text()
    );

    // Several probes later, still exactly those.
    poll_until(Duration::from_secs(30), || {
        prometheus
            .query(r#"replicanary_reader_probes_total{reader="fine",outcome="ok"} >= 3"#)
            .len()
            == 1
    });
    prometheus.wait_for_evaluations(2);
    prometheus.assert_rules_healthy();
    assert_eq!(firing(), want);

    // No alert ever named the fine reader, and no destination-level alert fired.
    let fine = prometheus.alert_history(r#"reader="fine""#);
    assert!(fine.is_empty(), "alerts for the fine reader: {fine:?}");
    let destination_level = prometheus.alert_history(r#"replication="readers",reader="""#);
    assert!(
        destination_level.is_empty(),
        "the destination itself is ok: {destination_level:?}"
    );
    let cannot_read = prometheus.alerts_named("ReplicanaryReaderCannotRead");
    let nokms = cannot_read
        .iter()
        .find(|a| label(a, "reader") == "nokms")
        .expect("nokms alert");
    assert_eq!(label(nokms, "severity"), "critical");
    let description = nokms["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains("(undecryptable:") && description.contains("reader_kms_not_granted"),
        "the description names the outcome and the finding: {description}"
    );
    let locked = prometheus.alerts_named("ReplicanaryReaderRoleCannotBeAssumed");
    assert_eq!(label(&locked[0], "severity"), "warning");
}
