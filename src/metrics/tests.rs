//! The exposition, line by line: names, help, types, label sets, buckets and the presence
//! rules (what exists from registration, what appears later, what goes away).

use std::time::{Duration, SystemTime};

use super::*;
use crate::model::{DestinationVerdict, Finding, FindingId, Outcome, ReplicaFacts, Side};

impl Metrics {
    /// The Prometheus text exposition of everything, whole (the tests' view; `/metrics`
    /// streams [`Metrics::encode_to`]).
    pub(crate) fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = self.encode_to(&mut out) {
            return format!("# encoding failed: {e}\n");
        }
        // The encoder writes UTF-8 only (names, escaped label values, numbers).
        String::from_utf8(out).unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}

/// The lines of one family (`# HELP`, `# TYPE` and its samples), as exported.
fn family(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let series = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            let n = series.split(['{', ' ']).next().unwrap_or_default();
            n == name
                || n.strip_prefix(name)
                    .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))
        })
        .map(str::to_owned)
        .collect()
}

/// The sample lines of one family, without its headers.
fn samples(text: &str, name: &str) -> Vec<String> {
    family(text, name)
        .into_iter()
        .filter(|l| !l.starts_with('#'))
        .collect()
}

fn verdict(r: &str, d: &str, outcome: Outcome, at: f64) -> DestinationVerdict {
    let mut v = DestinationVerdict::new(r, d, outcome);
    v.finished_at = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(at);
    v
}

