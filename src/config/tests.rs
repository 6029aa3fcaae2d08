//! Configuration validation: every rejection names its field path.

use std::time::Duration;

use super::{Config, FieldError};

const GOOD: &str = r#"
defaults:
  interval: 5m
  replication_timeout: 15m
  poll: { initial: 1s, max: 30s }
  canary_prefix: replicanary/
  cleanup: true
aws:
  endpoint_url: http://127.0.0.1:4566
  force_path_style: true
replications:
  - name: audit-logs
    interval: 1m
    source:
      bucket: test-dev-s3
      region: ap-northeast-1
      role_arn: arn:aws:iam::111111111111:role/replicanary-source
      external_id: optional-string
      sse_kms_key_id: arn:aws:kms:ap-northeast-1:111111111111:key/0b1c2d3e-aaaa-bbbb-cccc-123456789012
    destinations:
      - bucket: audit-dev-s3
        region: ap-northeast-1
        role_arn: arn:aws:iam::222222222222:role/replicanary-destination
        expected_kms_key_arn: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab
"#;

fn errors(yaml: &str) -> Vec<FieldError> {
    Config::parse(yaml).expect_err("configuration should be rejected")
}

/// The first error's path, asserting its message mentions `needle`.
fn path_of(yaml: &str, needle: &str) -> String {
    let errs = errors(yaml);
    let e = &errs[0];
    assert!(
        e.message.contains(needle),
        "message `{}` lacks `{needle}`",
        e.message
    );
    e.path.clone()
}

