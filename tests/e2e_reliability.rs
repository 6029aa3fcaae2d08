//! Transient faults never page, real failures still do; credentials, secrets, hostile
//! responses; users' objects survive crashes and sweeps.
//!
//! Each test starts its own lab and daemon over the healthy scenario (three replications
//! of it, so that 50 probes take seconds, not minutes) and the wrong-key scenario, injects
//! one fault, and requires: healthy probes give only `ok` or `error`; wrong-key probes give
//! only `undecryptable` or `error`, with at least one `undecryptable` while the fault lasts;
//! back to `ok` promptly once it stops; no probe of a replication overlaps another (from the
//! JSON logs); no panic; and, after a clean shutdown, no canary left in any bucket.
//! Each test prints one row of the table in docs/reliability.md.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Daemon, Lab, Metrics, RootS3};

pub const SUFFIX: &str = "-rel";
/// The healthy scenario is probed as three replications (same buckets and roles).
pub const HEALTHY: [&str; 3] = ["healthy", "healthy-2", "healthy-3"];
pub const HEALTHY_DST: &str = "rc-healthy-dst-rel";
pub const WRONG: (&str, &str) = ("wrong-key", "rc-wrong-key-dst-rel");
pub const INTERVAL: Duration = Duration::from_millis(500);

/// Writes the daemon's configuration from a provisioned one: short intervals and
/// timeouts, the healthy replication copied under other names.
pub fn tune(provisioned: &Path, out: &Path, healthy_copies: &[&str]) {
    let text = std::fs::read_to_string(provisioned).expect("config");
    let mut doc: serde_json::Value = serde_saphyr::from_str(&text).expect("provisioned YAML");
    doc["defaults"]["interval"] = format!("{}ms", INTERVAL.as_millis()).into();
    doc["defaults"]["poll"] = serde_json::json!({"initial": "50ms", "max": "200ms"});
    doc["defaults"]["replication_timeout"] = "10s".into();
    doc["aws"]["attempt_timeout"] = "2s".into();
    doc["aws"]["operation_timeout"] = "5s".into();
    doc["aws"]["max_attempts"] = 3.into();
    let reps = doc["replications"].as_array_mut().expect("replications");
    if let Some(h) = reps.iter().find(|r| r["name"] == "healthy").cloned() {
        for name in healthy_copies.iter().filter(|n| **n != "healthy") {
            let mut copy = h.clone();
            copy["name"] = (*name).into();
            reps.push(copy);
        }
    }
    std::fs::write(out, serde_json::to_string_pretty(&doc).expect("JSON")).expect("write");
}

/// A lab with the healthy and wrong-key scenarios and a tuned configuration.
pub fn world(lab_args: &[&str]) -> (Lab, PathBuf) {
    let mut args = vec!["--replication-delay", "0.2"];
    args.extend_from_slice(lab_args);
    let lab = Lab::start(&args);
    let provisioned = lab.provision(&["healthy", "wrong-key"], &[&format!("--suffix={SUFFIX}")]);
    let config = lab.dir.path().join("reliability.yaml");
    tune(&provisioned, &config, &HEALTHY);
    (lab, config)
}

pub fn start_daemon(config: &Path) -> Daemon {
    Daemon::start(config, &[("RUST_LOG", "info,replicanary::daemon=debug")])
}

fn healthy_outcomes(m: &Metrics) -> BTreeMap<String, f64> {
    let mut all = BTreeMap::new();
    for r in HEALTHY {
        for (k, v) in m.outcomes(r, HEALTHY_DST) {
            *all.entry(k).or_insert(0.0) += v;
        }
    }
    all
}

fn delta(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

fn total(m: &BTreeMap<String, f64>) -> f64 {
    m.values().sum()
}

fn count(m: &BTreeMap<String, f64>, outcome: &str) -> f64 {
    m.get(outcome).copied().unwrap_or(0.0)
}

/// What a campaign measured: a row of docs/reliability.md.
#[derive(Debug)]
pub struct Row {
    pub fault: String,
    pub healthy_probes: f64,
    pub wrong_key_probes: f64,
    pub undecryptable_during_fault: f64,
    pub false_verdicts: f64,
    pub recovery: Duration,
    pub orphans: usize,
}

impl Row {
    pub fn print(&self) {
        eprintln!(
            "| {} | {} healthy + {} wrong-key | {} | {:.1} s | {} undecryptable |",
            self.fault,
            self.healthy_probes as u64,
            self.wrong_key_probes as u64,
            self.false_verdicts as u64,
            self.recovery.as_secs_f64(),
            self.undecryptable_during_fault as u64
        );
    }
}

/// Checks the JSON log: per replication, `probe starting` and `probe verdict` alternate
/// (no probe starts while another of the same replication runs), and nothing panicked.
pub fn assert_no_overlap_and_no_panic(daemon: &Daemon) -> usize {
    let text = daemon.log_text();
    assert!(!text.contains("panicked"), "a panic in the log:\n{text}");
    let mut in_flight: BTreeMap<String, bool> = BTreeMap::new();
    let mut starts = 0;
    for line in daemon.log_json() {
        let Some(rep) = line["replication"].as_str() else {
            continue;
        };
        match line["message"].as_str() {
            Some("probe starting") => {
                starts += 1;
                let running = in_flight.insert(rep.to_owned(), true).unwrap_or(false);
                assert!(!running, "{rep}: a probe started while another ran: {line}");
            }
            Some("probe verdict") => {
                let running = in_flight.insert(rep.to_owned(), false).unwrap_or(false);
                assert!(running, "{rep}: a verdict without a running probe: {line}");
            }
            _ => {}
        }
    }
    assert!(
        starts > 0,
        "no `probe starting` lines: is RUST_LOG applied?"
    );
    starts
}

/// Stops the daemon with SIGTERM and checks that every canary is gone: the gauge in the
/// last log line, and the buckets themselves.
pub fn stop_and_assert_clean(lab: &Lab, daemon: Daemon) {
    stop_and_check(lab, daemon, false);
}

/// Like [`stop_and_assert_clean`]; with `orphans_tolerated`, returns how many
/// marker-carrying canary versions were left instead of failing.
pub fn stop_and_check(lab: &Lab, daemon: Daemon, orphans_tolerated: bool) -> usize {
    let log = {
        let status = daemon.signal_and_wait_keep("TERM", Duration::from_secs(30));
        assert!(status.0.success(), "exit status {:?}", status.0);
        status.1
    };
    let stopped = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "replicanary stopped")
        .expect("a `replicanary stopped` line");
    assert_eq!(
        stopped["canaries_outstanding"], 0,
        "canaries outstanding at exit: {stopped}"
    );
    if !orphans_tolerated {
        assert_no_canary_left(lab);
        return 0;
    }
    let src = RootS3::new(lab, "111111111111");
    let dst = RootS3::new(lab, "222222222222");
    let mut left = 0;
    for (s3, bucket) in [
        (&src, format!("rc-healthy-src{SUFFIX}")),
        (&src, format!("rc-wrong-key-src{SUFFIX}")),
        (&dst, format!("rc-healthy-dst{SUFFIX}")),
        (&dst, format!("rc-wrong-key-dst{SUFFIX}")),
    ] {
        for (key, version, meta) in s3.versions_with_metadata(&bucket, "replicanary/") {
            assert_eq!(
                meta.get("replicanary").map(String::as_str),
                Some("canary-v1"),
                "{bucket}: a leftover that is not a canary: {key} {version}"
            );
            eprintln!("left behind: {bucket}/{key} {version}");
            left += 1;
        }
    }
    left
}

