//! Readers against the lab: over several probes, the fine reader reads (`ok`, readable 1),
//! the one the key policy leaves out is refused by KMS (`undecryptable`, readable 0,
//! `reader_kms_not_granted`), the one without S3 read is refused by S3 (`unreadable`,
//! `reader_s3_denied`), the unassumable one is `credentials_failed`
//! (`reader_cannot_be_assumed`) — and the destination's own verdict stays `ok`.
//! `check --format json` exits 1 and names the failing readers.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Daemon, Lab, check, http_get};

const REP: &str = "readers";
/// The scenario's resources carry this suffix: its destination label is its bucket.
const SUFFIX: &str = "-rd";
const DEST: &str = "rc-readers-dst-rd";

const EXPECTED: [(&str, &str); 4] = [
    ("fine", "ok"),
    ("nokms", "undecryptable"),
    ("nos3", "unreadable"),
    ("locked", "credentials_failed"),
];

#[test]
fn each_reader_is_judged_and_the_destination_verdict_stays_ok() {
    let lab = Lab::start(&[]);
    let config = lab.provision(&[REP], &[&format!("--suffix={SUFFIX}")]);
    let dest = DEST.to_owned();

    // check: one probe; exit 1 because readers fail, naming exactly those.
    let out = check(&config, &["--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("check --format json is JSON");
    assert_eq!(out.status.code(), Some(1), "{doc}");
    assert_eq!(doc["ok"], false);
    let verdict = &doc["verdicts"][0];
    assert_eq!(
        verdict["outcome"], "ok",
        "the destination itself is fine: {doc}"
    );
    let failing: Vec<&str> = doc["failing_readers"]
        .as_array()
        .expect("failing_readers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let want: Vec<String> = ["nokms", "nos3", "locked"]
        .iter()
        .map(|r| format!("{REP}/{dest}/{r}"))
        .collect();
    assert_eq!(failing, want, "{doc}");
    for (reader, outcome) in EXPECTED {
        let r = verdict["readers"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["reader"] == reader))
            .unwrap_or_else(|| panic!("no reader {reader}: {doc}"));
        assert_eq!(r["outcome"], outcome, "{reader}: {r}");
    }
    let ids: Vec<&str> = verdict["findings"]
        .as_array()
        .expect("findings of an ok verdict with failing readers")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    for id in [
        "reader_kms_not_granted",
        "reader_s3_denied",
        "reader_cannot_be_assumed",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let assumed = verdict["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["id"] == "reader_cannot_be_assumed"))
        .expect("the finding");
    assert!(
        assumed["fix"]
            .as_str()
            .unwrap_or_default()
            .contains("trust policy"),
        "{assumed}"
    );

    // audit (no canary, nothing read as the readers): the key policy leaves out `nokms`.
    let out = support::binary()
        .args(["audit", "--format", "json", "--config"])
        .arg(&config)
        .output()
        .expect("audit runs");
    let audit: Value = serde_json::from_slice(&out.stdout).expect("audit --format json is JSON");
    assert_eq!(out.status.code(), Some(1), "{audit}");
    let found = &audit["destinations"][0]["findings"];
    let ids: Vec<&str> = found
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert_eq!(ids, ["reader_kms_not_granted"], "{audit}");
    assert!(
        found[0]["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("`nokms`")),
        "{audit}"
    );

    // The daemon, over several probes: the same, every time, in the metrics.
    let daemon = Daemon::start(&config, &[]);
    let m = daemon.wait_for_verdicts(&[(REP, &dest)], 3.0, Duration::from_secs(90));
    let outcomes = m.outcomes(REP, &dest);
    assert_eq!(
        outcomes.get("ok").copied().unwrap_or(0.0),
        outcomes.values().sum::<f64>(),
        "every destination verdict ok: {outcomes:?}"
    );
    let m = daemon.metrics();
    for (reader, outcome) in EXPECTED {
        let labels = [
            ("replication", REP),
            ("destination", dest.as_str()),
            ("reader", reader),
        ];
        let mut with_outcome = labels.to_vec();
        with_outcome.push(("outcome", outcome));
        let n = m
            .get("replicanary_reader_probes_total", &with_outcome)
            .unwrap_or(0.0);
        let all = m.sum("replicanary_reader_probes_total", &labels);
        assert!(n >= 3.0, "{reader}: {n} × {outcome} of {all}");
        assert_eq!(n, all, "{reader}: only {outcome}");
        let readable = m.get("replicanary_reader_readable", &labels);
        let want = if outcome == "ok" { 1.0 } else { 0.0 };
        assert_eq!(readable, Some(want), "{reader} readable");
        // Every outcome exported from the start.
        let zero = m.get(
            "replicanary_reader_probes_total",
            &[
                ("replication", REP),
                ("destination", dest.as_str()),
                ("reader", reader),
                ("outcome", "skipped"),
            ],
        );
        assert_eq!(zero, Some(0.0), "{reader}: skipped at 0");
    }
    for finding in [
        "reader_kms_not_granted",
        "reader_s3_denied",
        "reader_cannot_be_assumed",
    ] {
        let v = m.get(
            "replicanary_finding",
            &[
                ("replication", REP),
                ("destination", dest.as_str()),
                ("finding", finding),
            ],
        );
        assert_eq!(v, Some(1.0), "{finding}");
    }
    assert_eq!(
        m.get(
            "replicanary_probe_success",
            &[("replication", REP), ("destination", dest.as_str())]
        ),
        Some(1.0)
    );

    // The status page shows each reader; the log line carries them.
    let (status, page) = http_get(daemon.port, "/").expect("status page");
    assert_eq!(status, 200);
    for (reader, outcome) in EXPECTED {
        assert!(
            page.contains(&format!("{reader}: {outcome}")),
            "{reader} on the page"
        );
    }
    let log = daemon.log_text();
    assert!(
        log.contains("fine=ok,nokms=undecryptable,nos3=unreadable,locked=credentials_failed"),
        "the verdict's log line names every reader's outcome"
    );
}
