//! Discovery, the real binary against the lab's estate (`tests/lab/estate.py`):
//! - `discover` finds what the estate's expected JSON says — the same replications,
//!   destinations, accounts, expected keys, canary placement and skip reasons — and `check`
//!   gives the estate's expected verdicts and findings;
//! - a discovery-only configuration over provision.py's scenarios, opted in, gives every
//!   scenario the explicit configuration's verdict (where the estate documents a
//!   difference, the documented one) and never writes into a bucket nobody opted in;
//! - a running daemon probes a newly tagged bucket and a new rule within one discovery
//!   interval, and untagging stops the probes and removes the series; a reload asks for a
//!   pass at once;
//! - a few hundred buckets are read with their skips counted (1,000, measured for the
//!   record, is `#[ignore]`d: `cargo test --test e2e_discovery -- --ignored --nocapture`).
//!
//! Each test starts its own lab; together about a minute on two shared cores.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Daemon, Lab, Metrics, RootS3, http_post, poll_until};

fn run(args: &[&str], config: &Path) -> Output {
    support::binary()
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("replicanary runs")
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The estate on `lab` with `suffix`: its discovery-only configuration and expected JSON.
fn provision_estate(lab: &Lab, suffix: &str, extra: &str) -> (PathBuf, Value) {
    let config = lab.dir.path().join(format!("estate{suffix}.yaml"));
    let expected = lab.dir.path().join(format!("estate{suffix}.json"));
    lab.python(&format!(
        "import estate, json, os\n\
         e = estate.provision_estate(os.environ['ENDPOINT'], suffix={suffix:?})\n\
         {extra}\n\
         open({cfg:?}, 'w').write(estate.render_config(e, interval='1s', replication_timeout='6s', discovery_interval='3s'))\n\
         open({exp:?}, 'w').write(json.dumps(e.expected()))\n",
        cfg = config.to_string_lossy(),
        exp = expected.to_string_lossy(),
    ));
    let text = std::fs::read_to_string(&expected).expect("expected JSON");
    (
        config,
        serde_json::from_str(&text).expect("expected JSON parses"),
    )
}

fn discovered<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["discovered"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == name))
        .unwrap_or_else(|| panic!("{name} not discovered"))
}