pub fn assert_no_canary_left(lab: &Lab) {
    let src = RootS3::new(lab, "111111111111");
    let dst = RootS3::new(lab, "222222222222");
    for (s3, bucket) in [
        (&src, format!("rc-healthy-src{SUFFIX}")),
        (&src, format!("rc-wrong-key-src{SUFFIX}")),
        (&dst, format!("rc-healthy-dst{SUFFIX}")),
        (&dst, format!("rc-wrong-key-dst{SUFFIX}")),
    ] {
        let left = s3.versions(&bucket, "replicanary/");
        assert!(left.is_empty(), "{bucket}: canaries left behind: {left:?}");
    }
}

/// Hooks of one campaign.
pub struct Fault<'a> {
    pub name: &'a str,
    pub start: &'a mut dyn FnMut(&mut Lab, &Daemon),
    /// Called every 200 ms while the fault lasts.
    pub tick: &'a mut dyn FnMut(&mut Lab, &Daemon, Duration),
    pub stop: &'a mut dyn FnMut(&mut Lab, &Daemon),
    /// The fault lasts at least this long, and until 50 healthy probes ran.
    pub min_duration: Duration,
    /// Outcomes besides `ok`/`error` (healthy) and `undecryptable`/`error` (wrong-key)
    /// that this fault may legitimately produce (none, for all but documented cases).
    pub also_allowed: &'a [&'a str],
    /// Product bugs (see `a_put_that_times_out_leaves_no_orphaned_canary` and
    /// `a_probe_that_cannot_poll_still_deletes_its_replica`): versions written by attempts
    /// that timed out, and replicas of probes whose polling failed, are never deleted. When
    /// set, leftovers are only required to be canaries (marker-carrying, so a start-up sweep
    /// takes them), and are counted.
    pub orphans_are_a_known_bug: bool,
}

