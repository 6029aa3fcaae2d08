//! Reload and shards, the real binary against the lab: a failed reload keeps probing and
//! says why; a reload over HTTP restarts only what changed; editing the file (found by
//! polling, no signal) removes a replication, cleans up its canaries and drops its series;
//! a ConfigMap-style symlink swap adds one; two shards split the replications between them.
//!
//! Each test starts its own lab with copies of the healthy scenario (`provision.py
//! --copies`: replications healthy-0001, … over buckets rc-cpNNNN-{src,dst}-rl) probed
//! every second, and takes a few tens of seconds.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Daemon, Lab, Metrics, RootS3, http_post, poll_until, wait_until};

const A: &str = "healthy-0001";
const B: &str = "healthy-0002";

fn dst(name: &str) -> String {
    format!("rc-cp{}-dst-rl", &name[name.len() - 4..])
}

fn src(name: &str) -> String {
    format!("rc-cp{}-src-rl", &name[name.len() - 4..])
}

/// A lab with `copies` healthy replications; returns it with the configuration as JSON.
fn lab_with_copies(copies: usize) -> (Lab, serde_json::Value) {
    let lab = Lab::start(&["--replication-delay", "0.2"]);
    let provisioned = lab.provision(
        &[],
        &[
            "--copies",
            &copies.to_string(),
            "--suffix=-rl",
            "--interval",
            "1s",
        ],
    );
    let text = std::fs::read_to_string(provisioned).expect("config");
    let doc = serde_saphyr::from_str(&text).expect("provisioned YAML");
    (lab, doc)
}

/// The configuration with only the named replications (YAML is a superset of JSON).
fn write_config(path: &Path, doc: &serde_json::Value, names: &[&str]) {
    let mut doc = doc.clone();
    let reps = doc["replications"].as_array_mut().expect("replications");
    reps.retain(|r| names.iter().any(|n| r["name"] == *n));
    assert_eq!(reps.len(), names.len(), "{names:?} provisioned");
    std::fs::write(path, serde_json::to_string_pretty(&doc).expect("JSON")).expect("write");
}

fn set_interval(doc: &mut serde_json::Value, name: &str, interval: &str) {
    let reps = doc["replications"].as_array_mut().expect("replications");
    let rep = reps.iter_mut().find(|r| r["name"] == name).expect("named");
    rep["interval"] = interval.into();
}

fn series_of(m: &Metrics, replication: &str) -> bool {
    m.text.contains(&format!("replication=\"{replication}\""))
}

/// Log events naming `replication` whose message says it was (re)started or stopped.
fn lifecycle_events(d: &Daemon, replication: &str) -> Vec<String> {
    d.log_json()
        .into_iter()
        .filter(|l| l["replication"] == replication)
        .filter_map(|l| l["message"].as_str().map(str::to_owned))
        .filter(|m| m.starts_with("replication "))
        .collect()
}

fn post_reload(d: &Daemon) -> (u16, String) {
    http_post(d.port, "/-/reload", "").expect("/-/reload answers")
}

