//! The probe-role IAM of `deploy/iam/`, proven against the lab (AUTH=true): the lab's
//! `provision.py` builds both probe roles from exactly those files (trust with
//! `sts:ExternalId`, access limited to the canary prefix), and replicanary gets `ok` with
//! them. Then each needed statement is dropped in turn, to record the verdict a missing
//! permission gives — the table in `docs/runbook.md` ("What a missing probe permission
//! looks like") is this test's expectations.

mod support;

use std::path::Path;

use support::{Lab, check};

const EXTERNAL_ID: &str = "replicanary-e2e-external-id";

/// `replicanary check --format json` → (outcome, reason) of the one verdict.
fn verdict(config: &Path) -> (String, String, String) {
    let out = check(config, &["--format", "json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let v = &report["verdicts"][0];
    let field = |name: &str| v[name].as_str().unwrap_or_default().to_owned();
    let code = v["aws_error"]["code"].as_str().unwrap_or("-").to_owned();
    (field("outcome"), field("reason"), code)
}

fn provision(lab: &Lab, tag: &str, extra: &[&str]) -> std::path::PathBuf {
    let suffix = format!("--suffix=-{tag}");
    let mut args = vec!["--external-id", EXTERNAL_ID, suffix.as_str()];
    args.extend_from_slice(extra);
    let config = lab.provision(&["healthy"], &args);
    // Each provisioning writes config-healthy.yaml: keep one per variant.
    let kept = config.with_file_name(format!("config-{tag}.yaml"));
    std::fs::rename(&config, &kept).expect("rename config");
    kept
}

#[test]
fn deploy_iam_probe_roles_with_external_id_give_ok() {
    let lab = Lab::start(&[]);
    let config = provision(&lab, "full", &[]);
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(
        text.contains(&format!("external_id: {EXTERNAL_ID}")),
        "{text}"
    );
    assert!(text.contains("canary_prefix: replicanary/"), "{text}");
    let (outcome, reason, code) = verdict(&config);
    assert_eq!(outcome, "ok", "{reason} ({code})");

    // The trust policy's sts:ExternalId condition is enforced: another id is refused.
    let wrong = config.with_file_name("config-wrong-external-id.yaml");
    std::fs::write(&wrong, text.replace(EXTERNAL_ID, "not-the-external-id")).expect("write config");
    let (outcome, reason, _) = verdict(&wrong);
    assert_eq!(outcome, "credentials_failed", "{reason}");
}

#[test]
fn dropping_a_needed_probe_statement_shows_its_verdict() {
    let lab = Lab::start(&[]);
    // (statement left out, the verdict replicanary then gives, the AWS error code it reports)
    let expected = [
        (
            "source:CanaryObjects",
            "source_write_failed",
            "AccessDenied",
        ),
        ("source:SourceKey", "source_write_failed", "AccessDenied"),
        // HeadObject is denied: S3 itself refuses (a 403 without a body, so no error code).
        ("destination:Replicas", "unreadable", "-"),
        ("destination:ExpectedKey", "undecryptable", "AccessDenied"),
        // Needed by the start-up sweep and for a missing replica's 404; a probe of a
        // healthy replication does not notice them.
        ("source:SweepCanaries", "ok", "-"),
        ("destination:SweepReplicas", "ok", "-"),
        ("destination:ReplicaExistence", "ok", "-"),
        // Read-only diagnosis (issue 5): not needed for a verdict.
        ("source:DiagnoseSourceBucket", "ok", "-"),
        ("destination:DiagnoseDestinationBucket", "ok", "-"),
    ];
    let mut seen = Vec::new();
    for (i, (statement, _, _)) in expected.iter().enumerate() {
        let config = provision(&lab, &format!("d{i}"), &["--drop-statement", statement]);
        let (outcome, reason, code) = verdict(&config);
        println!("without {statement:<40} -> {outcome:<20} {code:<14} {reason}");
        seen.push((statement.to_string(), outcome, code));
    }
    let want: Vec<(String, String, String)> = expected
        .iter()
        .map(|(s, o, c)| (s.to_string(), o.to_string(), c.to_string()))
        .collect();
    assert_eq!(seen, want);
}