pub fn run_campaign(lab: &mut Lab, config: &Path, f: Fault<'_>) -> Row {
    let daemon = start_daemon(config);
    let pairs: Vec<(&str, &str)> = HEALTHY
        .iter()
        .map(|r| (*r, HEALTHY_DST))
        .chain([WRONG])
        .collect();
    // Baseline: the healthy scenario is ok and the wrong key is seen.
    daemon.wait_for_verdicts(&pairs, 1.0, Duration::from_secs(60));
    let before = daemon.metrics();
    assert_eq!(
        delta(&healthy_outcomes(&before), &BTreeMap::new())
            .keys()
            .filter(|k| *k != "ok")
            .count(),
        0,
        "the healthy baseline is not ok: {:?}\n{}",
        healthy_outcomes(&before),
        daemon.log_text()
    );

    (f.start)(lab, &daemon);
    let started = Instant::now();
    let mut m;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        (f.tick)(lab, &daemon, started.elapsed());
        m = daemon.metrics();
        let probes = total(&delta(&healthy_outcomes(&m), &healthy_outcomes(&before)));
        if probes >= 50.0 && started.elapsed() >= f.min_duration {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{}: only {probes} healthy probes in 300 s: {:?}",
            f.name,
            healthy_outcomes(&m)
        );
    }
    let during = m;
    (f.stop)(lab, &daemon);
    let stopped = Instant::now();

    // Recovery: the first healthy `ok` after the fault stopped.
    let ok_then = count(&healthy_outcomes(&during), "ok");
    let recovered = support::poll_until(Duration::from_secs(60), || {
        count(&healthy_outcomes(&daemon.metrics()), "ok") > ok_then
    });
    let recovery = stopped.elapsed();
    assert!(
        recovered,
        "{}: no ok within 60 s after the fault stopped",
        f.name
    );
    // ... and every probe that *started* after the fault stopped is ok (undecryptable for
    // the wrong key), for every replication: probes still in flight at that moment may
    // end in `error`, the next one may not.
    let stopped_wall = std::time::SystemTime::now() - stopped.elapsed();
    let mut after_stop = BTreeMap::new();
    let settled = support::poll_until(Duration::from_secs(60), || {
        after_stop = verdicts_of_probes_started_after(&daemon, stopped_wall);
        HEALTHY.iter().chain([&WRONG.0]).all(|r| {
            after_stop
                .get(*r)
                .is_some_and(|v: &Vec<String>| v.len() >= 2)
        })
    });
    assert!(
        settled,
        "{}: too few probes after the fault: {after_stop:?}",
        f.name
    );
    for (r, outcomes) in &after_stop {
        let want = if r == WRONG.0 { "undecryptable" } else { "ok" };
        assert!(
            outcomes.iter().all(|o| o == want),
            "{}: {r} not back to {want} after the fault stopped: {outcomes:?}",
            f.name
        );
    }
    let after = daemon.metrics();

    // Verdicts over the whole campaign (fault and recovery).
    let h = delta(&healthy_outcomes(&after), &healthy_outcomes(&before));
    let w = delta(
        &after.outcomes(WRONG.0, WRONG.1),
        &before.outcomes(WRONG.0, WRONG.1),
    );
    let w_during = delta(
        &during.outcomes(WRONG.0, WRONG.1),
        &before.outcomes(WRONG.0, WRONG.1),
    );
    let false_healthy: f64 = h
        .iter()
        .filter(|(k, _)| !["ok", "error"].contains(&k.as_str()))
        .map(|(_, v)| v)
        .sum();
    let false_wrong: f64 = w
        .iter()
        .filter(|(k, _)| !["undecryptable", "error"].contains(&k.as_str()))
        .map(|(_, v)| v)
        .sum();
    let row = Row {
        fault: f.name.to_owned(),
        healthy_probes: total(&h),
        wrong_key_probes: total(&w),
        undecryptable_during_fault: count(&w_during, "undecryptable"),
        false_verdicts: false_healthy + false_wrong,
        recovery,
        orphans: 0,
    };
    row.print();
    eprintln!("{}: healthy {h:?}; wrong-key {w:?}", f.name);
    let tolerated = |map: &BTreeMap<String, f64>, allowed: &[&str]| {
        map.keys()
            .all(|k| allowed.contains(&k.as_str()) || f.also_allowed.contains(&k.as_str()))
    };
    assert!(
        tolerated(&h, &["ok", "error"]),
        "{}: false verdicts on the healthy scenario: {h:?}\n{}",
        f.name,
        daemon.log_text()
    );
    assert!(
        tolerated(&w, &["undecryptable", "error"]),
        "{}: false verdicts on the wrong-key scenario: {w:?}",
        f.name
    );
    assert!(
        row.undecryptable_during_fault >= 1.0,
        "{}: the noise hid the wrong key: {w_during:?}",
        f.name
    );
    assert!(
        row.healthy_probes >= 50.0,
        "{}: {} probes",
        f.name,
        row.healthy_probes
    );
    // One interval plus the longest a probe in flight can take to finish.
    assert!(
        recovery <= INTERVAL + Duration::from_secs(12),
        "{}: recovery took {recovery:?}",
        f.name
    );
    assert_no_overlap_and_no_panic(&daemon);
    // Probe count bound per replication: never more than elapsed / interval + 1.
    let elapsed = before_start_elapsed(&daemon);
    for r in HEALTHY {
        let n = after.verdicts(r, HEALTHY_DST);
        assert!(
            n <= elapsed.as_secs_f64() / INTERVAL.as_secs_f64() + 1.0,
            "{r}: {n} verdicts in {elapsed:?}"
        );
    }
    let orphans = stop_and_check(lab, daemon, f.orphans_are_a_known_bug);
    if orphans > 0 {
        eprintln!(
            "{}: {orphans} orphaned canary versions (known bug)",
            row.fault
        );
    }
    Row { orphans, ..row }
}

/// Per replication, the outcomes of the probes whose `probe starting` line is later than
/// `since` (from the JSON log).
fn verdicts_of_probes_started_after(
    daemon: &Daemon,
    since: std::time::SystemTime,
) -> BTreeMap<String, Vec<String>> {
    let mut started_at: BTreeMap<String, std::time::SystemTime> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in daemon.log_json() {
        let (Some(rep), Some(ts)) = (line["replication"].as_str(), line["timestamp"].as_str())
        else {
            continue;
        };
        let Ok(t) = humantime::parse_rfc3339(ts) else {
            continue;
        };
        match line["message"].as_str() {
            Some("probe starting") => {
                started_at.insert(rep.to_owned(), t);
            }
            Some("probe verdict") if started_at.get(rep).is_some_and(|s| *s >= since) => {
                out.entry(rep.to_owned())
                    .or_default()
                    .push(line["outcome"].as_str().unwrap_or_default().to_owned());
            }
            _ => {}
        }
    }
    out
}

/// How long the daemon has run (from its first log line to now).
fn before_start_elapsed(daemon: &Daemon) -> Duration {
    let first = daemon
        .log_json()
        .into_iter()
        .find_map(|l| l["timestamp"].as_str().map(str::to_owned));
    let Some(first) = first else {
        return Duration::ZERO;
    };
    humantime::parse_rfc3339_weak(first.trim_end_matches('Z').split('.').next().unwrap_or(""))
        .ok()
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .map(|d| d + Duration::from_secs(1))
        .unwrap_or(Duration::from_secs(3600))
}

