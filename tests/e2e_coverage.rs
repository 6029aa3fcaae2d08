//! Coverage, the real binary against the lab's estate (`tests/lab/estate.py`, whose
//! expected JSON lists the rules nobody monitors under `unmonitored`), plus one more rule of
//! the seed's kind in a bucket nobody opted in — its `ReplicaKmsKeyID` names the source
//! account's key — and a disabled rule (never counted):
//! - `discover` lists exactly the expected unmonitored rules (bucket, rule id, destination
//!   bucket and account, `ReplicaKmsKeyID`, reason) in JSON and in YAML, and counts them;
//! - `run` exports `replicanary_unmonitored_replication_rules` per source account and
//!   region with the same count, lists the rules on the status page (escaped, linked from
//!   the header), never writes into a bucket nobody opted in, and — once a bucket is opted
//!   in — stops counting its rules within a discovery interval;
//! - a coverage read S3 refuses (a bucket policy denying the source probe role
//!   `s3:GetReplicationConfiguration` on one bucket nobody opted in) is a counted discovery
//!   error, and every opted-in replication is discovered and probed as before.
//!
//! With `chromium` on PATH the page is also rendered headless at laptop and phone widths
//! (`target/e2e-artifacts/coverage-*.png`, to look at) and its DOM checked for the section.
//!
//! Two labs, one per test; about 45 s together on two shared cores.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Daemon, Lab, RootS3, http_get, poll_until};

const SOURCE: &str = "111111111111";
const SECOND_SOURCE: &str = "555555555555";
const REGION: &str = "ap-northeast-1";
const GAUGE: &str = "replicanary_unmonitored_replication_rules";

fn run(args: &[&str], config: &Path) -> Output {
    support::binary()
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("replicanary runs")
}

/// The estate with suffix `-c1`, the seed's rule added to `re-other-value-src-c1` (not opted
/// in), a disabled rule added to `re-untagged-src-c1`: the configuration and expected JSON.
fn provision(lab: &Lab) -> (PathBuf, Value) {
    provision_with(
        lab,
        "-c1",
        &format!(
            "wrong = estate.default_kms_key(e.buckets['healthy'], '{SOURCE}')\n\
         estate.add_rule(e.buckets['other-value'], 'wrong-key', 're-healthy-dst-c1',\n\
                         destination_account='222222222222', replica_kms_key_arn=wrong)\n\
         e.add_unmonitored(account='{SOURCE}', bucket=e.buckets['other-value'], rule_id='wrong-key',\n\
                           destination_bucket='re-healthy-dst-c1', destination_account='222222222222',\n\
                           replica_kms_key_id=wrong, reason='untagged')\n\
         estate.add_rule(e.buckets['untagged'], 'switched-off', 're-untagged-dst-c1',\n\
                         destination_account='222222222222', status='Disabled')\n"
        ),
    )
}

/// The estate with `suffix`, then `extra` (Python, `e` is the estate): the configuration
/// and expected JSON.
fn provision_with(lab: &Lab, suffix: &str, extra: &str) -> (PathBuf, Value) {
    let config = lab.dir.path().join(format!("coverage{suffix}.yaml"));
    let expected = lab.dir.path().join(format!("coverage{suffix}.json"));
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

/// Each rule as one comparable line.
fn rules(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a list of rules")
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or("null").to_owned();
            [
                "source_account",
                "region",
                "bucket",
                "rule_id",
                "destination_bucket",
                "destination_account",
                "replica_kms_key_id",
                "reason",
            ]
            .map(field)
            .join(" | ")
        })
        .collect()
}

