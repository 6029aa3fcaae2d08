//! `replicanary scan` against the lab's backlog scenario: exact counts per class, exactly
//! the expected manifest rows (versions included, odd keys URL-encoded), exit 1, and no
//! write request of any kind in the lab's request log. With `--read`, the replicas under
//! the wrong key are `undecryptable`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{Lab, binary};

/// The backlog scenario in a fresh lab: (lab, config, expectations).
fn backlog() -> (Lab, PathBuf, Value) {
    let lab = Lab::start(&["--replication-delay", "0.2"]);
    let (config, expect) = support::backlog::provision(&lab, &[]);
    (lab, config, expect)
}

fn scan(config: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let out = binary()
        .arg("scan")
        .arg("--config")
        .arg(config)
        .args(["--format", "json"])
        .args(args)
        .output()
        .expect("scan runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("scan --format json is JSON ({e}); stderr: {stderr}"));
    (out.status.code(), doc, stderr)
}

/// Every S3 operation the lab saw since its counters were reset.
fn s3_operations(lab: &Lab) -> BTreeSet<String> {
    let stats: Value = serde_json::from_str(&lab.stats()).expect("stats are JSON");
    stats["by_service"]["s3"]
        .as_object()
        .map(|ops| ops.keys().cloned().collect())
        .unwrap_or_default()
}

/// The (key, version) pairs of a class in the expectations.
fn versions(expect: &Value, class: &str) -> Vec<(String, String)> {
    expect[class]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|kv| {
                    (
                        kv[0].as_str().unwrap_or_default().to_owned(),
                        kv[1].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn examples(dest: &Value, class: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = dest["examples"][class]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["key"].as_str().unwrap_or_default().to_owned(),
                        e["version_id"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn the_backlog_scan_counts_every_class_and_writes_the_fix() {
    let (lab, config, expect) = backlog();
    let manifests = lab.dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).expect("manifest dir");
    lab.admin("stats/reset", "{}");

    let (code, doc, stderr) = scan(
        &config,
        &["--manifest", manifests.to_str().expect("utf-8 path")],
    );
    assert_eq!(code, Some(1), "failing classes exit 1; stderr: {stderr}");
    let rep = &doc["replications"][0];
    assert_eq!(rep["name"], "backlog");
    assert_eq!(rep["canaries"], 1, "the canary is left out");
    let dest = &rep["destinations"][0];
    let counts = &dest["counts"];
    let want = support::backlog::COUNTS;
    assert_eq!(
        counts.as_object().map(|o| o.len()),
        Some(want.len()),
        "every class present: {counts}"
    );
    for (class, n) in want {
        let n = *n;
        assert_eq!(counts[class], n, "{class}: {counts}");
    }
    assert_eq!(dest["objects"], 13);
    for class in [
        "not_replicated",
        "replication_failed",
        "not_kms_encrypted",
        "wrong_kms_key",
    ] {
        assert_eq!(
            examples(dest, class),
            versions(&expect, class),
            "examples of {class}"
        );
    }
    assert!(dest["examples"].get("ok").is_none(), "no examples of ok");

    // The manifest: exactly the source versions re-replication fixes, key URL-encoded.
    let file = manifests.join(format!(
        "backlog__{}.csv",
        expect["destination"].as_str().expect("destination bucket")
    ));
    let text = std::fs::read_to_string(&file).expect("the manifest is written");
    let mut rows: Vec<(String, String, String)> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 3, "bucket,key,version_id: {l}");
            let key = percent_encoding_decode(f[1]);
            (f[0].to_owned(), key, f[2].to_owned())
        })
        .collect();
    rows.sort();
    let want_rows: Vec<(String, String, String)> = expect["manifest"]
        .as_array()
        .expect("manifest rows")
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_owned(),
                r[1].as_str().unwrap_or_default().to_owned(),
                r[2].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(rows, want_rows);
    assert!(
        text.contains("wrong/odd%20name%20%2B%20%C3%BC%2C%25%26%3D%3F.txt,"),
        "the odd key is URL-encoded: {text}"
    );

    // Read-only: nothing but listings, HEADs and GETs reached S3.
    let ops = s3_operations(&lab);
    assert!(
        ops.contains("HeadObject") && ops.contains("ListObjectVersions"),
        "{ops:?}"
    );
    let allowed: BTreeSet<String> = ["ListObjectVersions", "HeadObject", "GetObject"]
        .map(String::from)
        .into();
    assert!(
        ops.is_subset(&allowed),
        "a write or delete reached S3: {ops:?}"
    );
}

#[test]
fn with_read_the_wrong_key_replicas_are_undecryptable() {
    let (lab, config, expect) = backlog();
    lab.admin("stats/reset", "{}");
    let (code, doc, stderr) = scan(&config, &["--read", "--concurrency", "4", "--rate", "50"]);
    assert_eq!(code, Some(1), "{stderr}");
    let dest = &doc["replications"][0]["destinations"][0];
    assert_eq!(dest["counts"]["undecryptable"], 3, "{dest}");
    assert_eq!(dest["counts"]["wrong_kms_key"], 0, "{dest}");
    assert_eq!(
        dest["counts"]["ok"], 4,
        "the fixed replicas decrypt: {dest}"
    );
    assert_eq!(dest["counts"]["not_kms_encrypted"], 2, "{dest}");
    assert_eq!(
        examples(dest, "undecryptable"),
        versions(&expect, "wrong_kms_key")
    );
    let ops = s3_operations(&lab);
    assert!(ops.contains("GetObject"), "--read reads: {ops:?}");
    let allowed: BTreeSet<String> = ["ListObjectVersions", "HeadObject", "GetObject"]
        .map(String::from)
        .into();
    assert!(
        ops.is_subset(&allowed),
        "a write or delete reached S3: {ops:?}"
    );
    // 13 objects + the canary: 14 source HEADs, 9 replica HEADs and 9 reads (the 4 not
    // replicated by the rule are not looked for), and one listing.
    assert_eq!(doc["requests"], 1 + 14 + 9 + 9, "{doc}");
}

#[test]
fn limit_samples_and_start_after_resumes() {
    let (_lab, config, _expect) = backlog();
    let (_, first, stderr) = scan(&config, &["--limit", "5"]);
    let rep = &first["replications"][0];
    assert_eq!(rep["sampled"], true);
    assert_eq!(rep["destinations"][0]["objects"], 5);
    let resume = rep["resume_after"]
        .as_str()
        .expect("a key to resume from")
        .to_owned();
    assert!(stderr.contains("--start-after"), "{stderr}");
    let (_, rest, _) = scan(&config, &["--start-after", &resume]);
    let n = rest["replications"][0]["destinations"][0]["objects"]
        .as_u64()
        .unwrap_or_default()
        + rest["replications"][0]["canaries"]
            .as_u64()
            .unwrap_or_default();
    assert_eq!(n + 5, 14, "the rest, none twice: {rest}");
}

/// `%XX` → byte, then UTF-8.
fn percent_encoding_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn throttling_is_retried_within_the_rate_and_never_becomes_a_verdict() {
    let (lab, config, _expect) = backlog();
    // A third of the HEADs answer 503 SlowDown.
    lab.admin(
        "config",
        r#"{"faults": {"error_rate": 0.3, "status": 503, "services": ["s3"], "operations": ["HeadObject"]}}"#,
    );
    lab.admin("stats/reset", "{}");
    let rate = 10.0;
    let (code, doc, stderr) = scan(&config, &["--rate", "10", "--concurrency", "8"]);
    assert_eq!(code, Some(1), "{stderr}");
    let stats: Value = serde_json::from_str(&lab.stats()).expect("stats are JSON");
    let injected = stats["faults_injected"]["s3:HeadObject"]
        .as_u64()
        .unwrap_or_default();
    assert!(injected > 0, "the lab injected faults: {stats}");

    // Every request is counted, the retries included: the lab saw exactly as many S3 calls.
    let s3_calls: u64 = stats["by_service"]["s3"]
        .as_object()
        .map(|ops| ops.values().filter_map(Value::as_u64).sum())
        .unwrap_or_default();
    let requests = doc["requests"].as_u64().unwrap_or_default();
    assert_eq!(requests, s3_calls, "{doc}\n{stats}");
    assert!(requests > 1 + 14 + 9, "the faults were retried: {requests}");
    // Within the rate (the limiter allows a first burst of one second's worth).
    let seconds = doc["seconds"].as_f64().unwrap_or_default();
    assert!(
        seconds >= (requests as f64 - rate) / rate,
        "{requests} requests in {seconds} s at --rate {rate}"
    );

    // A fault is never a verdict: each class holds at most its true count, and what is
    // missing is `error` (a HEAD that failed four times), nothing else.
    let counts = &doc["replications"][0]["destinations"][0]["counts"];
    let mut missing = 0;
    for (class, n) in support::backlog::COUNTS {
        if *class == "error" {
            continue;
        }
        let got = counts[class].as_u64().unwrap_or(u64::MAX);
        assert!(got <= *n, "{class}: {got} > {n}: {counts}");
        missing += n - got;
    }
    // The canary is told apart only by its HEAD: one that failed four times is an error too.
    let canary_unseen = 1 - doc["replications"][0]["canaries"]
        .as_u64()
        .unwrap_or_default();
    assert_eq!(
        counts["error"].as_u64(),
        Some(missing + canary_unseen),
        "{counts}"
    );
}

#[test]
fn ctrl_c_prints_the_partial_counts_and_where_to_resume() {
    let (_lab, config, _expect) = backlog();
    // ~33 requests at 3 per second: about 10 s; interrupted after 3.
    let child = binary()
        .arg("scan")
        .arg("--config")
        .arg(&config)
        .args(["--format", "json", "--rate", "3", "--concurrency", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("scan starts");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("scan ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("partial report is JSON ({e}); stderr: {stderr}"));
    let rep = &doc["replications"][0];
    assert_eq!(rep["interrupted"], true, "{doc}");
    let done = rep["destinations"][0]["objects"]
        .as_u64()
        .unwrap_or_default()
        + rep["canaries"].as_u64().unwrap_or_default();
    assert!(done > 0 && done < 14, "partial: {done} of 14");
    let resume = rep["resume_after"]
        .as_str()
        .expect("where to resume")
        .to_owned();
    assert!(stderr.contains("--start-after"), "{stderr}");

    let (_, rest, _) = scan(&config, &["--start-after", &resume]);
    let rest_done = rest["replications"][0]["destinations"][0]["objects"]
        .as_u64()
        .unwrap_or_default()
        + rest["replications"][0]["canaries"]
            .as_u64()
            .unwrap_or_default();
    assert_eq!(
        done + rest_done,
        14,
        "interrupted + resumed = every object once"
    );
}