fn s3_fault(lab: &Lab, json: &str) {
    lab.admin("config", json);
}

fn simple(
    name: &str,
    fault_json: &'static str,
    lab_args: &[&str],
    min: Duration,
    orphans: bool,
) -> Row {
    let (mut lab, config) = world(lab_args);
    run_campaign(
        &mut lab,
        &config,
        Fault {
            name,
            start: &mut |lab, _| s3_fault(lab, fault_json),
            tick: &mut |_, _, _| {},
            stop: &mut |lab, _| lab.admin("reset-faults", "{}"),
            min_duration: min,
            also_allowed: &[],
            orphans_are_a_known_bug: orphans,
        },
    )
}

#[test]
fn s3_503_slowdown_on_30_percent_of_calls() {
    simple(
        "30% of S3 calls answer 503 SlowDown",
        r#"{"faults": {"error_rate": 0.3, "status": 503, "services": ["s3"]}}"#,
        &[],
        Duration::ZERO,
        false,
    );
}

#[test]
fn s3_500_internal_error_on_30_percent_of_calls() {
    simple(
        "30% of S3 calls answer 500 InternalError",
        r#"{"faults": {"error_rate": 0.3, "status": 500, "services": ["s3"]}}"#,
        &[],
        Duration::ZERO,
        false,
    );
}

#[test]
fn latency_beyond_the_attempt_timeout() {
    // attempt_timeout is 2 s: a quarter of S3 calls take 2.5 s and time out.
    simple(
        "25% of S3 calls delayed 2.5 s (attempt timeout 2 s)",
        r#"{"faults": {"latency_ms": 2500, "latency_rate": 0.25, "services": ["s3"]}}"#,
        &[],
        Duration::ZERO,
        false,
    );
}

#[test]
fn sts_unavailable_longer_than_the_cached_session() {
    // Sessions last 30 s; the SDK refreshes 10–15 s before expiry, so a 45 s outage
    // outlasts every cached session: probes go from ok to error, never to a verdict.
    simple(
        "STS answers 503 for 45 s (sessions last 30 s)",
        r#"{"faults": {"error_rate": 1.0, "status": 503, "services": ["sts"]}}"#,
        &["--sts-session-seconds", "30"],
        Duration::from_secs(45),
        false,
    );
}

#[test]
fn the_lab_killed_and_restarted_mid_probe() {
    // What AWS keeps across a server restart the restarted lab must keep too: buckets,
    // roles and keys are provisioned again with the same names and key ids
    // (--deterministic-key-ids), and live STS sessions are reloaded (--sessions-file).
    let dir = support::tempdir::TempDir::new("replicanary-restart");
    let sessions = dir.path().join("sessions.jsonl");
    let sessions = sessions.to_str().expect("utf-8 path").to_owned();
    let args: Vec<String> = [
        "--replication-delay",
        "0.2",
        "--deterministic-key-ids",
        "--sessions-file",
        &sessions,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mut lab, config) = world(&args[2..]);
    let mut restarts = 0;
    let mut last = Duration::ZERO;
    let mut restart = |lab: &mut Lab, daemon: &Daemon, at: Duration| {
        if restarts >= 5 || at < last + Duration::from_secs(6) {
            return;
        }
        last = at;
        // Kill it while a canary waits for replication (mid-probe).
        support::poll_until(Duration::from_secs(3), || {
            lab.stats_json()["pending_replications"]
                .as_i64()
                .is_some_and(|n| n > 0)
        });
        lab.kill();
        std::thread::sleep(Duration::from_secs(2)); // the daemon sees a dead endpoint
        // Bring AWS's state back before the daemon looks again: pause it meanwhile.
        daemon.signal("STOP");
        lab.restart(&args);
        lab.provision(&["healthy", "wrong-key"], &[&format!("--suffix={SUFFIX}")]);
        daemon.signal("CONT");
        restarts += 1;
    };
    let row = run_campaign(
        &mut lab,
        &config,
        Fault {
            name: "lab SIGKILLed mid-probe, down 2 s, restarted (5 times)",
            start: &mut |_, _| {},
            tick: &mut restart,
            stop: &mut |_, _| {},
            min_duration: Duration::from_secs(32),
            also_allowed: &[],
            orphans_are_a_known_bug: false,
        },
    );
    assert!(row.healthy_probes >= 50.0);
}

/// Regression test of a bug this campaign found (fixed in 2f84bd6): a PutObject whose
/// attempt timed out after the server stored it left that version (and its replica)
/// behind, since only the version id of the answer that arrived went into the ledger.
/// Now the exact key of an uncertain write is listed and its marker-carrying versions
/// deleted, in the source and every destination.
#[test]
fn a_put_that_times_out_leaves_no_orphaned_canary() {
    let (lab, config) = world(&[]);
    let daemon = start_daemon(&config);
    let pairs = [(HEALTHY[0], HEALTHY_DST)];
    daemon.wait_for_verdicts(&pairs, 1.0, Duration::from_secs(60));
    // Every PutObject answers after the 2 s attempt timeout, but the lab stores it.
    lab.admin(
        "config",
        r#"{"faults": {"latency_ms": 2500, "latency_rate": 1.0, "services": ["s3"], "operations": ["PutObject"]}}"#,
    );
    std::thread::sleep(Duration::from_secs(8));
    lab.admin("reset-faults", "{}");
    let reset = std::time::Instant::now();
    let ok = daemon
        .metrics()
        .sum("replicanary_probes_total", &[("outcome", "ok")]);
    support::wait_until(Duration::from_secs(30), "ok again", || {
        daemon
            .metrics()
            .sum("replicanary_probes_total", &[("outcome", "ok")])
            > ok + 3.0
    });
    // A timed-out attempt lands in the lab up to ~7 s after it was sent; the daemon watches
    // such a key for replication_timeout (10 s). Stop only once every watch begun under the
    // fault has run its course, so a version that landed late was listed while running.
    std::thread::sleep(Duration::from_secs(12).saturating_sub(reset.elapsed()));
    stop_and_assert_clean(&lab, daemon);
}