#[test]
fn the_rules_nobody_monitors_are_listed_counted_and_shown() {
    let lab = Lab::start(&["--replication-delay", "0.3"]);
    let (config, expected) = provision(&lab);
    let want = rules(&expected["unmonitored"]);
    assert_eq!(
        want.len(),
        6,
        "the estate's: untagged, other-value (+ wrong-key), shadowed, two unsatisfiable: {want:#?}"
    );
    let wrong_key = expected["unmonitored"]
        .as_array()
        .and_then(|l| l.iter().find(|r| r["rule_id"] == "wrong-key"))
        .and_then(|r| r["replica_kms_key_id"].as_str())
        .expect("the seed's rule")
        .to_owned();
    assert!(
        wrong_key.contains(&format!(":{SOURCE}:key/")),
        "{wrong_key}"
    );

    // `discover`: the same rules, field by field, and their count.
    let out = run(&["discover", "--format", "json"], &config);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "777's destination role cannot be assumed (an error), nothing else: {stderr}"
    );
    assert_eq!(rules(&doc["unmonitored"]), want);
    assert_eq!(doc["summary"]["unmonitored_rules"], 6);
    assert!(
        stderr.contains("; 6 enabled replication rules no replication probes"),
        "{stderr}"
    );
    let coverage_errors: Vec<&Value> = doc["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .filter(|s| s["detail"].as_str().unwrap_or("").contains("coverage"))
        .collect();
    assert!(coverage_errors.is_empty(), "{coverage_errors:?}");

    let out = run(&["discover"], &config);
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(
        yaml.contains("# unmonitored replication rules (6): enabled rules no replication probes\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains(&format!(
            "#   re-other-value-src-c1/wrong-key in {SOURCE} {REGION}: untagged → re-healthy-dst-c1 (account 222222222222), ReplicaKmsKeyID {wrong_key}\n"
        )),
        "{yaml}"
    );
    assert!(
        !yaml.contains("switched-off"),
        "a disabled rule is not listed"
    );

    // `run`: the gauge per account and region, the status page, no canary where nobody
    // opted in.
    let daemon = Daemon::start(&config, &[]);
    let count = |account: &str| {
        daemon
            .metrics()
            .get(GAUGE, &[("source_account", account), ("region", REGION)])
    };
    assert!(
        poll_until(Duration::from_secs(30), || count(SOURCE) == Some(6.0)),
        "{GAUGE}: {:?}\n{}",
        count(SOURCE),
        daemon.log_text()
    );
    assert_eq!(count(SECOND_SOURCE), Some(0.0));

    let (status, page) = http_get(daemon.port, "/").expect("the status page answers");
    assert_eq!(status, 200);
    let section = &page[page
        .find("<section id=\"unmonitored\"")
        .expect("the section")..];
    assert!(
        section.contains("Replication rules nobody monitors (6)"),
        "{section}"
    );
    assert!(page.contains("<dt>Unmonitored rules</dt><dd><a href=\"#unmonitored\">6</a>"));
    for r in expected["unmonitored"].as_array().expect("list") {
        let (bucket, rule) = (
            r["bucket"].as_str().unwrap_or_default(),
            r["rule_id"].as_str().unwrap_or_default(),
        );
        assert!(
            section.contains(&format!("data-bucket=\"{bucket}\" data-rule=\"{rule}\"")),
            "{bucket}/{rule} not on the page:\n{section}"
        );
    }
    assert!(section.contains(&format!("<code>{wrong_key}</code>")));
    assert!(!section.contains("switched-off"));
    // The estate's rule with spaces and non-ASCII characters is probed, not listed; every
    // listed value went through the escaping writer (no raw markup from S3).
    assert!(!section.contains("<script"));

    // Opting a bucket in takes its rules off the list within a discovery interval.
    lab.python("import estate; estate.tag_bucket('re-other-value-src-c1')");
    assert!(
        poll_until(Duration::from_secs(20), || count(SOURCE) == Some(4.0)),
        "{GAUGE} after opting re-other-value-src-c1 in: {:?}",
        count(SOURCE)
    );
    let (_, page) = http_get(daemon.port, "/").expect("the status page answers");
    let section = &page[page
        .find("<section id=\"unmonitored\"")
        .expect("the section")..];
    assert!(
        section.contains("Replication rules nobody monitors (4)")
            && !section.contains("data-bucket=\"re-other-value-src-c1\""),
        "{section}"
    );

    // Opted in, the seed's rule is probed, and what coverage warned of shows: its replicas
    // are under the source account's key, which the destination cannot use.
    let seed = ("re-other-value-src-c1/wrong-key", "re-healthy-dst-c1");
    let m = daemon.wait_for_verdicts(&[seed], 1.0, Duration::from_secs(30));
    let outcomes = m.outcomes(seed.0, seed.1);
    assert!(
        outcomes
            .keys()
            .all(|o| o == "undecryptable" || o == "error")
            && outcomes.contains_key("undecryptable"),
        "{outcomes:?}"
    );

    screenshots(daemon.port, lab.dir.path());

    let root = RootS3::new(&lab, SOURCE);
    assert!(
        root.versions("re-untagged-src-c1", "").is_empty(),
        "coverage reads, never writes: no canary in a bucket nobody opted in"
    );
}

