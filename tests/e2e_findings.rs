//! Findings against the lab: each misconfigured scenario is named by the finding of its
//! cause, the healthy one by none; probe roles without the optional read permissions
//! still get correct verdicts.

mod support;

use serde_json::Value;
use support::{Lab, binary, check};

fn audit(config: &std::path::Path) -> (Option<i32>, Value) {
    let out = binary()
        .arg("audit")
        .arg("--config")
        .arg(config)
        .args(["--format", "json"])
        .output()
        .expect("audit runs");
    let doc = serde_json::from_slice(&out.stdout).expect("audit --format json is JSON");
    (out.status.code(), doc)
}

/// `(replication, destination)` → finding ids, from a report's JSON.
fn findings(entries: &Value, replication: &str, destination: &str) -> Vec<String> {
    let entry = entries
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| {
            e["replication"] == replication
                && (destination.is_empty() || e["destination"] == destination)
        })
        .unwrap_or_else(|| panic!("no entry for {replication}/{destination}: {entries}"));
    entry["findings"].as_array().map_or_else(Vec::new, |f| {
        f.iter()
            .map(|x| x["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    })
}

#[test]
fn every_misconfiguration_is_named_and_the_healthy_setup_is_clean() {
    let lab = Lab::start(&[]);
    let config = lab.provision(
        &[
            "healthy",
            "wrong-key",
            "other-key",
            "unselected",
            "denied",
            "slow",
            "disabled-key",
            "fan-out",
        ],
        &[],
    );

    // audit: setup only, no canary.
    let (code, doc) = audit(&config);
    assert_eq!(code, Some(1), "{doc}");
    let d = &doc["destinations"];
    let none: Vec<String> = Vec::new();
    assert_eq!(
        findings(d, "healthy", ""),
        none,
        "the article's setup has no findings"
    );
    assert_eq!(findings(d, "fan-out", "good"), none);
    assert_eq!(
        findings(d, "wrong-key", ""),
        [
            "replica_kms_key_other_account",
            "replica_kms_key_not_expected"
        ]
    );
    assert_eq!(
        findings(d, "fan-out", "wrong"),
        [
            "replica_kms_key_other_account",
            "replica_kms_key_not_expected"
        ]
    );
    assert_eq!(
        findings(d, "other-key", ""),
        ["replica_kms_key_not_expected"]
    );
    assert_eq!(findings(d, "unselected", ""), ["rule_skips_sse_kms"]);
    assert_eq!(
        findings(d, "denied", ""),
        ["destination_policy_missing_replication_role"]
    );
    let (code, _) = {
        let out = binary()
            .arg("audit")
            .arg("--config")
            .arg(&config)
            .args(["--replication", "healthy"])
            .output()
            .expect("runs");
        (out.status.code(), ())
    };
    assert_eq!(
        code,
        Some(0),
        "audit of the healthy replication alone exits 0"
    );

    // check: the verdict, then its causes (including what only the probe can see).
    let out = check(&config, &["--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let v = &doc["verdicts"];
    assert_eq!(
        findings(v, "wrong-key", ""),
        [
            "replica_kms_key_other_account",
            "replica_kms_key_not_expected",
            "replica_kms_denied"
        ]
    );
    assert_eq!(findings(v, "disabled-key", ""), ["kms_key_disabled"]);
    assert_eq!(
        findings(v, "slow", ""),
        ["replication_time_control_disabled"]
    );
    assert_eq!(findings(v, "healthy", ""), none);
    let text = String::from_utf8_lossy(&check(&config, &["--replication", "wrong-key"]).stdout)
        .into_owned();
    assert!(
        text.contains("finding:      replica_kms_denied — KMS refuses the destination role"),
        "{text}"
    );
    assert!(
        text.contains("fix:        grant the destination account kms:Decrypt"),
        "{text}"
    );
}

#[test]
fn without_the_optional_read_permissions_verdicts_stay_right() {
    let lab = Lab::start(&[]);
    let config = lab.provision(
        &[
            "healthy",
            "wrong-key",
            "unselected",
            "source-owned",
            "locked",
        ],
        &[
            "--drop-statement",
            "source:DiagnoseSourceBucket",
            "--drop-statement",
            "destination:DiagnoseDestinationBucket",
        ],
    );
    let out = check(&config, &["--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let outcome = |r: &str| support::outcome_of(&doc, r);
    assert_eq!(outcome("healthy"), "ok", "{doc}");
    assert_eq!(outcome("wrong-key"), "undecryptable", "{doc}");
    assert_eq!(outcome("unselected"), "not_replicated", "{doc}");
    let wrong = findings(&doc["verdicts"], "wrong-key", "");
    assert!(
        wrong.contains(&"cannot_inspect:GetBucketReplication".to_owned()),
        "{wrong:?}"
    );
    assert!(
        wrong.contains(&"replica_kms_denied".to_owned()),
        "what the probe saw is still named: {wrong:?}"
    );
    // Neither the rule nor the ownership can be read: the replica the source account keeps
    // is still unreadable, and the findings say what could not be looked at instead of
    // blaming the probe role.
    assert_eq!(outcome("source-owned"), "unreadable", "{doc}");
    let owned = findings(&doc["verdicts"], "source-owned", "");
    assert!(
        owned.contains(&"cannot_inspect:GetBucketReplication".to_owned()),
        "{owned:?}"
    );
    assert!(
        !owned.contains(&"probe_role_cannot_read_replica".to_owned()),
        "{owned:?}"
    );
    // The replica's own headers still tell its retention.
    assert_eq!(outcome("locked"), "ok", "{doc}");
    assert_eq!(
        findings(&doc["verdicts"], "locked", ""),
        ["canaries_retained_by_object_lock"]
    );
}

/// The real estates' setups, read by `audit` and seen by `check`: each named by
/// the finding of its cause, the healthy and archive setups by none.
#[test]
fn real_estate_setups_are_named_by_audit_and_check() {
    let lab = Lab::start(&[]);
    let config = lab.provision(
        &[
            "healthy",
            "archive",
            "archive-wrong-key",
            "source-owned",
            "locked",
            "partial-fan-out",
            "vanished-no-list",
        ],
        &[],
    );
    let none: Vec<String> = Vec::new();
    let (code, doc) = audit(&config);
    assert_eq!(code, Some(1), "{doc}");
    let d = &doc["destinations"];
    assert_eq!(findings(d, "healthy", ""), none);
    assert_eq!(findings(d, "archive", ""), none);
    assert_eq!(
        findings(d, "archive-wrong-key", ""),
        [
            "replica_kms_key_other_account",
            "replica_kms_key_not_expected"
        ]
    );
    assert_eq!(
        findings(d, "source-owned", ""),
        ["replica_owned_by_source_account"]
    );
    assert_eq!(
        findings(d, "locked", ""),
        ["canaries_retained_by_object_lock"]
    );
    assert_eq!(
        findings(d, "partial-fan-out", "failing"),
        ["destination_policy_missing_replication_role"]
    );
    assert_eq!(findings(d, "partial-fan-out", "slow"), none);
    assert_eq!(findings(d, "vanished-no-list", ""), none);
    let locked = &d
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["replication"] == "locked")
        .expect("locked")["findings"][0];
    let explanation = locked["explanation"].as_str().unwrap_or_default();
    assert!(
        explanation.contains("about 1day") && explanation.contains("GOVERNANCE"),
        "the cost is stated: {explanation}"
    );

    let out = check(&config, &["--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let v = &doc["verdicts"];
    let outcome = |r: &str| support::outcome_of(&doc, r);
    assert_eq!(outcome("healthy"), "ok", "{doc}");
    assert_eq!(findings(v, "healthy", ""), none);
    assert_eq!(outcome("source-owned"), "unreadable");
    assert_eq!(
        findings(v, "source-owned", ""),
        ["replica_owned_by_source_account"]
    );
    assert_eq!(outcome("locked"), "ok");
    assert_eq!(
        findings(v, "locked", ""),
        ["canaries_retained_by_object_lock"]
    );
    assert_eq!(outcome("vanished-no-list"), "replica_missing");
    let text =
        String::from_utf8_lossy(&check(&config, &["--replication", "archive"]).stdout).into_owned();
    assert!(
        text.contains("read:         skipped — the replica is in DEEP_ARCHIVE"),
        "{text}"
    );
}

/// replicanary's own permissions, each named by a `probe_role_*` finding: a verdict that
/// is about the probe role, not about the replication.
#[test]
fn the_probe_roles_own_missing_permissions_are_named() {
    let lab = Lab::start(&[]);
    // (statement left out, scenario, verdict, findings)
    let cases = [
        // HeadObject refused on a replica that is listed: the role may not read it.
        (
            "destination:Replicas",
            "healthy",
            "unreadable",
            "probe_role_cannot_read_replica",
        ),
        // KMS refuses the expected key to the role itself.
        (
            "destination:ExpectedKey",
            "healthy",
            "undecryptable",
            "probe_role_kms_denied",
        ),
        // Neither s3:ListBucket nor the listing: a missing replica cannot be told from a
        // refused one.
        (
            "destination:SweepReplicas",
            "vanished-no-list",
            "unreadable",
            "probe_role_cannot_list_bucket",
        ),
    ];
    for (i, (statement, scenario, verdict, finding)) in cases.iter().enumerate() {
        let config = lab.provision(
            &[scenario],
            &["--suffix", &format!("p{i}"), "--drop-statement", statement],
        );
        let out = check(&config, &["--format", "json"]);
        let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(
            support::outcome_of(&doc, scenario),
            *verdict,
            "{statement}: {doc}"
        );
        assert_eq!(
            findings(&doc["verdicts"], scenario, ""),
            [*finding],
            "{statement}"
        );
    }
}
