//! The lab's `backlog` scenario (tests/lab/backlog.py): a source bucket with history for
//! `replicanary scan`, and what a scan of it must find.

use std::path::PathBuf;
use std::process::Command;

use super::lab::{Lab, lab_dir, python};

/// Provisions the backlog in `lab` (`extra`: more backlog.py arguments, e.g. `--scan`);
/// returns the configuration's path and the expectations (JSON: versions per class,
/// manifest rows).
pub fn provision(lab: &Lab, extra: &[&str]) -> (PathBuf, serde_json::Value) {
    let config = lab.dir.path().join("backlog.yaml");
    let expect = lab.dir.path().join("expect.json");
    let status = Command::new(python())
        .arg(lab_dir().join("backlog.py"))
        .args(["--endpoint", &lab.endpoint, "--out"])
        .arg(&config)
        .arg("--expect")
        .arg(&expect)
        .args(extra)
        .status()
        .expect("backlog.py runs");
    assert!(status.success(), "provisioning the backlog failed");
    let text = std::fs::read_to_string(&expect).expect("expectations written");
    (
        config,
        serde_json::from_str(&text).expect("expectations are JSON"),
    )
}

/// The counts per class a scan of the backlog must find (without `--read`).
pub const COUNTS: &[(&str, u64)] = &[
    ("not_replicated", 3),
    ("replication_failed", 1),
    ("pending", 0),
    ("pending_too_long", 0),
    ("replica_missing", 0),
    ("unreadable", 0),
    ("undecryptable", 0),
    ("not_kms_encrypted", 2),
    ("wrong_kms_key", 3),
    ("ok", 4),
    ("error", 0),
];