/// The page in headless `chromium`, if installed: its DOM holds the section (4 rules after
/// the opt-in), and screenshots land in `target/e2e-artifacts/`: the whole page at laptop
/// width, and the section alone (the page with the verdict table cut out) at phone width.
fn screenshots(port: u16, dir: &Path) {
    let profile = &dir.join("chromium");
    let Some(browser) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromium"))
            .find(|p| p.is_file())
    }) else {
        eprintln!("no `chromium` on PATH: the page is checked as HTML only");
        return;
    };
    let url = format!("http://127.0.0.1:{port}/");
    let dom = chromium(&browser, profile, &["--dump-dom"], &url);
    assert!(
        dom.contains("Replication rules nobody monitors (4)"),
        "{dom}"
    );
    assert!(!dom.to_ascii_lowercase().contains("<script"));
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let (_, page) = http_get(port, "/").expect("the status page answers");
    let (start, end) = (
        page.find("<table>").expect("the verdict table"),
        page.find("</table>").expect("its end") + "</table>".len(),
    );
    let section_only = dir.join("coverage-section.html");
    std::fs::write(&section_only, format!("{}{}", &page[..start], &page[end..]))
        .expect("write the page");
    let section_url = format!("file://{}", section_only.display());
    let out = tmp.parent().unwrap_or(tmp).join("e2e-artifacts");
    std::fs::create_dir_all(&out).expect("artefact directory");
    for (name, size, url) in [
        ("coverage-laptop.png", "1280,3400", &url),
        ("coverage-phone.png", "390,2400", &section_url),
    ] {
        let png = out.join(name);
        let _ = std::fs::remove_file(&png);
        chromium(
            &browser,
            profile,
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={size}"),
            ],
            url,
        );
        let bytes = std::fs::read(&png).unwrap_or_default();
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "{} is not a PNG",
            png.display()
        );
        eprintln!("status page screenshot: {}", png.display());
    }
}

/// Runs headless `chromium` once (bounded to 60 s) and returns its stdout.
fn chromium(binary: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            assert!(status.success(), "chromium {args:?} failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap_or_default()
}

#[test]
fn a_refused_coverage_read_is_a_counted_error_that_spares_the_opted_in() {
    let lab = Lab::start(&["--replication-delay", "0.3"]);
    // The source probe role may not read one unopted bucket's rules (a bucket policy).
    let (config, expected) = provision_with(
        &lab,
        "-c2",
        &format!(
            "b = e.buckets['untagged']\n\
             import provision\n\
             provision.Account(os.environ['ENDPOINT'], '{SOURCE}').s3.put_bucket_policy(Bucket=b, Policy=json.dumps(\n\
                 {{'Version': '2012-10-17', 'Statement': [{{'Sid': 'NoReplicationRead', 'Effect': 'Deny',\n\
                   'Principal': {{'AWS': 'arn:aws:iam::{SOURCE}:role/replicanary-source-probe'}},\n\
                   'Action': 's3:GetReplicationConfiguration', 'Resource': 'arn:aws:s3:::' + b}}]}}))\n"
        ),
    );
    let out = run(&["discover", "--format", "json"], &config);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(out.status.code(), Some(1));
    let refused: Vec<&Value> = doc["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .filter(|s| s["bucket"] == "re-untagged-src-c2")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["reason"], "access_denied");
    assert_eq!(refused[0]["error"], true);
    let detail = refused[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("not opted in")
            && detail.contains("coverage")
            && detail.contains("AccessDenied"),
        "{detail}"
    );
    // Every opted-in replication is found as without the policy; the refused bucket's rule
    // is not listed (unknown), the others are.
    let found: BTreeSet<&str> = doc["discovered"]
        .as_array()
        .expect("discovered")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    let want: BTreeSet<&str> = expected["replications"]
        .as_object()
        .expect("map")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(found, want);
    let mut listed = rules(&expected["unmonitored"]);
    listed.retain(|r| !r.contains("re-untagged-src-c2"));
    assert_eq!(listed.len(), 4);
    assert_eq!(rules(&doc["unmonitored"]), listed);

    // `run`: counted under its bounded reason; the opted-in replications are probed.
    let daemon = Daemon::start(&config, &[]);
    let errors = |m: &support::Metrics| {
        m.get(
            "replicanary_discovery_errors_total",
            &[
                ("source_account", SOURCE),
                ("region", REGION),
                ("reason", "access_denied"),
            ],
        )
    };
    assert!(
        poll_until(Duration::from_secs(30), || {
            let m = daemon.metrics();
            errors(&m).is_some_and(|n| n >= 1.0)
                && m.get(GAUGE, &[("source_account", SOURCE), ("region", REGION)]) == Some(4.0)
        }),
        "{}",
        daemon.metrics().text
    );
    daemon.wait_for_verdicts(
        &[("re-healthy-src-c2/healthy", "re-healthy-dst-c2")],
        1.0,
        Duration::from_secs(30),
    );
    let m = daemon.metrics();
    assert_eq!(
        m.get(
            "replicanary_discovered_replications",
            &[("source_account", SOURCE), ("region", REGION)]
        ),
        Some(
            want.iter()
                .filter(|n| !n.contains("second-account"))
                .count() as f64
        ),
        "every opted-in replication of {SOURCE} discovered"
    );
}
