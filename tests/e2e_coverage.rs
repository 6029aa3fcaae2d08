//! Coverage, the real binary against the lab's estate (`tests/lab/estate.py`, whose
//! expected JSON lists the rules nobody monitors under `unmonitored`), plus one more rule of
//! the seed's kind in a bucket nobody opted in — its `ReplicaKmsKeyID` names the source
//! account's key — and a disabled rule (never counted):
//! - `discover` lists exactly the expected unmonitored rules (bucket, rule id, destination
//!   bucket and account, `ReplicaKmsKeyID`, reason) in JSON and in YAML, and counts them;
//! - `run` exports `replicanary_unmonitored_replication_rules` per source account and
//!   region with the same count, lists the rules on the status page (escaped, linked from
//!   the header), never writes into a bucket nobody opted in, and — once a bucket is opted
//!   in — stops counting its rules within a discovery interval.
//!
//! One lab; about 30 s on two shared cores.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

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
    let config = lab.dir.path().join("coverage.yaml");
    let expected = lab.dir.path().join("coverage.json");
    lab.python(&format!(
        "import estate, json, os\n\
         e = estate.provision_estate(os.environ['ENDPOINT'], suffix='-c1')\n\
         wrong = estate.default_kms_key(e.buckets['healthy'], '{SOURCE}')\n\
         estate.add_rule(e.buckets['other-value'], 'wrong-key', 're-healthy-dst-c1',\n\
                         destination_account='222222222222', replica_kms_key_arn=wrong)\n\
         e.add_unmonitored(account='{SOURCE}', bucket=e.buckets['other-value'], rule_id='wrong-key',\n\
                           destination_bucket='re-healthy-dst-c1', destination_account='222222222222',\n\
                           replica_kms_key_id=wrong, reason='untagged')\n\
         estate.add_rule(e.buckets['untagged'], 'switched-off', 're-untagged-dst-c1',\n\
                         destination_account='222222222222', status='Disabled')\n\
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

    let root = RootS3::new(&lab, SOURCE);
    assert!(
        root.versions("re-untagged-src-c1", "").is_empty(),
        "coverage reads, never writes: no canary in a bucket nobody opted in"
    );
}