// ---- Credentials ---------------------------------------------------------------------------

fn assume_role_ok(m: &Metrics, replication: &str, side: &str) -> f64 {
    m.sum(
        "replicanary_aws_requests_total",
        &[
            ("replication", replication),
            ("side", side),
            ("operation", "AssumeRole"),
            ("code", "ok"),
        ],
    )
}

#[test]
fn short_sessions_are_refreshed_without_a_failed_probe() {
    // Sessions last 20 s (the lab caps DurationSeconds and rejects expired tokens); the SDK
    // refreshes them 10–15 s before expiry, so 40 s of probing spans several refreshes.
    let (lab, config) = world(&["--sts-session-seconds", "20"]);
    let daemon = start_daemon(&config);
    std::thread::sleep(Duration::from_secs(40));
    let m = daemon.metrics();
    // The healthy copies share their roles, hence one client and one session per side:
    // their AssumeRole calls are counted under whichever copy needed the refresh.
    for side in ["source", "destination"] {
        let healthy: f64 = HEALTHY.iter().map(|r| assume_role_ok(&m, r, side)).sum();
        let wrong = assume_role_ok(&m, WRONG.0, side);
        for (who, n) in [("healthy copies", healthy), (WRONG.0, wrong)] {
            assert!(
                n >= 3.0,
                "{who}/{side}: {n} AssumeRole calls: sessions were not refreshed"
            );
        }
        // Shared, not one session per replication: about one refresh per 10–15 s.
        assert!(
            healthy <= 10.0,
            "{side}: {healthy} AssumeRole calls for three copies of one role pair: not shared"
        );
    }
    let h = healthy_outcomes(&m);
    let w = m.outcomes(WRONG.0, WRONG.1);
    eprintln!(
        "| sessions of 20 s refreshed ({} AssumeRole) | {} healthy + {} wrong-key | {} | — |",
        HEALTHY
            .iter()
            .map(|r| assume_role_ok(&m, r, "source"))
            .sum::<f64>(),
        total(&h),
        total(&w),
        total(&h) - count(&h, "ok") + total(&w) - count(&w, "undecryptable")
    );
    assert_eq!(
        h.keys().collect::<Vec<_>>(),
        ["ok"],
        "{h:?}\n{}",
        daemon.log_text()
    );
    assert_eq!(w.keys().collect::<Vec<_>>(), ["undecryptable"], "{w:?}");
    assert!(total(&h) >= 50.0, "{h:?}");
    assert_no_overlap_and_no_panic(&daemon);
    stop_and_assert_clean(&lab, daemon);
}

#[test]
fn a_role_that_can_no_longer_be_assumed_fails_only_its_replication() {
    let (lab, config) = world(&["--sts-session-seconds", "20"]);
    let daemon = start_daemon(&config);
    let pairs: Vec<(&str, &str)> = HEALTHY
        .iter()
        .map(|r| (*r, HEALTHY_DST))
        .chain([WRONG])
        .collect();
    daemon.wait_for_verdicts(&pairs, 1.0, Duration::from_secs(60));
    // The wrong-key source role now trusts another account only: once the cached session
    // expires, AssumeRole answers AccessDenied.
    lab.python(&format!(
        r#"
import json, os, provision
iam = provision.client("iam", os.environ["ENDPOINT"], "111111111111")
iam.update_assume_role_policy(RoleName="replicanary-source-wrong-key{SUFFIX}", PolicyDocument=json.dumps({{
    "Version": "2012-10-17",
    "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::444444444444:root"}}, "Action": "sts:AssumeRole"}}]}}))
"#
    ));
    let before = daemon.metrics();
    support::wait_until(
        Duration::from_secs(60),
        "credentials_failed for wrong-key",
        || {
            count(
                &daemon.metrics().outcomes(WRONG.0, WRONG.1),
                "credentials_failed",
            ) >= 3.0
        },
    );
    let m = daemon.metrics();
    let h = delta(&healthy_outcomes(&m), &healthy_outcomes(&before));
    let w = delta(
        &m.outcomes(WRONG.0, WRONG.1),
        &before.outcomes(WRONG.0, WRONG.1),
    );
    eprintln!("role no longer assumable: healthy {h:?}; wrong-key {w:?}");
    assert_eq!(
        h.keys().collect::<Vec<_>>(),
        ["ok"],
        "the other replications suffer: {h:?}"
    );
    assert!(
        total(&h) >= 10.0,
        "the other replications stopped probing: {h:?}"
    );
    assert!(
        w.keys()
            .all(|k| k == "undecryptable" || k == "credentials_failed"),
        "{w:?}"
    );
    // Once it fails, it keeps failing as credentials_failed (never a replication verdict).
    let verdicts: Vec<String> = daemon
        .log_json()
        .into_iter()
        .filter(|l| l["message"] == "probe verdict" && l["replication"] == WRONG.0)
        .map(|l| l["outcome"].as_str().unwrap_or_default().to_owned())
        .collect();
    let first = verdicts
        .iter()
        .position(|o| o == "credentials_failed")
        .expect("one");
    assert!(
        verdicts[first..].iter().all(|o| o == "credentials_failed"),
        "{verdicts:?}"
    );
    assert!(
        m.sum(
            "replicanary_aws_requests_total",
            &[
                ("replication", WRONG.0),
                ("operation", "AssumeRole"),
                ("code", "AccessDenied")
            ]
        ) >= 1.0,
        "AssumeRole refusals are counted"
    );
    for r in HEALTHY {
        assert_eq!(
            m.sum(
                "replicanary_aws_requests_total",
                &[
                    ("replication", r),
                    ("operation", "AssumeRole"),
                    ("code", "AccessDenied")
                ]
            ),
            0.0
        );
    }
    assert_no_overlap_and_no_panic(&daemon);
}

