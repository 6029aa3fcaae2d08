//! The command line's usage errors, without AWS: each exits 2 with exactly one line on
//! stderr that says what to fix, before any call to AWS.

use std::path::PathBuf;
use std::process::{Command, Output};

const VALID: &str = "\
replications:
  - name: audit-logs
    source: {bucket: test-dev-s3, region: ap-northeast-1}
    destinations:
      - bucket: audit-dev-s3
        region: ap-northeast-1
        expected_kms_key_arn: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab
";

/// A directory of this test's own, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "replicanary-cli-usage-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).expect("a temporary directory");
        Dir(p)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn replicanary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replicanary"))
        .args(args)
        // Nowhere to go: a usage error must never need AWS.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("REPLICANARY_SHARD_INDEX")
        .env_remove("REPLICANARY_SHARD_COUNT")
        .output()
        .expect("the binary runs")
}

/// Exit 2, nothing on stdout, and exactly `line` on stderr.
fn assert_usage(out: &Output, line: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err, format!("{line}\n"));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn shards_that_cannot_be_are_usage_errors() {
    let dir = Dir::new("shards");
    let f = dir.write("good.yaml", VALID);
    let out = replicanary(&[
        "run",
        "--config",
        &f,
        "--shard-index",
        "2",
        "--shard-count",
        "2",
    ]);
    assert_usage(
        &out,
        "replicanary: --shard-index must be below --shard-count: shards are numbered 0 to 1 for \
         --shard-count 2, got --shard-index 2",
    );
    let out = replicanary(&[
        "run",
        "--config",
        &f,
        "--shard-index",
        "0",
        "--shard-count",
        "0",
    ]);
    assert_usage(&out, "replicanary: --shard-count must be at least 1");
}

#[test]
fn discover_without_a_discovery_section_is_a_usage_error() {
    let dir = Dir::new("discover");
    let f = dir.write("good.yaml", VALID);
    let out = replicanary(&["discover", "--config", &f]);
    assert_usage(
        &out,
        &format!("{f}: no `discovery:` section: nothing to discover"),
    );
}

#[test]
fn scan_names_what_it_cannot_use() {
    let dir = Dir::new("scan");
    let f = dir.write("good.yaml", VALID);
    let out = replicanary(&["scan", "--config", &f, "--replication", "nope"]);
    assert_usage(&out, &format!("{f}: no replication named `nope`"));
    let file = dir.write("not-a-dir", "");
    let out = replicanary(&["scan", "--config", &f, "--manifest", &file]);
    assert_usage(&out, &format!("--manifest {file}: not a directory"));
}

#[test]
fn a_bad_web_configuration_is_a_usage_error_for_validate_and_run() {
    let dir = Dir::new("web");
    let f = dir.write("good.yaml", VALID);
    let web = dir.write("web.yaml", "tls_server_config: {cert_file: cert.pem}\n");
    let line =
        format!("{web}: tls_server_config.key_file: required when tls_server_config is given");
    let out = replicanary(&["validate", "--config", &f, "--web.config.file", &web]);
    assert_usage(&out, &line);
    let out = replicanary(&["run", "--config", &f, "--web.config.file", &web]);
    assert_usage(&out, &line);
}
