//! The command line without AWS: validation, exit codes and messages.

mod support;

use std::process::Command;

use support::tempdir::TempDir;

fn replicanary(args: &[&str]) -> std::process::Output {
    support::binary()
        .args(args)
        .output()
        .expect("the binary runs")
}

const VALID: &str = "\
replications:
  - name: audit-logs
    source: {bucket: test-dev-s3, region: ap-northeast-1}
    destinations:
      - bucket: audit-dev-s3
        region: ap-northeast-1
        expected_kms_key_arn: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab
";

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write config");
    p.to_string_lossy().into_owned()
}

/// A usage error: exit 2, nothing on stdout, and exactly `line` on stderr (one line that
/// says what to fix, before any call to AWS).
fn assert_usage(out: &std::process::Output, line: &str) {
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
fn validate_accepts_a_good_file() {
    let dir = TempDir::new("cli");
    let f = write(&dir, "good.yaml", VALID);
    let out = replicanary(&["validate", "--config", &f]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 replications, 1 destinations"));
}

#[test]
fn config_errors_exit_2_naming_file_and_field() {
    let dir = TempDir::new("cli");
    let bad = VALID.replace("key/1234abcd", "alias/1234abcd");
    let f = write(&dir, "bad.yaml", &bad);
    for cmd in ["validate", "check", "run"] {
        let out = replicanary(&[cmd, "--config", &f]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(err.contains(&f), "{cmd}: names the file: {err}");
        assert!(
            err.contains("replications[0].destinations[0].expected_kms_key_arn"),
            "{cmd}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_missing_file_exits_2() {
    let out = replicanary(&["validate", "--config", "/nonexistent/replicanary.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn the_config_may_come_from_the_environment() {
    let dir = TempDir::new("cli");
    let f = write(&dir, "good.yaml", VALID);
    let out = support::binary()
        .arg("validate")
        .env("REPLICANARY_CONFIG", &f)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn an_unknown_replication_name_is_a_usage_error() {
    let dir = TempDir::new("cli");
    let f = write(&dir, "good.yaml", VALID);
    let out = replicanary(&["check", "--config", &f, "--replication", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no replication named `nope`"));
}

#[test]
fn usage_errors_exit_2_and_version_prints() {
    assert_eq!(replicanary(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        replicanary(&["run"]).status.code(),
        Some(2),
        "--config is required"
    );
    let out = replicanary(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn run_reports_a_port_it_cannot_bind() {
    let dir = TempDir::new("cli");
    let f = write(&dir, "good.yaml", VALID);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_replicanary"))
        .args(["run", "--config", &f, "--listen", &addr])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("cannot listen on {addr}")));
}

const DISCOVERY_ONLY: &str = "\
discovery:
  regions: [ap-northeast-1]
  source_accounts: [\"111111111111\", \"555555555555\"]
  source_role_arn: arn:aws:iam::{account}:role/replicanary-source-probe
  destination_role_arn: arn:aws:iam::{account}:role/replicanary-destination-probe
  bucket_tag: {key: replicanary, value: enabled}
";

#[test]
fn validate_accepts_a_discovery_only_file() {
    let dir = TempDir::new("cli");
    let f = write(&dir, "discovery.yaml", DISCOVERY_ONLY);
    let out = replicanary(&["validate", "--config", &f]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("0 replications")
            && stdout.contains("discovery in 2 account(s) × 1 region(s) every 10m"),
        "{stdout}"
    );
    let broken = DISCOVERY_ONLY.replace(
        "{account}:role/replicanary-source",
        "111111111111:role/replicanary-source",
    );
    let f = write(&dir, "broken.yaml", &broken);
    let out = replicanary(&["validate", "--config", &f]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("discovery.source_role_arn"), "{err}");
}

/// `run` arguments, environment, and what the error must say.
type ShardCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn shard_arguments_are_checked_before_anything_starts() {
    let dir = TempDir::new("cli");
    let f = write(&dir, "good.yaml", VALID);
    let cases: &[ShardCase] = &[
        (&["--shard-index", "2", "--shard-count", "2"], &[], "0 to 1"),
        (
            &["--shard-index", "0", "--shard-count", "0"],
            &[],
            "at least 1",
        ),
        (&["--shard-index", "0"], &[], "--shard-count"),
        (&["--shard-count", "2"], &[], "--shard-index"),
        (&[], &[("REPLICANARY_SHARD_INDEX", "1")], "--shard-count"),
        (
            &[],
            &[
                ("REPLICANARY_SHARD_INDEX", "3"),
                ("REPLICANARY_SHARD_COUNT", "3"),
            ],
            "0 to 2",
        ),
        (&["--shard-index", "-1", "--shard-count", "2"], &[], "-1"),
    ];
    // The two most common mistakes, word for word.
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
    for (args, env, says) in cases {
        let mut cmd = support::binary();
        cmd.args(["run", "--config", &f, "--listen", "127.0.0.1:1"])
            .args(*args);
        for (k, v) in *env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("the binary runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(err.contains(says), "{args:?} {env:?}: {err}");
    }
}

#[test]
fn discover_needs_a_discovery_section_and_a_valid_file() {
    let dir = TempDir::new("cli");
    let f = write(&dir, "good.yaml", VALID);
    let out = replicanary(&["discover", "--config", &f]);
    assert_usage(
        &out,
        &format!("{f}: no `discovery:` section: nothing to discover"),
    );
    let broken = DISCOVERY_ONLY.replace("regions: [ap-northeast-1]", "regions: [tokyo]");
    let f = write(&dir, "broken.yaml", &broken);
    let out = replicanary(&["discover", "--config", &f, "--format", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("discovery.regions[0]"), "{err}");
    let out = replicanary(&["discover", "--config", &f, "--format", "xml"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown format is a usage error"
    );
}

#[test]
fn scan_names_what_it_cannot_use() {
    let dir = TempDir::new("cli");
    let f = write(&dir, "good.yaml", VALID);
    let out = replicanary(&["scan", "--config", &f, "--replication", "nope"]);
    assert_usage(&out, &format!("{f}: no replication named `nope`"));
    let file = write(&dir, "not-a-dir", "");
    let out = replicanary(&["scan", "--config", &f, "--manifest", &file]);
    assert_usage(&out, &format!("--manifest {file}: not a directory"));
}

#[test]
fn a_bad_web_configuration_is_a_usage_error_for_validate_and_run() {
    let dir = TempDir::new("cli");
    let f = write(&dir, "good.yaml", VALID);
    let web = write(
        &dir,
        "web.yaml",
        "tls_server_config: {cert_file: cert.pem}\n",
    );
    let line =
        format!("{web}: tls_server_config.key_file: required when tls_server_config is given");
    let out = replicanary(&["validate", "--config", &f, "--web.config.file", &web]);
    assert_usage(&out, &line);
    let out = replicanary(&["run", "--config", &f, "--web.config.file", &web]);
    assert_usage(&out, &line);
}
