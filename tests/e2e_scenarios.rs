//! The daemon against every lab scenario: each gets the verdict it stands for, read from
//! `/metrics` as Prometheus would.

mod support;

use std::time::Duration;

use support::{Daemon, Lab};

const ALL: &[&str] = &[
    "healthy",
    "wrong-key",
    "other-key",
    "unselected",
    "denied",
    "slow",
    "disabled-key",
    "fan-out",
];

#[test]
fn every_scenario_gets_its_verdict() {
    let lab = Lab::start(&[]);
    let config = lab.provision(ALL, &["--interval", "3s"]);
    let daemon = Daemon::start(&config, &[]);

    let expected = [
        ("healthy", "healthy", "ok"),
        ("wrong-key", "wrong-key", "undecryptable"),
        ("other-key", "other-key", "wrong_kms_key"),
        ("unselected", "unselected", "not_replicated"),
        ("denied", "denied", "replication_failed"),
        ("slow", "slow", "replication_timeout"),
        ("disabled-key", "disabled-key", "undecryptable"),
        ("fan-out", "good", "ok"),
        ("fan-out", "wrong", "undecryptable"),
    ];
    // Destination labels default to the bucket name: find them from the metrics.
    let m = daemon.metrics();
    let label_of = |replication: &str, name: &str| -> String {
        if replication == "fan-out" {
            return name.to_owned();
        }
        let needle = "destination=\"";
        m.text
            .lines()
            .filter(|l| {
                l.starts_with("replicanary_probe_success{")
                    && l.contains(&format!("replication=\"{replication}\""))
            })
            .find_map(|l| {
                l.split(needle)
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no destination exported for {replication}"))
    };
    let labelled: Vec<(String, String, &str)> = expected
        .iter()
        .map(|(r, d, o)| (r.to_string(), label_of(r, d), *o))
        .collect();
    let pairs: Vec<(&str, &str)> = labelled
        .iter()
        .map(|(r, d, _)| (r.as_str(), d.as_str()))
        .collect();

    let m = daemon.wait_for_verdicts(&pairs, 2.0, Duration::from_secs(90));
    for (r, d, outcome) in &labelled {
        let outcomes = m.outcomes(r, d);
        assert_eq!(
            outcomes.keys().collect::<Vec<_>>(),
            [outcome],
            "{r}/{d}: every verdict should be {outcome}, got {outcomes:?}\n{}",
            daemon.log_text()
        );
        let success = m.get(
            "replicanary_probe_success",
            &[("replication", r), ("destination", d)],
        );
        assert_eq!(
            success,
            Some(if *outcome == "ok" { 1.0 } else { 0.0 }),
            "{r}/{d}"
        );
    }

    // What the verdict metrics say about the replica.
    let key_match = |r: &str, d: &str| {
        m.get(
            "replicanary_replica_kms_key_match",
            &[("replication", r), ("destination", d)],
        )
    };
    let readable = |r: &str, d: &str| {
        m.get(
            "replicanary_replica_readable",
            &[("replication", r), ("destination", d)],
        )
    };
    let (h, wk, ok_) = (&labelled[0], &labelled[1], &labelled[2]);
    assert_eq!(key_match(&h.0, &h.1), Some(1.0));
    assert_eq!(readable(&h.0, &h.1), Some(1.0));
    assert_eq!(
        key_match(&wk.0, &wk.1),
        Some(0.0),
        "the seed's trap: wrong key"
    );
    assert_eq!(
        readable(&wk.0, &wk.1),
        Some(0.0),
        "the seed's trap: unreadable"
    );
    assert_eq!(key_match(&ok_.0, &ok_.1), Some(0.0));
    assert_eq!(readable(&ok_.0, &ok_.1), Some(1.0));
    assert!(
        m.get(
            "replicanary_last_success_timestamp_seconds",
            &[("replication", &h.0)]
        )
        .is_some_and(|t| t > 1.7e9)
    );
    assert!(
        m.get(
            "replicanary_last_success_timestamp_seconds",
            &[("replication", &wk.0)]
        )
        .is_none()
    );
    assert_eq!(m.get("replicanary_build_info", &[]), Some(1.0));

    // Every call is counted, with bounded labels only.
    assert!(
        m.sum(
            "replicanary_aws_requests_total",
            &[("operation", "PutObject"), ("code", "ok")]
        ) >= 16.0
    );
    assert!(
        m.sum(
            "replicanary_aws_requests_total",
            &[("operation", "AssumeRole"), ("code", "ok")]
        ) >= 1.0
    );
    assert!(
        m.sum(
            "replicanary_aws_requests_total",
            &[
                ("replication", "wrong-key"),
                ("operation", "GetObject"),
                ("code", "AccessDenied")
            ]
        ) >= 2.0
    );
    for line in m.text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains("arn:aws") && !line.contains("replicanary/"),
            "unbounded label value: {line}"
        );
    }

    // The verdict's log line carries the AWS error of the seed's trap.
    let log = daemon.log_text();
    let trap = log
        .lines()
        .find(|l| {
            l.contains("\"outcome\":\"undecryptable\"")
                && l.contains("\"replication\":\"wrong-key\"")
        })
        .expect("an undecryptable verdict line");
    assert!(
        trap.contains("\"aws_error_code\":\"AccessDenied\""),
        "{trap}"
    );
    assert!(
        trap.contains("The ciphertext refers to a customer master key"),
        "{trap}"
    );
    assert!(trap.contains("\"version_id\":"), "{trap}");
}