fn findings(ids: &[&'static str]) -> Option<Vec<Finding>> {
    Some(
        ids.iter()
            .map(|label| Finding {
                id: FindingId::all()
                    .find(|id| id.as_str() == *label)
                    .unwrap_or_else(|| panic!("{label} is no finding")),
                explanation: String::new(),
                fix: String::new(),
            })
            .collect(),
    )
}

#[test]
fn a_registered_destination_exports_every_outcome_at_zero() {
    let m = Metrics::new();
    m.register_replication("r", 60.0);
    m.register_destination("r", "d");
    let text = m.encode();
    let mut expected = vec![
        "# HELP replicanary_probes_total Probe verdicts by outcome.".to_owned(),
        "# TYPE replicanary_probes_total counter".to_owned(),
    ];
    let mut labels: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    labels.sort();
    for o in labels {
        expected.push(format!(
            "replicanary_probes_total{{destination=\"d\",outcome=\"{o}\",replication=\"r\"}} 0"
        ));
    }
    assert_eq!(family(&text, "replicanary_probes_total"), expected);
    assert_eq!(
        family(&text, "replicanary_probe_success"),
        [
            "# HELP replicanary_probe_success 1 if the last finished probe of this destination was ok, else 0.",
            "# TYPE replicanary_probe_success gauge",
            "replicanary_probe_success{destination=\"d\",replication=\"r\"} 0",
        ]
    );
    assert_eq!(
        samples(&text, "replicanary_cleanup_failures_total"),
        [
            "replicanary_cleanup_failures_total{replication=\"r\",side=\"destination\"} 0",
            "replicanary_cleanup_failures_total{replication=\"r\",side=\"source\"} 0",
        ]
    );
    assert_eq!(
        samples(&text, "replicanary_probe_interval_seconds"),
        ["replicanary_probe_interval_seconds{replication=\"r\"} 60"]
    );
    // Nothing measured yet: no latency, no timestamps, no standing verdict.
    for name in [
        "replicanary_replication_latency_seconds",
        "replicanary_last_probe_timestamp_seconds",
        "replicanary_verdict",
        "replicanary_replica_readable",
    ] {
        assert!(family(&text, name).is_empty(), "{name} in\n{text}");
    }
    assert_eq!(
        samples(&text, "replicanary_build_info"),
        [format!(
            "replicanary_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )]
    );
    assert_eq!(
        samples(&text, "replicanary_canaries_outstanding"),
        ["replicanary_canaries_outstanding 0"]
    );
}

#[test]
fn a_verdict_updates_its_series() {
    let m = Metrics::new();
    m.register_destination("r", "d");
    let mut v = verdict("r", "d", Outcome::Ok, 1_732_000_000.5);
    v.latency = Some(Duration::from_millis(1500));
    v.replica = ReplicaFacts {
        key_matches: Some(true),
        readable: Some(true),
        ..ReplicaFacts::default()
    };
    v.findings = findings(&[]);
    m.record_verdict(&v);
    m.observe_probe_duration("r", "d", 2.5);
    let text = m.encode();
    let sample = |name: &str| samples(&text, name);
    assert_eq!(
        sample("replicanary_probe_success"),
        ["replicanary_probe_success{destination=\"d\",replication=\"r\"} 1"]
    );
    assert!(text.contains(
        "replicanary_probes_total{destination=\"d\",outcome=\"ok\",replication=\"r\"} 1\n"
    ));
    assert_eq!(
        sample("replicanary_last_probe_timestamp_seconds"),
        [
            "replicanary_last_probe_timestamp_seconds{destination=\"d\",replication=\"r\"} 1732000000.5"
        ]
    );
    assert_eq!(
        sample("replicanary_last_success_timestamp_seconds"),
        [
            "replicanary_last_success_timestamp_seconds{destination=\"d\",replication=\"r\"} 1732000000.5"
        ]
    );
    assert_eq!(
        sample("replicanary_last_replication_latency_seconds"),
        ["replicanary_last_replication_latency_seconds{destination=\"d\",replication=\"r\"} 1.5"]
    );
    assert_eq!(
        sample("replicanary_replica_kms_key_match"),
        ["replicanary_replica_kms_key_match{destination=\"d\",replication=\"r\"} 1"]
    );
    assert_eq!(
        sample("replicanary_verdict"),
        ["replicanary_verdict{destination=\"d\",outcome=\"ok\",replication=\"r\"} 1"]
    );
    let latency = family(&text, "replicanary_replication_latency_seconds");
    assert_eq!(
        latency[1],
        "# TYPE replicanary_replication_latency_seconds histogram"
    );
    let buckets: Vec<&str> = latency
        .iter()
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        buckets,
        [
            "0.5", "1", "2", "5", "10", "15", "30", "60", "120", "300", "600", "900", "1200",
            "1800", "3600", "+Inf"
        ]
    );
    assert!(latency.contains(
        &"replicanary_replication_latency_seconds_bucket{destination=\"d\",replication=\"r\",le=\"1\"} 0"
            .to_owned()
    ));
    assert!(latency.contains(
        &"replicanary_replication_latency_seconds_bucket{destination=\"d\",replication=\"r\",le=\"2\"} 1"
            .to_owned()
    ));
    assert!(text.contains(
        "replicanary_probe_duration_seconds_sum{destination=\"d\",replication=\"r\"} 2.5\n"
    ));
    // No finding ever held: none exported.
    assert!(family(&text, "replicanary_finding").is_empty());
}

#[test]
fn findings_drop_to_zero_and_stay_exported() {
    let m = Metrics::new();
    let mut v = verdict("r", "d", Outcome::WrongKmsKey, 1.0);
    v.findings = findings(&["kms_key_disabled", "kms_key_not_found"]);
    m.record_verdict(&v);
    v.findings = findings(&["kms_key_not_found", "kms_key_pending_deletion"]);
    m.record_verdict(&v);
    // `error` looked at nothing: the findings stand as they were.
    let mut e = verdict("r", "d", Outcome::Error, 2.0);
    e.findings = None;
    m.record_verdict(&e);
    assert_eq!(
        samples(&m.encode(), "replicanary_finding"),
        [
            "replicanary_finding{destination=\"d\",finding=\"kms_key_disabled\",replication=\"r\"} 0",
            "replicanary_finding{destination=\"d\",finding=\"kms_key_not_found\",replication=\"r\"} 1",
            "replicanary_finding{destination=\"d\",finding=\"kms_key_pending_deletion\",replication=\"r\"} 1",
        ]
    );
}

#[test]
fn the_standing_verdict_moves_and_error_leaves_it() {
    let m = Metrics::new();
    let standing = |m: &Metrics| samples(&m.encode(), "replicanary_verdict");
    m.record_verdict(&verdict("r", "d", Outcome::Error, 1.0));
    assert!(standing(&m).is_empty(), "error concludes nothing");
    m.record_verdict(&verdict("r", "d", Outcome::ReplicationFailed, 2.0));
    m.record_verdict(&verdict("r", "d", Outcome::Error, 3.0));
    assert_eq!(
        standing(&m),
        [
            "replicanary_verdict{destination=\"d\",outcome=\"replication_failed\",replication=\"r\"} 1"
        ]
    );
    m.record_verdict(&verdict("r", "d", Outcome::Ok, 4.0));
    assert_eq!(
        standing(&m),
        ["replicanary_verdict{destination=\"d\",outcome=\"ok\",replication=\"r\"} 1"]
    );
}

#[test]
fn an_archived_replica_claims_nothing_about_readability() {
    let m = Metrics::new();
    let mut v = verdict("r", "d", Outcome::Ok, 1.0);
    v.replica.readable = Some(true);
    m.record_verdict(&v);
    v.replica.readable = None;
    v.replica.read_skipped = true;
    m.record_verdict(&v);
    assert!(family(&m.encode(), "replicanary_replica_readable").is_empty());
}

#[test]
fn a_removed_replication_takes_its_series_along() {
    let m = Metrics::new();
    for r in ["gone", "stays"] {
        m.register_replication(r, 60.0);
        m.register_destination(r, "d");
        let mut v = verdict(r, "d", Outcome::WrongKmsKey, 1.0);
        v.latency = Some(Duration::from_secs(1));
        v.findings = findings(&["kms_key_disabled"]);
        m.record_verdict(&v);
        m.aws_request(r, Side::Source, "PutObject", "ok");
        m.cleanup_failed(r, Side::Destination);
        m.set_retained(r, Side::Destination, 2);
    }
    m.remove_replication("gone");
    let text = m.encode();
    assert!(!text.contains("\"gone\""), "{text}");
    assert!(text.contains(
        "replicanary_aws_requests_total{code=\"ok\",operation=\"PutObject\",replication=\"stays\",side=\"source\"} 1\n"
    ));
    assert!(
        text.contains(
            "replicanary_canaries_retained{replication=\"stays\",side=\"destination\"} 2\n"
        )
    );
    // Registered again, it starts from zero.
    m.register_destination("gone", "d");
    assert!(m.encode().contains(
        "replicanary_probes_total{destination=\"d\",outcome=\"wrong_kms_key\",replication=\"gone\"} 0\n"
    ));
}

#[test]
fn a_dropped_destination_takes_only_its_own_series_along() {
    let m = Metrics::new();
    m.register_replication("r", 60.0);
    for d in ["gone", "stays"] {
        m.register_destination("r", d);
        let mut v = verdict("r", d, Outcome::WrongKmsKey, 1.0);
        v.findings = findings(&["kms_key_disabled"]);
        m.record_verdict(&v);
    }
    m.aws_request("r", Side::Source, "PutObject", "ok");
    m.remove_destination("r", "gone");
    let text = m.encode();
    assert!(!text.contains("destination=\"gone\""), "{text}");
    for line in [
        "replicanary_probes_total{destination=\"stays\",outcome=\"wrong_kms_key\",replication=\"r\"} 1\n",
        "replicanary_finding{destination=\"stays\",finding=\"kms_key_disabled\",replication=\"r\"} 1\n",
        "replicanary_probe_interval_seconds{replication=\"r\"} 60\n",
        "replicanary_aws_requests_total{code=\"ok\",operation=\"PutObject\",replication=\"r\",side=\"source\"} 1\n",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    // Its standing verdict is forgotten too: back, it is exported afresh.
    m.record_verdict(&verdict("r", "gone", Outcome::WrongKmsKey, 2.0));
    assert!(m.encode().contains(
        "replicanary_verdict{destination=\"gone\",outcome=\"wrong_kms_key\",replication=\"r\"} 1\n"
    ));
}

#[test]
fn process_wide_series() {
    let m = Metrics::new();
    m.config_loaded(true, 1_700_000_000.0);
    m.config_loaded(false, 1_700_000_100.0);
    m.set_shard(1, 3);
    m.set_discovered("111111111111", "ap-northeast-1", 7);
    m.discovery_error("111111111111", "ap-northeast-1", "untagged");
    m.observe_scheduling_lag(0.002);
    let text = m.encode();
    for line in [
        "replicanary_config_last_reload_successful 0",
        "replicanary_config_last_reload_success_timestamp_seconds 1700000000",
        "replicanary_shard_info{count=\"3\",index=\"1\"} 1",
        "replicanary_discovered_replications{region=\"ap-northeast-1\",source_account=\"111111111111\"} 7",
        "replicanary_discovery_errors_total{reason=\"untagged\",region=\"ap-northeast-1\",source_account=\"111111111111\"} 1",
        "replicanary_scheduling_lag_seconds_bucket{le=\"0.005\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
    m.set_shard(0, 1);
    assert_eq!(
        samples(&m.encode(), "replicanary_shard_info"),
        ["replicanary_shard_info{count=\"1\",index=\"0\"} 1"]
    );
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::new();
    m.register_destination("we\"ird\\", "new\nline");
    assert!(m.encode().contains(
        "replicanary_probe_success{destination=\"new\\nline\",replication=\"we\\\"ird\\\\\"} 0\n"
    ));
}

#[test]
fn the_shard_and_the_last_load_are_exported() {
    let m = Metrics::new();
    m.set_shard(1, 3);
    m.config_loaded(true, 100.0);
    m.config_loaded(false, 160.0);
    let text = m.encode();
    assert!(text.contains("replicanary_config_last_reload_successful 0"));
    assert!(text.contains("replicanary_config_last_reload_success_timestamp_seconds 100\n"));
    assert!(text.contains("replicanary_shard_info{count=\"3\",index=\"1\"} 1"));
}

#[test]
fn a_scrape_family_by_family_is_the_text_of_the_whole_registry() {
    let m = Metrics::new();
    m.set_shard(1, 3);
    m.config_loaded(true, 1_732_000_000.0);
    m.observe_scheduling_lag(0.002);
    // Names chosen so that insertion order, label order and sorted order all differ.
    for r in ["zeta", "alpha", "we\"ird", "mid"] {
        m.register_replication(r, 300.0);
        m.aws_request(r, Side::Source, "PutObject", "ok");
        m.aws_request(r, Side::Destination, "HeadObject", "AccessDenied");
        for d in ["dst-b", "dst-a"] {
            m.register_destination(r, d);
            let mut v = verdict(r, d, Outcome::WrongKmsKey, 1_732_000_000.5);
            v.latency = Some(Duration::from_millis(2500));
            v.findings = findings(&["probe_role_kms_denied"]);
            m.record_verdict(&v);
            m.observe_probe_duration(r, d, 3.0);
        }
    }
    let whole = TextEncoder::new()
        .encode_to_string(&m.registry.gather())
        .unwrap();
    assert!(whole.contains("replicanary_finding{"), "{whole}");
    assert_eq!(m.encode(), whole);
    // The size hint of the next scrape does not change its text.
    assert_eq!(m.encode(), whole);
}