#[test]
fn sighup_with_an_invalid_file_keeps_probing_and_reports_the_failed_reload() {
    let started = Instant::now();
    let (lab, doc) = lab_with_copies(1);
    let config = lab.dir.path().join("replicanary.yaml");
    write_config(&config, &doc, &[A]);
    // No polling: the SIGHUP alone must find the broken file.
    let daemon = Daemon::start_with(
        &config,
        &["--web.enable-lifecycle"],
        &[("REPLICANARY_CONFIG_POLL_INTERVAL", "0s")],
    );
    let dest = dst(A);
    let before = daemon.wait_for_verdicts(&[(A, &dest)], 1.0, Duration::from_secs(20));
    assert_eq!(
        before.get("replicanary_config_last_reload_successful", &[]),
        Some(1.0)
    );
    let loaded_at = before
        .get(
            "replicanary_config_last_reload_success_timestamp_seconds",
            &[],
        )
        .expect("load time");

    let mut broken = doc.clone();
    set_interval(&mut broken, A, "5 parsecs");
    broken["replications"][0]["destinations"][0]["expected_kms_key_arn"] =
        "arn:aws:kms:ap-northeast-1:222222222222:alias/replica".into();
    write_config(&config, &broken, &[A]);
    daemon.signal("HUP");
    wait_until(Duration::from_secs(10), "the failed reload's gauge", || {
        daemon
            .metrics()
            .get("replicanary_config_last_reload_successful", &[])
            == Some(0.0)
    });
    // One log event per error, each with its field path.
    let log = daemon.log_json();
    for path in [
        "replications[0].interval",
        "replications[0].destinations[0].expected_kms_key_arn",
    ] {
        let event = log
            .iter()
            .find(|l| l["path"] == path)
            .unwrap_or_else(|| panic!("no log event for {path}:\n{}", daemon.log_text()));
        assert_eq!(event["level"], "ERROR", "{event}");
        assert!(event["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Still probing, on the old configuration.
    let failed_at = daemon.metrics().verdicts(A, &dest);
    daemon.wait_for_verdicts(&[(A, &dest)], failed_at + 2.0, Duration::from_secs(15));
    let (status, body) = post_reload(&daemon);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("replications[0].interval: "), "{body}");
    assert!(body.contains(&*config.to_string_lossy()), "{body}");

    // Fixed: the reload succeeds, nothing restarts.
    write_config(&config, &doc, &[A]);
    let (status, body) = post_reload(&daemon);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "configuration reloaded: 0 started, 0 restarted, 0 stopped, 1 unchanged\n"
    );
    let m = daemon.metrics();
    assert_eq!(
        m.get("replicanary_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert!(
        m.get(
            "replicanary_config_last_reload_success_timestamp_seconds",
            &[]
        )
        .is_some_and(|t| t >= loaded_at)
    );
    assert!(lifecycle_events(&daemon, A).is_empty());
    let status = daemon.signal_and_wait("TERM", Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    eprintln!("sighup test: {:.1}s", started.elapsed().as_secs_f64());
}

#[test]
fn reload_over_http_changes_one_interval_and_leaves_the_other_untouched() {
    let started = Instant::now();
    let (lab, doc) = lab_with_copies(2);
    let config = lab.dir.path().join("replicanary.yaml");
    write_config(&config, &doc, &[A, B]);
    let daemon = Daemon::start_with(
        &config,
        &["--web.enable-lifecycle"],
        &[("REPLICANARY_CONFIG_POLL_INTERVAL", "0s")],
    );
    let (da, db) = (dst(A), dst(B));
    let before = daemon.wait_for_verdicts(&[(A, &da), (B, &db)], 2.0, Duration::from_secs(20));
    let b_before = before.verdicts(B, &db);

    let mut changed = doc.clone();
    set_interval(&mut changed, B, "3s");
    write_config(&config, &changed, &[A, B]);
    let reload_at = Instant::now();
    let a_at_reload = daemon.metrics().verdicts(A, &da);
    let (status, body) = post_reload(&daemon);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "configuration reloaded: 0 started, 1 restarted, 0 stopped, 1 unchanged\n"
    );

    // A keeps counting through the reload: never reset, never a gap of two intervals.
    let mut last = (a_at_reload, reload_at);
    let mut longest_gap = Duration::ZERO;
    let (mut a_now, mut b_now) = (a_at_reload, b_before);
    while reload_at.elapsed() < Duration::from_secs(7) {
        let m = daemon.metrics();
        a_now = m.verdicts(A, &da);
        b_now = m.verdicts(B, &db);
        assert!(
            a_now >= last.0,
            "A's counter went back: {a_now} < {}",
            last.0
        );
        assert!(
            b_now >= b_before,
            "B's counter was reset: {b_now} < {b_before}"
        );
        if a_now > last.0 {
            longest_gap = longest_gap.max(last.1.elapsed());
            last = (a_now, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    longest_gap = longest_gap.max(last.1.elapsed());
    assert!(
        a_now - a_at_reload >= 4.0,
        "A probed {} times in 7 s",
        a_now - a_at_reload
    );
    assert!(
        longest_gap < Duration::from_millis(2500),
        "A paused {longest_gap:?}"
    );
    // B runs on its new interval: fewer probes than A.
    assert!(b_now - b_before <= 4.0 && b_now - b_before < a_now - a_at_reload);
    let m = daemon.metrics();
    let interval = |r: &str| m.get("replicanary_probe_interval_seconds", &[("replication", r)]);
    assert_eq!(interval(A), Some(1.0));
    assert_eq!(interval(B), Some(3.0));
    assert!(lifecycle_events(&daemon, A).is_empty(), "A was touched");
    assert_eq!(
        lifecycle_events(&daemon, B),
        ["replication restarted: its settings changed"]
    );
    let status = daemon.signal_and_wait("TERM", Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    eprintln!("interval test: {:.1}s", started.elapsed().as_secs_f64());
}

#[test]
fn editing_the_file_removes_a_replication_cleans_up_its_canaries_and_drops_its_series() {
    let started = Instant::now();
    let (lab, doc) = lab_with_copies(2);
    let config = lab.dir.path().join("replicanary.yaml");
    write_config(&config, &doc, &[A, B]);
    let daemon = Daemon::start(&config, &[("REPLICANARY_CONFIG_POLL_INTERVAL", "500ms")]);
    let (da, db) = (dst(A), dst(B));
    daemon.wait_for_verdicts(&[(A, &da), (B, &db)], 2.0, Duration::from_secs(20));

    write_config(&config, &doc, &[A]);
    let gone = poll_until(Duration::from_secs(15), || !series_of(&daemon.metrics(), B));
    assert!(gone, "B's series are still there:\n{}", daemon.log_text());
    // Its canaries and replicas were deleted before its series went.
    let prefix = format!("replicanary/{B}/");
    let source = RootS3::new(&lab, "111111111111");
    let destination = RootS3::new(&lab, "222222222222");
    let left = source.versions(&src(B), &prefix);
    assert!(left.is_empty(), "source canaries left: {left:?}");
    let left = destination.versions(&db, &prefix);
    assert!(left.is_empty(), "replicas left: {left:?}");
    assert!(
        daemon
            .log_json()
            .iter()
            .any(|l| l["message"] == "configuration reloaded" && l["cause"] == "file_changed"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(
        lifecycle_events(&daemon, B),
        [
            "replication stopped: no longer configured; its canaries are deleted and its series removed"
        ]
    );
    // A goes on, untouched.
    let a = daemon.metrics().verdicts(A, &da);
    daemon.wait_for_verdicts(&[(A, &da)], a + 2.0, Duration::from_secs(15));
    assert!(lifecycle_events(&daemon, A).is_empty());
    let status = daemon.signal_and_wait("TERM", Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    eprintln!("removal test: {:.1}s", started.elapsed().as_secs_f64());
}

/// A Kubernetes ConfigMap volume: `replicanary.yaml → ..data/replicanary.yaml`,
/// `..data → ..<timestamp>`; an update writes a new timestamped directory and renames a
/// new `..data` symlink over the old one.
fn configmap_version(dir: &Path, stamp: &str, doc: &serde_json::Value, names: &[&str]) {
    let version = dir.join(stamp);
    std::fs::create_dir_all(&version).expect("mkdir");
    write_config(&version.join("replicanary.yaml"), doc, names);
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(stamp, &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("atomic swap");
}

#[test]
fn a_configmap_symlink_swap_is_picked_up() {
    let started = Instant::now();
    let (lab, doc) = lab_with_copies(2);
    let dir: PathBuf = lab.dir.path().join("configmap");
    std::fs::create_dir_all(&dir).expect("mkdir");
    configmap_version(&dir, "..2026_01_01_00_00_00.1", &doc, &[A]);
    std::os::unix::fs::symlink("..data/replicanary.yaml", dir.join("replicanary.yaml"))
        .expect("symlink");
    let config = dir.join("replicanary.yaml");
    let daemon = Daemon::start(&config, &[("REPLICANARY_CONFIG_POLL_INTERVAL", "500ms")]);
    let (da, db) = (dst(A), dst(B));
    daemon.wait_for_verdicts(&[(A, &da)], 1.0, Duration::from_secs(20));
    assert!(!series_of(&daemon.metrics(), B));

    configmap_version(&dir, "..2026_01_01_00_01_00.2", &doc, &[A, B]);
    std::fs::remove_dir_all(dir.join("..2026_01_01_00_00_00.1")).expect("old version gone");
    daemon.wait_for_verdicts(&[(B, &db)], 1.0, Duration::from_secs(20));
    assert_eq!(lifecycle_events(&daemon, B), ["replication started"]);
    assert!(lifecycle_events(&daemon, A).is_empty(), "A was touched");
    let status = daemon.signal_and_wait("TERM", Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    eprintln!("configmap test: {:.1}s", started.elapsed().as_secs_f64());
}

#[test]
fn two_shards_probe_every_replication_exactly_once() {
    let started = Instant::now();
    let (lab, doc) = lab_with_copies(6);
    let config = lab.dir.path().join("replicanary.yaml");
    let all: Vec<String> = (1..=6).map(|i| format!("healthy-{i:04}")).collect();
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    write_config(&config, &doc, &names);
    // Shard 0 by flags, shard 1 by environment (as a StatefulSet would pass it).
    let zero = Daemon::start_with(&config, &["--shard-index", "0", "--shard-count", "2"], &[]);
    let one = Daemon::start_with(
        &config,
        &[],
        &[
            ("REPLICANARY_SHARD_INDEX", "1"),
            ("REPLICANARY_SHARD_COUNT", "2"),
        ],
    );
    let mut union = Vec::new();
    for (index, d) in [("0", &zero), ("1", &one)] {
        let m = d.metrics();
        assert_eq!(
            m.get(
                "replicanary_shard_info",
                &[("index", index), ("count", "2")]
            ),
            Some(1.0),
            "{}",
            m.text
        );
        let mine = m.label_values("replicanary_probes_total", "replication");
        assert!(!mine.is_empty(), "shard {index} probes nothing");
        let dests: Vec<(String, String)> = mine.iter().map(|r| (r.clone(), dst(r))).collect();
        let pairs: Vec<(&str, &str)> = dests
            .iter()
            .map(|(r, d)| (r.as_str(), d.as_str()))
            .collect();
        d.wait_for_verdicts(&pairs, 1.0, Duration::from_secs(20));
        union.extend(mine);
    }
    let distinct: BTreeSet<&String> = union.iter().collect();
    assert_eq!(
        union.len(),
        distinct.len(),
        "a replication on both shards: {union:?}"
    );
    let expected: BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct, expected, "every replication on a shard");
    for d in [zero, one] {
        let status = d.signal_and_wait("TERM", Duration::from_secs(30));
        assert!(status.success(), "{status:?}");
    }
    eprintln!("shard test: {:.1}s", started.elapsed().as_secs_f64());
}