#[test]
fn the_spec_example_is_valid_and_merged() {
    let c = Config::parse(GOOD).expect("valid");
    assert_eq!(c.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:4566"));
    assert!(c.aws.force_path_style);
    let r = &c.replications[0];
    assert_eq!(
        r.settings.interval,
        Duration::from_secs(60),
        "override wins"
    );
    assert_eq!(
        r.settings.replication_timeout,
        Duration::from_secs(900),
        "default applies"
    );
    assert_eq!(r.key_prefix(), "replicanary/audit-logs/");
    let d = &r.destinations[0];
    assert_eq!(
        d.name, "audit-dev-s3",
        "the destination label defaults to the bucket"
    );
    assert_eq!(
        r.source
            .role
            .as_ref()
            .and_then(|x| x.external_id.as_deref()),
        Some("optional-string")
    );
}

#[test]
fn the_annotated_example_is_valid() {
    let text = include_str!("../../config/replicanary.example.yaml");
    let c = Config::parse(text).expect("config/replicanary.example.yaml is valid");
    assert_eq!(c.replications[0].name, "audit-logs");
}

#[test]
fn empty_optional_sections_are_fine() {
    let yaml = GOOD.replace(
        "aws:\n  endpoint_url: http://127.0.0.1:4566\n  force_path_style: true\n",
        "aws:\n",
    );
    let c = Config::parse(&yaml).expect("an empty aws: section is allowed");
    assert_eq!(c.aws.endpoint_url, None);
}

#[test]
fn unknown_keys_are_errors_at_their_path() {
    let yaml = GOOD.replace(
        "        region: ap-northeast-1\n        role_arn: arn:aws:iam::222",
        "        region: ap-northeast-1\n        colour: blue\n        role_arn: arn:aws:iam::222",
    );
    assert_eq!(
        path_of(&yaml, "unknown field"),
        "replications[0].destinations[0].colour"
    );
    let top = format!("{GOOD}\nextra: 1\n");
    assert_eq!(path_of(&top, "unknown field"), "extra");
}

#[test]
fn malformed_arns_are_named() {
    let yaml = GOOD.replace(
        "arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd",
        "arn:aws:kms:ap-northeast-1:2222:key/1234abcd",
    );
    assert_eq!(
        path_of(&yaml, "not a KMS key ARN"),
        "replications[0].destinations[0].expected_kms_key_arn"
    );
    let alias = GOOD.replace(
        "arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:ap-northeast-1:222222222222:alias/replicas",
    );
    assert_eq!(
        path_of(&alias, "alias"),
        "replications[0].destinations[0].expected_kms_key_arn"
    );
    let role = GOOD.replace("role/replicanary-source", "user/bob");
    assert_eq!(
        path_of(&role, "not an IAM role ARN"),
        "replications[0].source.role_arn"
    );
    let sse = GOOD.replace(
        "sse_kms_key_id: arn:aws:kms:ap-northeast-1:111111111111:key/",
        "sse_kms_key_id: arn:aws:s3:::x/",
    );
    assert_eq!(
        path_of(&sse, "not a KMS key"),
        "replications[0].source.sse_kms_key_id"
    );
}

#[test]
fn buckets_and_regions_are_checked() {
    for bad in [
        "Test_Bucket",
        "ab",
        "192.168.1.1",
        "-lead",
        "a..b",
        "xn--bucket",
    ] {
        let yaml = GOOD.replace("bucket: test-dev-s3", &format!("bucket: \"{bad}\""));
        assert_eq!(
            path_of(&yaml, "not a valid bucket name"),
            "replications[0].source.bucket",
            "{bad}"
        );
    }
    let yaml = GOOD.replace(
        "region: ap-northeast-1\n      role_arn: arn:aws:iam::111",
        "region: tokyo\n      role_arn: arn:aws:iam::111",
    );
    assert_eq!(
        path_of(&yaml, "not an AWS region"),
        "replications[0].source.region"
    );
}

#[test]
fn durations_are_checked() {
    let yaml = GOOD.replace("interval: 1m", "interval: soon");
    assert_eq!(path_of(&yaml, "not a duration"), "replications[0].interval");
    let yaml = GOOD.replace("interval: 1m", "interval: 0s");
    assert_eq!(
        path_of(&yaml, "greater than zero"),
        "replications[0].interval"
    );
    let yaml = GOOD.replace(
        "poll: { initial: 1s, max: 30s }",
        "poll: { initial: 1m, max: 30s }",
    );
    assert_eq!(
        path_of(&yaml, "greater than poll.max"),
        "replications[0].poll"
    );
    let yaml = GOOD.replace("interval: 5m", "interval: 5");
    assert_eq!(path_of(&yaml, "has no unit"), "defaults.interval");
}

#[test]
fn duplicate_names_are_errors() {
    let rep_start = GOOD
        .find("  - name: audit-logs")
        .expect("has a replication");
    let rep = &GOOD[rep_start..];
    let twice = format!("{GOOD}{rep}");
    assert_eq!(
        path_of(&twice, "duplicate replication name"),
        "replications[1].name"
    );

    let dest_start = GOOD
        .find("      - bucket: audit-dev-s3")
        .expect("has a destination");
    let dest = &GOOD[dest_start..];
    let twice = format!("{GOOD}{dest}");
    assert_eq!(
        path_of(&twice, "duplicate destination"),
        "replications[0].destinations[1]"
    );
}

#[test]
fn empty_or_missing_replications_are_errors() {
    assert_eq!(path_of("replications: []\n", "empty"), "replications");
    assert_eq!(path_of("defaults: {}\n", "missing"), "replications");
    assert!(errors("")[0].message.contains("empty"));
    assert!(
        errors("replications: [ {name: x")[0]
            .message
            .contains("not valid YAML")
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = GOOD.replace("bucket: test-dev-s3", "bucket: Bad").replace(
        "region: ap-northeast-1\n        role_arn",
        "region: nowhere\n        role_arn",
    );
    let paths: Vec<String> = errors(&yaml).into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        [
            "replications[0].source.bucket",
            "replications[0].destinations[0].region"
        ]
    );
}

#[test]
fn a_bare_key_id_matches_the_expected_arn() {
    let c = Config::parse(GOOD).expect("valid");
    let k = &c.replications[0].destinations[0].expected_kms_key;
    assert!(k.matches(
        "arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    ));
    assert!(k.matches("1234abcd-12ab-34cd-56ef-1234567890ab"));
    assert!(!k.matches(
        "arn:aws:kms:ap-northeast-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    ));
    assert!(!k.matches("ffffffff-12ab-34cd-56ef-1234567890ab"));
}

#[test]
fn hostile_input_never_panics() {
    for text in [
        "\u{0}\u{1}\u{2}",
        "replications: 7",
        "replications: [[[[[[[[]]]]]]]]",
        "replications:\n  - name: [a, b]",
        "&a [*a, *a]",
        "replications:\n  - {name: x, source: {bucket: 12}, destinations: {}}",
        "? [a]\n: b",
        "defaults: {poll: {initial: 99999999999999999999999h}}\nreplications: []",
    ] {
        assert!(Config::parse(text).is_err(), "{text:?} should be rejected");
    }
}
