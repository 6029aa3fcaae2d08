//! The real binary against the lab: `check`, fault handling, latency, credentials,
//! shutdown, and the deletion rule.

mod support;

use std::time::Duration;

use support::{Daemon, Lab, RootS3, check};

/// Provisions with a fixed suffix so bucket names are known: rc-<scenario>-src-e2e.
fn provision(lab: &Lab, scenarios: &[&str], extra: &[&str]) -> std::path::PathBuf {
    let mut args = vec!["--suffix=-e2e"];
    args.extend_from_slice(extra);
    lab.provision(scenarios, &args)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_exits_0_when_all_ok_and_1_otherwise() {
    let lab = Lab::start(&[]);
    let config = provision(&lab, &["healthy", "wrong-key"], &[]);

    let ok = check(&config, &["--replication", "healthy"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}{}",
        stdout(&ok),
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout(&ok).contains("healthy → rc-healthy-dst-e2e: ok (replicated in"),
        "{}",
        stdout(&ok)
    );

    let all = check(&config, &[]);
    assert_eq!(all.status.code(), Some(1));
    let text = stdout(&all);
    assert!(
        text.contains("wrong-key → rc-wrong-key-dst-e2e: UNDECRYPTABLE"),
        "{text}"
    );
    assert!(
        text.contains("AccessDenied: The ciphertext refers to a customer master key"),
        "{text}"
    );
    assert!(text.contains("1 of 2 destinations ok"), "{text}");

    let json = check(&config, &["--format", "json", "--replication", "wrong-key"]);
    assert_eq!(json.status.code(), Some(1));
    let doc: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("check --format json is JSON");
    assert_eq!(doc["ok"], false);
    let v = &doc["verdicts"][0];
    assert_eq!(v["outcome"], "undecryptable");
    assert_eq!(v["aws_error"]["code"], "AccessDenied");
    assert_eq!(v["aws_error"]["http_status"], 403);
    assert_eq!(v["replica"]["readable"], false);
    assert!(v["latency"].as_f64().is_some_and(|l| l >= 1.0), "{v}");
    assert_ne!(v["replica"]["kms_key"], v["expected_kms_key"]);
}

#[test]
fn latency_is_measured_within_the_poll_step() {
    // The lab replicates after 1 s; polls at 0, 0.1, 0.3, 0.7, 1.5, … (max step 1 s).
    let lab = Lab::start(&["--replication-delay", "1.0"]);
    let config = provision(
        &lab,
        &["healthy"],
        &["--poll-initial", "100ms", "--poll-max", "1s"],
    );
    let out = check(&config, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let latency = doc["verdicts"][0]["latency"].as_f64().expect("latency");
    assert!(
        (1.0..=2.0).contains(&latency),
        "latency {latency}s is not within 1 s of the 1 s delay"
    );
}

#[test]
fn injected_503s_give_error_never_a_replication_verdict() {
    let lab = Lab::start(&[]);
    let config = provision(&lab, &["healthy"], &["--interval", "1s"]);
    // Three attempts per call, not the default five: under a total outage every call spends
    // all of them (with the SDK's backoff), and this test needs a few verdicts in a minute.
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("aws:\n"), "{text}");
    std::fs::write(
        &config,
        text.replacen("aws:\n", "aws:\n  max_attempts: 3\n", 1),
    )
    .expect("config");
    // Every S3 call fails: nothing can be observed, so nothing may be concluded.
    lab.admin(
        "config",
        r#"{"faults": {"error_rate": 1.0, "status": 503, "services": ["s3"]}}"#,
    );
    let daemon = Daemon::start(&config, &[]);
    let pair = [("healthy", "rc-healthy-dst-e2e")];
    let m = daemon.wait_for_verdicts(&pair, 2.0, Duration::from_secs(60));
    let outcomes = m.outcomes("healthy", "rc-healthy-dst-e2e");
    assert_eq!(
        outcomes.keys().collect::<Vec<_>>(),
        ["error"],
        "{outcomes:?}"
    );
    assert!(
        m.sum(
            "replicanary_aws_requests_total",
            &[("operation", "PutObject"), ("code", "SlowDown")]
        ) >= 2.0
    );

    // Only the polls fail: still `error`, not `replication_timeout`.
    lab.admin(
        "config",
        r#"{"faults": {"error_rate": 1.0, "status": 500, "services": ["s3"], "operations": ["HeadObject"]}}"#,
    );
    let before = m.verdicts("healthy", "rc-healthy-dst-e2e");
    let m = daemon.wait_for_verdicts(&pair, before + 2.0, Duration::from_secs(60));
    let outcomes = m.outcomes("healthy", "rc-healthy-dst-e2e");
    assert_eq!(
        outcomes.keys().collect::<Vec<_>>(),
        ["error"],
        "{outcomes:?}\n{}",
        daemon.log_text()
    );

    // Faults gone: back to ok.
    lab.admin("reset-faults", "{}");
    let ok_before = m
        .get(
            "replicanary_probes_total",
            &[("replication", "healthy"), ("outcome", "ok")],
        )
        .unwrap_or(0.0);
    assert!(support::poll_until(Duration::from_secs(30), || {
        daemon
            .metrics()
            .get(
                "replicanary_probes_total",
                &[("replication", "healthy"), ("outcome", "ok")],
            )
            .unwrap_or(0.0)
            > ok_before
    }));
    // Canaries of failed probes are deleted once S3 answers again.
    assert!(support::poll_until(Duration::from_secs(30), || {
        daemon
            .metrics()
            .get("replicanary_canaries_outstanding", &[])
            == Some(0.0)
    }));
}

#[test]
fn a_role_that_cannot_be_assumed_fails_only_its_replication() {
    let lab = Lab::start(&[]);
    let config = provision(&lab, &["healthy", "wrong-key"], &[]);
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(
        "role/replicanary-source-wrong-key-e2e",
        "role/replicanary-no-such-role",
    );
    std::fs::write(&config, text).expect("config");
    let out = check(&config, &["--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let outcome = |r: &str| support::outcome_of(&doc, r);
    assert_eq!(outcome("healthy"), "ok", "{doc}");
    assert_eq!(outcome("wrong-key"), "credentials_failed", "{doc}");
}

#[test]
fn shutdown_finishes_in_flight_probes_and_cleans_up() {
    // Replication takes 3 s, so SIGTERM lands while a probe waits for it.
    let lab = Lab::start(&["--replication-delay", "3.0"]);
    let config = provision(&lab, &["healthy"], &["--interval", "1s"]);
    let daemon = Daemon::start(&config, &[]);
    let src = RootS3::new(&lab, "111111111111");
    support::wait_until(Duration::from_secs(20), "a canary in flight", || {
        !src.versions("rc-healthy-src-e2e", "replicanary/")
            .is_empty()
    });
    let port = daemon.port;
    let status = {
        let d = daemon;
        // /readyz turns 503 as soon as shutdown begins, while the probe finishes.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &d.pid().to_string()])
            .status();
        let saw_503 = support::poll_until(Duration::from_secs(2), || {
            support::http_get(port, "/readyz").is_some_and(|(s, _)| s == 503)
        });
        assert!(saw_503, "/readyz never answered 503 during shutdown");
        d.signal_and_wait("TERM", Duration::from_secs(30))
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(
        src.versions("rc-healthy-src-e2e", "replicanary/")
            .is_empty(),
        "source canary left behind"
    );
    let dst = RootS3::new(&lab, "222222222222");
    assert!(
        dst.versions("rc-healthy-dst-e2e", "replicanary/")
            .is_empty(),
        "replica left behind"
    );
}

#[test]
fn shutdown_after_the_grace_period_cancels_and_cleans_up() {
    let lab = Lab::start(&[]);
    let config = provision(
        &lab,
        &["slow"],
        &["--slow-timeout", "10m", "--interval", "1s"],
    );
    let src = RootS3::new(&lab, "111111111111");
    let mut cmd = support::binary();
    let port = support::free_port();
    let mut child = cmd
        .args([
            "run",
            "--grace-period",
            "1s",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    support::wait_until(Duration::from_secs(20), "a canary in flight", || {
        !src.versions("rc-slow-src-e2e", "replicanary/").is_empty()
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("did not exit after the grace period");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        src.versions("rc-slow-src-e2e", "replicanary/").is_empty(),
        "cancelled canary left behind"
    );
}
