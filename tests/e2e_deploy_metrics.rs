//! The Grafana dashboard and the alert rules of `deploy/` query only metrics replicanary
//! really exports: every `replicanary_*` name in them must be a sample name scraped from a
//! running daemon (histograms as `_bucket`/`_sum`/`_count`). The daemon probes the lab's
//! `healthy`, `wrong-key` and `readers` scenarios with every canary delete failing (an injected S3
//! fault on `DeleteObject`), so that the failure-only series (cleanup failures, AWS error
//! codes) exist too.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use support::{Daemon, Lab, Metrics, poll_until};

/// The files whose queries must use only exported names.
const QUERY_FILES: &[&str] = &[
    "deploy/grafana/replicanary.json",
    "deploy/prometheus/replicanary.rules.yml",
    "deploy/kubernetes/prometheusrule.yaml",
];

/// Every `replicanary_...` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("replicanary_") {
        let start = i + at;
        let preceded =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |n| start + n);
        if !preceded {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

fn exported(m: &Metrics) -> BTreeSet<String> {
    m.text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn dashboard_and_rules_use_only_exported_metrics() {
    let lab = Lab::start(&[]);
    // Whole-bucket probe roles (`--probe-prefix ""`): the scan lists and HEADs every object.
    // `readers` gives the reader series (a reader that reads, and ones that cannot).
    let config = lab.provision(
        &["healthy", "wrong-key", "readers"],
        &["--interval", "1s", "--probe-prefix", ""],
    );
    // Discovery's metrics exist once discovery is configured: an account whose role cannot
    // be assumed (444444444444 has none) gives both, beside the explicit replications.
    let mut text = std::fs::read_to_string(&config).expect("config");
    // The background scan's series exist once a replication is scanned.
    assert!(text.contains("defaults:\n"), "{text}");
    text = text.replacen(
        "defaults:\n",
        "defaults:\n  scan: {interval: 1h, rate: 50}\n",
        1,
    );
    // Every DeleteObject fails below: each failing delete spends all its attempts (with the
    // SDK's backoff) before the next probe. Two attempts keep the probe pace this test needs;
    // what it checks is which series exist, not retries.
    assert!(text.contains("aws:\n"), "{text}");
    text = text.replacen("aws:\n", "aws:\n  max_attempts: 2\n", 1);
    text.push_str(
        "discovery:\n  interval: 1h\n  regions: [ap-northeast-1]\n  source_accounts: [\"444444444444\"]\n  \
         source_role_arn: arn:aws:iam::{account}:role/replicanary-source-probe\n  \
         destination_role_arn: arn:aws:iam::{account}:role/replicanary-destination-probe\n  \
         bucket_tag: {key: replicanary, value: enabled}\n",
    );
    std::fs::write(&config, text).expect("write config");
    lab.admin(
        "config",
        r#"{"faults": {"error_rate": 1.0, "status": 503, "services": ["s3"], "operations": ["DeleteObject"]}}"#,
    );
    let daemon = Daemon::start(&config, &[]);
    let mut last = None;
    let complete = poll_until(Duration::from_secs(60), || {
        let m = daemon.metrics();
        let names = exported(&m);
        let done = m.verdicts("healthy", &label(&m, "healthy")) >= 2.0
            && m.verdicts("wrong-key", &label(&m, "wrong-key")) >= 2.0
            && names.contains("replicanary_reader_verdict")
            && names.contains("replicanary_cleanup_failures_total")
            && names.contains("replicanary_discovery_errors_total")
            && names.contains("replicanary_scan_objects")
            && names.contains("replicanary_unmonitored_replication_rules")
            && names.contains("replicanary_scheduling_lag_seconds_bucket");
        last = Some(m);
        done
    });
    let m = last.expect("scraped");
    let names = exported(&m);
    assert!(
        complete,
        "not every series appeared: {names:?}\n{}",
        daemon.log_text()
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut used_anywhere = BTreeSet::new();
    for file in QUERY_FILES {
        let text =
            std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let used = metric_names(&text);
        assert!(!used.is_empty(), "{file} names no replicanary metric");
        let unknown: Vec<_> = used.difference(&names).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses metrics replicanary does not export: {unknown:?}\nexported: {names:?}"
        );
        used_anywhere.extend(used);
    }
    println!("queried metric names, all exported: {used_anywhere:?}");

    // The dashboard shows every per-destination signal the issue asks for.
    let dashboard = std::fs::read_to_string(root.join(QUERY_FILES[0])).expect("dashboard");
    for needed in [
        "replicanary_probe_success",
        "replicanary_probes_total",
        "replicanary_replication_latency_seconds_bucket",
        "replicanary_replica_kms_key_match",
        "replicanary_replica_readable",
        "replicanary_aws_requests_total",
        "replicanary_canaries_outstanding",
        "replicanary_reader_readable",
    ] {
        assert!(
            metric_names(&dashboard).contains(needed),
            "the dashboard lacks {needed}"
        );
    }
}

/// The `destination` label of a single-destination replication (the bucket name).
fn label(m: &Metrics, replication: &str) -> String {
    m.text
        .lines()
        .filter(|l| l.starts_with("replicanary_probe_success{"))
        .filter(|l| l.contains(&format!("replication=\"{replication}\"")))
        .find_map(|l| {
            l.split("destination=\"")
                .nth(1)?
                .split('"')
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}