// ---- Secrets ---------------------------------------------------------------------------------

/// Every log line at RUST_LOG=trace and every metric: no secret access key (the base one,
/// and every session's, as the lab recorded them), no session token, no SigV4 signature.
#[test]
fn no_secret_appears_in_trace_logs_or_metrics() {
    let dir = support::tempdir::TempDir::new("replicanary-secrets");
    let sessions = dir.path().join("sessions.jsonl");
    let (lab, config) = world(&[
        "--sts-session-seconds",
        "15",
        "--sessions-file",
        sessions.to_str().expect("utf-8"),
    ]);
    const BASE_SECRET: &str = "test"; // what the lab's root keys sign with
    let daemon = Daemon::start(&config, &[("RUST_LOG", "trace")]);
    let pairs: Vec<(&str, &str)> = HEALTHY
        .iter()
        .map(|r| (*r, HEALTHY_DST))
        .chain([WRONG])
        .collect();
    daemon.wait_for_verdicts(&pairs, 3.0, Duration::from_secs(60));
    // Failure paths log AWS errors and their chains: throttled STS and S3, then a denial.
    lab.admin(
        "config",
        r#"{"faults": {"error_rate": 0.5, "status": 503, "services": ["s3", "sts"]}}"#,
    );
    std::thread::sleep(Duration::from_secs(20)); // spans a session refresh (15 s sessions)
    lab.admin("reset-faults", "{}");
    let before = daemon.metrics().verdicts(HEALTHY[0], HEALTHY_DST);
    daemon.wait_for_verdicts(&pairs[..1], before + 3.0, Duration::from_secs(60));
    let metrics = daemon.metrics().text;
    let (status, log) = daemon.signal_and_wait_keep("TERM", Duration::from_secs(30));
    assert!(status.success());
    assert!(log.lines().count() > 1000, "trace logging is on");

    let mut secrets: Vec<(String, String)> = Vec::new();
    for line in std::fs::read_to_string(&sessions)
        .unwrap_or_default()
        .lines()
    {
        let v: serde_json::Value = serde_json::from_str(line).expect("session line");
        for field in ["SecretAccessKey", "SessionToken"] {
            if let Some(s) = v[1][field].as_str() {
                secrets.push((field.to_owned(), s.to_owned()));
            }
        }
    }
    assert!(
        secrets.len() >= 2 * 8,
        "sessions were issued and recorded: {}",
        secrets.len()
    );
    let lower = log.to_lowercase();
    let mut leaks = Vec::new();
    for (what, secret) in &secrets {
        if log.contains(secret.as_str()) {
            leaks.push(format!("{what} in the log"));
        }
        if metrics.contains(secret.as_str()) {
            leaks.push(format!("{what} in the metrics"));
        }
    }
    for needle in [
        "signature=",
        "x-amz-signature",
        "x-amz-security-token",
        "secret_access_key",
        "secretaccesskey",
        "sessiontoken",
        "session_token",
    ] {
        for line in lower.lines().filter(|l| l.contains(needle)) {
            // A field *name* with an empty or redacted value is fine; a value is not.
            let after = &line[line.find(needle).unwrap_or(0) + needle.len()..];
            let value: String = after
                .trim_start_matches(['"', ':', ' ', '='])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "+/=".contains(*c))
                .collect();
            if value.len() >= 16 && !value.contains("redacted") {
                leaks.push(format!(
                    "`{needle}` with a value: {}",
                    &line[..line.len().min(300)]
                ));
            }
        }
    }
    let _ = BASE_SECRET;
    // The trace covers the signing path, where a leak would be (the SDK redacts there).
    assert!(
        lower.contains("canonical_request") && lower.contains("x-amz-security-token"),
        "the trace does not reach request signing"
    );
    if let Ok(dump) = std::env::var("RELIABILITY_DUMP_TRACE") {
        let _ = std::fs::write(dump, &log);
    }
    leaks.dedup();
    assert!(leaks.is_empty(), "secrets leak:\n{}", leaks.join("\n"));
}

