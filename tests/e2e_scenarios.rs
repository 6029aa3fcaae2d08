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

/// Every scenario's destinations and what the daemon must say of each: (scenario,
/// destination name — empty for a scenario's only destination, labelled by its bucket —,
/// verdict, the findings holding, or `None` where these tests do not pin them).
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static [&'static str]>,
);

/// The one table of scenario → verdict and findings; each test takes its scenarios' rows.
const EXPECTED: &[Expected] = &[
    ("healthy", "", "ok", Some(&[])),
    ("wrong-key", "", "undecryptable", None),
    ("other-key", "", "wrong_kms_key", None),
    ("unselected", "", "not_replicated", None),
    ("denied", "", "replication_failed", None),
    ("slow", "", "replication_timeout", None),
    ("disabled-key", "", "undecryptable", None),
    ("fan-out", "good", "ok", None),
    ("fan-out", "wrong", "undecryptable", None),
    ("archive", "", "ok", Some(&[])),
    (
        "archive-wrong-key",
        "",
        "wrong_kms_key",
        Some(&[
            "replica_kms_key_not_expected",
            "replica_kms_key_other_account",
        ]),
    ),
    (
        "source-owned",
        "",
        "unreadable",
        Some(&["replica_owned_by_source_account"]),
    ),
    (
        "locked",
        "",
        "ok",
        Some(&["canaries_retained_by_object_lock"]),
    ),
    (
        "partial-fan-out",
        "failing",
        "replication_failed",
        Some(&["destination_policy_missing_replication_role"]),
    ),
    ("partial-fan-out", "slow", "ok", Some(&[])),
    // The destination role may list the key's versions: the 403 of vanished-no-list's
    // HeadObject (no s3:ListBucket) is told from a refused replica.
    ("vanished", "", "replica_missing", Some(&[])),
    ("vanished-no-list", "", "replica_missing", Some(&[])),
];

/// A row of [`EXPECTED`] with its destination's label as exported.
struct Labelled {
    replication: String,
    destination: String,
    outcome: &'static str,
}

/// Waits until every destination of `scenarios` has `verdicts` verdicts, then requires each
/// to be its row's verdict every time — `replicanary_probe_success`, the standing verdict
/// and the findings agreeing — and returns the metrics and the labelled rows, in the
/// table's order.
fn expect_verdicts(
    daemon: &Daemon,
    scenarios: &[&str],
    timeout: Duration,
) -> (support::Metrics, Vec<Labelled>) {
    let rows: Vec<&Expected> = EXPECTED
        .iter()
        .filter(|(s, ..)| scenarios.contains(s))
        .collect();
    let names: Vec<String> = scenarios.iter().map(|s| s.to_string()).collect();
    let m = registered(daemon, &names);
    let labelled: Vec<Labelled> = rows
        .iter()
        .map(|(r, d, o, _)| Labelled {
            replication: r.to_string(),
            destination: destination_label(&m, r, d),
            outcome: o,
        })
        .collect();
    let pairs: Vec<(&str, &str)> = labelled
        .iter()
        .map(|l| (l.replication.as_str(), l.destination.as_str()))
        .collect();
    let m = daemon.wait_for_verdicts(&pairs, 2.0, timeout);
    for (l, (.., want)) in labelled.iter().zip(&rows) {
        let (r, d, outcome) = (l.replication.as_str(), l.destination.as_str(), l.outcome);
        let outcomes = m.outcomes(r, d);
        assert_eq!(
            outcomes.keys().collect::<Vec<_>>(),
            [outcome],
            "{r}/{d}: every verdict should be {outcome}, got {outcomes:?}\n{}",
            daemon.log_text()
        );
        let rd = [("replication", r), ("destination", d)];
        assert_eq!(
            m.get("replicanary_probe_success", &rd),
            Some(if outcome == "ok" { 1.0 } else { 0.0 }),
            "{r}/{d}"
        );
        let standing = m.get(
            "replicanary_verdict",
            &[("replication", r), ("destination", d), ("outcome", outcome)],
        );
        assert_eq!(standing, Some(1.0), "{r}/{d}: the standing verdict");
        if let Some(want) = want {
            assert_eq!(
                findings(&m, r, d),
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "{r}/{d}"
            );
        }
    }
    (m, labelled)
}

