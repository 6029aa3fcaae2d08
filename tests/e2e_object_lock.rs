//! Object Lock on the destination, end to end: replicas retained by the bucket's default
//! retention are deleted after their retain-until date and never before, with about one
//! DeleteObject call each (no storm of refused deletes), counted as retained while they
//! wait; a marker-carrying leftover is removed by the periodic sweep once its retention
//! passed; users' objects survive.
//!
//! The lab's Object Lock day lasts 60 s. About 2½ minutes: 75 s of probing, then writes
//! are stopped (PutObject fails) and the retained canaries run out.

mod support;

use std::time::{Duration, Instant};

use support::{Daemon, Lab, RootS3};

const DAY_SECONDS: u64 = 60;

fn is_canary(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or_default();
    key.starts_with("replicanary/locked/") && name.len() == 33 && name.as_bytes()[8] == b'T'
}

#[test]
fn retained_canaries_are_deleted_after_their_retention_with_one_call_each() {
    let started = Instant::now();
    let lab = Lab::start(&["--object-lock-day-seconds", &DAY_SECONDS.to_string()]);
    let config = lab.provision(&["locked", "healthy"], &["--interval", "5s"]);
    // Periodic sweeps every 15 s, for leftovers older than 5 s.
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replacen(
        "defaults:\n",
        "defaults:\n  sweep_interval: 15s\n  sweep_min_age: 5s\n",
        1,
    );
    std::fs::write(&config, text).expect("config");
    let yaml = std::fs::read_to_string(&config).expect("config");
    let bucket_of = |scenario: &str, side: &str| {
        yaml.split_whitespace()
            .find(|w| w.starts_with(&format!("rc-{scenario}-{side}")))
            .expect("a bucket in the configuration")
            .to_owned()
    };
    let (src_bucket, dst_bucket) = (bucket_of("locked", "src"), bucket_of("locked", "dst"));
    let src = RootS3::new(&lab, "111111111111");
    let dst = RootS3::new(&lab, "222222222222");

    // Users' objects in both buckets (in the destination they are retained like anything
    // else), and a leftover canary in the destination: marker, canary shape, retained too.
    let sha = "ab".repeat(32);
    let marker = [
        ("replicanary", "canary-v1"),
        ("replicanary-sha256", sha.as_str()),
    ];
    let mut keep = Vec::new();
    for (s3, bucket) in [(&src, &src_bucket), (&dst, &dst_bucket)] {
        for key in [
            "data/report.csv",
            "replicanary/locked/notes.txt",
            "replicanary/locked/20250101T000000Z-00000000000000bb",
        ] {
            let body = format!("user data in {bucket}/{key}");
            keep.push((bucket.clone(), key, s3.put(bucket, key, &body, &[]), body));
        }
    }
    let leftover_key = "replicanary/locked/20250101T000000Z-00000000000000aa";
    let leftover = dst.put(&dst_bucket, leftover_key, "old canary", &marker);
    std::thread::sleep(Duration::from_secs(6)); // older than sweep_min_age

    let daemon = Daemon::start(&config, &[]);
    let dst_label = dst_bucket.as_str();
    let healthy_dst = bucket_of("healthy", "dst");
    let pairs = [("locked", dst_label), ("healthy", healthy_dst.as_str())];
    let m = daemon.wait_for_verdicts(&pairs, 2.0, Duration::from_secs(60));
    let retained = |m: &support::Metrics| {
        m.get(
            "replicanary_canaries_retained",
            &[("replication", "locked"), ("side", "destination")],
        )
        .unwrap_or(-1.0)
    };
    assert!(
        retained(&m) >= 1.0,
        "replicas wait for their retention:\n{}",
        m.text
    );
    let finding = |m: &support::Metrics, r: &str, d: &str| {
        m.get(
            "replicanary_finding",
            &[
                ("replication", r),
                ("destination", d),
                ("finding", "canaries_retained_by_object_lock"),
            ],
        )
    };
    assert_eq!(finding(&m, "locked", dst_label), Some(1.0));
    assert_eq!(
        finding(&m, "healthy", &healthy_dst),
        None,
        "the healthy scenario has no findings"
    );

    // Before its retain-until date, the leftover is still there (the start-up sweep saw it
    // retained and left it).
    let has = |s3: &RootS3, b: &str, k: &str, v: &str| {
        s3.versions(b, k).iter().any(|(kk, vv)| kk == k && vv == v)
    };
    assert!(
        has(&dst, &dst_bucket, leftover_key, &leftover),
        "deleted before its retain-until date"
    );

    // 75 s of probing: the first replicas' retention (60 s) passes while probing goes on.
    let mut max_retained: f64 = 0.0;
    while started.elapsed() < Duration::from_secs(85) {
        max_retained = max_retained.max(retained(&daemon.metrics()));
        std::thread::sleep(Duration::from_secs(2));
    }
    let m = daemon.metrics();
    let ok = |r: &str, d: &str| m.outcomes(r, d).get("ok").copied().unwrap_or(0.0);
    let (locked_ok, healthy_ok) = (ok("locked", dst_label), ok("healthy", &healthy_dst));
    assert_eq!(
        m.outcomes("locked", dst_label).keys().collect::<Vec<_>>(),
        ["ok"],
        "{}",
        daemon.log_text()
    );
    assert!(locked_ok >= 10.0, "{locked_ok} probes");

    // Stop the writes (every PutObject fails): the retained canaries run out.
    lab.admin(
        "config",
        r#"{"faults": {"error_rate": 1.0, "status": 503, "services": ["s3"], "operations": ["PutObject"]}}"#,
    );
    let canaries_left = |s3: &RootS3, bucket: &str| {
        s3.versions(bucket, "replicanary/locked/")
            .into_iter()
            .filter(|(k, _)| is_canary(k) && !k.ends_with("00000000000000bb"))
            .count()
    };
    let emptied = support::poll_until(Duration::from_secs(2 * DAY_SECONDS + 30), || {
        canaries_left(&dst, &dst_bucket) == 0 && canaries_left(&src, &src_bucket) == 0
    });
    assert!(
        emptied,
        "canaries left: {} in the destination, {} in the source\n{}",
        canaries_left(&dst, &dst_bucket),
        canaries_left(&src, &src_bucket),
        daemon.log_text()
    );
    assert!(
        !has(&dst, &dst_bucket, leftover_key, &leftover),
        "the periodic sweep removes the leftover after its retention"
    );
    // The gauge follows once the last flush ran.
    assert!(support::poll_until(Duration::from_secs(15), || retained(
        &daemon.metrics()
    ) == 0.0));

    // One DeleteObject per replica (and one for the leftover), none refused: nothing was
    // tried before its retain-until date.
    let m = daemon.metrics();
    let calls = |side: &str, code: Option<&str>| {
        let mut labels = vec![
            ("replication", "locked"),
            ("side", side),
            ("operation", "DeleteObject"),
        ];
        if let Some(c) = code {
            labels.push(("code", c));
        }
        m.sum("replicanary_aws_requests_total", &labels)
    };
    let dst_deletes = calls("destination", None);
    eprintln!(
        "locked: {locked_ok} ok probes, max {max_retained} retained, {dst_deletes} destination DeleteObject calls \
         ({} refused), {} source DeleteObject calls; {:.0} s",
        calls("destination", Some("AccessDenied")).abs(),
        calls("source", None),
        started.elapsed().as_secs_f64()
    );
    assert!(
        max_retained >= 5.0,
        "about 60 s ÷ 5 s replicas retained at a time: {max_retained}"
    );
    assert!(
        dst_deletes >= locked_ok,
        "every replica deleted once: {dst_deletes} < {locked_ok}"
    );
    assert!(
        dst_deletes <= locked_ok + 3.0,
        "{dst_deletes} delete calls for {locked_ok} replicas"
    );
    assert_eq!(calls("destination", Some("AccessDenied")), 0.0);
    assert_eq!(
        m.get(
            "replicanary_cleanup_failures_total",
            &[("replication", "locked"), ("side", "destination")]
        ),
        Some(0.0)
    );
    // The lab's own count for the destination account agrees (the healthy replicas too).
    let stats = lab.stats_json();
    let lab_deletes = stats["by_account"]["222222222222"]["s3:DeleteObject"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        lab_deletes <= locked_ok + healthy_ok + 6.0,
        "the lab saw {lab_deletes} destination deletes for {locked_ok} + {healthy_ok} replicas"
    );

    // Users' objects survive, unchanged.
    for (bucket, key, version, body) in &keep {
        let s3 = if bucket == &src_bucket { &src } else { &dst };
        assert_eq!(
            s3.get(bucket, key, version).as_deref(),
            Some(body.as_bytes()),
            "{bucket}/{key} {version} is gone or changed"
        );
    }
    let status = daemon.signal_and_wait("TERM", Duration::from_secs(30));
    assert!(status.success());
}