// ---- Hostile responses -----------------------------------------------------------------------

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A 1 GiB replica body is read up to the canary's size plus the margin and no further
/// (the verdict is the truthful `content_mismatch`, memory stays flat); malformed or huge
/// headers give `error` at worst, never a panic or another verdict.
#[test]
fn hostile_replica_bodies_and_headers_are_bounded() {
    let (lab, config) = world(&[]);
    let daemon = start_daemon(&config);
    let pairs: Vec<(&str, &str)> = HEALTHY
        .iter()
        .map(|r| (*r, HEALTHY_DST))
        .chain([WRONG])
        .collect();
    daemon.wait_for_verdicts(&pairs, 1.0, Duration::from_secs(60));
    let rss_before = rss_kib(daemon.pid());

    const GIB: u64 = 1 << 30;
    lab.admin(
        "config",
        &format!(r#"{{"tamper": {{"operations": ["GetObject"], "buckets": ["{HEALTHY_DST}"], "body_bytes": {GIB}}}}}"#),
    );
    // Probes in flight at this moment may have read the replica before the tamper.
    let tampered_at = std::time::SystemTime::now();
    let before = daemon.metrics();
    let started = Instant::now();
    let mut peak = 0;
    support::wait_until(
        Duration::from_secs(60),
        "6 probes under a 1 GiB body",
        || {
            peak = peak.max(rss_kib(daemon.pid()));
            total(&delta(
                &healthy_outcomes(&daemon.metrics()),
                &healthy_outcomes(&before),
            )) >= 6.0
        },
    );
    let took = started.elapsed();
    let m = daemon.metrics();
    let h = delta(&healthy_outcomes(&m), &healthy_outcomes(&before));
    let stats = lab.stats_json();
    let responses = stats["tampered_responses"].as_u64().unwrap_or(0).max(1);
    let sent_per_response = stats["tamper_body_bytes_sent"].as_u64().unwrap_or(0) / responses;
    eprintln!(
        "hostile body: {h:?} in {took:?}; RSS {rss_before} -> peak {peak} KiB; the lab got \
         {sent_per_response} bytes per 1 GiB answer out before replicanary hung up"
    );
    // Every probe that started once the tamper was on: content_mismatch, or error at worst.
    let started_after = verdicts_of_probes_started_after(&daemon, tampered_at);
    let tampered: Vec<&str> = HEALTHY
        .iter()
        .flat_map(|r| started_after.get(*r).into_iter().flatten())
        .map(String::as_str)
        .collect();
    assert!(
        tampered
            .iter()
            .all(|v| *v == "content_mismatch" || *v == "error")
            && tampered.contains(&"content_mismatch"),
        "verdicts of probes started under the tamper: {tampered:?} (all since: {h:?})"
    );
    assert!(
        peak < rss_before + 32 * 1024,
        "RSS grew from {rss_before} to {peak} KiB"
    );
    assert!(
        sent_per_response < 64 << 20,
        "{sent_per_response} bytes of a 1 GiB body went out per answer"
    );

    // Huge and malformed headers on the replica's HeadObject and GetObject.
    for headers in [
        format!(r#"{{"x-amz-meta-hostile": "{}"}}"#, "A".repeat(1 << 20)),
        r#"{"content-length": "not-a-number"}"#.to_owned(),
    ] {
        lab.admin("reset-faults", "{}");
        lab.admin(
            "config",
            &format!(r#"{{"tamper": {{"operations": ["HeadObject", "GetObject"], "buckets": ["{HEALTHY_DST}"], "headers": {headers}}}}}"#),
        );
        let before = daemon.metrics();
        support::wait_until(
            Duration::from_secs(60),
            "3 probes under malformed headers",
            || {
                total(&delta(
                    &healthy_outcomes(&daemon.metrics()),
                    &healthy_outcomes(&before),
                )) >= 3.0
            },
        );
        let h = delta(
            &healthy_outcomes(&daemon.metrics()),
            &healthy_outcomes(&before),
        );
        eprintln!(
            "hostile headers {}: {h:?}",
            &headers[..headers.len().min(60)]
        );
        assert!(
            h.keys().all(|k| ["ok", "error"].contains(&k.as_str())),
            "{h:?}"
        );
    }
    lab.admin("reset-faults", "{}");
    let ok = count(&healthy_outcomes(&daemon.metrics()), "ok");
    support::wait_until(Duration::from_secs(30), "ok again", || {
        count(&healthy_outcomes(&daemon.metrics()), "ok") >= ok + 3.0
    });
    assert_no_overlap_and_no_panic(&daemon);
    stop_and_assert_clean(&lab, daemon);
}

// ---- Users' objects survive crashes and sweeps -----------------------------------------------

/// Users' objects that look more and more like canaries (and an older version of a user
/// key under the prefix), in the source and destination buckets of both scenarios, survive
/// four SIGKILLs at random moments of probing, the start-up sweeps after each, and a clean
/// shutdown; the crashes' own canaries and a marker-carrying leftover are swept.
#[test]
fn user_objects_survive_repeated_sigkills_and_sweeps() {
    let (lab, config) = world(&[]);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("config")).expect("JSON");
    doc["defaults"]["sweep_min_age"] = "2s".into();
    std::fs::write(&config, doc.to_string()).expect("config");
    let src = RootS3::new(&lab, "111111111111");
    let dst = RootS3::new(&lab, "222222222222");
    let sha = "ab".repeat(32);
    let marker: [(&str, &str); 2] = [("replicanary", "canary-v1"), ("replicanary-sha256", &sha)];
    let shaped = "20250101T000000Z-00000000000000aa";
    let mut keep = Vec::new();
    for (s3, bucket) in [
        (&src, format!("rc-healthy-src{SUFFIX}")),
        (&dst, format!("rc-healthy-dst{SUFFIX}")),
        (&src, format!("rc-wrong-key-src{SUFFIX}")),
        (&dst, format!("rc-wrong-key-dst{SUFFIX}")),
    ] {
        let with_marker: &[(&str, &str)] = &marker;
        let bad_sha: &[(&str, &str)] =
            &[("replicanary", "canary-v1"), ("replicanary-sha256", "zz")];
        let cases: Vec<(String, &[(&str, &str)])> = vec![
            ("data/report.csv".into(), with_marker),
            (format!("data/replicanary/healthy/{shaped}"), with_marker),
            (format!("replicanary/healthy/{shaped}"), &[]),
            (format!("replicanary/healthy/{shaped}"), bad_sha),
            (format!("replicanary/healthy/{shaped}.bak"), with_marker),
            (format!("replicanary/healthy/sub/{shaped}"), with_marker),
            (format!("replicanary/healthy-extra/{shaped}"), with_marker),
            (format!("replicanary/unconfigured/{shaped}"), with_marker),
            (format!("replicanary/{shaped}"), with_marker),
            (format!("Replicanary/healthy/{shaped}"), with_marker),
            ("replicanary/healthy/".into(), with_marker),
        ];
        for (key, meta) in cases {
            let body = format!("user data {bucket}/{key}");
            let v = s3.put(&bucket, &key, &body, meta);
            keep.push((bucket.clone(), key, v, body));
        }
        // Two versions of a user key under the prefix: the older one survives too.
        let notes = "replicanary/healthy/notes.txt";
        for body in ["older notes", "newer notes"] {
            let v = s3.put(&bucket, notes, body, &[]);
            keep.push((bucket.clone(), notes.to_owned(), v, body.to_owned()));
        }
    }
    // A leftover of an earlier run: canary-shaped, with the marker, older than
    // sweep_min_age. The only object here a sweep may delete.
    let leftover_key = "replicanary/healthy/20250101T000000Z-00000000000000ff";
    let leftover_bucket = format!("rc-healthy-src{SUFFIX}");
    let leftover = src.put(&leftover_bucket, leftover_key, "old canary", &marker);
    let survivors = |when: &str| {
        for (bucket, key, version, body) in &keep {
            let s3 = if bucket.contains("-src") { &src } else { &dst };
            assert_eq!(
                s3.get(bucket, key, version).as_deref(),
                Some(body.as_bytes()),
                "{when}: the user's {bucket}/{key} ({version}) is gone or changed"
            );
        }
    };
    std::thread::sleep(Duration::from_secs(3)); // every user object is older than sweep_min_age
    for round in 0..4 {
        let daemon = start_daemon(&config);
        std::thread::sleep(Duration::from_millis(500 + fastrand::u64(..2500)));
        daemon.signal_and_wait("KILL", Duration::from_secs(5));
        survivors(&format!("after SIGKILL {round}"));
        std::thread::sleep(Duration::from_secs(3)); // the crash's canaries age past 2 s
    }
    let crash_leftovers: usize = [
        (&src, format!("rc-healthy-src{SUFFIX}")),
        (&src, format!("rc-wrong-key-src{SUFFIX}")),
    ]
    .iter()
    .map(|(s3, b)| {
        s3.versions(b, "replicanary/")
            .iter()
            .filter(|(k, _)| !keep.iter().any(|(_, uk, ..)| uk == k))
            .count()
    })
    .sum();
    let daemon = start_daemon(&config);
    let pairs: Vec<(&str, &str)> = HEALTHY
        .iter()
        .map(|r| (*r, HEALTHY_DST))
        .chain([WRONG])
        .collect();
    daemon.wait_for_verdicts(&pairs, 2.0, Duration::from_secs(60));
    let (status, log) = daemon.signal_and_wait_keep("TERM", Duration::from_secs(30));
    assert!(status.success());
    survivors("after the last sweep and shutdown");
    assert!(
        !src.versions(&leftover_bucket, "replicanary/healthy/")
            .iter()
            .any(|(k, v)| k == leftover_key && *v == leftover),
        "the start-up sweep removes marker-carrying leftovers"
    );
    eprintln!(
        "{crash_leftovers} crash leftovers in the source buckets before the last start; \
         {} sweep log lines",
        log.matches("start-up sweep removed leftover canaries")
            .count()
    );
    // Nothing but users' objects (and, in the destination, their replicas) is left.
    for (s3, bucket) in [
        (&src, format!("rc-healthy-src{SUFFIX}")),
        (&dst, format!("rc-healthy-dst{SUFFIX}")),
        (&src, format!("rc-wrong-key-src{SUFFIX}")),
        (&dst, format!("rc-wrong-key-dst{SUFFIX}")),
    ] {
        for (key, version) in s3.versions(&bucket, "") {
            let user_key = keep.iter().any(|(_, k, ..)| *k == key);
            assert!(
                user_key,
                "{bucket}: a canary survived the sweep: {key} {version}"
            );
        }
    }
}

/// Found by the STS and latency campaigns: when polling the source's replication status
/// failed or timed out, the replica (same key, same version id) landed later and nothing
/// deleted it until a start-up sweep. The prober now watches the key on each destination
/// whose replica it did not see (src/cleanup/janitor.rs `watch_key`).
#[test]
fn a_probe_that_cannot_poll_still_deletes_its_replica() {
    let (lab, config) = world(&[]);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("config")).expect("JSON");
    doc["defaults"]["replication_timeout"] = "2s".into();
    std::fs::write(&config, doc.to_string()).expect("config");
    let daemon = start_daemon(&config);
    let pairs = [(HEALTHY[0], HEALTHY_DST)];
    daemon.wait_for_verdicts(&pairs, 1.0, Duration::from_secs(60));
    // Every HeadObject fails for 4 s: polls end in `Fault` while the replicas land.
    lab.admin(
        "config",
        r#"{"faults": {"error_rate": 1.0, "status": 503, "services": ["s3"], "operations": ["HeadObject"]}}"#,
    );
    std::thread::sleep(Duration::from_secs(4));
    lab.admin("reset-faults", "{}");
    let ok = daemon
        .metrics()
        .sum("replicanary_probes_total", &[("outcome", "ok")]);
    support::wait_until(Duration::from_secs(30), "ok again", || {
        daemon
            .metrics()
            .sum("replicanary_probes_total", &[("outcome", "ok")])
            > ok + 3.0
    });
    stop_and_assert_clean(&lab, daemon);
}