#[test]
fn every_scenario_gets_its_verdict() {
    let lab = Lab::start(&[]);
    let config = lab.provision(ALL, &["--interval", "3s"]);
    let daemon = Daemon::start(&config, &[]);

    let (m, labelled) = expect_verdicts(&daemon, ALL, Duration::from_secs(90));
    let labelled: Vec<(String, String)> = labelled
        .into_iter()
        .map(|l| (l.replication, l.destination))
        .collect();

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

/// The metrics once every named replication has registered its series: `/readyz` answers
/// as soon as the replications' tasks are spawned, and each registers when its prober is
/// built, a moment later on a busy machine.
fn registered(daemon: &Daemon, names: &[String]) -> support::Metrics {
    let mut last = daemon.metrics();
    support::poll_until(Duration::from_secs(15), || {
        last = daemon.metrics();
        let exported = last.label_values("replicanary_probe_success", "replication");
        names.iter().all(|n| exported.contains(n))
    });
    last
}

/// The destination label of a replication's only destination (the bucket name, which
/// carries the provisioning's random suffix), or `name` for a named one.
fn destination_label(m: &support::Metrics, replication: &str, name: &str) -> String {
    if !name.is_empty() {
        return name.to_owned();
    }
    m.text
        .lines()
        .filter(|l| {
            l.starts_with("replicanary_probe_success{")
                && l.contains(&format!("replication=\"{replication}\""))
        })
        .find_map(|l| {
            l.split("destination=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no destination exported for {replication}"))
}

/// The findings holding (`replicanary_finding` at 1) for one destination, sorted.
fn findings(m: &support::Metrics, replication: &str, destination: &str) -> Vec<String> {
    let mut ids: Vec<String> = m
        .text
        .lines()
        .filter(|l| {
            l.starts_with("replicanary_finding{")
                && l.contains(&format!("replication=\"{replication}\""))
                && l.contains(&format!("destination=\"{destination}\""))
                && l.ends_with(" 1")
        })
        .filter_map(|l| {
            l.split("finding=\"")
                .nth(1)?
                .split('"')
                .next()
                .map(str::to_owned)
        })
        .collect();
    ids.sort();
    ids
}

/// The scenarios of real estates: archive classes, a replica the source account
/// keeps, Object Lock, a partial fan-out, a replica gone after COMPLETED — each with its
/// verdict and findings, the healthy scenario beside them `ok` with none.
#[test]
fn every_real_estate_scenario_gets_its_verdict_and_findings() {
    let lab = Lab::start(&[]);
    let scenarios = [
        "healthy",
        "archive",
        "archive-wrong-key",
        "source-owned",
        "locked",
        "partial-fan-out",
        "vanished",
        "vanished-no-list",
    ];
    let config = lab.provision(&scenarios, &["--interval", "3s"]);
    let daemon = Daemon::start(&config, &[]);
    let (m, labelled) = expect_verdicts(&daemon, &scenarios, Duration::from_secs(120));
    let of = |name: &str, r: &str| {
        let l = labelled
            .iter()
            .find(|l| l.replication == r)
            .expect("a scenario");
        m.get(name, &[("replication", r), ("destination", &l.destination)])
    };
    // Archive: judged by the HEAD (key checked), the read skipped and not claimed.
    assert_eq!(
        of("replicanary_replica_kms_key_match", "archive"),
        Some(1.0)
    );
    assert_eq!(of("replicanary_replica_readable", "archive"), None);
    assert_eq!(
        of("replicanary_replica_kms_key_match", "archive-wrong-key"),
        Some(0.0),
        "the seed's wrong key under DEEP_ARCHIVE is still caught"
    );
    assert_eq!(
        of("replicanary_replica_readable", "archive-wrong-key"),
        None
    );
    assert_eq!(
        of("replicanary_replica_readable", "source-owned"),
        Some(0.0)
    );
    assert_eq!(of("replicanary_replica_readable", "healthy"), Some(1.0));
    // Object Lock: the replicas wait for their retention, counted as retained, not failed.
    let retained = m.get(
        "replicanary_canaries_retained",
        &[("replication", "locked"), ("side", "destination")],
    );
    assert!(retained.is_some_and(|n| n >= 1.0), "{retained:?}");
    for (r, side) in [("locked", "destination"), ("healthy", "destination")] {
        assert_eq!(
            m.get(
                "replicanary_cleanup_failures_total",
                &[("replication", r), ("side", side)]
            ),
            Some(0.0),
            "{r}: a retained replica is not a failed delete"
        );
    }
    // The archived replica's verdict says the read was skipped.
    let log = daemon.log_text();
    let archived = log
        .lines()
        .find(|l| l.contains("\"replication\":\"archive\"") && l.contains("\"outcome\":\"ok\""))
        .expect("an archive verdict line");
    assert!(
        archived.contains("\"storage_class\":\"DEEP_ARCHIVE\""),
        "{archived}"
    );
    assert!(archived.contains("\"read\":\"skipped"), "{archived}");
    let locked = log
        .lines()
        .find(|l| l.contains("\"replication\":\"locked\"") && l.contains("\"outcome\":\"ok\""))
        .expect("a locked verdict line");
    assert!(locked.contains("\"retain_until\":\""), "{locked}");
}