#[test]
fn discover_finds_the_estate_its_expected_json_describes() {
    let started = Instant::now();
    let lab = Lab::start(&[]);
    let (config, expected) = provision_estate(&lab, "-e1", "");
    // A source account whose role cannot be assumed is one more reported skip.
    let text = std::fs::read_to_string(&config).expect("config");
    let with_444 = text.replace(
        "  - '555555555555'\n",
        "  - '555555555555'\n  - '444444444444'\n",
    );
    assert_ne!(text, with_444, "the source accounts are listed as expected");
    std::fs::write(&config, with_444).expect("write");

    let out = run(&["discover", "--format", "json"], &config);
    let doc = stdout_json(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "777's and 444's roles cannot be assumed: {stderr}"
    );
    assert!(
        stderr.contains("listed ") && stderr.contains(" buckets in 111111111111/ap-northeast-1"),
        "{stderr}"
    );

    let ours = |bucket: &str| bucket.starts_with("re-") && bucket.contains("-src-e1");
    let want: BTreeSet<&str> = expected["replications"]
        .as_object()
        .expect("map")
        .keys()
        .map(String::as_str)
        .collect();
    let got: BTreeSet<&str> = doc["discovered"]
        .as_array()
        .expect("discovered")
        .iter()
        .filter(|d| ours(d["bucket"].as_str().unwrap_or_default()))
        .map(|d| d["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(got, want);
    for (name, exp) in expected["replications"].as_object().expect("map") {
        compare_replication(discovered(&doc, name), exp, name);
    }
    compare_skips(&doc, &expected, ours);
    let role_444: Vec<&Value> = doc["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .filter(|s| s["source_account"] == "444444444444")
        .collect();
    assert_eq!(role_444.len(), 1);
    assert_eq!(role_444[0]["reason"], "role_not_assumable");

    // The YAML form says the same, and its replications validate once the one without a
    // key has one.
    let out = run(&["discover"], &config);
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        yaml.contains("\nreplications:\n") && yaml.contains("# skipped ("),
        "{yaml}"
    );
    assert!(
        yaml.contains("re-priority-src-e1/shadowed in 111111111111 ap-northeast-1: shadowed"),
        "{yaml}"
    );

    // And `check` probes each as the estate expects, with the expected findings.
    let out = run(&["check", "--format", "json"], &config);
    let checked = stdout_json(&out);
    for (name, exp) in expected["replications"].as_object().expect("map") {
        let v = checked["verdicts"]
            .as_array()
            .and_then(|a| a.iter().find(|v| v["replication"] == *name))
            .unwrap_or_else(|| panic!("no verdict for {name}"));
        assert_eq!(v["outcome"], exp["expected_verdict"], "{name}: {v}");
        let findings: BTreeSet<&str> = v["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["id"].as_str())
            .collect();
        for f in exp["findings"].as_array().into_iter().flatten() {
            assert!(
                findings.contains(f.as_str().unwrap_or_default()),
                "{name}: {f} missing in {findings:?}"
            );
        }
    }
    eprintln!(
        "discover + check on the estate: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn compare_replication(got: &Value, exp: &Value, name: &str) {
    for (g, e) in [
        ("source_account", "source_account"),
        ("bucket", "source_bucket"),
        ("rule_id", "rule_id"),
        ("region", "region"),
        ("source_role_arn", "source_role_arn"),
        ("prefix", "prefix"),
        ("tags", "tags"),
        ("canary_key_prefix", "canary_key_prefix"),
    ] {
        assert_eq!(got[g], exp[e], "{name}: {g}");
    }
    if !exp["priority"].is_null() {
        assert_eq!(got["priority"], exp["priority"], "{name}: priority");
    }
    let dest = &exp["destinations"][0];
    for (g, e) in [
        ("bucket", "bucket"),
        ("account", "account"),
        ("account_from", "account_from"),
        ("role_arn", "role_arn"),
        ("expected_kms_key_arn", "expected_kms_key_arn"),
    ] {
        assert_eq!(got["destination"][g], dest[e], "{name}: destination {g}");
    }
}

fn compare_skips(doc: &Value, expected: &Value, ours: impl Fn(&str) -> bool) {
    let key = |s: &Value| {
        (
            s["source_account"].as_str().unwrap_or_default().to_owned(),
            s["bucket"].as_str().unwrap_or_default().to_owned(),
            s["rule_id"].as_str().map(str::to_owned),
            s["reason"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let want: BTreeSet<_> = expected["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(key)
        .collect();
    let got: BTreeSet<_> = doc["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .filter(|s| ours(s["bucket"].as_str().unwrap_or_default()))
        .map(key)
        .collect();
    assert_eq!(got, want);
}

/// The scenarios' explicit configuration, and the same world opted in for discovery (plus
/// 30 extra buckets in 111, most of them not opted in, some with a healthy rule).
fn scenarios_both_ways(lab: &Lab) -> (PathBuf, PathBuf, Value) {
    let dir = lab.dir.path();
    let (explicit, discovery, expected) = (
        dir.join("explicit.yaml"),
        dir.join("discovery.yaml"),
        dir.join("expected.json"),
    );
    lab.python(&format!(
        "import estate, provision, json, os\n\
         ep = os.environ['ENDPOINT']\n\
         world = provision.provision(ep, provision.SCENARIOS, '-ts')\n\
         open({x:?}, 'w').write(provision.render_config(world, replication_timeout='8s'))\n\
         e = estate.tag_scenarios(ep, world=world)\n\
         estate.add_extra_buckets(e, 30)\n\
         open({d:?}, 'w').write(estate.render_config(e, replication_timeout='8s'))\n\
         open({j:?}, 'w').write(json.dumps(e.expected()))\n",
        x = explicit.to_string_lossy(),
        d = discovery.to_string_lossy(),
        j = expected.to_string_lossy(),
    ));
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(expected).expect("json")).expect("parses");
    (explicit, discovery, expected)
}

/// Explicit verdicts by destination bucket (the explicit configuration names the buckets).
fn explicit_verdicts(config: &Path, checked: &Value) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(config).expect("config");
    let doc: Value = serde_saphyr::from_str(&text).expect("YAML");
    let mut out = BTreeMap::new();
    for rep in doc["replications"].as_array().expect("replications") {
        for d in rep["destinations"].as_array().expect("destinations") {
            let label = d["name"]
                .as_str()
                .or(d["bucket"].as_str())
                .unwrap_or_default();
            let v = checked["verdicts"]
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .find(|v| v["replication"] == rep["name"] && v["destination"] == label)
                })
                .unwrap_or_else(|| panic!("no explicit verdict for {}/{label}", rep["name"]));
            out.insert(
                d["bucket"].as_str().unwrap_or_default().to_owned(),
                v["outcome"].as_str().unwrap_or_default().to_owned(),
            );
        }
    }
    out
}

#[test]
fn discovery_only_gives_the_explicit_verdicts_and_never_touches_an_untagged_bucket() {
    let started = Instant::now();
    let lab = Lab::start(&[]);
    let (explicit, discovery, expected) = scenarios_both_ways(&lab);
    let by_explicit = explicit_verdicts(
        &explicit,
        &stdout_json(&run(&["check", "--format", "json"], &explicit)),
    );
    let out = run(&["check", "--format", "json"], &discovery);
    let checked = stdout_json(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "several scenarios are broken on purpose"
    );
    let differs = ["slow", "partial-fan-out", "vanished-no-list"];
    for (name, exp) in expected["replications"].as_object().expect("map") {
        let bucket = exp["destinations"][0]["bucket"]
            .as_str()
            .unwrap_or_default();
        let v = checked["verdicts"]
            .as_array()
            .and_then(|a| a.iter().find(|v| v["replication"] == *name))
            .unwrap_or_else(|| panic!("{name} was not probed"));
        assert_eq!(
            v["destination"], bucket,
            "{name}: the destination label is the bucket"
        );
        assert_eq!(v["outcome"], exp["expected_verdict"], "{name}: {v}");
        // The extra buckets' replications (rx-…) have no explicit counterpart.
        let scenario = name
            .strip_prefix("rc-")
            .and_then(|n| n.split("-src").next());
        if scenario.is_some_and(|s| !differs.contains(&s)) {
            assert_eq!(
                v["outcome"].as_str(),
                by_explicit.get(bucket).map(String::as_str),
                "{name}: as the explicit configuration"
            );
        }
    }
    let probed: BTreeSet<&str> = checked["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .filter_map(|v| v["replication"].as_str())
        .collect();
    assert_eq!(
        probed.len(),
        expected["replications"].as_object().map_or(0, |m| m.len()),
        "{probed:?}"
    );
    // No canary in a bucket nobody opted in: every untagged bucket of 111 is still empty.
    let untouched = lab.python(
        "import provision, json, os\n\
         s3 = provision.Account(os.environ['ENDPOINT'], '111111111111').s3\n\
         out = {}\n\
         for b in s3.list_buckets()['Buckets']:\n\
         \x20   try:\n\
         \x20       tags = {t['Key']: t['Value'] for t in s3.get_bucket_tagging(Bucket=b['Name'])['TagSet']}\n\
         \x20   except Exception:\n\
         \x20       tags = {}\n\
         \x20   if tags.get('replicanary') != 'enabled':\n\
         \x20       out[b['Name']] = len(s3.list_object_versions(Bucket=b['Name']).get('Versions', []))\n\
         print(json.dumps(out))\n",
    );
    let untouched: BTreeMap<String, usize> = serde_json::from_str(untouched.trim()).expect("JSON");
    assert!(
        untouched.len() >= 25,
        "the untagged extra buckets: {untouched:?}"
    );
    assert!(
        untouched.keys().any(|b| b == "rx-00005-ts"),
        "one has a healthy rule: {untouched:?}"
    );
    assert!(
        untouched.values().all(|n| *n == 0),
        "a canary in an untagged bucket: {untouched:?}"
    );
    eprintln!(
        "explicit and discovered checks of every scenario: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn has_series(m: &Metrics, replication: &str) -> bool {
    m.label_values("replicanary_probes_total", "replication")
        .contains(replication)
}

#[test]
fn a_running_daemon_follows_tags_and_rules() {
    let lab = Lab::start(&["--replication-delay", "0.3"]);
    let (config, _) = provision_estate(&lab, "-e3", "");
    let interval = Duration::from_secs(3);
    let daemon = Daemon::start(&config, &[]);
    let healthy = "re-healthy-src-e3/healthy";
    daemon.wait_for_verdicts(
        &[(healthy, "re-healthy-dst-e3")],
        1.0,
        Duration::from_secs(30),
    );
    let untagged = "re-untagged-src-e3/untagged";
    assert!(
        !has_series(&daemon.metrics(), untagged),
        "not opted in, not probed"
    );

    // Opting the bucket in: probed within one discovery interval (plus one pass).
    lab.python("import estate; estate.tag_bucket('re-untagged-src-e3')");
    let tagged_at = Instant::now();
    assert!(
        poll_until(interval + Duration::from_secs(5), || has_series(
            &daemon.metrics(),
            untagged
        )),
        "{}",
        daemon.log_text()
    );
    let picked_up = tagged_at.elapsed();
    daemon.wait_for_verdicts(
        &[(untagged, "re-untagged-dst-e3")],
        1.0,
        Duration::from_secs(20),
    );

    // A new rule: a new replication, its canaries under its prefix.
    lab.python("import estate; estate.add_rule('re-healthy-src-e3', 'added', 're-healthy-dst-e3', prefix='added/')");
    let added = "re-healthy-src-e3/added";
    let added_at = Instant::now();
    assert!(
        poll_until(interval + Duration::from_secs(5), || has_series(
            &daemon.metrics(),
            added
        )),
        "{}",
        daemon.log_text()
    );
    let rule_picked_up = added_at.elapsed();
    let m = daemon.wait_for_verdicts(
        &[(added, "re-healthy-dst-e3")],
        1.0,
        Duration::from_secs(20),
    );
    assert_eq!(
        m.get(
            "replicanary_verdict",
            &[("replication", added), ("outcome", "ok")]
        ),
        Some(1.0),
        "{:?}",
        m.outcomes(added, "re-healthy-dst-e3")
    );

    // Opting out: the probes stop, the series go, the canaries are cleaned up.
    lab.python("import estate; estate.untag_bucket('re-untagged-src-e3')");
    assert!(
        poll_until(interval + Duration::from_secs(10), || !has_series(
            &daemon.metrics(),
            untagged
        )),
        "{}",
        daemon.log_text()
    );
    let root = RootS3::new(&lab, "111111111111");
    assert!(
        poll_until(Duration::from_secs(10), || root
            .versions("re-untagged-src-e3", "")
            .is_empty()),
        "canaries left: {:?}",
        root.versions("re-untagged-src-e3", "")
    );
    let m = daemon.metrics();
    assert!(
        has_series(&m, healthy) && has_series(&m, added),
        "the others keep running"
    );
    assert_eq!(
        m.get(
            "replicanary_discovered_replications",
            &[("source_account", "111111111111")]
        ),
        Some(14.0)
    );
    assert!(
        m.get(
            "replicanary_discovery_errors_total",
            &[("reason", "destination_role_unavailable")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    eprintln!(
        "tag picked up after {picked_up:.1?}, a new rule after {rule_picked_up:.1?} (discovery interval {interval:?})"
    );
    let status = daemon.signal_and_wait("TERM", Duration::from_secs(30));
    assert!(status.success());
}

#[test]
fn a_reload_asks_for_a_pass_at_once() {
    let lab = Lab::start(&["--replication-delay", "0.3"]);
    let (config, _) = provision_estate(&lab, "-e4", "");
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("interval: 3s\n  regions", "interval: 1h\n  regions");
    assert!(text.contains("interval: 1h"), "{text}");
    std::fs::write(&config, text).expect("write");
    let daemon = Daemon::start_with(&config, &["--web.enable-lifecycle"], &[]);
    daemon.wait_for_verdicts(
        &[("re-healthy-src-e4/healthy", "re-healthy-dst-e4")],
        1.0,
        Duration::from_secs(30),
    );
    lab.python("import estate; estate.tag_bucket('re-untagged-src-e4')");
    let (status, body) = http_post(daemon.port, "/-/reload", "").expect("reload answers");
    assert_eq!(status, 200, "{body}");
    assert!(
        poll_until(Duration::from_secs(8), || has_series(
            &daemon.metrics(),
            "re-untagged-src-e4/untagged"
        )),
        "a reload re-runs discovery: {}",
        daemon.log_text()
    );
}

#[test]
fn a_few_hundred_buckets_are_read_with_their_skips_counted() {
    let lab = Lab::start(&[]);
    let (config, expected) = provision_estate(&lab, "-e5", "estate.add_extra_buckets(e, 300)");
    let out = run(&["discover", "--format", "json"], &config);
    let doc = stdout_json(&out);
    let extra = |s: &&Value| s["bucket"].as_str().is_some_and(|b| b.starts_with("rx-"));
    let count = |reason: &str| {
        doc["skipped"]
            .as_array()
            .expect("skipped")
            .iter()
            .filter(extra)
            .filter(|s| s["reason"] == reason)
            .count()
    };
    let want = |reason: &str| {
        expected["skipped"]
            .as_array()
            .expect("skipped")
            .iter()
            .filter(extra)
            .filter(|s| s["reason"] == reason)
            .count()
    };
    assert_eq!(count("untagged"), want("untagged"));
    assert_eq!(
        count("no_replication_configuration"),
        want("no_replication_configuration")
    );
    assert_eq!(
        (count("untagged"), count("no_replication_configuration")),
        (270, 15)
    );
    let found = doc["discovered"]
        .as_array()
        .expect("discovered")
        .iter()
        .filter(|d| d["bucket"].as_str().is_some_and(|b| b.starts_with("rx-")))
        .count();
    assert_eq!(found, 15);
    assert!(
        doc["summary"]["buckets_listed"]
            .as_u64()
            .is_some_and(|n| n >= 300 + 18)
    );
}

/// The figure for the record: discovery of 1,000 more buckets in one account, its time
/// and its AWS calls (lab statistics). Not in CI: it provisions for ~5 s and reads for ~5 s.
#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn a_thousand_buckets_measured() {
    let lab = Lab::start(&[]);
    let (config, _) = provision_estate(&lab, "-e6", "estate.add_extra_buckets(e, 1000)");
    lab.admin("stats/reset", "{}");
    let started = Instant::now();
    let out = run(&["discover", "--format", "json"], &config);
    let took = started.elapsed();
    let doc = stdout_json(&out);
    let stats = lab.stats_json();
    let ops = &stats["by_service"];
    eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!(
        "1,000 extra buckets: discover took {took:.2?} (pass {}s), {} replications, {} skips; calls: s3 {} sts {}",
        doc["summary"]["seconds"],
        doc["summary"]["replications"],
        doc["summary"]["skipped"],
        ops["s3"],
        ops["sts"]
    );
    assert_eq!(
        ops["s3"]["ListBuckets"].as_u64(),
        Some(2 + 1),
        "1,018 buckets in 111: two pages; one in 555"
    );
    assert!(
        doc["summary"]["buckets_listed"]
            .as_u64()
            .is_some_and(|n| n >= 1018)
    );

    // The same pass without coverage (`discovery.coverage: false`): what coverage costs.
    let text = std::fs::read_to_string(&config).expect("config");
    let without = text.replacen("discovery:\n", "discovery:\n  coverage: false\n", 1);
    assert_ne!(text, without);
    std::fs::write(&config, without).expect("write");
    lab.admin("stats/reset", "{}");
    let started = Instant::now();
    let out = run(&["discover", "--format", "json"], &config);
    let took = started.elapsed();
    let doc = stdout_json(&out);
    let stats = lab.stats_json();
    eprintln!(
        "without coverage: discover took {took:.2?} (pass {}s); calls: s3 {}",
        doc["summary"]["seconds"], stats["by_service"]["s3"]
    );
    assert!(doc["unmonitored"].is_null());
}
